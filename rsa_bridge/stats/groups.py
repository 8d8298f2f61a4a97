"""Group comparisons: the same models (or reference RDMs) against two sets of RDMs, on joint bootstrap draws.

Two sets of RDMs over the same stimuli — two areas, two species (monkey IT vs the human IT subjects of the
shipped 92-image set), two model families (several trained instances each) — are each scored against
every model RDM (similarity = mean over the set's units of each unit's mean over its RDMs, as ``compare``
does; units from :mod:`rsa_bridge.stats.grouping`). The uncertainty comes from one bootstrap (rsatoolbox
``eval_bootstrap``, :func:`rsa_bridge.stats.bootstrap.bootstrap_similarity` with ``over='both'``):

- the **stimuli** are resampled once per draw and the same index set is applied to both sets (jointly);
- the **units** (subjects) are resampled within each set (whole units, all their RDMs); a set of a single
  unit keeps it (stimuli only, rsatoolbox ``eval_bootstrap_pattern``).

Every test is paired over these draws (rsatoolbox ``Result.test_all(test_type='t-test')`` /
``util.inference_util``; the centre of a test is the **mean of the bootstrap samples**, as there):

- ``p_zero``: one-sided t-test of each model against 0, variance = the bootstrap variance;
- ``p_ceiling``: two-sided t-test against the mean of the bootstrapped **lower** noise ceiling, variance =
  var(model - lower ceiling) over the draws (NaN for a set of one unit: no ceiling across subjects);
- ``p_pairwise``: two-sided t-tests between models (variance of their paired difference); ``p_pairwise_fdr``
  the same, Benjamini–Hochberg adjusted over the set's model pairs (:mod:`rsa_bridge.corrections`);
- ``p_difference`` / ``p_difference_bootstrap``: set A minus set B for each model, a t-test on the paired
  draws and rsatoolbox's two-sided bootstrap p.

Variances follow rsatoolbox ``extract_variances``: the ``ddof=1`` covariance of the draws times n/(n-1),
n = min(units, stimuli) for a set with several units (dof = n - 1), n = stimuli for a set of one unit.
Refs: Nili et al. 2014 (PLoS Comput Biol), Schütt et al. 2023 (eLife).

Example::

    >>> res = compare_groups(layer_rdms, {"IT": monkey, "hIT": human}, GroupOptions(n_bootstrap=1000))  # doctest: +SKIP
    >>> res["p_difference"].to_series()                                                                  # doctest: +SKIP
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import xarray as xr

from rsa_bridge.compare import compare_vectors
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.rdm import upper_triangle
from rsa_bridge.stats.grouping import (
    group_bootstrap_indices,
    group_mean_sem,
    replicate_coords,
    resampling_unit,
)
from rsa_bridge.stats.layers import bootstrap_pair_p
from rsa_bridge.stats.resample import as_generator, bootstrap_stimuli
from rsa_bridge.stats.results import percentile_ci
from rsa_bridge.stats.run_options import BootstrapOptions

ROW, COL = "stimulus_row", "stimulus_col"


@dataclass(frozen=True)
class GroupOptions:
    """How :func:`compare_groups` scores and resamples.

    Attributes:
        method: comparison method; n_bootstrap: joint draws (>= 20); seed: the one Generator's seed;
        level: CI level; group_by: the unit within each set (``auto``: subject/animal when the RDMs carry it).
    """

    method: str = "spearman"
    n_bootstrap: int = 1000
    seed: int | None = 0
    level: float = 0.95
    group_by: str | None = "auto"

    def __post_init__(self) -> None:
        n = self.n_bootstrap
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 20:
            raise RSABridgeError(f"a group comparison needs at least 20 bootstrap draws; got {n!r}")
        if not 0.0 < float(self.level) < 1.0:
            raise RSABridgeError(f"the CI level lies strictly between 0 and 1; got {self.level!r}")
        as_generator(self.seed)


@dataclass(frozen=True)
class SetTests:
    """rsatoolbox-style t-tests of one set: (L,) p_zero, (L,) p_ceiling, (L, L) p_pairwise; dof; n for n/(n-1)."""

    p_zero: np.ndarray
    p_ceiling: np.ndarray
    p_pairwise: np.ndarray
    dof: int
    n_correction: int


def _eps_sqrt(var: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum(var, np.finfo(float).eps))


def set_tests(evals: np.ndarray, lower: np.ndarray | None, dof: int, n_correction: int) -> SetTests:
    """The t-tests of one set from its draws (B, L) and lower-ceiling draws (B,) or None (no ceiling)."""
    from scipy.stats import t as t_dist

    n_models = evals.shape[1]
    cols = evals if lower is None else np.column_stack([evals, lower])
    ok = np.isfinite(cols).all(axis=1)
    cov = np.atleast_2d(np.cov(cols[ok].T)) * (n_correction / (n_correction - 1))
    var = np.diag(cov)[:n_models]
    mean = np.nanmean(evals, axis=0)
    p_zero = 1.0 - t_dist.cdf(mean / _eps_sqrt(var), dof)
    p_ceiling = np.full(n_models, np.nan)
    if lower is not None:
        nc_var = var - 2.0 * cov[:n_models, n_models] + cov[n_models, n_models]
        p_ceiling = 2.0 * (1.0 - t_dist.cdf(np.abs(mean - np.nanmean(lower)) / _eps_sqrt(nc_var), dof))
    diff_var = var[:, None] + var[None, :] - 2.0 * cov[:n_models, :n_models]
    p_pair = 2.0 * (1.0 - t_dist.cdf(np.abs(mean[:, None] - mean[None, :]) / _eps_sqrt(diff_var), dof))
    np.fill_diagonal(p_pair, 1.0)
    return SetTests(p_zero, p_ceiling, p_pair, int(dof), int(n_correction))


def _model_stack(models) -> tuple[list[str], np.ndarray, list[str]]:
    if not isinstance(models, xr.DataArray) or models.ndim != 3 or ROW not in models.dims:
        raise RSABridgeError("models must be a (model_layer, stimulus_row, stimulus_col) DataArray of RDMs with "
                             "stimulus ids")
    row = models.dims[0]
    return [str(v) for v in models[row].values], models.transpose(row, ROW, COL).values, \
        [str(s) for s in models[ROW].values]


def _set_vectors(name: str, rdms: xr.DataArray, ids: list[str]) -> np.ndarray:
    if not isinstance(rdms, xr.DataArray) or ROW not in rdms.dims or COL not in rdms.dims:
        raise RSABridgeError(f"set {name!r}: give its RDMs as a DataArray with stimulus_row/stimulus_col ids")
    have = [str(s) for s in rdms[ROW].values]
    missing = sorted(set(ids) - set(have))
    if missing or len(have) != len(ids):
        raise RSABridgeError(f"set {name!r} covers other stimuli than the models ({len(have)} vs {len(ids)} ids; "
                             f"e.g. missing {missing[:3]}); compare sets over the same stimulus ids")
    ordered = rdms.sel({ROW: ids, COL: ids}).transpose(..., ROW, COL)
    vecs = upper_triangle(ordered.values).reshape(-1, len(ids) * (len(ids) - 1) // 2)
    if not np.isfinite(vecs).all():
        raise RSABridgeError(f"set {name!r} has NaN or inf dissimilarities; fill or drop those stimuli first")
    if (np.ptp(vecs, axis=1) == 0).any():
        raise RSABridgeError(f"set {name!r} holds a constant RDM (all dissimilarities equal): no similarity is "
                             "defined; drop it")
    return vecs


def compare_groups(models: xr.DataArray, sets: Mapping[str, xr.DataArray], options: GroupOptions | None = None
                   ) -> xr.Dataset:
    """Score models against two sets of RDMs on joint bootstrap draws, with tests per set and between sets.

    Args:
        models: (model_layer, stimulus_row, stimulus_col) model (or reference) RDMs, >= 1.
        sets: exactly two ``name -> RDMs`` (DataArrays with replicate dims such as subject x session before
            stimulus_row, stimulus_col; matched to the models by stimulus id).
        options: :class:`GroupOptions`.

    Returns:
        Dataset (model_layer, group[, model_layer_b]): ``similarity``, ``bootstrap_mean``, ``ci_low``/``ci_high``,
        ``p_zero``, ``p_ceiling``, ``p_pairwise``, ``ceiling_lower``/``ceiling_upper`` (group), and per model
        ``difference`` (A - B), ``difference_ci_low/high``, ``p_difference``, ``p_difference_bootstrap``;
        ``samples`` (draw, model_layer, group), ``ceiling_samples`` (draw, group, bound). attrs: what ran (method, draws, seed, units, dof per set).
    """
    options = options or GroupOptions()
    if len(sets) != 2:
        raise RSABridgeError(f"a group comparison takes exactly two sets of RDMs; got {len(sets)} "
                             f"({', '.join(map(str, sets)) or 'none'})")
    labels, model_mat, ids = _model_stack(models)
    n = len(ids)
    if n < 4:
        raise RSABridgeError(f"a group comparison needs at least 4 stimuli; got {n}")
    names = [str(k) for k in sets]
    units = {a: resampling_unit(sets[a], options.group_by) for a in names}
    vecs = {a: _set_vectors(a, sets[a], ids) for a in names}
    model_vec = upper_triangle(model_mat)
    if (np.ptp(model_vec, axis=1) == 0).any():
        raise RSABridgeError("a model RDM is constant (all dissimilarities equal): no similarity is defined")
    observed = np.column_stack([group_mean_sem(compare_vectors(model_vec, vecs[a], options.method),
                                               units[a].labels)[0] for a in names])
    rng = as_generator(options.seed)
    stim_idx = bootstrap_stimuli(n, options.n_bootstrap, rng)  # the same stimuli for both sets
    rdm_idx = {a: group_bootstrap_indices(units[a].labels, options.n_bootstrap, rng) for a in names}
    from rsa_bridge.stats.bootstrap import bootstrap_similarity

    neural = {a: np.stack([_square(v, n) for v in vecs[a]]) for a in names}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(noise ceiling|single RDM).*", category=RuntimeWarning)
        boot = bootstrap_similarity(model_mat, neural, method=options.method, n_samples=options.n_bootstrap,
                                    over="both", ceiling=True,
                                    options=BootstrapOptions(stimulus_indices=stim_idx, rdm_indices=rdm_idx,
                                                             progress=False, scheme="exact"))
    return _assemble(boot, observed, labels, names, units, vecs, n, options)


def _pairs_fdr(p: np.ndarray) -> np.ndarray:
    """(L, L) pairwise p-values, BH-adjusted over the L(L-1)/2 distinct pairs (symmetric; diagonal 1)."""
    from rsa_bridge.corrections import fdr_bh

    out = np.ones_like(p)
    iu = np.triu_indices(p.shape[0], k=1)
    if iu[0].size:
        out[iu] = fdr_bh(p[iu])
        out.T[iu] = out[iu]
    return out


def _square(vec: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((n, n))
    out[np.triu_indices(n, k=1)] = vec
    return out + out.T


def _assemble(boot, observed, labels, names, units, vecs, n, options) -> xr.Dataset:
    from rsa_bridge.stats.ceiling import noise_ceiling

    evals = boot.samples  # (B, L, 2)
    tests, ceil_obs, dofs = [], [], {}
    for j, a in enumerate(names):
        several = units[a].n_units >= 2
        n_corr = min(units[a].n_units, n) if several else n
        dofs[a] = n_corr - 1
        tests.append(set_tests(evals[:, :, j], boot.ceiling[:, j, 0] if several else None, n_corr - 1, n_corr))
        ceiling = noise_ceiling(vecs[a], options.method, groups=units[a].labels) if several else None
        ceil_obs.append((ceiling.lower, ceiling.upper) if several else (np.nan, np.nan))
    low, high = percentile_ci(evals, options.level)
    diff = evals[:, :, 0] - evals[:, :, 1]
    d_low, d_high = percentile_ci(diff, options.level)
    dof = min(dofs.values())
    from scipy.stats import t as t_dist

    ok = np.isfinite(diff).all(axis=1)
    d_var = np.var(diff[ok], axis=0, ddof=1) * ((dof + 1) / dof)
    p_diff = 2.0 * (1.0 - t_dist.cdf(np.abs(np.nanmean(diff, axis=0)) / _eps_sqrt(d_var), dof))
    lg, lgb = ("model_layer", "group"), ("model_layer", "model_layer_b", "group")
    what = f"{options.method} similarity"
    ds = xr.Dataset(
        {"similarity": (lg, observed, {"long_name": f"{what}: mean over the set's units", "units": "1"}),
         "bootstrap_mean": (lg, np.nanmean(evals, axis=0), {"long_name": f"{what}: mean of the draws (test centre)"}),
         "ci_low": (lg, low), "ci_high": (lg, high),
         "p_zero": (lg, np.column_stack([t.p_zero for t in tests]),
                    {"long_name": "one-sided t-test of the similarity against 0 (bootstrap variance)"}),
         "p_ceiling": (lg, np.column_stack([t.p_ceiling for t in tests]),
                       {"long_name": "two-sided t-test against the lower noise ceiling (NaN: one unit)"}),
         "p_pairwise": (lgb, np.stack([t.p_pairwise for t in tests], axis=-1),
                        {"long_name": "two-sided t-test between two models, paired over the draws"}),
         "p_pairwise_fdr": (lgb, np.stack([_pairs_fdr(t.p_pairwise) for t in tests], axis=-1),
                            {"long_name": "p_pairwise, Benjamini-Hochberg over the set's model pairs "
                                          "(rsatoolbox's default for pairwise tests)"}),
         "ceiling_lower": ("group", np.array([c[0] for c in ceil_obs])),
         "ceiling_upper": ("group", np.array([c[1] for c in ceil_obs])),
         "difference": ("model_layer", observed[:, 0] - observed[:, 1],
                        {"long_name": f"{what} with {names[0]} minus with {names[1]}"}),
         "difference_ci_low": ("model_layer", d_low), "difference_ci_high": ("model_layer", d_high),
         "p_difference": ("model_layer", p_diff, {"long_name": f"two-sided t-test of the paired difference, dof {dof}"}),
         "p_difference_bootstrap": ("model_layer", np.array([bootstrap_pair_p(evals[:, i, 0], evals[:, i, 1])
                                                             for i in range(len(labels))]),
                                    {"long_name": "two-sided bootstrap p of the paired difference (rsatoolbox)"}),
         "samples": (("draw", "model_layer", "group"), evals),
         "ceiling_samples": (("draw", "group", "bound"), boot.ceiling,
                             {"long_name": "Nili ceiling of each draw's resampled RDMs (each RDM left out alone)"})},
        coords={"model_layer": labels, "model_layer_b": labels, "group": names, "bound": ["lower", "upper"]})
    ds.attrs = {"group_method": options.method, "group_measure": "rsa", "group_bootstrap": int(options.n_bootstrap),
                "group_seed": "none (fresh entropy)" if options.seed is None else int(options.seed), "group_ci_level": float(options.level),
                "group_resampling": "stimuli jointly for both sets, units within each set",
                "group_test": "t-test on bootstrap variances (rsatoolbox util.inference_util); centre: draw mean",
                "group_difference": f"{names[0]} - {names[1]}", "group_difference_dof": int(dof),
                **{f"group_units_{a}": units[a].describe() for a in names},
                **{f"group_dof_{a}": int(dofs[a]) for a in names}}
    return ds


def set_from_dataset(dataset: xr.Dataset, area: str) -> xr.DataArray:
    """One area of an RDM dataset as a set for :func:`compare_groups` (its replicate coordinates kept)."""
    if area not in dataset.data_vars:
        raise RSABridgeError(f"no area {area!r} in this dataset; it has {', '.join(map(str, dataset.data_vars))}")
    replicate_coords(dataset[area])  # refuses a malformed variable early
    return dataset[area]
