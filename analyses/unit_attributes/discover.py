"""Unit-level attribute discovery (after Vittayakorn et al., ECCV 2016) as one xarray Dataset.

For a positive and a negative image set, every unit of every layer gets the KL divergence of its
activation histogram over positives from that over negatives (:mod:`.histograms`); the top-``k`` units
of a layer are its *prime units*; a linear classifier on them gives the layer's *visualness*
(:mod:`.visualness`); the layer profile of the prime units' mean divergence is the attribute's
*perceptual depth* profile, and its arg-max layer is reported as ``perceptual_depth``.

    ds = unit_attributes(load_model("alexnet"), load_stimulus_set(DIR), label="animate")
    ds["divergence"].sel(layer="fc6")          # (unit,) KL in nats, NaN past the layer's units
    ds["visualness"]                           # (layer,) cross-validated accuracy
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import xarray as xr

from analyses.unit_attributes.activations import DEFAULT_POOLING, POOLING, LayerUnits, pooled_activations
from analyses.unit_attributes.histograms import (DEFAULT_BINS, DEFAULT_EPSILON, check_bins_epsilon,
                                                 null_prime_divergence, rank_units, split_classes, unit_divergence)
from analyses.unit_attributes.labels import split_by_label
from analyses.unit_attributes.visualness import (CLASSIFIERS, DEFAULT_CLASSIFIER, DEFAULT_FOLDS, DEFAULT_K,
                                                 SELECTIONS, check_folds, visualness)
from rsa_bridge.errors import RSABridgeError
from stimuli.keywords import refuse_keywords
from rsa_bridge.provenance import clean_attrs, package_version

LAYER, UNIT, BIN, EDGE, PRIME, FOLD = "layer", "unit", "bin", "edge", "prime", "fold"


@dataclass(frozen=True)
class UnitOptions:
    """Settings of the analysis (all stored in the result's attrs).

    Attributes:
        bins: equal-width histogram bins per unit between its min and max over all stimuli (10).
        epsilon: smoothing added to every bin probability before renormalising (1e-3).
        pooling: ``max`` (default) or ``mean`` over space per conv channel, or ``none`` (every position).
        k: prime units per layer (16); an error if a layer has fewer units.
        classifier: ``logistic`` (default), ``linear_svm`` or ``lda``, after standardisation.
        folds: stratified cross-validation folds (5); seed: their shuffling and the classifier's seed (0).
        selection: ``in_fold`` (default: prime units re-chosen on each training fold) or ``all``.
        histograms: keep the per-unit histograms and edges in the Dataset (True).
        permutations: label shuffles for the null of the prime units' mean divergence (20; 0 = none);
            with them the perceptual depth is the layer with the largest excess over that null.
    """

    bins: int = DEFAULT_BINS
    epsilon: float = DEFAULT_EPSILON
    pooling: str = DEFAULT_POOLING
    k: int = DEFAULT_K
    classifier: str = DEFAULT_CLASSIFIER
    folds: int = DEFAULT_FOLDS
    seed: int = 0
    selection: str = "in_fold"
    histograms: bool = True
    permutations: int = 20

    def check(self, is_positive: np.ndarray) -> None:
        """RSABridgeError for any setting that cannot work (before activations are computed)."""
        check_bins_epsilon(self.bins, self.epsilon)
        if self.pooling not in POOLING:
            raise RSABridgeError(f"unknown pooling {self.pooling!r}; choose one of {', '.join(POOLING)}")
        if self.classifier not in CLASSIFIERS:
            raise RSABridgeError(f"unknown classifier {self.classifier!r}; choose one of {', '.join(CLASSIFIERS)}")
        if self.selection not in SELECTIONS:
            raise RSABridgeError(f"unknown selection {self.selection!r}; choose one of {', '.join(SELECTIONS)}")
        if isinstance(self.k, bool) or not isinstance(self.k, (int, np.integer)) or self.k < 1:
            raise RSABridgeError(f"k (prime units per layer) must be a whole number >= 1, not {self.k!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise RSABridgeError(f"seed must be a whole number >= 0, not {self.seed!r}")
        if isinstance(self.permutations, bool) or not isinstance(self.permutations, (int, np.integer)) \
                or self.permutations < 0:
            raise RSABridgeError(f"permutations must be a whole number >= 0, not {self.permutations!r}")
        check_folds(is_positive, self.folds)


def _as_units(layers: Mapping[str, LayerUnits | np.ndarray]) -> dict[str, LayerUnits]:
    out = {}
    for name, item in layers.items():
        if isinstance(item, LayerUnits):
            out[str(name)] = item
        else:
            values = np.asarray(item, dtype=np.float64)
            if values.ndim != 2:
                raise RSABridgeError(f"layer {name!r}: activations must be (n_stimuli, n_units), not {values.shape}")
            out[str(name)] = LayerUnits(values, str(name), (values.shape[1],))
    if not out:
        raise RSABridgeError("no layers to analyse")
    return out


def _padded(rows: list[np.ndarray], width: int, fill, dtype) -> np.ndarray:
    out = np.full((len(rows), width, *rows[0].shape[1:]), fill, dtype=dtype)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def attributes_from_activations(layers: Mapping[str, LayerUnits | np.ndarray], is_positive: Sequence[bool],
                                options: UnitOptions | None = None, *, stimulus_ids: Sequence[str] | None = None,
                                attrs: dict | None = None) -> xr.Dataset:
    """The analysis on activations already in hand.

    Args:
        layers: layer name -> (n_stimuli, n_units) activations (or :class:`LayerUnits`), in depth order.
        is_positive: (n_stimuli,) booleans.
        options: :class:`UnitOptions` (defaults when None).
        stimulus_ids: row ids (stored in attrs as a count only; default ``0..n-1``).
        attrs: extra provenance for the Dataset.

    Returns:
        Dataset with coordinates ``layer`` (+ ``module_path``, ``unit_shape``, ``n_units``), ``unit``,
        ``prime``, ``fold`` (and ``bin``, ``edge``); variables ``divergence``, ``rank``, ``is_prime``,
        ``mean_positive``, ``mean_negative`` (layer, unit; NaN / -1 / 0 beyond a layer's units),
        ``p_positive``, ``p_negative`` (layer, unit, bin), ``bin_edges`` (layer, unit, edge),
        ``prime_unit``, ``prime_divergence`` (layer, prime), per-layer ``divergence_mean``,
        ``divergence_median``, ``divergence_max``, ``prime_divergence_mean``, ``visualness``,
        ``visualness_std``, ``visualness_balanced``, ``chance`` and ``fold_accuracy`` (layer, fold).
    """
    options = options or UnitOptions()
    units = _as_units(layers)
    n = next(iter(units.values())).values.shape[0]
    mask = split_classes(np.asarray(is_positive), n)
    options.check(mask)
    for name, item in units.items():
        if item.values.shape[0] != n:
            raise RSABridgeError(f"layer {name!r} has {item.values.shape[0]} stimuli, the first layer {n}")
        if item.values.shape[1] < options.k:
            raise RSABridgeError(
                f"layer {name!r} has {item.values.shape[1]} units (after {options.pooling} pooling), fewer than "
                f"k = {options.k} prime units; lower --top-k to at most {item.values.shape[1]} or drop the layer"
            )
    per = {key: [] for key in ("div", "rank", "prime", "mpos", "mneg", "ppos", "pneg", "edges", "vis", "null")}
    for index, (name, item) in enumerate(units.items()):
        found = unit_divergence(item.values, mask, options.bins, options.epsilon)
        order = rank_units(found.divergence)
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(1, len(order) + 1)
        per["div"].append(found.divergence)
        per["rank"].append(rank)
        per["prime"].append(order[: options.k])
        per["mpos"].append(item.values[mask].mean(axis=0))
        per["mneg"].append(item.values[~mask].mean(axis=0))
        if options.histograms:
            per["ppos"].append(found.p_positive)
            per["pneg"].append(found.p_negative)
            per["edges"].append(found.edges)
        rng = np.random.default_rng([options.seed, index])
        per["null"].append(null_prime_divergence(item.values, mask, options.k, options.bins, options.epsilon,
                                                 options.permutations, rng))
        per["vis"].append(visualness(item.values, mask, options.k, bins=options.bins, epsilon=options.epsilon,
                                     classifier=options.classifier, folds=options.folds, seed=options.seed,
                                     selection=options.selection, prime_units=order[: options.k]))
    names = list(units)
    width = max(len(d) for d in per["div"])
    lu, lp = (LAYER, UNIT), (LAYER, PRIME)
    divergence = _padded(per["div"], width, np.nan, np.float64)
    primes = np.stack(per["prime"])
    prime_div = np.take_along_axis(divergence, primes, axis=1)
    data = {
        "divergence": (lu, divergence, {"long_name": "KL(P+ || P-) of the unit's activation histograms",
                                        "units": "nats"}),
        "rank": (lu, _padded(per["rank"], width, -1, np.int64),
                 {"long_name": "rank by divergence within the layer (1 = largest; -1 = no such unit)"}),
        "is_prime": (lu, _padded([np.isin(np.arange(len(d)), p) for d, p in zip(per["div"], per["prime"])],
                                 width, False, np.int8), {"long_name": "1 for the layer's top-k units"}),
        "mean_positive": (lu, _padded(per["mpos"], width, np.nan, np.float64),
                          {"long_name": "mean activation over positives"}),
        "mean_negative": (lu, _padded(per["mneg"], width, np.nan, np.float64),
                          {"long_name": "mean activation over negatives"}),
        "prime_unit": (lp, primes, {"long_name": "index of the layer's k-th most divergent unit"}),
        "prime_divergence": (lp, prime_div, {"units": "nats"}),
        "divergence_mean": ((LAYER,), np.nanmean(divergence, axis=1), {"units": "nats"}),
        "divergence_median": ((LAYER,), np.nanmedian(divergence, axis=1), {"units": "nats"}),
        "divergence_max": ((LAYER,), np.nanmax(divergence, axis=1), {"units": "nats"}),
        "prime_divergence_mean": ((LAYER,), prime_div.mean(axis=1),
                                  {"units": "nats", "long_name": "mean divergence of the k prime units "
                                                                 "(the perceptual-depth profile)"}),
        "prime_divergence_null": ((LAYER,), np.array([v.mean() if v.size else np.nan for v in per["null"]]),
                                  {"units": "nats", "long_name": "prime_divergence_mean with shuffled labels "
                                                                 "(mean over permutations)"}),
        "prime_divergence_null_std": ((LAYER,), np.array([v.std() if v.size else np.nan for v in per["null"]]),
                                      {"units": "nats"}),
        "visualness": ((LAYER,), np.array([v.accuracy for v in per["vis"]]),
                       {"long_name": "cross-validated accuracy of a linear classifier on the prime units"}),
        "visualness_std": ((LAYER,), np.array([v.accuracy_std for v in per["vis"]]),
                           {"long_name": "standard deviation of the fold accuracies"}),
        "visualness_balanced": ((LAYER,), np.array([v.balanced_accuracy for v in per["vis"]]),
                                {"long_name": "cross-validated balanced accuracy (chance 0.5)"}),
        "chance": ((LAYER,), np.array([v.chance for v in per["vis"]]),
                   {"long_name": "accuracy of always guessing the larger set"}),
        "fold_accuracy": ((LAYER, FOLD), np.stack([v.fold_accuracy for v in per["vis"]])),
    }
    if options.histograms:
        data["p_positive"] = ((LAYER, UNIT, BIN), _padded(per["ppos"], width, np.nan, np.float64),
                              {"long_name": "smoothed histogram over positives"})
        data["p_negative"] = ((LAYER, UNIT, BIN), _padded(per["pneg"], width, np.nan, np.float64),
                              {"long_name": "smoothed histogram over negatives"})
        data["bin_edges"] = ((LAYER, UNIT, EDGE), _padded(per["edges"], width, np.nan, np.float64),
                             {"long_name": "shared bin edges (activation units)"})
    variables = {key: xr.Variable(*value) for key, value in data.items()}
    coords = {LAYER: names, UNIT: np.arange(width), PRIME: np.arange(options.k), FOLD: np.arange(options.folds),
              "module_path": (LAYER, [units[n].module_path for n in names]),
              "n_units": (LAYER, [len(d) for d in per["div"]]),
              "unit_shape": (LAYER, ["x".join(str(s) for s in units[n].unit_shape) for n in names])}
    if options.histograms:
        coords.update({BIN: np.arange(options.bins), EDGE: np.arange(options.bins + 1)})
    ds = xr.Dataset(variables, coords=coords)
    ds["prime_divergence_excess"] = ds["prime_divergence_mean"] - ds["prime_divergence_null"]
    ds["prime_divergence_excess"].attrs = {"units": "nats", "long_name": "prime_divergence_mean minus its "
                                           "shuffled-label null"}
    profile = "prime_divergence_excess" if options.permutations > 0 else "prime_divergence_mean"
    depth = int(np.argmax(ds[profile].values))
    most_visual = int(np.argmax(ds["visualness"].values))
    ids = list(stimulus_ids) if stimulus_ids is not None else [str(i) for i in range(n)]
    if len(ids) != n:
        raise RSABridgeError(f"{len(ids)} stimulus ids for {n} stimuli")
    ds.attrs = clean_attrs({
        **(attrs or {}),
        **{f"option_{k}": v for k, v in asdict(options).items()},
        "n_stimuli": n, "n_positive": int(mask.sum()), "n_negative": int((~mask).sum()),
        "perceptual_depth": names[depth], "perceptual_depth_index": depth,
        "perceptual_depth_definition": (
            "layer with the largest mean KL divergence of its k prime units, minus its shuffled-label null"
            if options.permutations > 0 else "layer with the largest mean KL divergence of its k prime units"),
        "most_visual_layer": names[most_visual],
        "divergence_units": "nats",
        "method": "unit attribute discovery after Vittayakorn et al. (ECCV 2016)",
        "rsa_bridge_version": package_version(),
    })
    return ds


@dataclass(frozen=True)
class Extraction:
    """How :func:`unit_attributes` runs the network (as in :func:`extractors.extract`).

    Attributes:
        batch_size: images per forward pass; device: a torch device (``cpu``, ``cuda``);
        transform: the preprocessing (None: the model's own); progress: a bar (None: see :mod:`rsa_bridge.progress`).

    Example::

        >>> Extraction(batch_size=16, progress=False).device
        'cpu'
    """

    batch_size: int = 32
    device: str = "cpu"
    transform: Any = None
    progress: bool | None = None


def unit_attributes(model, stimulus_set, label: str | None = None, positive: str | None = None,
                    negative: str | None = None, *, is_positive: Sequence[bool] | None = None,
                    layers: Sequence[str] | str | None = None, options: UnitOptions | None = None,
                    extraction: Extraction | None = None, **stray) -> xr.Dataset:
    """Unit attributes of ``model``'s layers for a positive vs negative split of ``stimulus_set``.

    Args:
        model: an ``nn.Module`` (e.g. :func:`extractors.load_model`); any module with named layers.
        stimulus_set: a :class:`stimuli.StimulusSet`, a folder with manifest.csv, or a preprocessed
            float tensor (N, 3, H, W) (then ``is_positive`` is required).
        label, positive, negative: the split (see :func:`.labels.split_by_label`); or
        is_positive: (N,) booleans in the set's order instead of a label.
        layers: aliases or module paths (None: the model's default layers).
        options: :class:`UnitOptions`.
        extraction: batch size, device, transform, progress (:class:`Extraction`); ``batch_size=`` ... alone: TypeError.

    Returns:
        The Dataset of :func:`attributes_from_activations` with provenance attrs (model, weights,
        preprocessing, stimulus_set, label, positive, negative, n_left_out).
    """
    import torch

    refuse_keywords("unit_attributes", stray, Extraction, "extraction")
    options = options or UnitOptions()
    run = extraction if extraction is not None else Extraction()
    if isinstance(stimulus_set, (str, bytes)) or hasattr(stimulus_set, "__fspath__"):
        from stimuli import load_stimulus_set

        stimulus_set = load_stimulus_set(stimulus_set)
    extra: dict = {}
    if is_positive is not None:
        if label is not None:
            raise RSABridgeError("give either a label column or is_positive, not both")
        mask = np.asarray(is_positive)
        ids = None if isinstance(stimulus_set, torch.Tensor) else list(stimulus_set.stimulus_ids)
        extra = {"positive": "is_positive given", "negative": "the others"}
    else:
        if label is None or isinstance(stimulus_set, torch.Tensor):
            raise RSABridgeError("say which stimuli are positive: a label column of the manifest (--label COLUMN)")
        split = split_by_label(stimulus_set, label, positive, negative)
        mask, ids = split.is_positive, split.stimulus_ids
        extra = {"label": split.label, "positive": split.positive, "negative": split.negative,
                 "n_left_out": split.n_left_out}
    n = len(stimulus_set) if ids is None else len(ids)
    mask = split_classes(mask, n)
    options.check(mask)
    acts = pooled_activations(model, stimulus_set, layers, pooling=options.pooling, batch_size=run.batch_size,
                              device=run.device, transform=run.transform, progress=run.progress, stimulus_ids=ids)
    return attributes_from_activations(acts.layers, mask, options, stimulus_ids=acts.stimulus_ids,
                                       attrs={**acts.provenance, **extra, "device": str(run.device)})
