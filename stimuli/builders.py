"""Build stimulus sets from a folder tree, a CSV of image paths or an archive, and write manifests.

A manifest (``manifest.csv``) lists ``stimulus_id``, ``filename`` (relative to the manifest's folder)
and any label columns; :func:`stimuli.load_stimulus_set` reads it back.
"""
from __future__ import annotations

import os
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import pandas as pd

from stimuli.atomic import atomic_write, building_folder
from stimuli.csv_cells import frame_to_csv
from stimuli.diskspace import check_free_space, disk_error
from stimuli.errors import StimulusError
from stimuli.limits import ArchiveLimits, format_size
from stimuli.stimulus_set import (
    IMAGE_SUFFIXES,
    MANIFEST,
    StimulusSet,
    _check_manifest,
    from_folder,
    load_stimulus_set,
    read_image,
    refuse_outside_links,
)


def verify_images(stimulus_set: StimulusSet) -> None:
    """Decode every image of the set (:func:`stimuli.read_image`); raise one :class:`StimulusError` naming
    how many fail and the first three, so no manifest ever lists a corrupt, truncated or non-image file."""
    bad = []
    for stimulus_id, image_path in stimulus_set:
        try:
            read_image(image_path)
        except StimulusError as err:
            bad.append(f"{stimulus_id!r} ({err})")
    if bad:
        raise StimulusError(f"{len(bad)} of {len(stimulus_set)} image(s) cannot be used, so no manifest was written: "
                            + "; ".join(bad[:3]))


def write_manifest(stimulus_set: StimulusSet, path: str | Path | None = None, overwrite: bool = False,
                   verify: bool = True) -> Path:
    """Write the set's manifest as CSV (atomically) and return its path.

    Args:
        stimulus_set: the set; its label columns are written as they are.
        path: the CSV to write (default ``<root>/manifest.csv``); file names are written relative to
            its folder, so :func:`stimuli.load_stimulus_set` on it finds the same images.
        overwrite: replace an existing file.
        verify: decode every image first (:func:`verify_images`) and write nothing if one fails.
    """
    path = Path(path) if path is not None else stimulus_set.root / MANIFEST
    if path.exists() and not overwrite:
        raise StimulusError(f"{str(path)!r} already exists; choose another path or overwrite it")
    if path.is_dir():
        raise StimulusError(f"{str(path)!r} is a folder; give the manifest's file path (e.g. .../manifest.csv)")
    if verify:
        verify_images(stimulus_set)
    frame = stimulus_set.manifest.copy()
    base = path.parent.resolve()
    frame["filename"] = [Path(os.path.relpath(p.resolve(), base)).as_posix() for p in stimulus_set.paths]
    return atomic_write(path, lambda tmp: frame_to_csv(frame, tmp, index=False))  # formula cells quoted


