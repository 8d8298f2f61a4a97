"""Unit-level attribute discovery (after Vittayakorn et al., ECCV 2016).

    from analyses.unit_attributes import UnitOptions, unit_attributes
    ds = unit_attributes(load_model("alexnet"), load_stimulus_set(DIR), label="cv_animate")

Modules: :mod:`.histograms` (shared-edge histograms, smoothing, KL), :mod:`.visualness` (cross-validated
linear classifier on prime units), :mod:`.activations` (streamed, spatially pooled units from the hook
layer), :mod:`.labels` (positive/negative sets from a manifest column), :mod:`.discover` (the Dataset),
:mod:`.output` (tables, figure, files), :mod:`.cli` (``rsa-bridge units``).
"""
import importlib

#: public name -> module that defines it (imported on first use, so the command line starts fast)
_EXPORTS = {
    "Extraction": "discover", "UnitOptions": "discover", "attributes_from_activations": "discover", "unit_attributes": "discover",
    "kl_divergence": "histograms", "unit_divergence": "histograms", "unit_histograms": "histograms",
    "LabelSplit": "labels", "split_by_label": "labels", "CLASSIFIERS": "visualness", "visualness": "visualness",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"analyses.unit_attributes.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CLASSIFIERS",
    "Extraction",
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
