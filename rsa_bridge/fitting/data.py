"""The inputs of a fitted-model evaluation: brain RDMs and model RDMs over the same stimuli, as arrays.

:class:`FitData` holds the brain RDMs ``rdms`` (R, n, n) with a group label per RDM (``groups``, e.g. the
subject, so that the sessions of one subject are resampled and held out together), and the candidate model
RDMs ``model_rdms`` (K, n, n) in the same stimulus order (aligned by ``stimulus_id`` in :func:`fit_data`,
never by position).

A *sample* of the data is a multiset of RDM rows and a sorted multiset of stimulus positions (a bootstrap
draw). Its dissimilarity vectors (:func:`pair_index`) hold the pairs ``(a, b)``, ``a < b``, of the sampled
positions in ``np.triu_indices`` order, **without** the pairs of two copies of one stimulus (their
dissimilarity 0 is trivial to predict); rsatoolbox marks those pairs NaN and drops them in the same order.

Example:
    >>> import numpy as np
    >>> pair_index(np.array([0, 1, 1, 2]))[0].tolist()   # first members of the 5 kept pairs
    [0, 0, 0, 1, 1]
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rsa_bridge.errors import RSABridgeError, preview

#: fewest stimuli a fitted-model evaluation accepts (3 per fold in at least 2 folds)
MIN_STIMULI = 6


@dataclass(frozen=True)
class FitData:
    """Brain and model RDMs over the same stimuli, aligned by ``stimulus_id``.

    Attributes:
        rdms: (R, n, n) brain RDMs (finite, symmetric, zero diagonal).
        groups: (R,) group label of each brain RDM (subject); RDMs of one group are resampled together.
        stimulus_ids: (n,) the stimulus order of both arrays.
        model_rdms: (K, n, n) candidate model RDMs (layers, control models ...).
        model_names: (K,) their names.
        attrs: provenance (dataset, area, measure of the RDMs ...).
    """

    rdms: np.ndarray
    groups: tuple[str, ...]
    stimulus_ids: tuple[str, ...]
    model_rdms: np.ndarray
    model_names: tuple[str, ...]
    attrs: dict = field(default_factory=dict)

    @property
    def n_stimuli(self) -> int:
        return len(self.stimulus_ids)

    def group_values(self) -> tuple[str, ...]:
        """The distinct group labels, in first-seen order."""
        return tuple(dict.fromkeys(self.groups))

    def rows_of(self, groups) -> np.ndarray:
        """RDM rows of the given group labels (with repeats: each label's rows once per occurrence)."""
        by = {}
        for i, g in enumerate(self.groups):
            by.setdefault(g, []).append(i)
        return np.array([i for g in groups for i in by[g]], dtype=np.int64)

    def positions_of(self, stimulus_ids) -> np.ndarray:
        """Sorted positions of stimulus ids (with repeats)."""
        where = {s: i for i, s in enumerate(self.stimulus_ids)}
        missing = [s for s in stimulus_ids if s not in where]
        if missing:
            raise RSABridgeError(f"stimulus ids {preview(missing)} are not in the fitted data; folds and draws name "
                                 "the data's own stimulus ids")
        return np.sort(np.array([where[s] for s in stimulus_ids], dtype=np.int64))


def pair_index(positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stimulus positions (first, second) of the kept pairs of a sorted multiset of positions, (m,) each."""
    a, b = np.triu_indices(len(positions), 1)
    pa, pb = positions[a], positions[b]
    keep = pa != pb
    return pa[keep], pb[keep]


def vectors(square: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """(X, n, n) RDMs -> (X, m) dissimilarities of the kept pairs of ``positions`` (:func:`pair_index`)."""
    pa, pb = pair_index(positions)
    return square[:, pa, pb]


def _check_rdms(values: np.ndarray, what: str) -> None:
    from rsa_bridge.methods._numeric import constant_rows

    if not np.isfinite(values).all():
        raise RSABridgeError(f"the {what} contain NaN or inf; fitted models need complete RDMs (drop the stimuli "
                             "with missing dissimilarities first)")
    flat = values[:, *np.triu_indices(values.shape[-1], 1)]
    const = np.flatnonzero(constant_rows(flat))
    if const.size:
        raise RSABridgeError(f"{what} number {int(const[0])} is constant (all dissimilarities equal); it cannot be "
                             "fitted or compared: drop it")


#: replicate-label keys that name who an RDM comes from (Brain-Score / rsa-bridge conventions)
GROUP_KEYS = ("subject", "animal")


def _group_label(label: str) -> str:
    """``subject=BE|session=1`` -> ``BE``; a label without a subject/animal part is its own group."""
    for part in label.split("|"):
        key, _, value = part.partition("=")
        if key in GROUP_KEYS:
            return value
    return label


def fit_data(brain, models, groups=None, attrs: dict | None = None) -> FitData:
    """:class:`FitData` from xarray RDMs, aligned by ``stimulus_id``.

    Args:
        brain: DataArray (replicate, stimulus_row, stimulus_col) (e.g. :func:`rsa_bridge.datasets.area_rdms`)
            or one (stimulus_row, stimulus_col) RDM.
        models: DataArray (layer, stimulus_row, stimulus_col) (:func:`rsa_bridge.model_rdms.read_model_rdms`).
        groups: (R,) group label per brain RDM; default: the ``subject`` coordinate on ``replicate`` when
            present (``subject=BE|session=1`` labels give ``BE``; likewise ``animal``), else one group per RDM.
        attrs: provenance to carry.

    Raises:
        RSABridgeError: stimulus ids that differ, too few stimuli, NaN, constant RDMs, repeated layer names.
    """
    from rsa_bridge.model_rdms import as_model_rdms, check_layer_names
    from rsa_bridge.rdm import COL, ROW

    if ROW not in getattr(brain, "dims", ()):
        raise RSABridgeError(f"brain RDMs need dims (replicate, {ROW}, {COL}); got {getattr(brain, 'dims', brain)}")
    if brain.ndim == 2:
        brain = brain.expand_dims(replicate=["all"])
    brain = brain.transpose(..., ROW, COL)
    ids = [str(s) for s in brain[ROW].values]
    models = as_model_rdms(models)
    check_layer_names(models, "model RDMs")
    model_ids = [str(s) for s in models[ROW].values]
    missing, extra = sorted(set(ids) - set(model_ids)), sorted(set(model_ids) - set(ids))
    if missing or extra or len(set(ids)) != len(ids):
        raise RSABridgeError(
            f"the model RDMs and the brain RDMs cover different stimuli (missing from the models: "
            f"{preview(missing) or 'none'}; not in the brain data: {preview(extra) or 'none'}); give model RDMs "
            "computed on the dataset's stimuli (matched by stimulus_id)")
    if len(ids) < MIN_STIMULI:
        raise RSABridgeError(f"{len(ids)} stimuli are too few for a cross-validated fit; give at least {MIN_STIMULI}")
    models = models.sel({ROW: ids, COL: ids})
    rdms = np.asarray(brain.values, dtype=np.float64).reshape(-1, len(ids), len(ids))
    model_rdms = np.asarray(models.values, dtype=np.float64)
    _check_rdms(rdms, "brain RDMs")
    _check_rdms(model_rdms, "model RDMs")
    dim = brain.dims[0]
    if groups is None:
        labels = [str(v) for v in np.ravel(brain[dim].values)] if dim in brain.coords else [str(i) for i in
                                                                                          range(len(rdms))]
        groups = [_group_label(lab) for lab in labels]
    groups = tuple(str(g) for g in groups)
    if len(groups) != len(rdms):
        raise RSABridgeError(f"{len(groups)} group labels given for {len(rdms)} brain RDMs")
    return FitData(rdms, groups, tuple(ids), model_rdms, tuple(str(v) for v in models["layer"].values),
                   dict(attrs or {}))
