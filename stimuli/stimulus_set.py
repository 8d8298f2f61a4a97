"""A stimulus set: a folder of images plus ``manifest.csv`` (``stimulus_id``, ``filename``, labels).

The manifest is the identity of the set: ``stimulus_id`` is how stimuli are matched to neural data,
never their position. Label columns beyond ``stimulus_id`` and ``filename`` are kept as they are.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import pandas as pd
from PIL import Image, UnidentifiedImageError

from stimuli.csv_cells import read_own_csv
from stimuli.diskspace import check_regular_file
from stimuli.errors import StimulusError
from stimuli.limits import check_image_pixels, max_image_pixels
from stimuli.pixels import to_rgb

MANIFEST = "manifest.csv"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp")


@dataclass(frozen=True)
class StimulusSet:
    """Images with unique ``stimulus_id`` s.

    Attributes:
        root: folder that holds the images (file names in the manifest are relative to it).
        manifest: one row per stimulus, columns ``stimulus_id``, ``filename`` and any labels,
            in the set's own order.
        name: a short name used in provenance (default: the folder name).
    """

    root: Path
    manifest: pd.DataFrame
    name: str = field(default="")

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.root.name)

    @property
    def stimulus_ids(self) -> list[str]:
        """The ids in manifest order."""
        return self.manifest["stimulus_id"].tolist()

    @property
    def paths(self) -> list[Path]:
        """Absolute image paths in manifest order."""
        return [self.root / f for f in self.manifest["filename"]]

    def __len__(self) -> int:
        return len(self.manifest)

    def __iter__(self) -> Iterator[tuple[str, Path]]:
        return iter(zip(self.stimulus_ids, self.paths))

    def labels(self, column: str) -> pd.Series:
        """One label column indexed by ``stimulus_id``."""
        if column not in self.manifest.columns:
            raise StimulusError(
                f"stimulus set {self.name!r} has no label column {column!r}; "
                f"columns are {list(self.manifest.columns)}"
            )
        return self.manifest.set_index("stimulus_id")[column]

    def subset(self, stimulus_ids: Sequence[str]) -> "StimulusSet":
        """The stimuli with these ids, in the order given; unknown ids are an error."""
        index = self.manifest.set_index("stimulus_id", drop=False)
        missing = [s for s in stimulus_ids if s not in index.index]
        if missing:
            raise StimulusError(f"stimulus set {self.name!r} has no stimuli {missing[:5]}")
        return StimulusSet(self.root, index.loc[list(stimulus_ids)].reset_index(drop=True), self.name)


def _check_manifest(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    for column in ("stimulus_id", "filename"):
        if column not in frame.columns:
            raise StimulusError(f"{where} has no {column!r} column (columns: {list(frame.columns)})")
    frame = frame.copy()
    frame["stimulus_id"] = frame["stimulus_id"].astype(str)
    frame["filename"] = frame["filename"].astype(str)
    dup = frame["stimulus_id"][frame["stimulus_id"].duplicated()].unique().tolist()
    if dup:
        raise StimulusError(f"{where} has duplicate stimulus_id values: {dup[:5]}")
    if frame.empty:
        raise StimulusError(f"{where} lists no stimuli")
    return frame.reset_index(drop=True)


def _check_filenames(frame: pd.DataFrame, where: str) -> None:
    """Refuse manifest rows whose ``filename`` is empty or blank (it would name the folder itself)."""
    empty = [str(sid) for sid, f in zip(frame["stimulus_id"], frame["filename"])
             if not isinstance(f, str) or not f.strip() or f.strip() in (".", "./")]
    if empty:
        raise StimulusError(f"{where} has {len(empty)} row(s) with an empty filename (stimulus_id {empty[:3]}); "
                            "give every stimulus its image file, or remove those rows")


def outside_links(root: Path, files: Sequence[Path]) -> list[Path]:
    """The ``files`` under ``root`` that are (or sit in) symbolic links leading outside ``root``: a
    manifest written for them would name files outside its folder, which :func:`load_stimulus_set`
    refuses."""
    base = root.resolve()
    return [f for f in files if not f.resolve().is_relative_to(base)]


def refuse_outside_links(root: Path, files: Sequence[Path]) -> None:
    """Raise :class:`StimulusError` when one of ``files`` leads outside ``root`` (see :func:`outside_links`)."""
    outside = outside_links(root, files)
    if outside:
        shown = ", ".join(f"{f.relative_to(root).as_posix()!r} -> {str(f.resolve())!r}" for f in outside[:3])
        raise StimulusError(f"{len(outside)} image(s) in {str(root)!r} are links to files outside it ({shown}); "
                            "copy those images into the folder (a stimulus set reads only files inside it)")


def _leaving(filename: str) -> bool:
    """True when a manifest file name is absolute or climbs out of the manifest's folder with ``..``."""
    posix = filename.replace("\\", "/")
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        return True
    return os.path.normpath(posix).replace("\\", "/").split("/")[0] == ".."


