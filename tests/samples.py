"""Kept for web/e2e/make_samples.py (the browser tests' media), which imports `tests.samples`:
the sample makers live in tests/fixtures/samples.py. Tests import them from there; once the
browser tests do too, this module goes."""

from tests.fixtures.samples import jpeg_bytes, mp4_bytes, png_bytes

__all__ = ["jpeg_bytes", "mp4_bytes", "png_bytes"]
