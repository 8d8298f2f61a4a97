"""The core's input and output types of the non-RSA measures (CKA, linear predictivity) of ``compare``.

The measures read one :class:`MeasureInput` per (model, dataset) — what they need and nothing else — and
return one :class:`ModelScores`; no core module reads or writes the application layer's records. The app
(:mod:`rsa_bridge.app.pipeline`) builds the inputs from its own records and stores the returned scores.

Example::

    >>> import numpy as np, xarray as xr
    >>> rdms = xr.DataArray(np.zeros((1, 2, 2)), dims=("layer", "stimulus_row", "stimulus_col"),
    ...                     coords={"layer": ["conv1"], "stimulus_row": ["a", "b"], "stimulus_col": ["a", "b"]})
    >>> item = MeasureInput("m", "random", "d", ("V4",), rdms, {"conv1": np.eye(2)})
    >>> item.layers, item.stimulus_ids, item.kernel_stack().shape
    (['conv1'], ['a', 'b'], (1, 2, 2))
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np
import xarray as xr

from rsa_bridge.rdm import COL, ROW


@dataclass(frozen=True)
class MeasureInput:
    """One model's layers over one dataset's stimuli, as the measures read them.

    Attributes:
        model: the model's label; weights: its weights label (``random``, ``user-module``, ...).
        dataset: the RDM dataset's name (picks the shipped repeat-level rates, see
            :data:`rsa_bridge.measures.scoring.RESPONSES_FOR_DATASET`).
        areas: the areas to score, in order.
        model_rdms: the layer RDMs ``(layer, stimulus_row, stimulus_col)``: their ``layer`` order, stimulus ids
            and ``module_path`` coordinate (if any) label the scores.
        kernels: layer -> (n, n) centred linear Gram over the same stimuli (n = stimuli), or None/empty when
            the model has none (an image-statistics control: its measures are skipped with a warning).
        stimuli: the stimulus set (anything with a ``manifest`` DataFrame), for ``labels=`` given as a manifest
            column; None otherwise.
    """

    model: str
    weights: str
    dataset: str
    areas: tuple
    model_rdms: xr.DataArray
    kernels: Mapping[str, np.ndarray] | None = None
    stimuli: Any = None

    def __post_init__(self):
        object.__setattr__(self, "areas", tuple(str(a) for a in self.areas))
        if self.kernels is not None:
            object.__setattr__(self, "kernels", MappingProxyType(dict(self.kernels)))

    @property
    def layers(self) -> list[str]:
        """The layer names in the RDMs' order."""
        return [str(l) for l in self.model_rdms["layer"].values]

    @property
    def stimulus_ids(self) -> list[str]:
        """The stimulus ids of the RDMs' rows (and of the Grams)."""
        return [str(s) for s in self.model_rdms[ROW].values]

    @property
    def module_paths(self) -> list[str]:
        """Each layer's module path (empty strings when the RDMs carry none)."""
        rdms = self.model_rdms
        return [str(p) for p in rdms["module_path"].values] if "module_path" in rdms.coords else [""] * len(self.layers)

    def kernel_stack(self) -> xr.DataArray:
        """The Grams as one ``(layer, stimulus_row, stimulus_col)`` DataArray in the RDMs' layer order."""
        layers, ids = self.layers, self.stimulus_ids
        return xr.DataArray(np.stack([np.asarray(self.kernels[l]) for l in layers]), dims=("layer", ROW, COL),
                            coords={"layer": layers, ROW: ids, COL: ids})


@dataclass(frozen=True)
class ModelScores:
    """What the measures return for one :class:`MeasureInput`: its labels and ``{area: {measure: AreaScores}}``.

    Attributes:
        model, weights, dataset: as in the input; layers / module_paths: per layer, in order;
        n_stimuli: stimuli scored; scores: area -> measure name -> :class:`rsa_bridge.measures.scoring.AreaScores`.
    """

    model: str
    weights: str
    dataset: str
    layers: tuple
    module_paths: tuple
    n_stimuli: int
    scores: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, item: MeasureInput, scores: Mapping[str, Mapping[str, Any]]) -> "ModelScores":
        """The scores of ``item`` labelled with its model, weights, dataset, layers and stimuli count."""
        return cls(item.model, item.weights, item.dataset, tuple(item.layers), tuple(item.module_paths),
                   len(item.stimulus_ids), MappingProxyType(dict(scores)))
