"""Held-out layer choice: choose the best layer on some stimuli (or one data set) and score it on others.

Reporting the best of L layers with the score it got on the same data reports an in-sample maximum: it is
biased upward (the maximum of L noisy estimates). Two protocols remove that bias:

- **within a data set** (:func:`heldout_choice`): K folds over the stimuli (seeded,
  :func:`rsa_bridge.measures.folds.make_folds`), optionally repeated with new folds. In each fold the layer
  is chosen on the *training* stimuli (model and brain RDMs restricted to them: the condensed RDM entries of
  the pairs whose two stimuli are both in the training set) and scored on the *held-out* stimuli (the pairs
  within the test set), with the same comparison method and the same aggregation over the area's RDMs as
  ``compare`` (mean over units of the unit means, :func:`rsa_bridge.stats.grouping.group_mean_sem`). The
  cross-validated score is the mean over folds x repeats of the held-out scores. Pairs between a training and
  a held-out stimulus are used by neither side.
- **across data sets** (:func:`commit_layers`): each area's layer is chosen on one data set (and area),
  committed, and scored on the others, as Brain-Score commits a layer per region before scoring.

**What the CI covers.** ``heldout_ci_low``/``heldout_ci_high`` are a percentile bootstrap over the held-out
stimuli: each sample redraws every fold's held-out stimuli with replacement (pairs of two draws of the same
stimulus are dropped), re-scores that fold's *chosen* layer on them and averages over folds x repeats. It
covers the sampling of stimuli in the held-out scoring; it does not redo the choice of layer or the split
into folds (``heldout_fold_sd``, the standard deviation of the fold scores, shows how much those vary).

Example::

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> brain = rng.random(190)                     # one area RDM over 20 stimuli (condensed)
    >>> layers = np.stack([brain + rng.normal(0, s, 190) for s in (0.3, 3.0)])
    >>> out = heldout_choice(layers, brain[None], 20, ["good", "bad"], HeldoutOptions(folds=2))
    >>> out.counts.tolist(), out.insample_layer
    ([2, 0], 'good')
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.measures.folds import MIN_TEST_STIMULI, make_folds

#: the measure the held-out layer choice scores with (CKA/linear choose their layers in-sample only)
MEASURE = "rsa"
#: one line of what the held-out CI covers (written to results.nc and the docs)
CI_DESCRIPTION = ("percentile bootstrap over each fold's held-out stimuli (with replacement), the chosen layers "
                  "and folds fixed: it covers the sampling of held-out stimuli, not the layer choice")


@dataclass(frozen=True)
class HeldoutOptions:
    """How the layer is chosen and scored on held-out stimuli.

    Attributes:
        folds: K folds over the stimuli (>= 2); every test set needs :data:`MIN_TEST_STIMULI` stimuli.
        repeats: how many times the K folds are drawn anew (repeat r uses seed ``[seed, r]``).
        seed: seed of the folds and of the bootstrap.
        bootstrap: samples of the CI over held-out stimuli (0 = no CI).
        ci_level: confidence level of the CI.
        method: comparison method (:data:`rsa_bridge.definitions.COMPARISONS`), the run's ``--method``.
    """

    folds: int = 5
    repeats: int = 1
    seed: int = 0
    bootstrap: int = 0
    ci_level: float = 0.95
    method: str = "spearman"

    def attrs(self) -> dict:
        """Provenance attrs (``heldout_*``) for results.nc."""
        return {"heldout_measure": MEASURE, "heldout_method": self.method, "heldout_folds": int(self.folds),
                "heldout_repeats": int(self.repeats), "heldout_seed": int(self.seed),
                "heldout_bootstrap": int(self.bootstrap), "heldout_ci_level": float(self.ci_level),
                "heldout_ci": CI_DESCRIPTION if self.bootstrap else "none (bootstrap 0)",
                "heldout_fold_seeds": f"make_folds(n, {self.folds}, seed=[{self.seed}, r]) for r < {self.repeats}"}


@dataclass(frozen=True)
class HeldoutChoice:
    """The result of :func:`heldout_choice` for one model and one area.

    Attributes:
        layers: the L competing layers.
        score: cross-validated score (mean of ``fold_scores``).
        ci_low, ci_high: its CI over held-out stimuli (NaN without a bootstrap).
        fold_scores: (repeats, folds) held-out score of each fold's chosen layer.
        chosen: (repeats, folds) index of the layer chosen on each fold's training stimuli.
        counts: (L,) how often each layer was chosen.
        insample: (L,) each layer's score on all stimuli (what ``compare`` reports).
        insample_layer, insample_max: the in-sample best layer and its score.
        fold_max: mean over folds of the best layer's score on the held-out stimuli chosen on them (the
            in-sample maximum on exactly the held-out pairs).
    """

    layers: tuple
    score: float
    ci_low: float
    ci_high: float
    fold_scores: np.ndarray
    chosen: np.ndarray
    counts: np.ndarray
    insample: np.ndarray
    insample_layer: str
    insample_max: float
    fold_max: float

    def row(self) -> dict:
        """One summary row (model/area/dataset are added by the caller)."""
        return {"measure": MEASURE, "heldout_similarity": self.score, "heldout_ci_low": self.ci_low,
                "heldout_ci_high": self.ci_high,
                "heldout_fold_sd": float(np.std(self.fold_scores, ddof=1)) if self.fold_scores.size > 1 else np.nan,
                "insample_layer": self.insample_layer, "insample_max": self.insample_max,
                "selection_bias": self.insample_max - self.score, "heldout_fold_max": self.fold_max,
                "heldout_n_folds": int(self.fold_scores.size),
                "heldout_choices": ", ".join(f"{layer} {int(c)}" for layer, c in zip(self.layers, self.counts) if c)}


def check_heldout_sizes(n: int, folds: int, what: str = "the dataset") -> None:
    """Refuse folds that leave fewer than :data:`MIN_TEST_STIMULI` held-out stimuli (one line, with the fix).

    Example::

        >>> check_heldout_sizes(20, 5)
        Traceback (most recent call last):
        ...
        rsa_bridge.errors.RSABridgeError: --heldout-layer 5 over 20 stimuli (the dataset) leaves 4 held-out stimuli in a fold; choosing and scoring a layer needs at least 5 per fold: use --heldout-layer 4 or fewer
    """
    if not isinstance(folds, (int, np.integer)) or folds < 2:
        raise RSABridgeError(f"--heldout-layer needs at least 2 folds; got {folds!r}")
    smallest = n // folds
    if smallest < MIN_TEST_STIMULI:
        k = n // MIN_TEST_STIMULI
        fix = f"use --heldout-layer {k} or fewer" if k >= 2 else f"{what} is too small for a held-out layer choice"
        raise RSABridgeError(f"--heldout-layer {folds} over {n} stimuli ({what}) leaves {smallest} held-out stimuli "
                             f"in a fold; choosing and scoring a layer needs at least {MIN_TEST_STIMULI} per fold: "
                             f"{fix}")


def pair_index(rows: np.ndarray, cols: np.ndarray, n: int) -> np.ndarray:
    """Positions in a condensed RDM (scipy ``squareform`` order) of the pairs (rows[k], cols[k]), rows != cols.

    >>> pair_index(np.array([0, 2, 1]), np.array([1, 1, 2]), 3).tolist()
    [0, 2, 2]
    """
    lo, hi = np.minimum(rows, cols), np.maximum(rows, cols)
    return lo * n - lo * (lo + 1) // 2 + hi - lo - 1


def subset_pairs(stimuli: np.ndarray, n: int) -> np.ndarray:
    """Condensed positions of the pairs within ``stimuli`` (indices or bootstrap draws), in their order.

    Two draws of the same stimulus make no pair. For sorted distinct indices this is the condensed RDM of the
    restricted square RDM ``rdm[np.ix_(s, s)]``."""
    a, b = np.triu_indices(len(stimuli), k=1)
    i, j = np.asarray(stimuli)[a], np.asarray(stimuli)[b]
    keep = i != j
    return pair_index(i[keep], j[keep], n)


def _scores(model: np.ndarray, brain: np.ndarray, labels: np.ndarray, method: str) -> np.ndarray:
    """(L,) mean over units of the unit means of the per-RDM similarities (``compare``'s aggregation)."""
    from rsa_bridge.compare import compare_vectors
    from rsa_bridge.stats.grouping import group_mean_sem

    return group_mean_sem(compare_vectors(model, brain, method), labels)[0]


def _choose(scores: np.ndarray, where: str) -> int:
    if not np.isfinite(scores).any():
        raise RSABridgeError(f"no layer has a finite similarity on {where} (constant RDMs there?); a layer "
                             "cannot be chosen: check the RDMs or use fewer folds")
    return int(np.nanargmax(scores))


def heldout_choice(model: np.ndarray, brain: np.ndarray, n: int, layers: Sequence[str],
                   options: HeldoutOptions | None = None, labels: np.ndarray | None = None,
                   progress: bool | None = None) -> HeldoutChoice:
    """Choose a layer on training stimuli and score it on held-out stimuli, fold by fold.

    Args:
        model: (L, n(n-1)/2) condensed model RDMs, one per layer, in stimulus order.
        brain: (R, n(n-1)/2) condensed RDMs of one area (subjects/sessions), same stimulus order.
        n: number of stimuli.
        layers: the L layer names.
        options: :class:`HeldoutOptions` (default: 5 folds, seed 0, no CI, Spearman).
        labels: (R,) unit of each brain RDM (subject, ...; default each RDM its own unit).
        progress: a bar over the bootstrap samples (:mod:`rsa_bridge.progress`).

    Returns:
        :class:`HeldoutChoice`.

    Raises:
        RSABridgeError: too few stimuli per fold, shapes that disagree, or no finite score on a training set.
    """
    from rsa_bridge.stats.results import percentile_ci

    options = options or HeldoutOptions()
    model, brain = np.atleast_2d(np.asarray(model, np.float64)), np.atleast_2d(np.asarray(brain, np.float64))
    m = n * (n - 1) // 2
    if model.shape[1] != m or brain.shape[1] != m or model.shape[0] != len(layers):
        raise RSABridgeError(f"held-out layer choice: {model.shape} model and {brain.shape} brain RDM vectors for "
                             f"{len(layers)} layers over {n} stimuli (need (L, {m}) and (R, {m}))")
    check_heldout_sizes(n, options.folds)
    if options.repeats < 1 or options.bootstrap < 0:
        raise RSABridgeError(f"held-out layer choice needs at least 1 repeat and a bootstrap of 0 or more samples; "
                             f"got repeats {options.repeats}, bootstrap {options.bootstrap}")
    labels = np.arange(brain.shape[0]) if labels is None else np.asarray(labels)
    insample = _scores(model, brain, labels, options.method)
    best = _choose(insample, "all stimuli")
    tests, chosen, fold_scores, fold_max = [], [], [], []
    for r in range(options.repeats):
        for train, test in make_folds(n, options.folds, seed=[options.seed, r]):
            tr, te = subset_pairs(train, n), subset_pairs(test, n)
            k = _choose(_scores(model[:, tr], brain[:, tr], labels, options.method), "a fold's training stimuli")
            on_test = _scores(model[:, te], brain[:, te], labels, options.method)
            tests.append(test)
            chosen.append(k)
            fold_scores.append(on_test[k])
            fold_max.append(np.nanmax(on_test) if np.isfinite(on_test).any() else np.nan)
    fold_scores = np.asarray(fold_scores)
    low = high = np.nan
    if options.bootstrap:
        from rsa_bridge.progress import progress_bar

        rng = np.random.default_rng([options.seed, options.repeats, 1])
        samples = np.empty(options.bootstrap)
        for b in progress_bar(range(options.bootstrap), desc="held-out bootstrap", unit="sample", progress=progress):
            values = []
            for test, k in zip(tests, chosen):
                pairs = subset_pairs(rng.choice(test, size=len(test), replace=True), n)
                values.append(_scores(model[k:k + 1, pairs], brain[:, pairs], labels, options.method)[0]
                              if pairs.size >= 3 else np.nan)
            samples[b] = np.nanmean(values) if np.isfinite(values).any() else np.nan
        lo, hi = percentile_ci(samples[:, None], options.ci_level)
        low, high = float(lo[0]), float(hi[0])
    chosen_arr = np.asarray(chosen).reshape(options.repeats, options.folds)
    return HeldoutChoice(tuple(str(x) for x in layers), float(fold_scores.mean()), low, high,
                         fold_scores.reshape(options.repeats, options.folds), chosen_arr,
                         np.bincount(chosen_arr.ravel(), minlength=len(layers)), insample, str(layers[best]),
                         float(insample[best]), float(np.nanmean(fold_max)))


def parse_select_on(value: str) -> tuple[str, str | None]:
    """``DATASET[:AREA]`` -> (dataset, area or None). A Windows-free rule: the last ``:`` splits.

    >>> parse_select_on("cowley2023_v4_210325:V4"), parse_select_on("cowley2023_v4_210325")
    (('cowley2023_v4_210325', 'V4'), ('cowley2023_v4_210325', None))
    """
    name, sep, area = str(value).rpartition(":")
    if not sep:
        name, area = str(value), ""
    if not name.strip() or (sep and not area.strip()):
        raise RSABridgeError(f"--select-on {value!r}: give DATASET or DATASET:AREA, e.g. cowley2023_v4_210325:V4")
    return name.strip(), area.strip() or None


def commit_layers(table: pd.DataFrame, select_dataset: str, select_area: str | None = None) -> pd.DataFrame:
    """Commit each (model, area)'s layer on one data set and score it on the others.

    Args:
        table: per-layer scores: columns ``model``, ``dataset``, ``area``, ``layer``, ``similarity`` (one
            measure; ``ci_low``/``ci_high`` are carried when present), e.g. ``compare``'s RSA rows.
        select_dataset: the data set the layer is chosen on.
        select_area: the area it is chosen on there (None: the same area as the one scored).

    Returns:
        One row per (model, area, scored data set other than ``select_dataset``): ``select_on``
        (``dataset:area``), ``committed_layer``, ``committed_on_similarity`` (its score where chosen),
        ``similarity`` (its score on ``dataset``; ``ci_low``/``ci_high`` there when given), and
        ``insample_layer``/``insample_max`` (the best layer on ``dataset`` itself) with
        ``insample_gap`` = insample_max - similarity.

    Raises:
        RSABridgeError: the select-on data set/area is not in the table, or no layer scores there.
    """
    if not (table["dataset"] == select_dataset).any():
        raise RSABridgeError(f"--select-on data set {select_dataset!r} was not scored; it has "
                             f"{', '.join(dict.fromkeys(table['dataset']))}")
    rows = []
    extra = [c for c in ("ci_low", "ci_high") if c in table]
    for (model, area), group in table[table["dataset"] != select_dataset].groupby(["model", "area"], sort=False):
        pick_area = select_area or area
        source = table[(table["dataset"] == select_dataset) & (table["model"] == model) & (table["area"] == pick_area)]
        if source.empty:
            raise RSABridgeError(f"--select-on {select_dataset}:{pick_area}: that data set has no area {pick_area!r} "
                                 f"scored for {model}; name its area with --select-on DATASET:AREA")
        if not np.isfinite(source["similarity"]).any():
            raise RSABridgeError(f"no layer of {model} has a finite similarity on {select_dataset}:{pick_area}")
        committed = source.loc[source["similarity"].idxmax()]
        for dataset, scored in group.groupby("dataset", sort=False):
            hit = scored[scored["layer"] == committed["layer"]]
            if hit.empty:
                raise RSABridgeError(f"the committed layer {committed['layer']!r} of {model} was not scored on "
                                     f"{dataset}; score the same layers on every data set")
            best = scored.loc[scored["similarity"].idxmax()]
            rows.append({"model": model, "area": area, "dataset": dataset, "measure": MEASURE,
                         "select_on": f"{select_dataset}:{pick_area}", "committed_layer": str(committed["layer"]),
                         "committed_on_similarity": float(committed["similarity"]),
                         "similarity": float(hit["similarity"].iloc[0]),
                         **{c: float(hit[c].iloc[0]) for c in extra},
                         "insample_layer": str(best["layer"]), "insample_max": float(best["similarity"]),
                         "insample_gap": float(best["similarity"] - hit["similarity"].iloc[0])})
    if not rows:
        raise RSABridgeError(f"--select-on {select_dataset}: no other data set to score the committed layer on")
    return pd.DataFrame(rows)
