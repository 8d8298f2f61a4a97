"""The results of a bootstrap: :class:`BootstrapResult` and :func:`percentile_ci` (small shared types).

They sit at the bottom of :mod:`rsa_bridge.stats` so that every path (dense, subset, RDM store) builds the
same result without importing :mod:`rsa_bridge.stats.bootstrap`; that module re-exports both.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.provenance import clean_attrs, package_version

__all__ = ["BootstrapResult", "percentile_ci"]


def percentile_ci(samples: np.ndarray, level: float = 0.95, framed: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval along axis 0 (linear interpolation, NaN samples ignored).

    ``framed=True`` reproduces rsatoolbox ``Result.get_ci(test_type='bootstrap')``, which adds a -inf
    and a +inf sample before taking the quantiles (slightly wider; infinite for very few samples).
    """
    if not 0.0 < level < 1.0:
        raise RSABridgeError(f"confidence level must be between 0 and 1; got {level}")
    cut = (1.0 - level) / 2.0
    samples = np.asarray(samples, dtype=np.float64)
    if framed:
        frame = np.broadcast_to(np.array([-np.inf, np.inf]).reshape((2,) + (1,) * (samples.ndim - 1)),
                                (2,) + samples.shape[1:])
        samples = np.concatenate([frame, samples], axis=0)
        return np.quantile(samples, cut, axis=0), np.quantile(samples, 1.0 - cut, axis=0)
    if not np.isnan(samples).any():
        return np.quantile(samples, cut, axis=0), np.quantile(samples, 1.0 - cut, axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN cells stay NaN
        return np.nanquantile(samples, cut, axis=0), np.nanquantile(samples, 1.0 - cut, axis=0)


@dataclass
class BootstrapResult:
    """Bootstrap distribution of layer x area similarities.

    Attributes:
        samples: (n_samples, n_layers, n_areas) the statistic per sample (NaN where undefined).
        observed: (n_layers, n_areas) the statistic on the original data.
        labels, areas: names of the rows (model layers) and columns.
        stimulus_indices: (n_samples, n_stimuli) sorted stimulus index sets, or None (``over='rdms'``).
        rdm_indices: per area (n_samples, n_rdms) RDM index sets, or None (``over='stimuli'``).
        ceiling: (n_samples, n_areas, 2) per-sample Nili lower/upper bounds (NaN for areas with one
            RDM), when asked for.
    """

    samples: np.ndarray
    observed: np.ndarray
    labels: list[str]
    areas: list[str]
    method: str
    over: str
    seed: int | None
    stimulus_indices: np.ndarray | None = field(default=None, repr=False)
    rdm_indices: dict[str, np.ndarray] | None = field(default=None, repr=False)
    ceiling: np.ndarray | None = field(default=None, repr=False)
    backend: str = "numpy"
    scheme: dict = field(default_factory=lambda: {"bootstrap_scheme": "exact"})
    executor: str = "serial"

    @property
    def n_samples(self) -> int:
        return int(self.samples.shape[0])

    def ci(self, level: float = 0.95, framed: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Percentile interval (low, high), each (n_layers, n_areas); see :func:`percentile_ci`."""
        return percentile_ci(self.samples, level, framed)

    def attrs(self) -> dict:
        """Provenance: method, what was resampled, number of samples, seed, package version."""
        return clean_attrs({"bootstrap_method": self.method, "bootstrap_over": self.over,
                            "bootstrap_n_samples": self.n_samples, "bootstrap_seed": self.seed,
                            "bootstrap_pairs_of_a_stimulus_with_its_copy": "dropped",
                            "bootstrap_backend": self.backend, **self.scheme, "bootstrap_executor": self.executor,
                            "rsa_bridge_version": package_version()})

    def to_dataarray(self) -> xr.DataArray:
        """The samples as a DataArray (sample, model_layer, area) with provenance attrs."""
        return xr.DataArray(self.samples, dims=("sample", "model_layer", "area"),
                            coords={"model_layer": self.labels, "area": self.areas}, attrs=self.attrs())
