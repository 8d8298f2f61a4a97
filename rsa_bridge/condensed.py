"""Condensed RDMs: the upper triangle of a square RDM as a vector, and back, without n x n temporaries.

The condensed form of an (n, n) RDM is its m = n(n-1)/2 entries d(i, j), i < j, row by row: the order of
``np.triu_indices(n, 1)`` and of scipy's ``squareform``. Row i starts at ``i n - i (i + 1) / 2``
(:func:`row_offset`). The helpers here work in row panels of about a million entries, so converting a
3.9 GB square (22,000 stimuli) adds no second square. Used by :mod:`rsa_bridge.rdm_store`.

Example::

    >>> import numpy as np
    >>> from scipy.spatial.distance import squareform
    >>> d = squareform(np.arange(1.0, 11.0))          # 5 x 5
    >>> condense_rows(d, 0, 4).tolist() == list(np.arange(1.0, 11.0))
    True
    >>> bool(np.array_equal(fill_square(np.empty((5, 5)), iter([(0, 10, np.arange(1.0, 11.0))])), d))
    True
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from rsa_bridge.errors import RSABridgeError

#: relative tolerance of the symmetry and zero-diagonal checks, per entry (see check_square)
ATOL = 1e-8


def n_pairs(n: int) -> int:
    """m = n(n-1)/2, the length of a condensed RDM over n stimuli."""
    return int(n) * (int(n) - 1) // 2


def row_offset(i: np.ndarray | int, n: int) -> np.ndarray | int:
    """Where row i of the upper triangle starts in the condensed vector: ``i n - i (i + 1) / 2``."""
    return i * n - i * (i + 1) // 2


def panel_rows(n: int, elements: int = 1 << 20) -> int:
    """Rows of an (n, n) matrix in a panel of about ``elements`` entries (at least 1, at most n)."""
    return max(1, min(n, elements // max(n, 1)))


def check_square(values: np.ndarray, name: str, atol: float = ATOL) -> None:
    """RSABridgeError unless the (n, n) ``values`` are real, finite, symmetric and zero on the diagonal, each rule
    relative to the entries it compares (:mod:`rsa_bridge.value_checks`): ``|d_ij - d_ji| <= rtol max(|d_ij|,
    |d_ji|) + tiny`` and ``|d_ii| <= rtol m_i + tiny`` with m_i the median |off-diagonal| entry of row i, so one
    huge entry never loosens the check of the others (``atol`` is that rtol, default 1e-8). A matrix with
    diagonal 1 and entries in [-1, 1] is named a similarity matrix. Checked in row panels (no n x n temporary);
    nothing is squared, so values near 1e300 do not overflow."""
    from rsa_bridge.value_checks import ATOL as TINY
    from rsa_bridge.value_checks import (
        asymmetric,
        looks_like_similarity,
        row_scales,
        similarity_message,
    )

    if np.asarray(values[:0]).dtype.kind not in "biuf":
        raise RSABridgeError(f"the {name} RDM holds {np.asarray(values[:0]).dtype} values; an RDM holds real "
                             "numbers (not complex, text or objects)")
    n = values.shape[0]
    rtol = float(atol)
    lo, hi = np.inf, -np.inf
    bad_diag = None
    step = panel_rows(n)
    for a in range(0, n, step):
        b = min(n, a + step)
        panel = np.asarray(values[a:b], dtype=np.float64)  # panel-sized float64: exact for any stored dtype
        if not np.isfinite(panel).all():
            i, j = np.argwhere(~np.isfinite(panel))[0]
            raise RSABridgeError(f"the {name} RDM contains NaN or inf (entry [{a + i}, {j}] = {panel[i, j]})")
        mirror = np.asarray(values[:, a:b], dtype=np.float64).T
        bad = asymmetric(panel, mirror, rtol)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise RSABridgeError(f"the {name} RDM is not symmetric (entry [{a + i}, {j}] = {panel[i, j]:.6g} but "
                                 f"[{j}, {a + i}] = {mirror[i, j]:.6g}); an RDM holds one dissimilarity per pair")
        rows = np.arange(b - a)
        diag = panel[rows, a + rows]
        off = ~np.eye(b - a, n, k=a, dtype=bool)
        lo = min(lo, float(np.min(panel, where=off, initial=np.inf)))
        hi = max(hi, float(np.max(panel, where=off, initial=-np.inf)))
        if bad_diag is None:
            over = np.flatnonzero(np.abs(diag) > rtol * np.nan_to_num(row_scales(panel, a)) + TINY)
            bad_diag = None if not over.size else (a + int(over[0]), float(diag[over[0]]))
    if bad_diag is not None:
        diagonal = np.diagonal(values).astype(np.float64)
        if looks_like_similarity(diagonal, lo, hi):
            raise RSABridgeError(similarity_message(name))
        i, d = bad_diag
        raise RSABridgeError(f"the {name} RDM has a non-zero diagonal (entry [{i}, {i}] = {d:.6g}, large against "
                             f"the other dissimilarities of row {i}); a stimulus is at distance 0 from itself")


def condense_rows(values: np.ndarray, start_row: int, stop_row: int) -> np.ndarray:
    """The condensed entries of rows [start_row, stop_row) of a square matrix (upper triangle, row by row)."""
    pieces = [values[i, i + 1:] for i in range(start_row, stop_row)]
    return np.concatenate(pieces) if pieces else np.empty(0, dtype=values.dtype)


def fill_square(out: np.ndarray, chunks: Iterator[tuple[int, int, np.ndarray]]) -> np.ndarray:
    """Fill the (n, n) ``out`` from condensed chunks ``(start, stop, values)``: upper rows, then the mirror
    panel by panel (no n x n temporary); the diagonal is 0."""
    n = out.shape[0]
    offsets = row_offset(np.arange(n + 1, dtype=np.int64), n)
    np.fill_diagonal(out, 0.0)
    for start, stop, values in chunks:
        row = int(np.searchsorted(offsets, start, side="right")) - 1
        while row < n - 1 and offsets[row] < stop:
            r0, r1 = max(int(offsets[row]), start), min(int(offsets[row + 1]), stop)
            col0 = row + 1 + (r0 - int(offsets[row]))
            out[row, col0:col0 + (r1 - r0)] = values[r0 - start:r1 - start]
            row += 1
    step = panel_rows(n, 1 << 18)
    for a in range(0, n, step):
        b = min(n, a + step)
        out[b:, a:b] = out[a:b, b:].T
        block = out[a:b, a:b]
        upper = np.triu(block, 1)
        out[a:b, a:b] = upper + upper.T
    return out
