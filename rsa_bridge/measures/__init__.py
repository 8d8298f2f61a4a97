"""Model-brain measures beyond RSA, all computed from each layer's stimulus x stimulus Gram matrix.

:data:`MEASURES` is the registry ``compare --measure NAME`` reads (name -> :class:`Measure`):

========= ============================================================ =================================
name      score of one layer against one area                          needs
========= ============================================================ =================================
rsa       comparison of the layer RDM with the area's RDMs (today's)    layer RDM, area RDMs
cka       linear CKA of the layer Gram and the neural Gram              layer Gram, responses
linear    median over neuroids of cross-validated Pearson r (ridge)     layer Gram, per-stimulus responses
========= ============================================================ =================================

Modules: :mod:`.cka` (linear, debiased, RBF CKA), :mod:`.ridge` (dual ridge, RidgeCV-equal alpha selection),
:mod:`.pls` (Brain-Score PLS in the dual), :mod:`.folds`, :mod:`.predictivity`, :mod:`.ceilings`,
:mod:`.agreement` (do the measures pick the same best layer?).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Measure:
    """One measure: its name, definition and what peers call it, and how a figure shows it.

    ``axis_label``: the score's axis label, ``{method}`` filled with the row's method (``spearman`` ->
    ``Spearman r``, ``ridge``...). ``ceiling_scale``: how the stored ``measure_ceiling`` maps onto the score's
    scale (``"identity"``, or ``"sqrt"`` for a reliability of averages when the score is a correlation r: a
    perfect model reaches r = sqrt(reliability)); ``ceiling_label``: the legend's definition of the line drawn;
    ``bootstrap_over``: what its bootstrap (CI, p_best) resamples; ``ceiling_style``: ``"band"`` (lower to upper
    bound, the ``ceiling_lower``/``ceiling_upper`` columns) or ``"line"`` (one value, ``measure_ceiling``).

    ``needs_responses``: it needs the area's per-stimulus responses (repeat-level rates), not only its RDMs.
    ``check``: ``check(n_stimuli, options, labels)`` raising RSABridgeError when the design cannot give a
    meaningful score (e.g. too few held-out stimuli per fold); ``compare`` runs it before the forward pass
    (:mod:`rsa_bridge.app.preflight`). ``options`` is a :class:`rsa_bridge.measures.scoring.MeasureOptions`.
    """

    name: str
    long_name: str
    definition: str
    needs_responses: bool
    peers: str
    axis_label: str = "{method}"
    ceiling_scale: str = "identity"
    ceiling_label: str = "ceiling"
    bootstrap_over: str = "stimuli"
    ceiling_style: str = "line"
    check: Callable[[int, Any, Any], None] | None = None


def _check_linear(n_stimuli: int, options, labels=None) -> None:
    from rsa_bridge.measures.scoring import check_linear_design

    check_linear_design(n_stimuli, options, labels)


MEASURES: dict[str, Measure] = {
    "rsa": Measure("rsa", "representational similarity (RSA)",
                   "compare(RDM_layer, RDM_area) with --method (default Spearman)", False,
                   "rsatoolbox compare; Net2Brain RSA; thingsvision compare_rdms; Brain-Score rdm",
                   axis_label="RSA ({method})", ceiling_label="noise ceiling (lower to upper bound)",
                   ceiling_style="band"),
    "cka": Measure("cka", "linear centred kernel alignment",
                   "<HKH, HLH>_F / (|HKH|_F |HLH|_F), K = layer Gram, L = neural Gram", True,
                   "Brain-Score cka; Net2Brain CKA; thingsvision CKA(kernel='linear'); rsatoolbox cosine_cov",
                   axis_label="linear CKA", ceiling_label="ceiling: split-half CKA of the neural data"),
    "linear": Measure("linear", "cross-validated linear predictivity",
                      "median_neuroids mean_folds pearson(ridge prediction, held-out response)", True,
                      "Brain-Score neural predictivity (pls); Net2Brain encoding (ridge); not in thingsvision/rsatoolbox",
                      check=_check_linear,
                      axis_label="linear predictivity (median Pearson r, {method})", ceiling_scale="sqrt",
                      ceiling_label="ceiling: √(split-half reliability) = r of a perfect model",
                      bootstrap_over="neuroids"),
}


def check_measures(names) -> list[str]:
    """The measure names in order without repeats; RSABridgeError for an unknown one."""
    from rsa_bridge.errors import RSABridgeError

    out = list(dict.fromkeys(names or ["rsa"]))
    unknown = [n for n in out if n not in MEASURES]
    if unknown:
        raise RSABridgeError(f"unknown measure {unknown[0]!r}; choose from {', '.join(MEASURES)}")
    return out
