"""RDMs as chunked matrix products in torch, on whatever device the activations live on.

Every metric of :data:`rsa_bridge.definitions.METRICS` (the one definition of each) is one Gram matrix ``G = Y Y^T`` (n x n) of suitably
centred response patterns ``Y`` (n stimuli x p units) followed by an O(n^2) finishing step:

============== =================== =========================================================
metric         centring of Y       finish
============== =================== =========================================================
correlation    each row (stimulus) ``1 - G_ij / sqrt(G_ii G_jj)``
cosine         none                ``1 - G_ij / sqrt(G_ii G_jj)``
sqeuclidean    each column (unit)  ``G_ii + G_jj - 2 G_ij``
euclidean      each column (unit)  ``sqrt(G_ii + G_jj - 2 G_ij)``
============== =================== =========================================================

(Column centring leaves euclidean distances unchanged and keeps ``G_ii + G_jj - 2 G_ij`` well
conditioned.) ``G`` is accumulated over column blocks of units, ``G += B B^T``, so a block of at
most ``chunk_bytes`` is converted at a time and the (n x p) matrix never has to exist in the working
precision. A block always holds *all* n stimuli, so column means are exact per block; row means are
passed in (they are sums over all p units, accumulated batch by batch by :mod:`extractors.streaming`).

Precision: ``"float64"`` converts each block to float64 and multiplies in float64 (equal to
:func:`rsa_bridge.rdm.compute_rdm` and rsatoolbox to ~1e-12). ``"float32"`` centres and multiplies
each block in float32 and sums the block products in float64, so the rounding error grows with the
block width rather than with p (measured: ~1e-6 absolute on correlation distances; see
benchmarks/bench_rdm.py).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch

from rsa_bridge.definitions import METRICS, MetricDefinition
from rsa_bridge.errors import RSABridgeError, preview
from rsa_bridge.options import DEFAULT_CHUNK_BYTES, PRECISIONS
from rsa_bridge.precisions import PRECISIONS as _PRECISIONS

#: row panels of the Gram (only panel pairs i <= j are multiplied): at most this many, of at least this many rows
MAX_PANELS, MIN_PANEL_ROWS = 8, 512
#: torch dtype of each precision name: a view of :data:`rsa_bridge.precisions.PRECISIONS` (the one list of names)
DTYPES = {name: getattr(torch, p.torch_name) for name, p in _PRECISIONS.items()}


def _normalized(gram: torch.Tensor, ids: Sequence[str], what: str, metric: str) -> torch.Tensor:
    """``1 - G_ij / (|y_i| |y_j|)`` in place on ``gram`` (float64); RSABridgeError for zero rows."""
    diag = torch.diagonal(gram)
    norms = torch.sqrt(torch.clamp(diag, min=0.0))
    scale = float(diag.max()) if gram.numel() else 0.0  # = max |G_ij| for a Gram matrix (Cauchy-Schwarz)
    zero = norms <= (max(scale, torch.finfo(torch.float64).tiny) ** 0.5) * 1e-12
    if bool(zero.any()):
        bad = [ids[i] for i in torch.nonzero(zero).flatten().tolist()]
        raise RSABridgeError(
            f"{what} for stimuli {preview(bad)}, so the {metric} distance is undefined; "
            "drop those stimuli or use metric='euclidean'"
        )
    inv = 1.0 / norms
    gram.mul_(inv[:, None]).mul_(inv[None, :]).clamp_(-1.0, 1.0)
    return gram.neg_().add_(1.0)


def _squared(gram: torch.Tensor) -> torch.Tensor:
    sq = torch.diagonal(gram).clone()
    gram.mul_(-2.0).add_(sq[:, None]).add_(sq[None, :])
    return gram.clamp_(min=0.0)


@dataclass(frozen=True)
class GramPlan:
    """How one metric is computed in torch: centring of the patterns and the finishing step on the Gram."""

    center: str | None  # "row", "column" or None
    finish: Callable[[torch.Tensor, Sequence[str]], torch.Tensor]


def _finisher(metric: MetricDefinition) -> Callable[[torch.Tensor, Sequence[str]], torch.Tensor]:
    """The torch operations of ``metric.finish`` (see :mod:`rsa_bridge.definitions`)."""
    if metric.finish == "one_minus_cosine":
        return lambda g, ids: _normalized(g, ids, metric.undefined_message(), metric.name)
    if metric.finish == "squared_distance":
        return lambda g, ids: _squared(g)
    if metric.finish == "distance":
        return lambda g, ids: _squared(g).sqrt_()
    raise ValueError(f"no torch finish for {metric.finish!r}")  # a new finish kind needs its operations here


#: metric name -> plan, built from the one definition per metric in :data:`rsa_bridge.definitions.METRICS`
GRAM_METRICS: dict[str, GramPlan] = {name: GramPlan(m.centre, _finisher(m)) for name, m in METRICS.items()}


def check_metric(metric: str) -> GramPlan:
    """The plan of ``metric`` (case-insensitive); RSABridgeError naming the choices for an unknown one."""
    return GRAM_METRICS[METRICS.resolve(metric)]


def check_precision(precision: str) -> torch.dtype:
    """The torch dtype of ``precision`` ("float64" or "float32"); RSABridgeError otherwise."""
    return DTYPES[PRECISIONS.resolve(precision)]


def block_width(n_stimuli: int, precision: str = "float64", chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> int:
    """Units per block so that one (n_stimuli x width) block in ``precision`` takes about ``chunk_bytes``."""
    item = torch.finfo(check_precision(precision)).bits // 8
    return max(1, int(chunk_bytes) // (item * max(1, n_stimuli)))


def _row_panels(n: int) -> list[slice]:
    k = min(MAX_PANELS, max(1, n // MIN_PANEL_ROWS))
    edges = [round(i * n / k) for i in range(k + 1)]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]


class GramAccumulator:
    """Accumulates ``G = sum_blocks B B^T`` (n x n, float64) over column blocks of the patterns.

    Args:
        n: stimuli (rows of every block).
        metric: one of :data:`GRAM_METRICS` (fixes the centring).
        row_means: (n,) float64 mean of each stimulus over *all* units; needed for ``correlation``.
        precision: ``"float64"`` or ``"float32"`` (the dtype of the block products).
        device: where blocks are multiplied and ``G`` lives.
        out: optional (n, n) float64 tensor on ``device`` that holds ``G`` and then the RDM (no other
            n x n array is allocated: the finish works in place).
    """

    def __init__(self, n: int, metric: str, *, row_means: torch.Tensor | None = None, precision: str = "float64",
                 device: str | torch.device = "cpu", out: torch.Tensor | None = None) -> None:
        self.plan = check_metric(metric)
        self.dtype = check_precision(precision)
        self.device = torch.device(device)
        self.n = int(n)
        if self.plan.center == "row" and row_means is None:
            raise RSABridgeError(f"metric {metric!r} centres each stimulus: pass row_means")
        self._row = None
        if self.plan.center == "row":
            self._row = row_means.to(self.device, torch.float64).reshape(-1, 1).to(self.dtype)
        if out is None:
            self.gram = torch.zeros((self.n, self.n), dtype=torch.float64, device=self.device)
        else:
            if out.shape != (self.n, self.n) or out.dtype != torch.float64 or out.device != self.device:
                raise ValueError(f"out must be a ({self.n}, {self.n}) float64 tensor on {self.device}")
            self.gram = out.zero_()
        self.n_units = 0
        self._panels = _row_panels(self.n)

    @classmethod
    def filled(cls, gram: torch.Tensor, metric: str, n_units: int) -> GramAccumulator:
        """An accumulator around an already computed full symmetric (n, n) float64 Gram (e.g. of
        :mod:`rsa_bridge.gram_panels`), ready for :meth:`finish`; ``metric``'s centring must have been applied."""
        acc = cls.__new__(cls)
        acc.plan, acc.dtype, acc.device, acc.n = check_metric(metric), torch.float64, gram.device, int(gram.shape[0])
        acc._row, acc.gram, acc.n_units, acc._panels = None, gram, int(n_units), _row_panels(int(gram.shape[0]))
        return acc

    def add(self, block: torch.Tensor) -> None:
        """Add one block (n, w) of the patterns: all stimuli, w units, any float dtype, any device."""
        if block.ndim != 2 or block.shape[0] != self.n:
            raise RSABridgeError(f"a Gram block must be ({self.n}, units); got shape {tuple(block.shape)}")
        work = block.to(self.device, self.dtype)
        if work.data_ptr() == block.data_ptr():
            work = work.clone()
        if self._row is not None:
            work.sub_(self._row)
        elif self.plan.center == "column":
            work.sub_(work.to(torch.float64).mean(dim=0, keepdim=True).to(self.dtype))
        # G is symmetric: multiply only the panel pairs (i <= j) of the upper triangle (~40% fewer flops for
        # n >= 2048); the lower triangle is mirrored in finish()
        for i, rows_i in enumerate(self._panels):
            for rows_j in self._panels[i:]:
                target = self.gram[rows_i, rows_j]
                if self.dtype == torch.float64:
                    target.addmm_(work[rows_i], work[rows_j].T)
                else:
                    target.add_(torch.mm(work[rows_i], work[rows_j].T))  # float32 product, float64 sum
        self.n_units += int(block.shape[1])

    def finish(self, ids: Sequence[str]) -> torch.Tensor:
        """The (n, n) float64 dissimilarities (in ``out`` when given): symmetric, exact zero diagonal.
        Consumes the Gram."""
        if self.n_units == 0:
            raise RSABridgeError("activations have no units")
        bad = ~torch.isfinite(torch.diagonal(self.gram))  # a NaN/inf anywhere in row i reaches G_ii
        if bool(bad.any()):
            names = [ids[i] for i in torch.nonzero(bad).flatten().tolist()]
            raise RSABridgeError(f"activations contain NaN or inf (or overflow) for stimuli {preview(names)}")
        for i, rows_i in enumerate(self._panels):
            for rows_j in self._panels[i + 1:]:
                self.gram[rows_j, rows_i] = self.gram[rows_i, rows_j].T
        matrix = self.plan.finish(self.gram, list(ids))  # in place
        self.gram = torch.empty(0)
        for i, rows_i in enumerate(self._panels):  # (M + M^T) / 2 panel by panel: exact symmetry, small temporaries
            for rows_j in self._panels[i:]:
                mean = matrix[rows_i, rows_j].add(matrix[rows_j, rows_i].T).mul_(0.5)
                matrix[rows_i, rows_j] = mean
                matrix[rows_j, rows_i] = mean.T
        matrix.fill_diagonal_(0.0)
        return matrix