def from_folder_tree(path: str | Path, name: str | None = None) -> StimulusSet:
    """A set from every image file under ``path``, subfolders included, in sorted order.

    Ids are the paths relative to ``path`` without suffix, with ``/`` between folders (``cats/tabby``);
    when any image sits in a subfolder, a ``folder`` label column holds its relative folder (``.`` at top).
    For a flat folder this is :func:`stimuli.from_folder`. Links to images outside ``path`` are refused.
    """
    path = Path(path)
    if not path.is_dir():
        raise StimulusError(f"stimulus folder {str(path)!r} does not exist")
    def visible(p: Path) -> bool:
        return not any(part.startswith(".") for part in p.relative_to(path).parts)

    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and visible(p))
    if not files:
        raise StimulusError(f"{str(path)!r} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
    refuse_outside_links(path, files)  # a manifest naming files outside its folder would be refused on load
    relative = [PurePosixPath(p.relative_to(path).as_posix()) for p in files]
    if all(len(r.parts) == 1 for r in relative):
        return from_folder(path, name)
    frame = pd.DataFrame(
        {
            "stimulus_id": [str(r.with_suffix("")) for r in relative],
            "filename": [str(r) for r in relative],
            "folder": [str(r.parent) for r in relative],
        }
    )
    return StimulusSet(path, _check_manifest(frame, f"folder {str(path)!r}"), name or path.name)


def from_csv(
    csv: str | Path,
    path_column: str = "path",
    id_column: str | None = None,
    name: str | None = None,
) -> StimulusSet:
    """A set from a CSV with one image path per row; its other columns become labels.

    Args:
        csv: the CSV file. Relative image paths are relative to its folder; absolute ones are kept.
        path_column: the column with the image paths.
        id_column: the column with the stimulus ids (default: the file names without suffix).
        name: name for provenance (default: the CSV's stem).

    Raises:
        StimulusError: missing columns, duplicate ids, or image files that do not exist.
    """
    csv = Path(csv)
    if not csv.is_file():
        raise StimulusError(f"CSV file {str(csv)!r} does not exist")
    try:
        frame = pd.read_csv(csv, dtype={c: str for c in (path_column, id_column) if c})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise StimulusError(f"cannot read CSV {str(csv)!r}: {err}") from None
    for column in (path_column, id_column):
        if column is not None and column not in frame.columns:
            raise StimulusError(f"CSV {str(csv)!r} has no column {column!r} (columns: {list(frame.columns)})")
    paths = frame[path_column].tolist()
    if frame[path_column].isna().any() or any(not p for p in paths):
        raise StimulusError(f"CSV {str(csv)!r} has empty entries in column {path_column!r}")
    ids = frame[id_column].tolist() if id_column else [PurePosixPath(p.replace("\\", "/")).stem for p in paths]
    labels = frame.drop(columns=[c for c in (path_column, id_column) if c])
    clash = [c for c in ("stimulus_id", "filename") if c in labels.columns]
    if clash:
        raise StimulusError(
            f"CSV {str(csv)!r} has column(s) {clash} besides the path/id columns; rename them or pass them "
            "as path_column/id_column"
        )
    manifest = pd.concat([pd.DataFrame({"stimulus_id": ids, "filename": paths}), labels.reset_index(drop=True)], axis=1)
    manifest = _check_manifest(manifest, f"CSV {str(csv)!r}")
    root = csv.parent
    missing = [f for f in manifest["filename"] if not (root / f).is_file()]
    if missing:
        raise StimulusError(f"{len(missing)} image file(s) listed in {str(csv)!r} are missing, e.g. {missing[:3]}")
    return StimulusSet(root, manifest, name or csv.stem)


def _unsafe_reason(name: str) -> str | None:
    """Why an archive member name may not be extracted, or None when it is safe."""
    posix = name.replace("\\", "/")
    if not posix.strip() or PurePosixPath(posix).parts in ((), (".",)):
        return "empty name"
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        return "absolute path"
    if ".." in PurePosixPath(posix).parts:
        return "'..' in path"
    return None


def _check_members(archive: Path, entries: list[tuple[str, str | None]]) -> None:
    bad = []
    for member, kind in entries:
        why = _unsafe_reason(member) or kind
        if why:
            bad.append((member, why))
    if bad:
        shown = ", ".join(f"{n!r} ({why})" for n, why in bad[:3])
        raise StimulusError(f"refusing to extract {str(archive)!r}: unsafe member(s) {shown}; nothing was extracted")


def _too_much(archive: Path, what: str, limits: ArchiveLimits) -> StimulusError:
    return StimulusError(
        f"refusing to extract {str(archive)!r}: {what} (limits: {format_size(limits.max_bytes)} in all, "
        f"{limits.max_files:,} members, compression ratio {limits.max_ratio:g}); nothing was extracted. If you "
        "trust the archive, raise RSA_BRIDGE_MAX_EXTRACT_BYTES / _FILES / RSA_BRIDGE_MAX_COMPRESSION_RATIO"
    )


def _check_sizes(archive: Path, sizes: list[tuple[str, int, int | None]], limits: ArchiveLimits,
                 dest: Path | None = None) -> None:
    """Check the declared (name, uncompressed, compressed) sizes against ``limits`` and the free space of
    ``dest``'s device before extracting."""
    if len(sizes) > limits.max_files:
        raise _too_much(archive, f"{len(sizes):,} members", limits)
    total = sum(size for _, size, _ in sizes)
    if total > limits.max_bytes:
        raise _too_much(archive, f"{format_size(total)} uncompressed", limits)
    for name, size, packed in sizes:
        if packed is not None and size > 1024 * 1024 and size > limits.max_ratio * max(packed, 1):
            raise _too_much(archive, f"member {name!r} expands {size / max(packed, 1):,.0f}-fold", limits)
    packed_total = archive.stat().st_size
    if total > 1024 * 1024 and total > limits.max_ratio * max(packed_total, 1):
        raise _too_much(archive, f"it expands {total / max(packed_total, 1):,.0f}-fold", limits)
    if dest is not None:
        check_free_space(dest, total, f"the extracted {archive.name!r}", option="stimulus folder")


class _Budget:
    """Counts the bytes actually written, so a member that lies about its size is stopped too."""

    def __init__(self, archive: Path, limits: ArchiveLimits):
        self.archive, self.limits, self.written = archive, limits, 0

    def copy(self, source, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "xb") as sink:
            while chunk := source.read(1 << 20):
                self.written += len(chunk)
                if self.written > self.limits.max_bytes:
                    raise _too_much(self.archive, f"more than {format_size(self.limits.max_bytes)} written", self.limits)
                sink.write(chunk)


def _extract_zip(archive: Path, dest: Path, limits: ArchiveLimits) -> None:
    with zipfile.ZipFile(archive) as handle:
        members = handle.infolist()
        kinds = []
        for m in members:
            mode = m.external_attr >> 16
            special = stat.S_ISLNK(mode) or (mode and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR))
            kinds.append((m.filename, "link or special file" if special else None))
        _check_members(archive, kinds)
        _check_sizes(archive, [(m.filename, m.file_size, m.compress_size) for m in members], limits, dest)
        budget = _Budget(archive, limits)
        for m in members:
            target = dest / m.filename
            if m.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            with handle.open(m) as source:  # zipfile stops at the declared size and checks the CRC
                budget.copy(source, target)


