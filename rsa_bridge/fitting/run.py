"""Seeded end-to-end evaluation of fitted RDM models: draws and folds from one seed, results as xarray.

:data:`~rsa_bridge.fitting.schemes.EVALUATORS` (scheme name -> record) holds the three schemes of
:mod:`rsa_bridge.fitting.evaluate`; :func:`run_fit` makes the folds and draws from ``numpy.random.default_rng(options.seed)``, runs the scheme,
fits every model once more on all the data (the reported ``weights``) and returns a Dataset:

- ``evaluation``: (model, fold) for ``crossval``; (sample, model, fold, cv[, variant]) for the bootstraps;
- ``mean``, ``variance``, ``ci_low``/``ci_high`` (t), ``ci_percentile_low``/``_high`` (model): the summary
  (:mod:`rsa_bridge.fitting.summary`; for ``crossval`` the mean over folds, no variance);
- ``weights`` (model, model_rdm): the fit on all data (0 for RDMs a model does not use);
- attrs: ``measure`` (the comparison method), ``scheme``, folds, draws, seed, CI level, dataset, area ...

Example:
    >>> from rsa_bridge.fitting.evaluate import demo_data
    >>> ds = run_fit(demo_data(), [ModelSpec("w")], CVOptions(k_pattern=2), "crossval")
    >>> ds["evaluation"].dims, ds.attrs["measure"]
    (('model', 'fold'), 'pearson')
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Sequence

import numpy as np
import xarray as xr

from rsa_bridge.fitting import evaluate as ev
from rsa_bridge.fitting.data import FitData
from rsa_bridge.fitting.evaluate import CVOptions
from rsa_bridge.fitting.fitters import ModelSpec
from rsa_bridge.fitting.schemes import EVALUATORS, VARIANTS


def full_weights(data: FitData, specs: Sequence[ModelSpec], method: str) -> np.ndarray:
    """(M, K) weights of each model fitted on all RDMs and stimuli (0 for RDMs a model does not use)."""
    prep = ev.Prepared(data, specs, method)
    out = np.zeros((len(specs), len(data.model_names)))
    rows, pos = np.arange(len(data.rdms)), np.arange(data.n_stimuli)
    for j in range(len(specs)):
        out[j, prep.rows[j]] = prep.fit(j, rows, pos)
    return out


def run_fit(data: FitData, specs: Sequence[ModelSpec], options: CVOptions = CVOptions(),
            scheme: str = "bootstrap_crossval") -> xr.Dataset:
    """Evaluate fitted models with one scheme (see the module docstring); everything seeded by ``options.seed``."""
    from rsa_bridge.fitting.summary import summarize
    from rsa_bridge.methods import get
    from rsa_bridge.provenance import package_version

    record = EVALUATORS.get_record(scheme)
    options = CVOptions(**{**asdict(options), "method": get(options.method).name})
    weights = full_weights(data, specs, options.method)  # checks the models and the method before the folds
    evals, dims = record.run(data, specs, options, np.random.default_rng(options.seed))
    names = [s.name for s in specs]
    coords = {"model": names, "model_rdm": list(data.model_names),
              "kind": ("model", [s.kind for s in specs]), "fitter": ("model", [s.fitter_name for s in specs])}
    if "variant" in dims:
        coords["variant"] = list(VARIANTS)
    ds = xr.Dataset({"evaluation": (dims, evals), "weights": (("model", "model_rdm"), weights)}, coords=coords)
    if record.bootstrap:
        s = summarize(evals, len(data.rdms), data.n_stimuli, options.ci, scheme, options.correction)
        ds["mean"], ds["variance"] = ("model", s["mean"]), ("model", s["variance"])
        ds["ci_low"], ds["ci_high"] = ("model", s["ci_t"][0]), ("model", s["ci_t"][1])
        ds["ci_percentile_low"], ds["ci_percentile_high"] = ("model", s["ci_percentile"][0]), ("model",
                                                                                           s["ci_percentile"][1])
        extra = {"dof": s["dof"], "n_draws_used": s["n_draws_used"], "n_boot": options.n_boot, "n_cv": options.n_cv,
                 "ci": options.ci, "ci_kind": "t (ci_low/ci_high) and percentile", "correction": str(options.correction)}
    else:
        ds["mean"] = ("model", np.nanmean(evals, axis=1))
        extra = {"n_boot": 0, "n_cv": 1, "ci": "none (plain cross-validation)"}
    ds.attrs = {**{k: str(v) for k, v in data.attrs.items()}, "measure": options.method, "scheme": scheme,
                "scheme_rsatoolbox": record.rsatoolbox, "k_pattern": options.k_pattern, "k_rdm": options.k_rdm,
                "seed": options.seed, "n_stimuli": data.n_stimuli, "n_rdms": len(data.rdms),
                "groups": ",".join(data.group_values()), "package_version": package_version(), **extra}
    for key in ("dataset", "area"):
        ds.attrs.setdefault(key, "unknown")
    return ds


def table(ds: xr.Dataset):
    """One row per model: kind, fitter, measure, mean, CI and the weights on all data (a pandas DataFrame)."""
    import pandas as pd

    rows = []
    for m in ds["model"].values:
        one = ds.sel(model=m)
        w = {f"w[{k}]": float(one["weights"].sel(model_rdm=k)) for k in ds["model_rdm"].values}
        row = {"model": str(m), "kind": str(one["kind"].values), "fitter": str(one["fitter"].values),
               "measure": ds.attrs["measure"], "scheme": ds.attrs["scheme"], "mean": float(one["mean"])}
        if "ci_low" in ds:
            row.update(sem=float(np.sqrt(max(float(one["variance"]), 0.0))), ci_low=float(one["ci_low"]),
                       ci_high=float(one["ci_high"]))
        rows.append({**row, **w})
    return pd.DataFrame(rows)
