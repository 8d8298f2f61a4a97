"""Files in and out: one NetCDF reader, one NetCDF writer, atomic writes.

**Writes** go to a temporary file next to the target, which is then renamed over it, so a crash leaves no
half-written file. **NetCDF** is written as NetCDF-4 through the h5netcdf engine and read as NetCDF-4 or
NetCDF-3 (the backend is chosen by the file's content). Error policy of
:func:`read_netcdf` (the only NetCDF reader of rsa-bridge): a missing file and a file that is not
readable NetCDF (corrupt, truncated, another format) are user errors, :class:`RSABridgeError` with the
path and what to do; the file is loaded fully and closed before returning (no open handles, no lazy
reads from a file that may be replaced). Callers that must not fail (the model-RDM cache) catch
:class:`RSABridgeError` and apply their own policy.

**Files are self-contained**: :func:`reading`, the error policy of every reader, first checks an HDF5-based
file (NetCDF-4, MATLAB v7.3, rsatoolbox HDF5, NWB) with :func:`rsa_bridge.hdf5_guard.check_self_contained`
and refuses one that would read another file (external links, external storage, virtual datasets).

Whole output folders are published as one unit by :func:`staged_outputs` (see :mod:`stimuli.atomic` for
the rule: --out checked first, lock, staging folder beside the target, completion marker, one rename).
"""
from __future__ import annotations

import gc
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:  # only in annotations: importing this module stays cheap (the CLI's --help uses it)
    import xarray as xr

# the publishing rule lives in the lowest layer (stimuli.atomic); re-exported here for the application layer
from stimuli.atomic import MARKER, check_out, is_complete, publish_file, publish_files, publish_folder  # noqa: F401
from stimuli.diskspace import check_free_space, check_regular_file, disk_errors  # noqa: F401
from stimuli.tempfiles import signals_raise, sweep_temp, temp_path

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.hdf5_guard import check_self_contained

