"""Loading the catalog: the built-in defaults (`default.toml`, shipped in the package), with an
operator's file read on top of them.

The operator's file has the same shape. A model whose id is already in the catalog replaces it
whole (to reorder or drop channels, change prices or limits, or retire it); a new id is added at
the end; `[defaults]` entries replace the built-in defaults one kind at a time. The result is
validated as one catalog, and a problem stops the start with a message naming the file, the entry
and what is wrong with it.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from vidgate.catalog.schema import Catalog


class CatalogError(Exception):
    """The catalog cannot be used; the message says where and why."""


def _read(text: str, source: str) -> dict[str, Any]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{source}: not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - {"models", "defaults"})
    if unknown:
        raise CatalogError(f"{source}: unknown top-level entries: {', '.join(unknown)}")
    models = data.get("models", [])
    if not isinstance(models, list) or not all(isinstance(m, dict) for m in models):
        raise CatalogError(f"{source}: models must be [[models]] tables")
    if not isinstance(data.get("defaults", {}), dict):
        raise CatalogError(f"{source}: defaults must be a table of kind = model id")
    return data


def _where(loc: tuple[int | str, ...], models: list[dict[str, Any]]) -> str:
    """`models[3] (id "x").tiers[1].credits` for a pydantic error location."""
    parts: list[str] = []
    for i, item in enumerate(loc):
        if isinstance(item, int):
            parts[-1] += f"[{item}]"
            if i == 1 and loc[0] == "models" and item < len(models):
                parts[-1] += f' (id "{models[item].get("id", "?")}")'
        else:
            parts.append(str(item))
    return ".".join(parts) or "catalog"


def build_catalog(layers: list[tuple[str, str]]) -> Catalog:
    """The catalog from TOML texts, each `(source name, text)`, later ones on top."""
    models: list[dict[str, Any]] = []
    defaults: dict[str, Any] = {}
    sources: dict[str, str] = {}  # model id -> the file that gave it
    for source, text in layers:
        data = _read(text, source)
        for entry in data.get("models", []):
            model_id = entry.get("id")
            index = next((i for i, m in enumerate(models) if m.get("id") == model_id), None)
            if index is None:
                models.append(entry)
            else:
                models[index] = entry
            sources[str(model_id)] = source
        defaults.update(data.get("defaults", {}))
    try:
        return Catalog.model_validate({"models": models, "defaults": defaults})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        source = layers[-1][0]
        position = loc[1] if len(loc) > 1 and loc[0] == "models" else None
        if isinstance(position, int) and position < len(models):
            source = sources.get(str(models[position].get("id")), source)
        message = first["msg"].removeprefix("Value error, ")
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise CatalogError(f"{source}: {_where(loc, models)}: {message}{more}") from exc


def default_text() -> str:
    return resources.files("vidgate.catalog").joinpath("default.toml").read_text("utf-8")


def load_catalog(path: Path | None) -> Catalog:
    """The built-in catalog, with the operator's file (`VIDGATE_CATALOG`) on top when given."""
    layers = [("built-in catalog", default_text())]
    if path is not None:
        try:
            layers.append((str(path), path.read_text("utf-8")))
        except OSError as exc:
            raise CatalogError(f"{path}: cannot be read: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise CatalogError(f"{path}: not UTF-8 text") from exc
    return build_catalog(layers)