def row_means(x: torch.Tensor, chunk_units: int) -> torch.Tensor:
    """(n,) float64 means over units of an (n, p) tensor, summed in float64 block by block."""
    total = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    for start in range(0, x.shape[1], chunk_units):
        total += x[:, start:start + chunk_units].sum(dim=1, dtype=torch.float64)
    return total / x.shape[1]


def column_blocks(x: torch.Tensor, width: int) -> Iterable[torch.Tensor]:
    """Views (n, <= width) of consecutive unit blocks of ``x``."""
    for start in range(0, x.shape[1], width):
        yield x[:, start:start + width]


def check_finite_rows(x: torch.Tensor, ids: Sequence[str], offset: int = 0) -> None:
    """RSABridgeError naming the stimuli whose rows of ``x`` (rows ``offset``.. of ``ids``) hold NaN/inf."""
    bad = ~torch.isfinite(x).all(dim=1)
    if bool(bad.any()):
        names = [ids[offset + i] for i in torch.nonzero(bad).flatten().tolist()]
        raise RSABridgeError(f"activations contain NaN or inf for stimuli {preview(names)}")


def gram_rdm(x: torch.Tensor, metric: str = "correlation", *, ids: Sequence[str] | None = None,
             precision: str = "float64", chunk_bytes: int = 4 * DEFAULT_CHUNK_BYTES) -> torch.Tensor:
    """The RDM of an in-memory (n stimuli, p units) tensor, on ``x``'s device.

    Args:
        x: (n, p) responses, any float dtype, CPU or CUDA; further dims are flattened into units.
        metric: one of :data:`GRAM_METRICS` (definitions in :mod:`rsa_bridge.rdm`).
        ids: stimulus ids for error messages (default "0".."n-1").
        precision: dtype of the block products (see the module docstring).
        chunk_bytes: size of one working block.

    Returns:
        (n, n) float64 tensor on ``x``'s device, symmetric with an exact zero diagonal.
    """
    x = x.reshape(x.shape[0], -1)
    n = x.shape[0]
    ids = [str(i) for i in range(n)] if ids is None else list(ids)
    if n < 3:
        raise RSABridgeError(f"an RDM needs at least 3 stimuli; got {n}")
    width = block_width(n, precision, chunk_bytes)
    means = row_means(x, width) if check_metric(metric).center == "row" else None
    acc = GramAccumulator(n, metric, row_means=means, precision=precision, device=x.device)
    for block in column_blocks(x, width):
        acc.add(block)
    return acc.finish(ids)
