"""Neural data: firing rates as xarray (Brain-Score layout), importers/exporters, rates -> RDMs,
reliability, and importers for published RDM sets.

- :mod:`.schema` — the firing-rate DataArray ``presentation x neuroid [x time_bin]`` and its NetCDF file;
- :mod:`.importers`, :mod:`.exporters`, :mod:`.rsatoolbox_io` — numpy, .mat, CSV, Brain-Score, rsatoolbox;
- :mod:`.rdms` — repeat-averaged and cross-validated RDMs;
- :mod:`.reliability` — split-half reliability of neuroids and RDMs (Spearman-Brown);
- :mod:`.published` — the fMRI RDM sets and V1 recordings of ``../shared/data``;
- :mod:`.conventions` — named evaluation settings (rsatoolbox, Net2Brain, Algonauts);
- :mod:`.load` — one entry point that reads any of these (:func:`read_neural`);
- :mod:`.nwb` — spike times from NWB files (pynwb); :mod:`.time_resolved` — one RDM per time bin/window;
  :mod:`.ceiling` — the split-half ceiling of a single-RDM area.
"""
from rsa_bridge.neural.conventions import CONVENTIONS, evaluate
from rsa_bridge.neural.exporters import RATE_WRITERS, export_rates, to_array, to_long_table
from rsa_bridge.neural.importers import RATE_READERS, from_array
from rsa_bridge.neural.load import SHIPPED_RATES, read_neural
from rsa_bridge.neural.nwb import read_nwb
from rsa_bridge.neural.time_resolved import time_resolved_dataset, time_resolved_rdms
from rsa_bridge.neural.rdms import CV_METRICS, rates_to_rdm, rates_to_rdm_dataset, repeat_average
from rsa_bridge.neural.reliability import neuroid_reliability, rdm_reliability, spearman_brown
from rsa_bridge.neural.rsatoolbox_io import (from_rsatoolbox_dataset, rdms_from_rsatoolbox, rdms_to_rsatoolbox,
                                             to_rsatoolbox_dataset)
from rsa_bridge.neural.schema import (NeuralDataWarning, as_multiindex, load_rates, make_rates, save_rates,
                                      select_region, validate_rates)

__all__ = [
    "CONVENTIONS", "SHIPPED_RATES", "evaluate", "read_neural", "CV_METRICS", "NeuralDataWarning", "RATE_READERS", "RATE_WRITERS", "as_multiindex", "export_rates",
    "from_array", "from_rsatoolbox_dataset", "load_rates", "make_rates", "neuroid_reliability", "rates_to_rdm",
    "rates_to_rdm_dataset", "rdm_reliability", "rdms_from_rsatoolbox", "rdms_to_rsatoolbox", "repeat_average",
    "save_rates", "select_region", "spearman_brown", "to_array", "to_long_table", "to_rsatoolbox_dataset",
    "validate_rates", "read_nwb", "time_resolved_dataset", "time_resolved_rdms",
]
