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
changed since is rehashed, and files modified in the last seconds are never memoised. The memo carries a
checksum of its entries and is validated on read: an edited or corrupt memo is ignored and rebuilt.

This module joins the core with :mod:`extractors` (imported lazily), like :mod:`rsa_bridge.app.pipeline`; the
storage half (:class:`RDMCache`, :class:`MemoryCache`, :func:`resolve_cache`) is :mod:`rsa_bridge.app.cache_store`.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import sys
import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

import xarray as xr

from rsa_bridge.app.cache_store import (  # noqa: F401  (the storage half, re-exported)
    ENV, MEMO_FILE, META, TAG, TAG_TEXT, Entry, MemoryCache, RDMCache, default_dir, resolve_cache)
from rsa_bridge.errors import RSABridgeError  # noqa: F401
from rsa_bridge.io import write_text
from rsa_bridge.options import RDMOptions
from rsa_bridge.provenance import file_sha256, package_version

#: bump when the key description or the entry layout changes
FORMAT = 1
#: a file modified less than this long ago is hashed but not memoised (its timestamp may not move yet)
RACY_NS = 2_000_000_000
MEMO_MAX = 200_000
#: layout of file-digests.json: {"format": 2, "sha256": checksum of the entries, "entries": {stat key: [digest, ns]}}
MEMO_FORMAT = 2
MEMO_BYTES_MAX = 128 << 20  # a larger memo is not the cache's: ignored
_HEX64 = re.compile(r"[0-9a-f]{64}")

_DIGESTS: dict[tuple, str] = {}  # this process's memo: (path, size, mtime_ns, ctime_ns, ino, dev) -> digest


def _say(message: str) -> None:
    print(f"rsa-bridge cache: {message}", file=sys.stderr)


# ---------------------------------------------------------------- file digests
def _stat_key(path: Path) -> tuple:
    st = os.stat(path)
    return (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def _memo_allowed(folder: Path) -> bool:
    """The memo is written only into a tagged cache folder or a new/empty one, never among other files."""
    try:
        return (folder / TAG).is_file() or not folder.exists() or \
            all(entry.name == MEMO_FILE for entry in os.scandir(folder))
    except OSError:
        return False


def _memo_checksum(entries: dict) -> str:
    return hashlib.sha256(json.dumps(entries, sort_keys=True).encode()).hexdigest()


def _valid_memo_entry(text: Any, value: Any) -> bool:
    """A memo entry as :func:`file_digests` writes it: key = JSON of the stat key, value = [digest, time]."""
    try:
        key = json.loads(text)
    except (TypeError, ValueError):
        return False
    return (isinstance(key, list) and len(key) == 6 and isinstance(key[0], str)
            and all(type(v) is int for v in key[1:]) and isinstance(value, list) and len(value) == 2
            and isinstance(value[0], str) and _HEX64.fullmatch(value[0]) is not None and type(value[1]) is int)


def read_memo(memo_path: Path) -> dict[str, list]:
    """The entries of a digest memo, or ``{}`` when it is missing, not a regular file, too large, not
    JSON, of another layout, or its checksum does not match its entries (edited or corrupted): such a
    memo is never trusted, the files are hashed again and the memo rebuilt. Entries of the wrong types
    are dropped one by one."""
    try:
        if memo_path.is_symlink() or not memo_path.is_file() or memo_path.stat().st_size > MEMO_BYTES_MAX:
            return {}
        body = json.loads(memo_path.read_text())
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return {}
    if not isinstance(body, dict) or body.get("format") != MEMO_FORMAT or not isinstance(body.get("entries"), dict):
        return {}
    entries = body["entries"]
    if body.get("sha256") != _memo_checksum(entries):
        _say(f"{memo_path} does not match its checksum (edited or corrupted); image digests are recomputed")
        return {}
    return {k: v for k, v in entries.items() if _valid_memo_entry(k, v)}


def file_digests(paths: Sequence[str | os.PathLike], memo_dir: Path | None = None) -> list[str]:
    """SHA-256 of each file's bytes, each file read once per process.

    Digests are memoised under the file's (path, size, mtime_ns, ctime_ns, inode, device), in memory and
    (with ``memo_dir``: a tagged cache folder, or a new or empty one) in ``memo_dir/file-digests.json``; any change of those rehashes. A file modified
    within the last 2 s is not memoised (a second write could leave its timestamps unchanged). The memo
    on disk carries a checksum of its entries and is validated on read (:func:`read_memo`): an edited,
    corrupt or foreign memo (``null``, ``[]``, garbage) is ignored and rebuilt, never trusted.
    """
    memo_path = None if memo_dir is None else Path(memo_dir) / MEMO_FILE
    disk: dict[str, list] = {} if memo_path is None else read_memo(memo_path)
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
    if changed and memo_path is not None and _memo_allowed(memo_path.parent):
        kept = dict(sorted(disk.items(), key=lambda kv: kv[1][1])[-MEMO_MAX:])
        body = {"format": MEMO_FORMAT, "sha256": _memo_checksum(kept), "entries": kept}
        try:
            write_text(json.dumps(body), memo_path)
        except (OSError, RSABridgeError):
            pass  # the memo only saves time (a full disk included)
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
def job_key(model, stimulus_set, layers, options: RDMOptions, transform, memo_dir: Path | None):
    """(key, description, the images' stat keys) of a job, or None when it cannot be cached (said in one line)
    or an image is missing (the extraction reports it)."""
    try:
        key, description = rdm_key(model, stimulus_set, layers, options, transform, memo_dir)
        before = [_stat_key(p) for p in stimulus_set.paths]
    except TypeError as err:
        _say(f"not cached: {err}")
        return None
    except OSError:
        return None
    return key, description, before


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
    keyed = job_key(model, stimulus_set, layers, options, transform, getattr(store, "memo_dir", None))
    if keyed is None:
        return fresh()
    key, description, before = keyed
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
