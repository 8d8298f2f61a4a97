"""The records behind every name a user can choose: RDM metrics and RDM comparison methods.

One record per metric (:data:`METRICS`) and per comparison method (:data:`COMPARISONS`, the registry of
:mod:`rsa_bridge.methods`). Everything else is built from these records: the Gram engine's centring and
finishing step (:mod:`rsa_bridge.gram`), the comparison functions (:data:`rsa_bridge.compare.METHODS`),
the statistics' code paths, the command line's ``choices`` and help text, and the reference table ``docs/reference/registries.md`` (``python scripts/registries_doc.py``).
This module imports only the standard library, so a parser can be built from it at once.

**RDM metric** = centring of the response patterns ``Y`` (n stimuli x p units) + one Gram matrix
``G = Y Y^T`` + a finishing step on ``G``. The backends (torch in :mod:`rsa_bridge.gram`) supply only
the array operations for each ``centre`` and ``finish`` kind:

- ``centre``: ``"row"`` (subtract each stimulus's mean over units), ``"column"`` (each unit's mean over
  stimuli; leaves Euclidean distances unchanged and keeps ``G_ii + G_jj - 2 G_ij`` well conditioned)
  or ``None``;
- ``finish``: ``"one_minus_cosine"`` ``1 - G_ij / sqrt(G_ii G_jj)``, ``"squared_distance"``
  ``G_ii + G_jj - 2 G_ij`` (clipped at 0), ``"distance"`` its square root;
- ``undefined_for``: which pattern has no dissimilarity (``"constant"``: a pattern equal across units
  after row centring; ``"zero"``: an all-zero pattern; ``None``: every finite pattern is fine). Such a
  pattern is an error naming the stimuli, never a silent NaN.

**Comparison method**: one :class:`rsa_bridge.methods.Method` object per method (one module each in
:mod:`rsa_bridge.methods`) holds its definition, peers' names and every capability (similarity, pooling for
noise ceilings, the prepared fast path of bootstrap and permutation, chunk sums for RDM stores, the rank
kernel). :data:`COMPARISONS` is that registry; :data:`rsa_bridge.compare.METHODS` is a view of it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from rsa_bridge.methods import METHODS, Method, MethodRegistry, names_with
from rsa_bridge.registry import Registry


@dataclass(frozen=True)
class MetricDefinition:
    """One RDM metric. ``formula``: d(i, j) for response vectors x_i, x_j over p units."""

    name: str
    formula: str
    centre: str | None
    finish: str
    undefined_for: str | None
    peers: dict[str, str] = field(default_factory=dict)

    def undefined_message(self) -> str:
        """Why a pattern has no dissimilarity under this metric (start of the error message)."""
        return {"constant": "activations are constant across units",
                "zero": "activations are all zero"}.get(self.undefined_for or "", "")


_METRICS = (
    MetricDefinition("correlation", "1 - Pearson r(x_i, x_j) across units", "row", "one_minus_cosine", "constant",
                     {"rsatoolbox": "correlation", "scipy": "correlation"}),
    MetricDefinition("euclidean", "||x_i - x_j||", "column", "distance", None,
                     {"scipy": "euclidean"}),
    MetricDefinition("sqeuclidean", "||x_i - x_j||^2", "column", "squared_distance", None,
                     {"rsatoolbox": "euclidean (divided by p)", "scipy": "sqeuclidean"}),
    MetricDefinition("cosine", "1 - x_i.x_j / (||x_i|| ||x_j||)", None, "one_minus_cosine", "zero",
                     {"scipy": "cosine"}),
)

#: RDM metric name -> its definition (rsatoolbox's ``euclidean`` is ``sqeuclidean`` / p, so no alias)
METRICS: Registry[MetricDefinition] = Registry("RDM metric", {m.name: m for m in _METRICS})

#: comparison method name -> its :class:`rsa_bridge.methods.Method` (the registry itself, live: plugins and
#: :func:`rsa_bridge.methods.register` add to it); rsatoolbox's names (``corr``, ``tau-a`` ...) are aliases
COMPARISONS: MethodRegistry = METHODS
#: the record type of a comparison method (kept under its old name)
ComparisonMethod = Method


def __getattr__(name: str):
    """``DOT_METHODS`` / ``RANK_METHODS``: the methods with a prepared fast path / working on ranks, now."""
    if name == "DOT_METHODS":
        return names_with("dot")
    if name == "RANK_METHODS":
        return tuple(n for n, c in COMPARISONS.items() if c.rank)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def method_help() -> str:
    """One line for ``--method``'s help: the names with their rsatoolbox aliases."""
    parts = [f"{c.name} ({', '.join(c.aliases)})" if c.aliases else c.name for c in COMPARISONS.values()]
    return "RDM comparison: " + ", ".join(parts) + "; default spearman (names in brackets are accepted aliases)"


def metric_help() -> str:
    """One line for ``--metric``'s help."""
    return "RDM metric: " + "; ".join(f"{m.name} = {m.formula}" for m in _METRICS) + " (default correlation)"
