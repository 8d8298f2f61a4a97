"""The storage half of the model-RDM cache (:mod:`rsa_bridge.app.cache` has the keys and the wrapper):
the on-disk :class:`RDMCache`, the in-memory :class:`MemoryCache` and :func:`resolve_cache`.

The cache touches only its own files: the folder's ``CACHEDIR.TAG``, ``file-digests.json``, the entries
``rdms/<key>.nc`` and the temporary files of its own writes (see :meth:`RDMCache.foreign`). Example::

    store = RDMCache("~/.cache/rsa-bridge")
    store.claim()            # refuses a non-empty folder of other files; tags a new one
    removed, freed = store.clear(older_than_days=30)
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xarray as xr

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.integrity import content_sha256
from rsa_bridge.io import read_netcdf, write_netcdf, write_text

ENV = "RSA_BRIDGE_CACHE"
#: attrs of a stored entry that belong to the cache, not to the RDMs
META = "rsa_bridge_cache_"
MEMO_FILE = "file-digests.json"
#: the cache-directory tag (https://bford.info/cachedir/) that marks a folder as an rsa-bridge cache
TAG = "CACHEDIR.TAG"
TAG_TEXT = ("Signature: 8a477f597d28d172789f06886806bc55\n"
            "# This file is a cache directory tag created by rsa-bridge (model-RDM cache).\n")
_ENTRY = re.compile(r"[0-9a-f]{64}\.nc")
#: temporary files of the cache's writes: stimuli.tempfiles names, and the mkstemp names of older versions
_TEMP = re.compile(r"\.(?:[0-9a-f]{64}\.nc|file-digests\.json|CACHEDIR\.TAG)\.rsa-bridge-tmp-[0-9a-f]{8}-\d+-[^/]*\.tmp"
                   r"|\.(?:[0-9a-f]{64}\.nc|file-digests\.json)\.[A-Za-z0-9_]{8}\.tmp")
_FOREIGN_SCAN = 10_000  # files looked at when counting foreign files


def default_dir() -> Path:
    """``$RSA_BRIDGE_CACHE``, else ``$XDG_CACHE_HOME/rsa-bridge``, else ``~/.cache/rsa-bridge``."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "rsa-bridge"



# ---------------------------------------------------------------- storage
@dataclass(frozen=True)
class Entry:
    """One stored entry, as ``cache info`` lists it (sizes in bytes, times in local ISO format)."""

    key: str
    path: Path
    size: int
    model: str
    weights: str
    layers: str
    stimulus_set: str
    n_stimuli: int
    created: str
    last_used: float