def load_stimulus_set(path: str | Path, name: str | None = None, check_images: bool = True,
                      allow_outside: bool = False) -> StimulusSet:
    """Load a stimulus set from a folder with ``manifest.csv`` (or the manifest file itself).

    Args:
        path: the folder, or the path of a manifest CSV whose file names are relative to its folder.
        name: name for provenance (default: the folder name).
        check_images: also check that every listed file exists (cheap); decoding is checked when
            images are read (:func:`read_image`).
        allow_outside: accept file names that leave the manifest's folder (absolute, or climbing out
            with ``..``). Off by default, so a manifest cannot make rsa-bridge read files elsewhere
            (``../../../../etc/passwd``); turn it on for a manifest you wrote yourself that points at
            images beside it (``../imgs/a.png``).

    Raises:
        StimulusError: no manifest, missing columns, duplicate ids, or missing image files
            (the message names the files).
    """
    path = Path(path)
    manifest_path = path if path.is_file() else path / MANIFEST
    if not path.exists():
        raise StimulusError(f"stimulus folder {str(path)!r} does not exist")
    if not manifest_path.is_file():
        raise StimulusError(
            f"{str(path)!r} has no {MANIFEST}; make one with columns stimulus_id,filename "
            "or use stimuli.from_folder() to take ids from the file names"
        )
    try:
        frame = read_own_csv(manifest_path, dtype={"stimulus_id": str, "filename": str})  # '=x -> =x
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise StimulusError(f"cannot read manifest {str(manifest_path)!r}: {err}") from None
    frame = _check_manifest(frame, f"manifest {str(manifest_path)!r}")
    _check_filenames(frame, f"manifest {str(manifest_path)!r}")
    root = manifest_path.parent
    leaving = [f for f in frame["filename"] if _leaving(f)]
    if leaving and not allow_outside:
        raise StimulusError(f"manifest {str(manifest_path)!r} lists {len(leaving)} file(s) outside its folder, e.g. "
                            f"{leaving[:3]}; move the images into the folder (or pass allow_outside=True for a "
                            "manifest you trust)")
    if check_images:
        missing = [f for f in frame["filename"] if not (root / f).is_file()]
        if missing:
            raise StimulusError(
                f"{len(missing)} image file(s) listed in {str(manifest_path)!r} are missing, e.g. {missing[:3]}"
            )
    return StimulusSet(root, frame, name or root.name)


def from_folder(path: str | Path, name: str | None = None) -> StimulusSet:
    """A stimulus set from every image file in a folder; ids are the file names without suffix.

    Files are taken in sorted order. Two files with the same stem (``a.png``, ``a.jpg``) are an error, and
    so is a link to an image outside the folder (:func:`refuse_outside_links`).
    """
    path = Path(path)
    if not path.is_dir():
        raise StimulusError(f"stimulus folder {str(path)!r} does not exist")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise StimulusError(f"{str(path)!r} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
    refuse_outside_links(path, files)
    frame = pd.DataFrame({"stimulus_id": [p.stem for p in files], "filename": [p.name for p in files]})
    return StimulusSet(path, _check_manifest(frame, f"folder {str(path)!r}"), name or path.name)


def read_image(path: str | Path, alpha: str = "composite") -> Image.Image:
    """Open one image as 8-bit RGB; an unreadable, corrupt or too large file raises :class:`StimulusError`.

    16-bit and float images are converted by their real range, transparent images composited onto
    mid grey (or refused with ``alpha="refuse"``), palette/CMYK/grey converted: see :mod:`stimuli.pixels`.
    Images larger than :func:`stimuli.limits.max_image_pixels` are refused before decoding.
    """
    where = f"image {str(path)!r}"
    check_regular_file(path, "image file", StimulusError)  # a FIFO or device would block or never end
    try:
        with Image.open(path) as img:
            check_image_pixels(*img.size, where=where)  # before decoding: header only
            img.load()
            return to_rgb(img, where, alpha=alpha)
    except StimulusError:
        raise
    except Image.DecompressionBombError as err:  # Pillow's own check (twice Image.MAX_IMAGE_PIXELS) came first
        raise StimulusError(f"image {str(path)!r}: {err} The limit is {max_image_pixels():,} pixels; shrink the "
                            "image, or raise RSA_BRIDGE_MAX_IMAGE_PIXELS if you trust it") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise StimulusError(f"cannot read image {str(path)!r}: {err}") from None
