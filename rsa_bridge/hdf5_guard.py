"""Files are self-contained: an HDF5 file is checked for pointers to other files before any data is read.

HDF5 (and so NetCDF-4, MATLAB v7.3 ``.mat``, rsatoolbox's ``.h5`` and NWB) can make a file read bytes of
*another* file without the reader asking: a dataset may keep its data in an outside file (*external
storage*), be assembled from datasets of other files (a *virtual dataset*), or a group may hold an
*external link* (or another user-defined link) that opens another file when followed. A hostile data file
could thus copy a private file on the same machine into an rsa-bridge output. :func:`check_self_contained`
walks the file with h5py before any reader opens it and refuses, with one :class:`RSABridgeError` line that
names the object and the file, any:

- external or user-defined link (``h5py.ExternalLink``; links are read with ``getlink=True``, never followed);
- dataset with external storage (``Dataset.external``) or a virtual layout (``Dataset.is_virtual``);
- object reached through an object or region reference (in a dataset or an attribute, as MATLAB cell
  arrays, NetCDF dimension scales and NWB use them) is checked the same way.

Soft links are not followed (their target, if any, is a named object of the same file reached by the
walk itself), so a soft-link cycle cannot loop. The walk is bounded: at most :func:`max_hdf5_objects`
objects, links and references (default 100,000, ``RSA_BRIDGE_MAX_HDF5_OBJECTS`` to change), beyond which
the file is refused. A file that is not HDF5 (NetCDF-3, MATLAB v5, CSV, ``.npy``) is not opened.

:func:`rsa_bridge.io.reading`, the error policy of every file reader, calls it, so every reader that uses
``reading`` is covered; the few readers that open files through another library (rsatoolbox, pynwb) call
it themselves. Example::

    >>> check_self_contained("rates.nc")          # doctest: +SKIP   (raises RSABridgeError if not)
"""
from __future__ import annotations

import os
from pathlib import Path

from rsa_bridge.errors import RSABridgeError

#: the 8-byte HDF5 format signature; the superblock is at 0, 512, 1024, 2048 ... (after a user block)
SIGNATURE = b"\x89HDF\r\n\x1a\n"

#: how many objects, links and references one file may have before the walk refuses it
DEFAULT_MAX_OBJECTS = 100_000
ENV_MAX_OBJECTS = "RSA_BRIDGE_MAX_HDF5_OBJECTS"

SELF_CONTAINED = ("rsa-bridge reads only self-contained files (if you trust the other file, copy its data into "
                  "this one, e.g. load and save it again with the tool that wrote it)")


def max_hdf5_objects() -> int:
    """The walk's bound: ``RSA_BRIDGE_MAX_HDF5_OBJECTS`` (a whole number >= 1) or 100,000."""
    text = os.environ.get(ENV_MAX_OBJECTS, "").strip()
    if not text:
        return DEFAULT_MAX_OBJECTS
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise RSABridgeError(f"{ENV_MAX_OBJECTS}={text!r} must be a whole number >= 1")
    return value


