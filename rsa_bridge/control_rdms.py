"""RDMs of image-statistics control models, shaped like a network's layer RDMs.

A network layer that beats no image-statistics control is not interesting, so ``compare`` can score
the controls of :data:`stimuli.CONTROL_MODELS` (``pixels``, ``luminance_contrast``,
``spatial_frequency``, ``gabor``) next to network layers. Each control becomes a one-"layer" model:

    rdms = control_model_rdms("gabor", load_stimulus_set("stimuli/"))   # (layer: 1, n, n), layer "gabor"

No torch here: the features come from :func:`stimuli.control_features` (numpy/PIL) and the RDM from
:func:`rsa_bridge.rdm.compute_rdm`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import xarray as xr

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.model_rdms import stack_rdms
from rsa_bridge.provenance import clean_attrs, package_version
from rsa_bridge.rdm import compute_rdm

#: the weights label that compare records for a control model
CONTROL_WEIGHTS = "none (image statistics)"


def control_model_names() -> list[str]:
    """The registered control models, in registry order."""
    from stimuli.controls import CONTROL_MODELS

    return list(CONTROL_MODELS)


def is_control_model(name: str) -> bool:
    """True if ``name`` is an image-statistics control model rather than a network."""
    return str(name) in control_model_names()


def control_model_rdms(name: str, stimulus_set, metric: str = "correlation", **params: Any) -> xr.DataArray:
    """The RDM of control model ``name`` over ``stimulus_set``, as a one-layer model RDM stack.

    Args:
        name: a key of :data:`stimuli.CONTROL_MODELS` (``pixels``, ``luminance_contrast``,
            ``spatial_frequency``, ``gabor``).
        stimulus_set: a :class:`stimuli.StimulusSet` or a folder with ``manifest.csv``.
        metric: RDM metric (see :mod:`rsa_bridge.rdm`), applied to the (n_stimuli, n_features) features.
        **params: the control's settings (e.g. ``size=32``, ``grey=True`` for pixels).

    Returns:
        float64 DataArray ``(layer: 1, stimulus_row: n, stimulus_col: n)``, ids in the set's order; the
        one layer is named ``name``; coordinates ``module_path`` (``"control:<name>"``) and ``n_units``
        (features) on ``layer``; attrs model, weights (:data:`CONTROL_WEIGHTS`), metric, stimulus_set,
        control_params, rsa_bridge_version.

    Raises:
        RSABridgeError: an unknown control name, or an RDM that cannot be computed (e.g. a constant
            feature row under the correlation metric).
    """
    from stimuli import StimulusSet, load_stimulus_set
    from stimuli.controls import control_features

    if not is_control_model(name):
        from rsa_bridge.registry import unknown_name

        raise RSABridgeError(unknown_name("control model", name, control_model_names()))
    if isinstance(stimulus_set, (str, Path)):
        stimulus_set = load_stimulus_set(stimulus_set)
    if not isinstance(stimulus_set, StimulusSet):
        raise RSABridgeError(f"a control model needs a stimulus set or a folder, not {type(stimulus_set).__name__}")
    features = control_features(name, stimulus_set, **params)
    rdm = compute_rdm(features.values, metric, stimulus_ids=features.stimulus_ids)
    rdm.attrs.update(module_path=f"control:{name}", n_units=int(features.values.shape[1]))
    attrs = {
        "model": name, "weights": CONTROL_WEIGHTS, "metric": metric, "stimulus_set": stimulus_set.name,
        "control_params": ", ".join(f"{k}={v}" for k, v in features.params.items()),
        "rsa_bridge_version": package_version(),
    }
    return stack_rdms({name: rdm}, attrs=clean_attrs(attrs))
