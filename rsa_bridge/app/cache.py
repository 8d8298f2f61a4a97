"""A content-keyed on-disk cache of model RDMs: a changed input is a miss, never a stale hit.

An entry is one NetCDF file ``<root>/rdms/<key>.nc`` holding a network's layer RDMs
``(layer, stimulus_row, stimulus_col)`` over one stimulus set. ``key`` is the SHA-256 of a JSON
description (stored in the entry, shown by ``rsa-bridge cache info``) of everything that decides the
numbers:

- the model: its name and class, a hash of its module tree (``str(model)``: layer settings such as
  strides and in-place ReLUs), its weights label (enum member, ``none`` + seed, the weights file's
  SHA-256, or ``user-module`` for a module rsa-bridge did not load, see :mod:`extractors.provenance`)
  **and the SHA-256 of its actual parameters and buffers** (``state_dict``), so a user-built
  or edited module is keyed on what it holds, not on what it claims to be; whether it was in training
  mode, the repr of a given ``transform``, its source and token pooling;
- the preprocessing: every public setting of the transform (image size, crop, mean/std, interpolation,
  antialias, ...) -- a transform that cannot be described (a lambda, a plain function) is not cached;
- the layers as resolved ``(name, module path)`` pairs and the result-changing fields of the
  :class:`rsa_bridge.options.RDMOptions` object (:meth:`~rsa_bridge.options.RDMOptions.cache_fields`: metric,
  precision, reduction and its seed, a non-default Gram block size);
- the stimuli: ids in order and the SHA-256 of each image file's bytes;
- the device type (cpu/cuda), the rsa-bridge version, a hash of rsa-bridge's own source files, and
  the torch/torchvision versions.

Batch size, memory budget, spill folder and progress bars are not in the key (they do not change the numbers
by design).
Location: ``$RSA_BRIDGE_CACHE``, else ``$XDG_CACHE_HOME/rsa-bridge``, else ``~/.cache/rsa-bridge``.
**The cache touches only its own files.** A cache folder is marked by a ``CACHEDIR.TAG`` (the standard
cache-directory tag, which backup tools skip) written when the cache is first used; its own files are that
tag, ``file-digests.json``, the entries ``rdms/<key>.nc`` (a 64-hex-digit name, or a file whose stored key is
its name) and temporary files of its writes. ``cache clear`` removes only entries and temporary files, and
says how many other files it left in place. A folder that is not empty, has no tag and holds anything
else (a project folder given as ``--cache``) is refused for writing before any model runs; a cache
written before the tag existed (only cache files in it) is adopted and tagged.
Writes are atomic (:func:`rsa_bridge.io.write_netcdf`); an unreadable entry is discarded with a
warning and recomputed. Every entry carries the SHA-256 of its content (:func:`rsa_bridge.integrity.content_sha256`: RDM
values, coordinates and attrs) in ``rsa_bridge_cache_content_sha256``, verified on every read: an entry
edited into another valid NetCDF (or one without a checksum) is a warning, is removed and recomputed.
The checksum guards against corruption and edits, not against a forger who recomputes it. Image digests are memoised per (path, size, mtime, ctime, inode); a file
changed since is rehashed, and files modified in the last seconds are never memoised.

This module joins the core with :mod:`extractors` (imported lazily), like :mod:`rsa_bridge.app.pipeline`.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import inspect
import json
import os
import re
import sys
import time
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

import xarray as xr

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.integrity import content_sha256
from rsa_bridge.io import read_netcdf, write_netcdf, write_text
from rsa_bridge.options import RDMOptions
from rsa_bridge.provenance import file_sha256, package_version

ENV = "RSA_BRIDGE_CACHE"
#: bump when the key description or the entry layout changes
FORMAT = 1
#: attrs of a stored entry that belong to the cache, not to the RDMs
META = "rsa_bridge_cache_"
#: a file modified less than this long ago is hashed but not memoised (its timestamp may not move yet)
RACY_NS = 2_000_000_000
MEMO_FILE = "file-digests.json"
MEMO_MAX = 200_000
#: the cache-directory tag (https://bford.info/cachedir/) that marks a folder as an rsa-bridge cache
TAG = "CACHEDIR.TAG"
TAG_TEXT = ("Signature: 8a477f597d28d172789f06886806bc55\n"
            "# This file is a cache directory tag created by rsa-bridge (model-RDM cache).\n")
_ENTRY = re.compile(r"[0-9a-f]{64}\.nc")
#: temporary files of the cache's writes: stimuli.tempfiles names, and the mkstemp names of older versions
_TEMP = re.compile(r"\.(?:[0-9a-f]{64}\.nc|[^/]+\.nc|file-digests\.json)\.rsa-bridge-tmp-[0-9a-f]{8}-\d+-[^/]*\.tmp"
                   r"|\.(?:[0-9a-f]{64}\.nc|file-digests\.json)\.[A-Za-z0-9_]{8}\.tmp")
_FOREIGN_SCAN = 10_000  # files looked at when counting foreign files

_DIGESTS: dict[tuple, str] = {}  # this process's memo: (path, size, mtime_ns, ctime_ns, ino, dev) -> digest


def default_dir() -> Path:
    """``$RSA_BRIDGE_CACHE``, else ``$XDG_CACHE_HOME/rsa-bridge``, else ``~/.cache/rsa-bridge``."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "rsa-bridge"


