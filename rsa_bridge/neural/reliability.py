"""How reliable are firing rates and their RDMs? Split-half estimates with the Spearman-Brown correction.

A random split divides each stimulus's presentations into two halves of ``floor(r/2)`` presentations
each (with an odd count one presentation sits out that split); ``n_splits`` splits are drawn from a
seeded generator. For each split:

- per neuroid: Pearson r across stimuli between the two half-means of that neuroid;
- per RDM: the RDM of each half (same metric), compared with ``method`` (default Spearman) over the
  upper triangles.

Each split's r is corrected to the full data with Spearman-Brown, ``r_sb = 2 r / (1 + r)`` (the
reliability of an average of twice as many repetitions). Summaries are the mean over splits of r_sb,
its standard deviation and 2.5/97.5 percentiles.

The splits, the half-vs-half RDM loop and the correction are those of :mod:`rsa_bridge.stats.split_half`
(one implementation; this module adds the neural-data layout, NaN-aware half means, per-neuroid
reliability and the cross-validated RDM metrics).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from rsa_bridge.finite import finite_mean
from rsa_bridge.neural import schema as S
from rsa_bridge.neural.rdms import group_sums, grouped, matrix_from_groups, rank_within
from rsa_bridge.provenance import clean_attrs, package_version
from rsa_bridge.stats.resample import as_generator
from rsa_bridge.stats.resample import split_halves as _split_halves
from rsa_bridge.stats.split_half import half_similarities, spearman_brown

__all__ = ["RDMReliability", "neuroid_reliability", "rdm_reliability", "spearman_brown", "split_halves"]


def split_halves(codes: np.ndarray, n_splits: int, seed: int | np.random.Generator = 0) -> np.ndarray:
    """(n_splits, n_presentations) int8: 0 = half A, 1 = half B, -1 = sits out (odd count).

    The same splits as :func:`rsa_bridge.stats.resample.split_halves` (which this calls) for the same seed.

    Raises:
        RSABridgeError: a stimulus with fewer than 2 presentations, or ``n_splits < 1``.
    """
    return _split_halves(np.asarray(codes), n_splits, as_generator(seed))


def _half_means(values, codes, n, mask):
    sums, counts = group_sums(values[mask], codes[mask], n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _column_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of each column of x with the same column of y over rows where both are finite."""
    ok = np.isfinite(x) & np.isfinite(y)
    n = ok.sum(axis=0)
    x = np.where(ok, x, 0.0)
    y = np.where(ok, y, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx, my = x.sum(axis=0) / n, y.sum(axis=0) / n
        dx, dy = np.where(ok, x - mx, 0.0), np.where(ok, y - my, 0.0)
        r = (dx * dy).sum(axis=0) / np.sqrt((dx * dx).sum(axis=0) * (dy * dy).sum(axis=0))
    return np.where(n >= 3, r, np.nan)


def neuroid_reliability(rates: xr.DataArray, *, n_splits: int = 100, seed: int | np.random.Generator = 0,
                        return_splits: bool = False) -> xr.DataArray:
    """Split-half reliability of each neuroid (time bins averaged).

    Returns:
        (neuroid,) DataArray: mean over splits of the Spearman-Brown corrected Pearson r across stimuli
        between half-means (dimensionless; NaN for a neuroid that is constant in a half). With
        ``return_splits`` a (split, neuroid) DataArray of the uncorrected r instead.
    """
    values, codes, ids, _ = grouped(rates, time="mean")
    halves = split_halves(codes, n_splits, seed)
    raw = np.empty((n_splits, values.shape[1]))
    for s, half in enumerate(halves):
        raw[s] = _column_pearson(_half_means(values, codes, len(ids), half == 0),
                                 _half_means(values, codes, len(ids), half == 1))
    flat = S.flat_coords(rates)
    coords = {S.NEUROID_ID: (S.NEUROID, [str(v) for v in flat[S.NEUROID_ID].values]),
              S.REGION: (S.NEUROID, [str(v) for v in flat[S.REGION].values])}
    attrs = clean_attrs({"definition": "split-half Pearson r across stimuli, Spearman-Brown corrected, mean over splits",
                         "n_splits": n_splits, "seed": seed if isinstance(seed, int) else None,
                         "rsa_bridge_version": package_version()})
    if return_splits:
        return xr.DataArray(raw, dims=("split", S.NEUROID), coords=coords, attrs={**attrs, "corrected": 0})
    with np.errstate(invalid="ignore"):
        corrected = finite_mean(spearman_brown(raw), axis=0)
    _say_undefined(coords[S.NEUROID_ID][1], corrected)
    return xr.DataArray(corrected, dims=(S.NEUROID,), coords=coords, name="reliability", attrs=attrs)


def _say_undefined(neuroid_ids: list[str], reliability: np.ndarray) -> None:
    """One sentence (a RuntimeWarning; the CLI prints it as a note) naming the neuroids with no reliability."""
    missing = [n for n, r in zip(neuroid_ids, reliability) if not np.isfinite(r)]
    if missing:
        import warnings

        from rsa_bridge.errors import preview

        warnings.warn(f"{len(missing)} of {len(neuroid_ids)} neuroids ({preview(missing)}) have no split-half "
                      "reliability (fewer than 3 stimuli measured in both halves, or constant within a half); "
                      "it is n/a (NaN) for them", RuntimeWarning, stacklevel=3)


@dataclass(frozen=True)
class RDMReliability:
    """Split-half reliability of an RDM: per split, the raw and Spearman-Brown corrected correlation."""

    raw: np.ndarray
    corrected: np.ndarray
    metric: str
    method: str
    seed: int | None
    n_splits: int
    attrs: dict = field(default_factory=dict)

    @property
    def mean(self) -> float:
        """Mean over splits of the corrected reliability."""
        return float(np.mean(self.corrected))

    @property
    def sd(self) -> float:
        """Standard deviation over splits of the corrected reliability."""
        return float(np.std(self.corrected, ddof=1)) if self.corrected.size > 1 else float("nan")

    @property
    def interval(self) -> tuple[float, float]:
        """2.5 and 97.5 percentiles over splits of the corrected reliability."""
        low, high = np.percentile(self.corrected, [2.5, 97.5])
        return float(low), float(high)

    def to_dataarray(self) -> xr.DataArray:
        """(split,) corrected values with the raw ones as a coordinate and the summary in attrs."""
        low, high = self.interval
        return xr.DataArray(
            self.corrected, dims=("split",), coords={"raw": ("split", self.raw)}, name="rdm_reliability",
            attrs=clean_attrs({**self.attrs, "metric": self.metric, "method": self.method, "seed": self.seed,
                               "n_splits": self.n_splits, "mean": self.mean, "sd": self.sd, "p2_5": low,
                               "p97_5": high, "raw_mean": float(np.mean(self.raw)),
                               "definition": "split-half RDM correlation, Spearman-Brown corrected"}),
        )


def rdm_reliability(rates: xr.DataArray, metric: str = "correlation", *, method: str = "spearman",
                    region: str | None = None, n_splits: int = 100, seed: int | np.random.Generator = 0,
                    time: str = "flatten", **options) -> RDMReliability:
    """Split-half reliability of the RDM of ``rates`` (see the module docstring).

    Args:
        metric: RDM metric (any of :func:`rsa_bridge.neural.rdms.all_metrics`; a cross-validated one
            needs at least 4 repetitions per stimulus, 2 in each half).
        method: RDM comparison (any of :data:`rsa_bridge.compare.METHODS`).
        region: only this region's neuroids.
        n_splits, seed: number of random splits and their seed (or a Generator).
    """
    rates = S.select_region(rates, region)
    values, codes, ids, _ = grouped(rates, time)
    reps = np.asarray(S.flat_coords(rates)[S.REPETITION].values)
    halves = split_halves(codes, n_splits, seed)

    def half_rdm(mask: np.ndarray) -> np.ndarray:
        sub_codes = codes[mask]
        return matrix_from_groups(values[mask], sub_codes, rank_within(sub_codes, reps[mask]), ids, metric, **options)

    raw = half_similarities(halves, half_rdm, method)
    return RDMReliability(raw=raw, corrected=spearman_brown(raw), metric=metric, method=method,
                          seed=seed if isinstance(seed, int) else None, n_splits=n_splits,
                          attrs={"region": region or ",".join(dict.fromkeys(map(str, S.flat_coords(rates)[S.REGION].values))),
                                 "n_neuroids": int(rates.sizes[S.NEUROID]), "n_stimuli": len(ids)})
