"""Provenance attributes that every rsa-bridge result carries (NetCDF-safe: str, int, float)."""
from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path
from typing import Any


def package_version() -> str:
    """The installed rsa-bridge version, or ``'unknown'`` when run from an uninstalled tree."""
    try:
        return metadata.version("rsa-bridge")
    except metadata.PackageNotFoundError:  # pragma: no cover - only in uninstalled checkouts
        return "unknown"


def clean_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """Drop ``None`` values and turn anything that NetCDF cannot store into a string."""
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = int(value)
        elif isinstance(value, (str, int, float)):
            out[key] = value
        elif isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) for v in value):
            out[key] = list(value)
        else:
            out[key] = str(value)
    return out


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
