"""Neural data: firing rates as xarray (Brain-Score layout), importers/exporters, rates -> RDMs,
reliability, and importers for published RDM sets.

- :mod:`.schema` — the firing-rate DataArray ``presentation x neuroid [x time_bin]`` and its NetCDF file;
- :mod:`.formats` — one record per neural-data format (:data:`~.formats.FORMATS`; imports no numpy, so the
  command line's ``--format`` choices cost nothing);
- :mod:`.importers`, :mod:`.exporters`, :mod:`.rsatoolbox_io` — numpy, .mat, CSV, Brain-Score, rsatoolbox;
- :mod:`.rdms` — repeat-averaged and cross-validated RDMs;
- :mod:`.reliability` — split-half reliability of neuroids and RDMs (Spearman-Brown);
- :mod:`.published` — the fMRI RDM sets and V1 recordings of ``../shared/data``;
- :mod:`.conventions` — named evaluation settings (rsatoolbox, Net2Brain, Algonauts);
- :mod:`.load` — one entry point that reads any of these (:func:`read_neural`);
- :mod:`.nwb` — spike times from NWB files (pynwb); :mod:`.time_resolved` — one RDM per time bin/window;
  :mod:`.ceiling` — the split-half ceiling of a single-RDM area.

The names below are imported on first use (PEP 562), so ``import rsa_bridge.neural.formats`` stays light.

Example::

    >>> import rsa_bridge.neural as neural
    >>> neural.read_neural is __import__("rsa_bridge.neural.load", fromlist=["x"]).read_neural
    True
"""
from __future__ import annotations

import importlib
from typing import Any

#: public name -> module (under rsa_bridge.neural) that defines it
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(["CONVENTIONS", "evaluate"], "conventions"),
    **dict.fromkeys(["RATE_WRITERS", "export_rates", "to_array", "to_long_table"], "exporters"),
    **dict.fromkeys(["FORMATS", "NeuralFormat", "all_formats", "register_format"], "formats"),
    "from_array": "importers",
    **dict.fromkeys(["SHIPPED_RATES", "read_neural"], "load"),
    "read_nwb": "nwb",
    **dict.fromkeys(["time_resolved_dataset", "time_resolved_rdms"], "time_resolved"),
    **dict.fromkeys(["CV_METRICS", "rates_to_rdm", "rates_to_rdm_dataset", "repeat_average"], "rdms"),
    **dict.fromkeys(["neuroid_reliability", "rdm_reliability", "spearman_brown"], "reliability"),
    **dict.fromkeys(["from_rsatoolbox_dataset", "rdms_from_rsatoolbox", "rdms_to_rsatoolbox", "to_rsatoolbox_dataset"],
                    "rsatoolbox_io"),
    **dict.fromkeys(["NeuralDataWarning", "RatesOptions", "as_multiindex", "load_rates", "make_rates", "save_rates",
                     "select_region",
                     "validate_rates"], "schema"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
