"""The records behind every name a user can choose: RDM metrics and RDM comparison methods.

One record per metric (:data:`METRICS`) and per comparison method (:data:`COMPARISONS`). Everything
else is built from these records: the Gram engine's centring and finishing step
(:mod:`rsa_bridge.gram`), the comparison functions (:data:`rsa_bridge.compare.METHODS`), the
bootstrap's fast paths (:mod:`rsa_bridge.stats.weighted`), the command line's ``choices`` and help
text, and the reference table ``docs/reference/registries.md`` (``python scripts/registries_doc.py``).
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

**Comparison method** = a similarity of two upper-triangle dissimilarity vectors ``a``, ``b``
(``m = n(n-1)/2`` pairs, scipy ``squareform`` order), computed for many vectors at once.
``bootstrap``: ``"dot"`` — a dot product of per-pair prepared values, so bootstrap samples are pair
weights and all samples are one batched matrix product (:mod:`rsa_bridge.stats.weighted`);
``"masked"`` — resampled explicitly, one sample at a time (:mod:`rsa_bridge.stats.masked`).
``rank``: whether the method works on ranks (ties get average ranks).
"""
from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class ComparisonMethod:
    """One RDM comparison method.

    Attributes:
        name: the canonical name (``--method``, ``method=``).
        definition: the similarity on the upper-triangle vectors a, b.
        function: name of the (a (L, m), b (R, m)) -> (L, R) function in :mod:`rsa_bridge.compare`.
        bootstrap: ``"dot"`` (batched weighted dot products) or ``"masked"`` (explicit resampling).
        rank: works on ranks.
        rsatoolbox, brainscore, net2brain: what those tools call the same computation ("" = none).
        aliases: other names accepted for this method (peers' names).
        note: anything else a user of a peer tool must know.
        chunked: name of its :class:`rsa_bridge.chunked_compare.ChunkedMethod` when the similarity is a function of
            sums over pairs (computed chunk by chunk on RDMs that need not fit in memory); "" = it needs
            every pair at once.
    """

    name: str
    definition: str
    function: str
    bootstrap: str
    rank: bool
    rsatoolbox: str
    brainscore: str = ""
    net2brain: str = ""
    aliases: tuple[str, ...] = ()
    note: str = ""
    chunked: str = ""

    @property
    def chunkable(self) -> bool:
        """Whether :func:`rsa_bridge.chunked_compare.compare_store` computes it chunk by chunk."""
        return bool(self.chunked)


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

_COMPARISONS = (
    ComparisonMethod("spearman", "Pearson r of the ranks (average ranks for ties)", "_spearman_matrix", "dot", True,
                     "spearman", "metric rdm / rdm_cv (Spearman of upper triangles)",
                     'RSA(distance_metric="spearman"), reported squared (R2)', chunked="PEARSON_OF_RANKS"),
    ComparisonMethod("pearson", "Pearson r", "_pearson_matrix", "dot", False, "corr", "",
                     'distance_metric="pearson", squared', aliases=("corr", "correlation"), chunked="PEARSON"),
    ComparisonMethod("kendall_tau_a", "(concordant - discordant pairs) / (m (m - 1) / 2); ties count as neither",
                     "_kendall_matrix", "masked", True, "tau-a", aliases=("tau-a", "tau_a", "kendall")),
    ComparisonMethod("rho_a", "12 sum (R_a - mean)(R_b - mean) / (m^3 - m), average ranks R (Spearman without the "
                     "tie correction of the denominator)", "_rho_a_matrix", "dot", True, "rho-a",
                     aliases=("rho-a",), chunked="RHO_A"),
    ComparisonMethod("cosine", "a.b / (|a| |b|), no centring", "_cosine_matrix", "dot", False,
                     "cosine", note="rsatoolbox's default comparison", chunked="COSINE"),
    ComparisonMethod("whitened_pearson", "whitened_cosine of the mean-centred vectors", "_whitened_pearson_matrix",
                     "masked", False, "corr_cov", aliases=("corr_cov",), note="rsatoolbox with sigma_k=None"),
    ComparisonMethod("whitened_cosine", "Frobenius cosine of G = -H D H / 2 (H centring matrix, D the RDM): the "
                     "RDM cosine whitened for i.i.d. pattern noise (Diedrichsen et al. 2021)",
                     "_whitened_cosine_matrix", "masked", False, "cosine_cov",
                     "metric cka (linear CKA) equals this on squared-Euclidean RDMs of the same features",
                     aliases=("cosine_cov",), note="rsatoolbox with sigma_k=None"),
)

#: comparison method name -> its record; rsatoolbox's names (``corr``, ``tau-a`` ...) are aliases
COMPARISONS: Registry[ComparisonMethod] = Registry(
    "comparison method", {c.name: c for c in _COMPARISONS},
    aliases={a: c.name for c in _COMPARISONS for a in c.aliases},
)

#: comparison methods on the batched dot-product bootstrap path, and those that work on ranks
DOT_METHODS: tuple[str, ...] = tuple(c.name for c in _COMPARISONS if c.bootstrap == "dot")
RANK_METHODS: tuple[str, ...] = tuple(c.name for c in _COMPARISONS if c.rank)


def method_help() -> str:
    """One line for ``--method``'s help: the names with their rsatoolbox aliases."""
    parts = [f"{c.name} ({', '.join(c.aliases)})" if c.aliases else c.name for c in _COMPARISONS]
    return "RDM comparison: " + ", ".join(parts) + "; default spearman (names in brackets are accepted aliases)"


def metric_help() -> str:
    """One line for ``--metric``'s help."""
    return "RDM metric: " + "; ".join(f"{m.name} = {m.formula}" for m in _METRICS) + " (default correlation)"
