"""vidgate: run a paid AI-video service."""

from importlib.metadata import PackageNotFoundError, version

try:
    # The one version: pyproject.toml's, as the installed distribution's metadata carries it.
    __version__ = version("vidgate")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