class RDMCache:
    """Model RDMs on disk under ``root`` (see the module docstring)."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root).expanduser() if root is not None else default_dir()
        if self.root.exists() and not self.root.is_dir():
            raise RSABridgeError(f"the cache folder {str(self.root)!r} is a file; give a folder (--cache DIR or "
                                 f"${ENV}), or --no-cache")
        self.folder = self.root / "rdms"
        self.memo_dir = self.root  # where image digests are memoised

    def __repr__(self) -> str:
        return f"RDMCache({str(self.root)!r})"

    def path_for(self, key: str) -> Path:
        return self.folder / f"{key}.nc"

    def get(self, key: str) -> xr.DataArray | None:
        """The stored RDMs for ``key`` (attrs as they were computed), or None; a bad entry is removed
        (unreadable, another key's, or content that does not match its stored checksum)."""
        path = self.path_for(key)
        if not path.is_file():
            return None
        try:
            ds = read_netcdf(path, "a model-RDM cache entry")
            if ds.attrs.get(f"{META}key") != key or "rdms" not in ds:
                raise ValueError("the entry does not hold the RDMs of its key")
            rdms = ds["rdms"]
            rdms.name = None if ds.attrs.get(f"{META}name", "") == "" else ds.attrs[f"{META}name"]
            stored = ds.attrs.get(f"{META}content_sha256")
            if stored is None or str(stored) != content_sha256(rdms):
                raise ValueError("its content does not match its checksum (edited or corrupted)"
                                 if stored is not None else "it carries no content checksum")
        except Exception as err:  # any unreadable file: discard and recompute
            warnings.warn(f"cache entry {path} is unreadable ({type(err).__name__}: {err}); "
                          "it was removed and will be recomputed", RuntimeWarning, stacklevel=2)
            path.unlink(missing_ok=True)
            return None
        os.utime(path)  # last use, for `cache clear --older-than`
        return rdms

    def put(self, key: str, rdms: xr.DataArray, description: dict) -> Path | None:
        """Store ``rdms`` under ``key`` atomically; a failed write only warns (the job goes on), and so does a
        folder that :meth:`claim` refuses (nothing is written there)."""
        try:
            self.claim()
        except RSABridgeError as err:
            warnings.warn(f"model RDMs not stored: {err}", RuntimeWarning, stacklevel=2)
            return None
        meta = {f"{META}key": key, f"{META}description": json.dumps(description, sort_keys=True),
                f"{META}created": _dt.datetime.now().isoformat(timespec="seconds"),
                f"{META}name": "" if rdms.name is None else str(rdms.name),
                f"{META}model": str(description["model"]["name"]), f"{META}weights": str(description["model"].get("label", description["model"]["weights"])),
                f"{META}layers": ",".join(n for n, _ in description["layers"]),
                f"{META}stimulus_set": str(description["stimuli"]["name"]),
                f"{META}n_stimuli": int(description["stimuli"]["n"]),
                f"{META}content_sha256": content_sha256(rdms.rename(None))}
        try:
            return write_netcdf(xr.Dataset({"rdms": rdms.rename(None)}, attrs=meta), self.path_for(key))
        except (OSError, RSABridgeError) as err:  # a full disk included: the job goes on without storing
            warnings.warn(f"could not store model RDMs in the cache at {self.root} ({err}); "
                          "pass --no-cache or --cache DIR", RuntimeWarning, stacklevel=2)
            return None

    def _entry_attrs(self, path: Path) -> dict | None:
        """The cache attrs of ``rdms/NAME.nc`` when it is one of the cache's entries (a 64-hex-digit name, or
        a stored key equal to its name); None for a file the cache did not write."""
        try:
            attrs = dict(read_netcdf(path, attrs_only=True).attrs)
        except RSABridgeError:
            attrs = {}
        if _ENTRY.fullmatch(path.name) or str(attrs.get(f"{META}key", "")) == path.stem:
            return attrs
        return None

    def entries(self) -> list[Entry]:
        """The cache's own entries, oldest use first (an unreadable entry is listed with model '?'); other
        ``.nc`` files in ``rdms/`` are not entries (see :meth:`foreign`)."""
        found = []
        for path in sorted(self.folder.glob("*.nc")) if self.folder.is_dir() else []:
            if path.is_symlink() or not path.is_file():
                continue
            attrs = self._entry_attrs(path)
            if attrs is None:
                continue
            stat = path.stat()
            found.append(Entry(path.stem, path, stat.st_size, str(attrs.get(f"{META}model", "?")),
                               str(attrs.get(f"{META}weights", "?")), str(attrs.get(f"{META}layers", "?")),
                               str(attrs.get(f"{META}stimulus_set", "?")), int(attrs.get(f"{META}n_stimuli", 0)),
                               str(attrs.get(f"{META}created", "?")), stat.st_mtime))
        return sorted(found, key=lambda e: e.last_used)

    def _temps(self) -> list[Path]:
        """Temporary files of the cache's own writes (in the root and ``rdms/``, by name)."""
        return [p for d in (self.root, self.folder) if d.is_dir() for p in sorted(d.iterdir())
                if _TEMP.fullmatch(p.name) and p.is_file() and not p.is_symlink()]

    def leftovers(self, min_age_s: float = 3600.0) -> list[Path]:
        """Temporary files of the cache's writes that were killed: older than ``min_age_s``, or of a process of
        this host that is gone (never a live write, never a file the cache did not write)."""
        from stimuli.tempfiles import dead_temp

        now = time.time()
        return [p for p in self._temps() if now - p.stat().st_mtime > min_age_s or dead_temp(p)]

    def foreign(self) -> tuple[int, list[str]]:
        """(count, first few names) of the files under the root that the cache did not write (counting
        stops after 10,000 files); ``cache clear`` leaves them where they are."""
        own = {self.root / TAG, self.root / MEMO_FILE, *self._temps(), *(e.path for e in self.entries())}
        names: list[str] = []
        count = seen = 0
        for root, dirs, files in os.walk(self.root) if self.root.is_dir() else []:
            dirs.sort()
            for name in sorted(files) + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
                seen += 1
                path = Path(root) / name
                if path not in own:
                    count += 1
                    if len(names) < 3:
                        names.append(path.relative_to(self.root).as_posix())
            if seen > _FOREIGN_SCAN:
                break
        return count, names

    def is_tagged(self) -> bool:
        """True when the root holds rsa-bridge's ``CACHEDIR.TAG``."""
        tag = self.root / TAG
        try:
            return not tag.is_symlink() and tag.is_file() and tag.stat().st_size < 4096 and \
                tag.read_text(errors="replace") == TAG_TEXT
        except OSError:
            return False

    def claim(self) -> None:
        """Make sure the cache writes only into its own folder: a missing or empty folder (or one holding only
        cache files, from before the tag) gets the tag; any other folder is refused.

        Raises:
            RSABridgeError: the folder is not empty, has no rsa-bridge ``CACHEDIR.TAG`` and holds other files.
        """
        if self.is_tagged():
            return
        count, names = self.foreign()
        if count:
            shown = ", ".join(names) + (", ..." if count > len(names) else "")
            raise RSABridgeError(f"the cache folder {str(self.root)!r} is not an rsa-bridge cache (no {TAG}) and holds "
                                 f"{count} other file(s) ({shown}); give an empty or new folder (--cache DIR or "
                                 f"${ENV}), or --no-cache")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            write_text(TAG_TEXT, self.root / TAG)
        except (OSError, RSABridgeError) as err:
            warnings.warn(f"could not mark the cache folder {self.root} ({err})", RuntimeWarning, stacklevel=2)

    def clear(self, older_than_days: float | None = None) -> tuple[int, int]:
        """Remove the cache's own entries (all, or those unused for ``older_than_days``) and the temporary files
        of its killed writes; nothing else (see :meth:`foreign`).

        Returns (entries removed, bytes freed).
        """
        cutoff = None if older_than_days is None else time.time() - older_than_days * 86400
        removed = freed = 0
        for entry in self.entries():
            if cutoff is None or entry.last_used < cutoff:
                entry.path.unlink(missing_ok=True)
                removed, freed = removed + 1, freed + entry.size
        for path in self.leftovers():
            freed += path.stat().st_size
            path.unlink(missing_ok=True)
        if older_than_days is None:
            (self.root / MEMO_FILE).unlink(missing_ok=True)
        return removed, freed


class MemoryCache:
    """RDMs held in memory by key (the distributed path fills one); ``strict``: a miss is an error."""

    def __init__(self, entries: dict[str, xr.DataArray] | None = None, strict: bool = False, label: str = "memory"):
        self.store = dict(entries or {})
        self.strict = strict
        self.root = label
        self.memo_dir = None

    def get(self, key: str) -> xr.DataArray | None:
        if key not in self.store and self.strict:
            raise RSABridgeError("the workers' model RDMs do not match this machine's inputs (another torch, "
                                 "torchvision or rsa-bridge version, or other files); run without --scheduler")
        found = self.store.get(key)
        return None if found is None else found.copy(deep=False)

    def put(self, key: str, rdms: xr.DataArray, description: dict) -> None:
        self.store[key] = rdms


def resolve_cache(cache: Any) -> RDMCache | MemoryCache | None:
    """None/True: the default folder; False: no cache; a path: that folder; a cache object: itself."""
    if cache is False:
        return None
    if cache is None or cache is True:
        return RDMCache()
    if hasattr(cache, "get") and hasattr(cache, "put"):  # a cache object (RDMCache, MemoryCache, ...)
        return cache
    return RDMCache(cache)
