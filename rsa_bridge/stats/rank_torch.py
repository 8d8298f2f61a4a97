"""The exact weighted-rank bootstrap of Spearman / rho_a in torch, batched over samples (for GPUs).

Same arithmetic as :mod:`rsa_bridge.stats.rank_kernel` (doubled centred ranks ``2 r - (W + 1)``,
exact integers in float64), written as whole-tensor operations so that a GPU runs a batch of samples
at once: gather the pair weights w = c_i c_j in each fixed RDM's sorted order from the (B, n) count
table, one cumulative sum, tie groups through their first/last sorted positions, scatter the area
RDMs' ranks into pair order, gather them into each model RDM's sorted order and reduce
sum w a b. Used by :func:`rsa_bridge.stats.bootstrap_similarity` when ``device`` names a torch
device (e.g. ``cuda``); on the CPU it gives the same numbers (tests check it to 1e-10).
"""
from __future__ import annotations

import numpy as np

from rsa_bridge.stats.weighted import sort_order

#: float64 values per (batch x pairs) tensor (~256 MiB); the batch of samples is sized from it
BATCH_ELEMENTS = 32_000_000


class SortedTorch:
    """Sorted pair order, stimuli and tie groups of fixed vectors (K, m), as tensors on ``device``."""

    def __init__(self, x: np.ndarray, n: int, device):
        import torch

        so = sort_order(x)
        rows, cols = np.triu_indices(n, k=1)

        def tensor(a):
            return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.long, device=device)

        self.order = tensor(so.order)
        self.i, self.j = tensor(rows[so.order]), tensor(cols[so.order])
        self.ties = so.ties
        self.start, self.end = (tensor(so.start), tensor(so.end)) if so.ties else (None, None)


def _ranks(s: SortedTorch, k: int, c, total):
    """Weights (b, m) and doubled centred ranks (b, m) of row k in its sorted order."""
    import torch

    ws = c[:, s.i[k]] * c[:, s.j[k]]
    cum = torch.cumsum(ws, dim=1)
    if s.ties:
        before = cum[:, s.start[k]] - ws[:, s.start[k]]
        group = cum[:, s.end[k]] - before
        return ws, 2.0 * before + group - total
    return ws, 2.0 * cum - ws - total


def similarities(method: str, model: SortedTorch, area: SortedTorch, counts: np.ndarray, device) -> np.ndarray:
    """Per-sample similarities (B, L, R), as :func:`rsa_bridge.stats.rank_kernel.similarities`."""
    from rsa_bridge.stats.rank_kernel import kernel_of

    kernel = kernel_of(method)
    import torch

    b_all, n = counts.shape
    n_l, m = model.order.shape
    n_r = area.order.shape[0]
    step = max(1, BATCH_ELEMENTS // (m * (n_r + 3)))
    out = np.empty((b_all, n_l, n_r))
    for start in range(0, b_all, step):
        c = torch.as_tensor(counts[start:start + step], dtype=torch.float64, device=device)
        b = c.shape[0]
        total = ((c.sum(1) ** 2 - (c * c).sum(1)) / 2.0)[:, None]
        pair_ranks = torch.empty((b, n_r, m), dtype=torch.float64, device=device)
        norm_a = torch.empty((b, n_r), dtype=torch.float64, device=device)
        for r in range(n_r):
            ws, a = _ranks(area, r, c, total)
            norm_a[:, r] = (ws * a * a).sum(1)
            pair_ranks[:, r].scatter_(1, area.order[r].expand(b, m), a)
        cross = torch.empty((b, n_l, n_r), dtype=torch.float64, device=device)
        norm_m = torch.empty((b, n_l), dtype=torch.float64, device=device)
        for k in range(n_l):
            ws, a = _ranks(model, k, c, total)
            wa = ws * a
            norm_m[:, k] = (wa * a).sum(1)
            gathered = pair_ranks[:, :, model.order[k]]  # (b, R, m) in this model RDM's sorted order
            cross[:, k] = torch.einsum("bm,brm->br", wa, gathered)
        zero = (norm_m == 0)[:, :, None] | (norm_a == 0)[:, None, :]
        if kernel == "pearson":  # the method's record says which finish (rsa_bridge.methods)
            sims = cross / torch.sqrt(norm_m[:, :, None] * norm_a[:, None, :])
        else:  # rho_a on doubled ranks
            sims = 3.0 * cross / (total ** 3 - total)[:, :, None]
        out[start:start + b] = torch.where(zero, torch.nan, sims).cpu().numpy()
    return out