def is_hdf5(path: str | os.PathLike) -> bool:
    """True when ``path`` holds the HDF5 signature at offset 0, 512, 1024, 2048 ... (reads a few bytes)."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as handle:
        offset = 0
        while offset + len(SIGNATURE) <= size:
            handle.seek(offset)
            if handle.read(len(SIGNATURE)) == SIGNATURE:
                return True
            offset = 512 if offset == 0 else offset * 2
    return False


def check_self_contained(path: str | os.PathLike) -> None:
    """Refuse an HDF5 file that reads other files (see the module docstring); other files pass untouched.

    Raises:
        RSABridgeError: ``'x.mat': dataset '/rates' stores its data in another file (HDF5 external
            storage); rsa-bridge reads only self-contained files`` (and likewise for links, virtual
            datasets and a file with more objects than :func:`max_hdf5_objects`).
        Exception: whatever h5py raises for a corrupt file (callers run this inside
            :func:`rsa_bridge.io.reading`, which turns it into one line).
    """
    path = Path(path)
    if not is_hdf5(path):
        return
    limit = max_hdf5_objects()
    stat = path.stat()  # a file found clean is not walked again until it changes (ctime cannot be set back)
    key = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, limit)
    if key in _CLEAN:
        return
    import h5py

    with h5py.File(path, "r") as handle:
        _Walk(handle, path, limit).run()
    if len(_CLEAN) >= 256:
        _CLEAN.clear()
    _CLEAN.add(key)


#: (device, inode, size, mtime, ctime, object limit) of files walked and found self-contained in this process
_CLEAN: set[tuple[int, ...]] = set()


class _Walk:
    """One depth-first walk over the groups, datasets and referenced objects of an open file."""

    def __init__(self, handle, path: Path, limit: int):
        self.handle, self.path, self.limit = handle, path, limit
        self.count = 0
        self.seen: set[int] = set()
        self.queue: list = []

    def refuse(self, what: str) -> None:
        raise RSABridgeError(f"{str(self.path)!r}: {what}; {SELF_CONTAINED}")

    def tick(self, n: int = 1) -> None:
        self.count += n
        if self.count > self.limit:
            raise RSABridgeError(f"{str(self.path)!r} has more than {self.limit:,} HDF5 objects, links and "
                                 f"references; refusing to walk it (raise {ENV_MAX_OBJECTS} for a file you trust)")

    def add(self, obj, path: str | None) -> None:
        """Queue ``obj`` once (by address); ``path`` is how the walk reached it (None: by a reference)."""
        import h5py

        addr = h5py.h5o.get_info(obj.id).addr
        if addr not in self.seen:
            self.seen.add(addr)
            self.queue.append((obj, path))

    def run(self) -> None:
        self.add(self.handle, "/")
        while self.queue:
            obj, path = self.queue.pop()
            self.tick()
            self._attributes(obj)
            self._object(obj, path)

    @staticmethod
    def _name(obj, path: str | None) -> str:
        """The walk's path, or HDF5's name of an object reached by a reference (asked only to refuse: slow)."""
        return path or obj.name or "(an object with no name, reached by a reference)"

    def _object(self, obj, path: str | None) -> None:
        import h5py

        if isinstance(obj, h5py.Group):
            base = self._name(obj, path).rstrip("/") if len(obj) else ""
            for name in obj:
                self.tick()
                link = obj.get(name, getlink=True)
                where = f"{base}/{name}"
                if isinstance(link, h5py.ExternalLink):
                    self.refuse(f"link {where!r} points into another file ({link.filename!r}; HDF5 external link)")
                if isinstance(link, h5py.HardLink):
                    self.add(obj.get(name), where)
                elif not isinstance(link, h5py.SoftLink):
                    self.refuse(f"link {where!r} is a user-defined HDF5 link that may open another file")
        elif isinstance(obj, h5py.Dataset):
            if obj.is_virtual:
                self.refuse(f"dataset {self._name(obj, path)!r} is assembled from other files (HDF5 virtual dataset)")
            if obj.external:
                self.refuse(f"dataset {self._name(obj, path)!r} stores its data in another file "
                            "(HDF5 external storage)")
            fields = _reference_fields(obj.dtype)
            if fields:
                self.tick(obj.size)  # bounded before reading the references
                values = obj[()] if fields == [None] else obj.fields(fields)[()]
                self._follow(values, fields)

    def _attributes(self, obj) -> None:
        for name in obj.attrs:
            self.tick()
            attr = obj.attrs.get_id(name)
            fields = _reference_fields(attr.dtype)
            if fields:
                self.tick(max(1, _size(attr.shape or ())))
                self._follow(obj.attrs[name], fields)

    def _follow(self, values, fields: list) -> None:
        import numpy as np

        arrays = [values] if fields == [None] else [values[f] for f in fields]
        for array in arrays:
            for ref in np.ravel(np.asarray(array, dtype=object)):
                if ref:
                    try:
                        target = self.handle[ref]
                    except (KeyError, ValueError, RuntimeError, OSError):
                        continue  # a dangling reference reads nothing, here or in a reader
                    self.add(target, None)


def _size(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _reference_fields(dtype) -> list:
    """``[None]`` for a reference dtype, the names of reference fields of a compound dtype, else ``[]``."""
    import h5py

    if h5py.check_ref_dtype(dtype) is not None:
        return [None]
    if dtype.names:
        return [n for n in dtype.names if h5py.check_ref_dtype(dtype.fields[n][0]) is not None]
    return []
