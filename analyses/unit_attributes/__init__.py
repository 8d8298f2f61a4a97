"""Unit-level attribute discovery (after Vittayakorn et al., ECCV 2016).

    from analyses.unit_attributes import UnitOptions, unit_attributes
    ds = unit_attributes(load_model("alexnet"), load_stimulus_set(DIR), label="cv_animate")

Modules: :mod:`.histograms` (shared-edge histograms, smoothing, KL), :mod:`.visualness` (cross-validated
linear classifier on prime units), :mod:`.activations` (streamed, spatially pooled units from the hook
layer), :mod:`.labels` (positive/negative sets from a manifest column), :mod:`.discover` (the Dataset),
:mod:`.output` (tables, figure, files), :mod:`.cli` (``rsa-bridge units``).
"""
from analyses.unit_attributes.discover import UnitOptions, attributes_from_activations, unit_attributes
from analyses.unit_attributes.histograms import kl_divergence, unit_divergence, unit_histograms
from analyses.unit_attributes.labels import LabelSplit, split_by_label
from analyses.unit_attributes.visualness import CLASSIFIERS, visualness

__all__ = [
    "CLASSIFIERS",
    "LabelSplit",
    "UnitOptions",
    "attributes_from_activations",
    "kl_divergence",
    "split_by_label",
    "unit_attributes",
    "unit_divergence",
    "unit_histograms",
    "visualness",
]
