"""Neural-data formats: one :class:`NeuralFormat` record per format, in one registry (:data:`FORMATS`).

A record holds everything about its format: the reader, the file suffixes it is detected by, whether
it takes ``region=`` (a label for neuroids whose source names none), whether the file may hold a Python
pickle (only then is ``allow_pickle`` passed on, and only then may a ``.pkl`` be read), the options only
it reads, and a one-line description. :func:`rsa_bridge.neural.load.read_neural`, the ``--format``
choices and help of ``rsa-bridge neural ...``, the detection by suffix (:func:`guess_format`) and the
table in ``docs/reference/registries.md`` are all built from the records; nothing branches on a
format's name.

Adding a format is one record (see ``docs/guide/extending.md``): in a script, :func:`register_format`;
in a package, an entry point in the group ``rsa_bridge.neural_formats`` naming the record, so the command
line finds it too::

    [project.entry-points."rsa_bridge.neural_formats"]
    scratch = "mylab.scratch_format:FORMAT"

Example::

    >>> from rsa_bridge.neural.formats import FORMATS, guess_format
    >>> FORMATS["csv"].suffixes, FORMATS["csv"].takes_region
    (('.csv',), True)
    >>> guess_format("rates.tsv")
    'tsv'
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Union

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.registry import Registry

if TYPE_CHECKING:  # the record names its return type; the module stays light for --help
    from rsa_bridge.neural.published import Imported

#: a function, or where to find it: ``"package.module:function"`` (imported on first use, so building the
#: command line's parser from this registry imports no numpy, xarray or reader)
Function = Union[Callable[..., Any], str]

#: entry-point group of formats added by other packages (the value names a :class:`NeuralFormat`)
ENTRY_POINT_GROUP = "rsa_bridge.neural_formats"
#: what a format holds
RATES, RDMS = "firing rates", "RDMs"
#: suffixes of files that are Python pickles (read only by a format with ``may_hold_pickle``)
PICKLE_SUFFIXES = (".pkl", ".pickle")


@dataclass(frozen=True)
class NeuralFormat:
    """One neural-data format.

    Attributes:
        name: the name for ``format=`` / ``--format`` (lower case, ``-`` between words).
        reader: (where to find) ``(path, **options) ->`` firing rates (``xarray.DataArray`` ``presentation x neuroid
            [x time_bin]``, :mod:`rsa_bridge.neural.schema`) or an
            :class:`~rsa_bridge.neural.published.Imported` (an RDM dataset and/or a stimulus manifest).
        description: one line for ``--help`` and the reference page.
        holds: :data:`RATES` or :data:`RDMS`.
        suffixes: lower-case file suffixes (``.csv``) this format is detected by when no format is named;
            empty: it must be named.
        takes_region: the reader accepts ``region=`` to label neuroids whose source names no region.
        may_hold_pickle: the file may be a Python pickle; ``allow_pickle`` is passed to the reader only then.
        options: keyword options only this format reads (e.g. ``("metric",)``); any other format refuses them.
        detect: (where to find) ``(path) -> bool`` telling this format apart by content where several share a suffix
            (NetCDF); the first format that claims a file wins, a format without ``detect`` is the fallback.
        folder: the source may be a folder (not only a file).

    Example::

        >>> fmt = NeuralFormat("scratch", "rsa_bridge.neural.importers:read_csv", "a long table",
        ...                    suffixes=(".scr",), takes_region=True)
        >>> fmt.holds, fmt.may_hold_pickle
        ('firing rates', False)
    """

    name: str
    reader: Function
    description: str
    holds: str = RATES
    suffixes: tuple[str, ...] = ()
    takes_region: bool = False
    may_hold_pickle: bool = False
    options: tuple[str, ...] = ()
    detect: Function | None = None
    folder: bool = False

    def __post_init__(self) -> None:
        if self.holds not in (RATES, RDMS):
            raise ValueError(f"format {self.name!r}: holds must be {RATES!r} or {RDMS!r}, not {self.holds!r}")
        bad = [s for s in self.suffixes if not s.startswith(".") or s != s.lower()]
        if bad:
            raise ValueError(f"format {self.name!r}: suffixes are lower case and start with '.', not {bad}")

    def read(self, path: str | os.PathLike, *, region: str | None = None, allow_pickle: bool = False,
             **options) -> "Imported":
        """Read ``path``: ``region`` reaches the reader only if it takes it, ``allow_pickle`` only if the
        format may hold a pickle; a pickle file given to any other format is refused before it is opened.
        Options that are None are left out. Returns an :class:`Imported`."""
        path = Path(path)
        given = {k: v for k, v in options.items() if v is not None}
        if not self.may_hold_pickle and path.suffix.lower() in PICKLE_SUFFIXES:
            raise RSABridgeError(f"{str(path)!r} is a pickle; format {self.name!r} does not read pickles (loading one "
                                 "runs its code); convert it to HDF5 or NetCDF")
        if allow_pickle and not self.may_hold_pickle:
            raise RSABridgeError(f"--allow-pickle (allow_pickle=) applies only to formats that may hold a pickle "
                                 f"({', '.join(pickling_formats()) or 'none'}), not to {self.name!r}; drop it")
        if self.may_hold_pickle:
            given["allow_pickle"] = bool(allow_pickle)
        if self.takes_region:
            given["region"] = region
        foreign = [k for k in given if k in _format_only_options() and k not in self.options]
        if foreign:
            raise RSABridgeError(f"option(s) {', '.join(foreign)} do not apply to format {self.name!r}; drop them")
        from rsa_bridge.neural.published import Imported

        data = _function(self.reader)(path, **given)
        return data if isinstance(data, Imported) else Imported(data)

    def claims(self, path: Path) -> bool:
        """Whether ``detect`` says ``path`` is in this format (False without ``detect``)."""
        return self.detect is not None and bool(_function(self.detect)(path))


def _function(where: Function) -> Callable[..., Any]:
    """``where`` itself, or the function a ``"module:name"`` string names."""
    if callable(where):
        return where
    module, _, name = str(where).partition(":")
    return getattr(importlib.import_module(module), name)


_NETCDF = (".nc", ".nc4", ".netcdf")
_IMPORTERS, _LOAD, _PUBLISHED = "rsa_bridge.neural.importers:", "rsa_bridge.neural.load:", "rsa_bridge.neural.published:"

_BUILTIN = (
    NeuralFormat("numpy", _IMPORTERS + "read_numpy", "an array (.npy) or one array of an .npz, axes named by --layout",
                 suffixes=(".npy", ".npz"), takes_region=True),
    NeuralFormat("mat", _IMPORTERS + "read_mat",
                 "one numeric variable of a MATLAB .mat file (v5 or v7.3), axes named by --layout",
                 suffixes=(".mat",), takes_region=True),
    NeuralFormat("csv", _IMPORTERS + "read_csv",
                 "a long table: one row per stimulus_id, neuroid_id, repetition with its rate",
                 suffixes=(".csv",), takes_region=True),
    NeuralFormat("tsv", _LOAD + "read_tsv", "the long table of csv, tab-separated", suffixes=(".tsv",),
                 takes_region=True),
    NeuralFormat("netcdf", _IMPORTERS + "read_netcdf", "rsa-bridge's own firing-rate NetCDF (save_rates, neural import)",
                 suffixes=_NETCDF, detect=_LOAD + "is_rates_netcdf"),
    NeuralFormat("rdm-netcdf", _LOAD + "read_rdm_netcdf", "an RDM dataset written by rsa-bridge (save_dataset, neural rdm)",
                 holds=RDMS, suffixes=_NETCDF, detect=_LOAD + "is_rdm_netcdf"),
    NeuralFormat("brainscore", _IMPORTERS + "read_brainscore", "a Brain-Score / BrainIO NeuroidAssembly NetCDF",
                 suffixes=_NETCDF, takes_region=True),
    NeuralFormat("nwb", "rsa_bridge.neural.nwb:read_nwb",
                 "spike times of an NWB file's units table, counted in a window after each trial's onset",
                 suffixes=(".nwb",), takes_region=True),
    NeuralFormat("rsatoolbox", "rsa_bridge.neural.rsatoolbox_io:read_rsatoolbox",
                 "an rsatoolbox Dataset (Dataset.save: HDF5; .pkl only with --allow-pickle)",
                 suffixes=(".h5", ".hdf5", ".pkl"), takes_region=True, may_hold_pickle=True),
    NeuralFormat("rsatoolbox-rdms", _LOAD + "read_rsatoolbox_rdms",
                 "rsatoolbox RDMs (RDMs.save: HDF5; .pkl only with --allow-pickle) as one area, --region (required)",
                 holds=RDMS, takes_region=True, may_hold_pickle=True),
    NeuralFormat("algonauts2019", _PUBLISHED + "read_algonauts2019",
                 "EVC and IT RDMs (15 subjects) of an Algonauts 2019 target_fmri*.mat", holds=RDMS),
    NeuralFormat("net2brain", _PUBLISHED + "read_net2brain",
                 "Net2Brain's Algonauts 78-image EVC and IT RDMs (a folder or one .npz; similarity matrices need "
                 "--similarity-to-dissimilarity)", holds=RDMS, options=("similarity_to_dissimilarity",), folder=True),
    NeuralFormat("henaff2021-v1", _PUBLISHED + "read_henaff_v1",
                 "spike counts of one Henaff et al. 2021 V1 recording (.mat)"),
    NeuralFormat("henaff2021-v1-rdms", _PUBLISHED + "read_henaff_v1_rdms",
                 "one V1 RDM per Henaff et al. 2021 recording from a folder of .mat files (--metric)",
                 holds=RDMS, options=("metric",), folder=True),
)

#: the built-in formats, by name (the order of ``--help`` and the reference page)
FORMATS: Registry[NeuralFormat] = Registry("format", {f.name: f for f in _BUILTIN})

_REGISTERED: dict[str, NeuralFormat] = {}


def register_format(fmt: NeuralFormat) -> NeuralFormat:
    """Add ``fmt`` to the formats of this process (:func:`all_formats`); returns it. A name that is taken is
    an error (a plugin cannot replace a built-in reader)."""
    if not isinstance(fmt, NeuralFormat):
        raise TypeError(f"register_format takes a NeuralFormat, not {type(fmt).__name__}")
    if fmt.name in FORMATS or _REGISTERED.get(fmt.name, fmt) is not fmt:
        raise ValueError(f"a neural-data format named {fmt.name!r} exists already")
    _REGISTERED[fmt.name] = fmt
    return fmt


def _plugins() -> list[NeuralFormat]:
    """Formats named by entry points of :data:`ENTRY_POINT_GROUP` (loaded on each call). A plugin that fails
    to load, or names something other than a :class:`NeuralFormat`, is left out with one warning naming it, so a
    broken package cannot take the command line down (naming its format then says it is unknown)."""
    import warnings
    from importlib import metadata

    found = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            fmt = ep.load()
        except Exception as err:  # a plugin's import error must not look like a bug of ours
            warnings.warn(f"rsa-bridge: neural-data format {ep.name!r} ({ep.value}) is left out: it fails to load "
                          f"({type(err).__name__}: {err}); fix or uninstall that package", RuntimeWarning, stacklevel=2)
            continue
        if not isinstance(fmt, NeuralFormat):
            warnings.warn(f"rsa-bridge: entry point {ep.name!r} ({ep.value}) of {ENTRY_POINT_GROUP} is a "
                          f"{type(fmt).__name__}, not a NeuralFormat record; left out", RuntimeWarning, stacklevel=2)
            continue
        found.append(fmt)
    return found


def all_formats() -> Registry[NeuralFormat]:
    """The built-in formats, then those added by :func:`register_format`, then the entry points' (a name
    already taken is skipped: built-ins win)."""
    entries = dict(FORMATS)
    for fmt in [*_REGISTERED.values(), *_plugins()]:
        entries.setdefault(fmt.name, fmt)
    return Registry("format", entries)


def pickling_formats() -> list[str]:
    """The formats that may hold a pickle (the only ones ``--allow-pickle`` applies to)."""
    return [name for name, fmt in FORMATS.items() if fmt.may_hold_pickle]


def _format_only_options() -> set[str]:
    return {option for fmt in FORMATS.values() for option in fmt.options}


def guess_format(path: str | os.PathLike, formats: Registry[NeuralFormat] | None = None) -> str:
    """The format of a file from its suffix; formats that share a suffix (NetCDF) are told apart by their
    ``detect`` (the first that claims the file), else the one without ``detect``. RSABridgeError when no
    format or several formats fit."""
    path = Path(path)
    formats = FORMATS if formats is None else formats
    suffix = path.suffix.lower()
    candidates = [fmt for fmt in formats.values() if suffix in fmt.suffixes]
    if not candidates:
        known = ", ".join(dict.fromkeys(s for fmt in formats.values() for s in fmt.suffixes))
        raise RSABridgeError(f"cannot tell the format of {str(path)!r} from its suffix (known: {known}); "
                             "pass format= (--format)")
    if len(candidates) == 1:
        return candidates[0].name
    for fmt in candidates:
        if path.is_file() and fmt.claims(path):
            return fmt.name
    fallbacks = [fmt.name for fmt in candidates if fmt.detect is None]
    if len(fallbacks) == 1:
        return fallbacks[0]
    raise RSABridgeError(f"{str(path)!r} may be any of {', '.join(f.name for f in candidates)}; "
                         "say which with format= (--format)")


def format_help(formats: Registry[NeuralFormat] | None = None) -> str:
    """``--format``'s help: each format with its suffixes, then the default."""
    formats = all_formats() if formats is None else formats
    parts = [f"{fmt.name} ({' '.join(fmt.suffixes)})" if fmt.suffixes else fmt.name for fmt in formats.values()]
    return ("format of the source: " + ", ".join(parts) + " (default: from the suffix in brackets; NetCDF files are "
            "told apart by content; the others must be named); see docs/reference/registries.md")