def _extract_tar(archive: Path, dest: Path, limits: ArchiveLimits) -> None:
    with tarfile.open(archive) as handle:
        members = []
        for m in handle:  # streaming: stop counting before a huge member list is held
            members.append(m)
            if len(members) > limits.max_files:
                raise _too_much(archive, f"more than {limits.max_files:,} members", limits)
        kinds = [(m.name, None if (m.isfile() or m.isdir()) else "link or special file") for m in members]
        _check_members(archive, kinds)
        _check_sizes(archive, [(m.name, m.size, None) for m in members], limits, dest)
        budget = _Budget(archive, limits)
        for m in members:  # checked above: plain files and folders with safe relative names
            target = dest / m.name
            if m.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            source = handle.extractfile(m)
            if source is None:  # pragma: no cover - excluded by the kind check
                continue
            with source:
                budget.copy(source, target)


def from_archive(archive: str | Path, out: str | Path, name: str | None = None, overwrite: bool = False,
                 limits: ArchiveLimits | None = None) -> StimulusSet:
    """Extract a zip or tar archive (also .tar.gz/.tgz/.tar.bz2/.tar.xz) to ``out`` and load it as a set.

    Members with absolute paths, ``..`` components, links or special files make the whole archive
    rejected before anything is written. Extraction goes to a temporary folder renamed to ``out``.
    ``limits`` (default :meth:`stimuli.limits.ArchiveLimits.from_env`: 4 GiB, 100,000 members, ratio 200)
    bound the total size, the member count and the compression ratio; the bytes actually written are
    counted too, so an archive that lies about its sizes is stopped as well.
    The set is the archive's ``manifest.csv`` (at its top or in its single top folder) when there is
    one; otherwise every image in it (:func:`from_folder_tree`), whose manifest is then written.
    """
    archive = Path(archive)
    if not archive.is_file():
        raise StimulusError(f"archive {str(archive)!r} does not exist")
    if zipfile.is_zipfile(archive):
        extract = _extract_zip
    elif tarfile.is_tarfile(archive):
        extract = _extract_tar
    else:
        raise StimulusError(f"{str(archive)!r} is neither a zip nor a tar archive")
    out = Path(out)
    limits = limits or ArchiveLimits.from_env()
    with building_folder(out, overwrite) as tmp:
        try:
            extract(archive, tmp, limits)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, zlib.error, RuntimeError,
                NotImplementedError) as err:  # RuntimeError: encrypted zip; NotImplementedError: unknown method
            raise disk_error(err, out, "stimulus folder") or StimulusError(f"cannot extract {str(archive)!r}: {err}") from None
        top = [p for p in tmp.iterdir() if not p.name.startswith(".")]
        if (tmp / MANIFEST).is_file():
            verify_images(load_stimulus_set(tmp))  # the archive's own manifest: its files must stay inside
        elif len(top) == 1 and top[0].is_dir() and (top[0] / MANIFEST).is_file():
            verify_images(load_stimulus_set(top[0]))
        else:
            write_manifest(from_folder_tree(tmp))
    root = out
    if not (root / MANIFEST).is_file():
        root = next(p for p in out.iterdir() if p.is_dir() and (p / MANIFEST).is_file())
    return load_stimulus_set(root, name=name or archive.name.split(".")[0])
