"""One (model, dataset) unit of a ``compare`` run: the record the pipeline joins into its table and results.

:func:`rsa_bridge.app.pipeline.compare_models` builds one :class:`Piece` per model and dataset; statistics
(:func:`rsa_bridge.app.pipeline._add_statistics`), the extra measures and the time course fill in the fields
after ``None``. The core never sees a Piece: the measures read the core's
:class:`rsa_bridge.measures.inputs.MeasureInput` (:meth:`Piece.measure_input`) and return a
:class:`rsa_bridge.measures.inputs.ModelScores` that the pipeline stores in ``measure_scores``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import xarray as xr

from rsa_bridge.measures.inputs import MeasureInput, ModelScores


@dataclass
class Piece:
    """A model's layer RDMs over one dataset's stimuli and their scores against its areas.

    Attributes:
        model: the model's label.
        weights: its weights label (``user-module``, ``precomputed``, ...).
        dataset: the dataset's name.
        dataset_obj: the (time-averaged) RDM Dataset.
        metric: the model RDMs' metric.
        similarity: (layer, area) mean similarity over the area's units (RDMs).
        sem: (layer, area) standard error of ``similarity`` over the area's units.
        per_rdm: area -> (layer, replicate) similarity per brain RDM.
        model_rdms: (layer, stimulus_row, stimulus_col) RDMs.
        columns: extra table columns (e.g. a user module's ``state_sha256``).
        kernels: layer -> (n, n) centred linear Gram (for CKA/linear), or None.
        areas: the areas asked for (None = all of the dataset's).
        stimuli: the stimulus set, or None for precomputed RDMs.
        dataset_time: the time-resolved RDM Dataset, or None.
        stats: the dataset's :class:`rsa_bridge.stats.summary.CompareStatistics` (set by the pipeline).
        stacked: every model's layer RDMs of the dataset (model_layer, n, n), set with ``stats``.
        measure_scores: the :class:`rsa_bridge.measures.inputs.ModelScores` returned by
            :func:`rsa_bridge.measures.scoring.score_models` for :meth:`measure_input`, or None (RSA only).
    """

    model: str
    weights: str
    dataset: str
    dataset_obj: xr.Dataset
    metric: str
    similarity: xr.DataArray
    sem: xr.DataArray
    per_rdm: dict
    model_rdms: xr.DataArray
    columns: dict = field(default_factory=dict)
    kernels: dict | None = None
    areas: Any = None
    stimuli: Any = None
    dataset_time: xr.Dataset | None = None
    stats: Any = None
    stacked: xr.DataArray | None = None
    measure_scores: ModelScores | None = None

    def measure_input(self) -> MeasureInput:
        """What the core's measures read of this piece (model, weights, dataset, areas, RDMs, Grams, stimuli)."""
        return MeasureInput(self.model, self.weights, self.dataset, tuple(self.areas or ()), self.model_rdms,
                            self.kernels, self.stimuli)