def _say(message: str) -> None:
    print(f"rsa-bridge cache: {message}", file=sys.stderr)


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
        """Store ``rdms`` under ``key`` atomically; a failed write only warns (the job goes on)."""
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
        except OSError as err:
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
        except OSError as err:
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


# ---------------------------------------------------------------- file digests
def _stat_key(path: Path) -> tuple:
    st = os.stat(path)
    return (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def file_digests(paths: Sequence[str | os.PathLike], memo_dir: Path | None = None) -> list[str]:
    """SHA-256 of each file's bytes, each file read once per process.

    Digests are memoised under the file's (path, size, mtime_ns, ctime_ns, inode, device), in memory and
    (with ``memo_dir``) in ``memo_dir/file-digests.json``; any change of those rehashes. A file modified
    within the last 2 s is not memoised (a second write could leave its timestamps unchanged).
    """
    memo_path = None if memo_dir is None else Path(memo_dir) / MEMO_FILE
    disk: dict[str, list] = {}
    if memo_path is not None and memo_path.is_file():
        try:
            disk = json.loads(memo_path.read_text())
        except (OSError, ValueError):
            disk = {}
    changed, now, out = False, time.time_ns(), []
    for path in map(Path, paths):
        key = _stat_key(path)
        text = json.dumps(key)
        digest = _DIGESTS.get(key) or (disk.get(text) or [None])[0]
        if digest is None:
            digest = file_sha256(path)
            if now - max(key[2], key[3]) > RACY_NS:
                _DIGESTS[key] = digest
                disk[text], changed = [digest, now], True
        else:
            _DIGESTS[key] = digest
        out.append(digest)
    if changed and memo_path is not None:
        kept = dict(sorted(disk.items(), key=lambda kv: kv[1][1])[-MEMO_MAX:])
        try:
            write_text(json.dumps(kept), memo_path)
        except OSError:
            pass  # the memo only saves time
    return out


# ---------------------------------------------------------------- keys
@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """SHA-256 over rsa-bridge's own source files (rsa_bridge, extractors, stimuli)."""
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parents[1]
    for package in ("rsa_bridge", "extractors", "stimuli"):
        for path in sorted((root / package).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _plain(value: Any, depth: int = 0) -> Any:
    """A JSON-able stand-in for a setting; raises TypeError for what cannot be described."""
    import enum

    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v, depth + 1) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if hasattr(value, "tolist") and not inspect.isroutine(value):  # numpy / torch values
        return _plain(value.tolist(), depth + 1)
    if depth < 6 and not inspect.isroutine(value) and hasattr(value, "__dict__"):
        cls = type(value)
        public = {k: v for k, v in vars(value).items() if not k.startswith("_")}
        out = {"class": f"{cls.__module__}.{cls.__qualname__}", **_plain(public, depth + 1)}
        if cls.__module__.split(".")[0] not in ("torchvision", "torch"):  # the user's own class: key its code too
            try:
                out["source_sha256"] = hashlib.sha256(inspect.getsource(cls).encode()).hexdigest()
            except (OSError, TypeError):
                raise TypeError(f"the code of {cls.__qualname__} cannot be read for the cache key") from None
        return out
    raise TypeError(f"{value!r} cannot be described for the cache key (pass a transform object, "
                    "not a function, or run without the cache)")


def transform_fingerprint(transform: Any) -> Any:
    """Every public setting of a transform (nested for Compose); TypeError for lambdas/functions."""
    return _plain(transform)


def parameters_sha256(model) -> str:
    """SHA-256 over the model's state dict (names, dtypes, shapes and bytes of parameters and buffers)."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def rdm_key(model, stimulus_set, layers: Sequence[str] | None, options: RDMOptions, transform,
            memo_dir: Path | None = None) -> tuple[str, dict]:
    """(hex key, JSON-able description) of a network's RDMs over a stimulus set.

    ``options`` enter as their :meth:`~rsa_bridge.options.RDMOptions.cache_fields` (metric and device type
    at the top level, the rest under ``options``). The stimulus set's name is recorded in the description but
    not hashed (it is a label, not content).

    Raises TypeError when something cannot be described (a lambda transform, an option that is no plain value).
    """
    import torch
    import torchvision
    from extractors import model_info, resolve_layers

    from extractors.provenance import USER_MODULE, module_provenance

    fields = options.cache_fields()
    metric, device = fields.pop("metric"), fields.pop("device")  # keyed at the top level, as before
    info = model_info(model)
    record = module_provenance(model, transform)  # a user nn.Module is "user-module", keyed on its state
    chosen = transform if transform is not None else info.transform
    weights = "file" if record["weights_sha256"] else str(record["weights"])
    description = {
        "format": FORMAT,
        "model": {"name": info.name, "class": f"{type(model).__module__}.{type(model).__qualname__}",
                  "modules_sha256": hashlib.sha256(str(model).encode()).hexdigest(), "weights": weights,
                  "weights_sha256": record["weights_sha256"], "seed": record["seed"],
                  "parameters_sha256": record["state_sha256"], "training": record["module_training"],
                  "transform": record["transform"], "source": record["source"],
                  **({"label": f"{USER_MODULE}:{record['state_sha256'][:12]}"} if weights == USER_MODULE else {}),
                  **{k: record[k] for k in ("token_pooling",) if k in record}},
        "preprocessing": transform_fingerprint(chosen),
        "layers": [list(pair) for pair in resolve_layers(model, layers)],
        "metric": metric,
        "options": _plain(fields),
        "stimuli": _stimuli_description(stimulus_set, memo_dir),
        "device": device,
        "versions": {"rsa_bridge": package_version(), "code_sha256": code_fingerprint(),
                     "torch": torch.__version__, "torchvision": torchvision.__version__},
    }
    hashed = {**description, "stimuli": {k: v for k, v in description["stimuli"].items() if k != "name"}}
    return hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest(), description


def _stimuli_description(stimulus_set, memo_dir: Path | None = None) -> dict:
    from stimuli import StimulusSet

    if not isinstance(stimulus_set, StimulusSet):
        raise TypeError("only a StimulusSet (image files with ids) can be keyed")
    digest = hashlib.sha256()
    for sid, file_digest in zip(stimulus_set.stimulus_ids, file_digests(stimulus_set.paths, memo_dir)):
        digest.update(f"{sid}\0{file_digest}\n".encode())
    return {"name": stimulus_set.name, "n": len(stimulus_set), "ids_and_contents_sha256": digest.hexdigest()}


# ---------------------------------------------------------------- the wrapper
def cached_network_rdms(compute: Callable[..., xr.DataArray], model, stimulus_set, layers,
                        options: RDMOptions | None = None, *, progress=None, transform=None,
                        cache: Any = None) -> xr.DataArray:
    """``compute(model, stimulus_set, layers, options, progress=progress, transform=transform)`` through the
    cache: a hit returns the stored RDMs (identical values, coords and attrs), a miss computes and stores them.
    ``options``: :class:`rsa_bridge.options.RDMOptions` (default ``RDMOptions()``); its
    :meth:`~rsa_bridge.options.RDMOptions.cache_fields` enter the key. ``cache``: None (default folder), False
    (off), a folder, or a cache object.
    """
    options = RDMOptions() if options is None else options
    store = resolve_cache(cache)

    def fresh() -> xr.DataArray:
        return compute(model, stimulus_set, layers, options, progress=progress, transform=transform)

    if store is None:
        return fresh()
    if hasattr(store, "claim"):
        store.claim()  # never write into a folder of other files (before any model runs)
    try:
        key, description = rdm_key(model, stimulus_set, layers, options, transform, getattr(store, "memo_dir", None))
        before = [_stat_key(p) for p in stimulus_set.paths]
    except TypeError as err:
        _say(f"not cached: {err}")
        return fresh()
    except OSError:
        return fresh()  # a missing image: let the extraction report it
    hit = store.get(key)
    if hit is not None:
        _say(f"model RDMs of {description['model']['name']} ({len(description['layers'])} layers) on "
             f"{description['stimuli']['name']} read from {store.root} (entry {key[:12]})")
        return hit
    rdms = fresh()
    try:
        unchanged = [_stat_key(p) for p in stimulus_set.paths] == before
    except OSError:
        unchanged = False
    if unchanged:  # a file edited during the run would otherwise be stored under its old content's key
        store.put(key, rdms, description)
    return rdms