ENGINE = "h5netcdf"
#: datasets up to this size (``nbytes``) are rendered to NetCDF in memory and then written by Python: HDF5
#: itself crashes the interpreter when the disk fills under it (larger ones are written directly, after the
#: free-space check)
IN_MEMORY_MAX = 1 << 30


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success it replaces ``path`` atomically.

    The temporary file is named ``.NAME.rsa-bridge-tmp-HOST-PID-RANDOM.tmp`` (:func:`stimuli.tempfiles.temp_path`):
    it is removed on any error and on SIGTERM/SIGINT, and a later write of ``path`` sweeps those of
    processes that died (SIGKILL)."""
    path = Path(path)
    with disk_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        sweep_temp(path)
        with signals_raise():
            tmp_path = temp_path(path, keep_suffix=False)
            try:
                yield tmp_path
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; give the file ordinary permissions
                os.replace(tmp_path, path)
            except BaseException:
                drop_failed_hdf5(tmp_path)
                raise
            finally:
                tmp_path.unlink(missing_ok=True)


def drop_failed_hdf5(prefix: str | os.PathLike) -> int:
    """After a failed write: mark every h5netcdf file still open under ``prefix`` (a file, or a folder's
    path) closed and close its HDF5 file id; returns how many.

    An HDF5 file whose write failed (a full disk) cannot be flushed: h5netcdf's own ``close``, run again
    when the object is collected, then crashes the interpreter (SIGSEGV in HDF5). The temporary file is
    deleted by the caller, so nothing of it is needed.
    """
    module = sys.modules.get("h5netcdf")
    if module is None:
        return 0
    prefix = os.path.abspath(prefix)
    dropped = 0
    for obj in gc.get_objects():
        if not isinstance(obj, module.File) or getattr(obj, "_closed", True):
            continue
        if not os.path.abspath(str(getattr(obj, "_filename", ""))).startswith(prefix):
            continue
        handle = getattr(obj, "_File__h5file", None)
        obj._closed = True
        obj._File__h5file = None
        dropped += 1
        try:
            if handle is not None and handle.id.valid:
                handle.id.close()
        except Exception:  # noqa: BLE001 - the file is broken and about to be deleted
            pass
    return dropped


def out_path(text: str) -> Path | str:
    """argparse ``type`` for ``--out``: a :class:`~pathlib.Path`, except that an empty or blank value stays
    the string ``''`` so that :func:`check_out` can refuse it (``Path('')`` would silently mean ``.``)."""
    return Path(text) if text.strip() else text


def write_netcdf(obj: xr.Dataset | xr.DataArray, path: str | os.PathLike, *, encoding: dict | None = None) -> Path:
    """Write a Dataset/DataArray to NetCDF-4 (h5netcdf engine) atomically; returns the path.

    ``encoding``: per-variable NetCDF encoding, e.g. ``{"rates": {"zlib": True, "complevel": 4}}``.
    The free space of the target's device is checked first against the data's size (``nbytes``, before
    compression) plus a margin; a full disk during the write is one :class:`RSABridgeError` line
    (:mod:`stimuli.diskspace`), with the temporary file removed. Up to :data:`IN_MEMORY_MAX` the file is
    rendered in memory first, so a disk that fills meanwhile never reaches HDF5.
    """
    size = int(obj.nbytes)
    check_free_space(path, size, f"{Path(path).name!r}")
    with atomic_path(path) as tmp:
        if size <= IN_MEMORY_MAX:  # HDF5 never meets the disk: a full disk is a plain OSError of os.write
            data = obj.to_netcdf(None, engine=ENGINE, encoding=encoding)
            with open(tmp, "wb") as handle:
                handle.write(data)
        else:
            obj.to_netcdf(tmp, engine=ENGINE, encoding=encoding)
    return Path(path)


@contextmanager
def reading(path: str | os.PathLike, what: str) -> Iterator[Path]:
    """The one error policy of every file reader: yields ``path`` as a Path.

    A missing file raises ``RSABridgeError("no such file: ...")``; any exception but an RSABridgeError
    raised inside the block (the many types that h5py, scipy.io, netCDF and pandas raise for a corrupt or
    truncated file) becomes ``RSABridgeError("cannot read PATH as WHAT (Type: message); the file is
    corrupt, truncated or not WHAT")``. Before the block runs, an HDF5-based file is checked to be
    self-contained (:func:`rsa_bridge.hdf5_guard.check_self_contained`: no external links, external
    storage or virtual datasets). Example::

        with reading(path, "a MATLAB v7.3 file") as p, h5py.File(p, "r") as handle:
            ...
    """
    path = Path(path)
    check_regular_file(path, what)  # never opens a FIFO or device (it would block or stream forever)
    try:
        check_self_contained(path)
        yield path
    except RSABridgeError:
        raise
    except Exception as err:  # readers raise many types for a corrupt or truncated file
        raise RSABridgeError(f"cannot read {str(path)!r} as {what} ({type(err).__name__}: {err}); "
                             f"the file is corrupt, truncated or not {what}") from None


def read_netcdf(path: str | os.PathLike, what: str = "NetCDF", *, attrs_only: bool = False) -> xr.Dataset:
    """A NetCDF file as a loaded ``xarray.Dataset`` (the file is closed again).

    Args:
        path: the file.
        what: what the file should hold, for the error message (``"a NetCDF RDM dataset"``).
        attrs_only: read only the attributes (an empty Dataset with the file's attrs; fast).

    Raises:
        RSABridgeError: no such file, or not readable as NetCDF (the backend's message is included).
    """
    import xarray as xr

    with reading(path, what) as path:
        with xr.open_dataset(path) as handle:  # engine by content: NetCDF-4 (h5netcdf) or NetCDF-3 (scipy)
            return xr.Dataset(attrs=dict(handle.attrs)) if attrs_only else handle.load()


def write_text(text: str, path: str | os.PathLike) -> Path:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


@contextmanager
def staged_outputs(out_dir: str | os.PathLike, names: tuple[str, ...] | list[str],
                   overwrite: bool = False) -> Iterator[Path]:
    """Render several output files together and publish the folder ``out_dir`` as one unit.

    Yields a staging folder beside ``out_dir``; when the block ends without error and every file in
    ``names`` exists there, the whole folder is published with one atomic rename (see
    :func:`stimuli.atomic.publish_folder`: lock, stale clean-up, completion marker). An existing
    non-empty ``out_dir`` needs ``overwrite`` and is replaced only if it holds nothing but an earlier
    rsa-bridge output (the completion marker and the files it lists). On any error ``out_dir`` is left
    exactly as it was.
    """
    with publish_folder(out_dir, overwrite) as staging:
        try:
            yield staging
        except BaseException:
            drop_failed_hdf5(staging)
            raise
        missing = [name for name in names if not (staging / name).exists()]
        if missing:
            raise RuntimeError(f"internal: outputs {missing} were not rendered")


def staged_paths(out_dir: str | os.PathLike, names: tuple[str, ...] | list[str]) -> list[Path]:
    """The final paths of :func:`staged_outputs`' files."""
    return [Path(out_dir) / name for name in names]
