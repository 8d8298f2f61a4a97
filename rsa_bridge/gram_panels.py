"""The Gram ``G = X X^T`` of (n stimuli x p units) activations at the GEMM limit, in memory and out of core.

**In memory** (:func:`symmetric_gram`): one symmetric rank-p update (BLAS ``syrk``, half the flops of a
general product) per layer, on a Fortran-ordered *view* of the row-major activations (no copy). In
``float64`` the product runs in float64 straight into the output (float32 activations are cast one
column chunk of ``chunk_bytes`` at a time); in ``float32`` each chunk of at most :data:`SUM_UNITS` units is
multiplied in float32 and the chunk products are summed in float64, so the rounding error grows with the
chunk, not with p.

**Out of core** (:func:`out_of_core_gram`): the activations lie in a file as stimulus-major rows
(row i = the p float32 values of stimulus i), so a *panel* of consecutive stimuli is one contiguous
read. :func:`plan_panels` sizes panels so that :data:`BUFFERS` of them fit the memory budget (two
resident, one being read ahead by a reader thread while the GEMM runs) and fixes the whole schedule
before any read: for panel rows i = 0, 1, ... the diagonal tile (i, i) (``syrk``) and then the
off-diagonal tiles (i, j) for j = P-1 down to i+1 (``gemm``); only the upper half is computed and the
lower one mirrored. Counting down means the last panel read in row i is panel i+1, the next row's resident
panel, so it is not read again: P panels cost ``1 + P (P - 1) / 2`` panel reads, i.e. each byte is read at
most ``(P + 1) / 2`` times (once when P <= 2). The plan's bytes are recorded next to the bytes actually
read (:class:`PanelReader` counts them).

Example::

    >>> import numpy as np
    >>> x = np.random.default_rng(0).standard_normal((7, 5)).astype(np.float32)
    >>> bool(np.allclose(symmetric_gram(x, "float64"), x.astype(np.float64) @ x.T.astype(np.float64)))
    True
    >>> plan = plan_panels(10, 4, budget_bytes=3 * 4 * 4 * 3)     # three panels of 3 rows fit the budget
    >>> plan.bounds, plan.planned_bytes                           # 4 panels: 1 + 4 * 3 / 2 = 7 panel reads
    (((0, 3), (3, 6), (6, 9), (9, 10)), 240)
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from rsa_bridge.errors import RSABridgeError

#: float32 products are summed in float64 over chunks of at most this many units
SUM_UNITS = 8192
#: panels held at once by the out-of-core Gram: the resident row panel, the column panel, the one read ahead
BUFFERS = 3
#: float32 products of more stimuli than this run in :data:`STRIPS` row strips (a smaller scratch)
STRIP_MIN, STRIPS = 4096, 8
#: bytes of one float32 activation value in a spill file
ITEMSIZE = 4


@dataclass(frozen=True)
class Centring:
    """What is subtracted from the activations before the product, in the working precision.

    Attributes:
        row_means: (n,) float64 mean of each stimulus over all units (``correlation``), or None.
        col_means: (p,) float64 mean of each unit over all stimuli (``euclidean``, ``sqeuclidean``), or None.
    """

    row_means: np.ndarray | None = None
    col_means: np.ndarray | None = None

    @property
    def active(self) -> bool:
        return self.row_means is not None or self.col_means is not None


NO_CENTRING = Centring()


@dataclass(frozen=True)
class PanelPlan:
    """The I/O plan of one layer's out-of-core Gram, fixed before any read.

    Attributes:
        n, n_units: stimuli (rows) and units (row length) of the layer.
        panel_rows: stimuli per panel (the last may be shorter).
        bounds: ((start, stop), ...) stimulus rows of each panel.
        tiles: the (i, j) panel pairs (i <= j) in the order they are multiplied.
        reads: the panel read before each tile that needs one (index into ``bounds``), in order.
        planned_bytes: bytes those reads take (``sum(rows) * n_units * 4``).
    """

    n: int
    n_units: int
    panel_rows: int
    bounds: tuple[tuple[int, int], ...]
    tiles: tuple[tuple[int, int], ...]
    reads: tuple[int, ...]
    planned_bytes: int

    @property
    def file_bytes(self) -> int:
        """Bytes of the layer's spill file."""
        return self.n * self.n_units * ITEMSIZE

    def describe(self) -> str:
        """One line for provenance and logs."""
        return (f"{len(self.bounds)} panels of <= {self.panel_rows} stimuli, {len(self.tiles)} tiles, "
                f"{len(self.reads)} panel reads = {self.planned_bytes} bytes "
                f"({self.planned_bytes / max(1, self.file_bytes):.2f} x the {self.file_bytes}-byte file)")


def _schedule(count: int) -> tuple[tuple[tuple[int, int], ...], tuple[int, ...]]:
    """Tiles (row panel i, column panel j >= i; j counting down) and the reads they need, in order."""
    tiles, reads, resident, column = [], [], None, None
    for i in range(count):
        if column == i:  # the previous row's last column panel is this row's panel: no read
            resident = column
        elif resident != i:
            reads.append(i)
            resident = i
        tiles.append((i, i))
        for j in range(count - 1, i, -1):
            reads.append(j)
            column = j
            tiles.append((i, j))
    return tuple(tiles), tuple(reads)


def plan_panels(n: int, n_units: int, budget_bytes: float, buffers: int = BUFFERS) -> PanelPlan:
    """Panels of an (n, n_units) float32 layer such that ``buffers`` panels fit in ``budget_bytes``.

    Raises:
        RSABridgeError: when even panels of one stimulus do not fit the budget.
    """
    n, n_units = int(n), int(n_units)
    if n < 1 or n_units < 1:
        raise RSABridgeError(f"a Gram needs stimuli and units; got ({n}, {n_units})")
    row_bytes = n_units * ITEMSIZE
    rows = min(n, int(budget_bytes // (buffers * row_bytes))) if np.isfinite(budget_bytes) else n
    if rows < 1:
        raise RSABridgeError(
            f"a memory budget of {budget_bytes:.0f} bytes cannot hold {buffers} panels of one stimulus of a "
            f"{n_units}-unit layer ({buffers * row_bytes} bytes); raise --memory-budget or use --reduce-units")
    bounds = tuple((a, min(a + rows, n)) for a in range(0, n, rows))
    tiles, reads = _schedule(len(bounds))
    planned = sum((bounds[k][1] - bounds[k][0]) * row_bytes for k in reads)
    return PanelPlan(n, n_units, rows, bounds, tiles, reads, planned)


def _cast_width(rows: int, chunk_bytes: int, itemsize: int) -> int:
    return max(1, int(chunk_bytes) // (itemsize * max(1, rows)))


def _chunk(x: np.ndarray, cols: slice, dtype: type, centring: Centring, first_row: int,
           first_col: int = 0, buffer: np.ndarray | None = None) -> np.ndarray:
    """Columns ``cols`` of ``x`` (layer units ``first_col + cols``) in ``dtype``, centred: a view when nothing
    needs changing, else a C-ordered copy, in ``buffer`` (a flat ``dtype`` array of at least rows x cols values,
    reused chunk after chunk: no fresh pages to fault in) when given. Cast and row centring are one pass
    (``np.subtract`` casts its float32 operand first: the values of a cast followed by the subtraction)."""
    part = x[:, cols]
    if not centring.active and part.dtype == dtype:
        return part
    out = np.empty(part.shape, dtype) if buffer is None else buffer[:part.size].reshape(part.shape)
    if centring.row_means is not None:
        np.subtract(part, centring.row_means[first_row:first_row + part.shape[0], None].astype(dtype), out=out)
    else:
        np.copyto(out, part)
    if centring.col_means is not None:
        out -= centring.col_means[None, first_col + cols.start:first_col + cols.stop].astype(dtype)
    return out


def tile_product(a: np.ndarray, b: np.ndarray | None, precision: str = "float64", *,
                 centring: Centring = NO_CENTRING, rows: tuple[int, int] = (0, 0),
                 chunk_bytes: int = 64 * 2 ** 20) -> np.ndarray:
    """``A @ B.T`` (or ``A @ A.T`` when ``b`` is None, by syrk) as float64, in ``precision``.

    Args:
        a: (r, p) activations (float32 or float64); b: (s, p) or None.
        precision: ``"float64"``: chunks of ``chunk_bytes`` cast to float64 and multiplied in float64;
            ``"float32"``: float32 products over chunks of :data:`SUM_UNITS` units summed in float64.
        centring: subtracted from each chunk in the working precision (``A``, ``B`` are the centred
            ``a``, ``b``); rows: the layer rows of ``a[0]`` and ``b[0]``.

    Returns:
        (r, s) float64; for ``b is None`` the full symmetric (r, r) matrix.
    """
    if b is None:
        return symmetric_gram(a, precision, centring=centring, first_row=rows[0], chunk_bytes=chunk_bytes)
    dtype = np.float64 if precision == "float64" else np.float32
    units = a.shape[1]
    out = np.zeros((a.shape[0], b.shape[0]), dtype=np.float64)
    width = _cast_width(a.shape[0] + b.shape[0], chunk_bytes, 8) if dtype == np.float64 else SUM_UNITS
    scratch = np.empty(out.shape, dtype=dtype)
    for k in range(0, units, width):
        cols = slice(k, min(k + width, units))
        ca, cb = _chunk(a, cols, dtype, centring, rows[0]), _chunk(b, cols, dtype, centring, rows[1])
        out += np.matmul(ca, cb.T, out=scratch)
    return out


def strip_rows(n: int) -> int:
    """Rows of one float32 product strip of an n-stimulus Gram (n itself up to :data:`STRIP_MIN`)."""
    return n if n <= STRIP_MIN else -(-n // STRIPS)


def mirror_upper(g: np.ndarray, step: int = 2048) -> np.ndarray:
    """Copy the upper triangle of the square ``g`` onto its lower one, in place, block by block."""
    n = g.shape[0]
    for a in range(0, n, step):
        rows = slice(a, min(a + step, n))
        for b in range(a, n, step):
            cols = slice(b, min(b + step, n))
            if b == a:
                block = g[rows, cols]
                lower = np.tril_indices(block.shape[0], -1)
                block[lower] = block.T[lower]
            else:
                g[cols, rows] = g[rows, cols].T
    return g


def symmetric_gram(x: np.ndarray, precision: str = "float64", *, out: np.ndarray | None = None,
                   centring: Centring = NO_CENTRING, first_row: int = 0, first_col: int = 0,
                   accumulate: bool = False, chunk_bytes: int = 64 * 2 ** 20,
                   scratch: np.ndarray | None = None) -> np.ndarray:
    """``X @ X.T`` of an in-memory (n, p) array by BLAS syrk, as a full symmetric (n, n) float64 array.

    float64 activations in ``"float64"`` without centring: one ``dsyrk`` on the Fortran-ordered view
    ``x.T`` straight into ``out`` (no copy, no cast). Otherwise ``dsyrk`` with beta = 1 over float64
    (centred) copies of column chunks of ``chunk_bytes``. ``"float32"``: float32 syrk (numpy's ``a @ a.T``)
    over chunks of :data:`SUM_UNITS` units (views when nothing is centred) summed in float64.
    ``out``: an optional C-ordered (n, n) float64 array that receives the result (overwritten);
    ``centring``/``first_row``: as :func:`tile_product` (``X`` = the centred ``x``), ``first_col``: the layer
    unit of ``x[:, 0]``. ``x`` is never changed. ``accumulate=True`` adds to ``out`` instead; in ``"float64"``
    only its lower triangle is then updated (the caller mirrors it at the end, :func:`mirror_lower`).
    ``scratch``: a (:func:`strip_rows` (n), n) float32 array to reuse for the float32 chunk products. Above
    :data:`STRIP_MIN` stimuli the float32 products run in row strips of the upper triangle (a ``gemm`` per strip,
    about 1/16 more flops than ``syrk``), so the scratch is 1/8 of an n x n float32 square (0.24 GB at 22,000
    stimuli instead of 1.9 GB); with ``accumulate=True`` only the upper triangle is then complete.
    """
    from scipy.linalg.blas import dsyrk

    n, units = x.shape
    if out is None:
        out = np.zeros((n, n), dtype=np.float64)
    elif out.shape != (n, n) or out.dtype != np.float64 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-ordered ({n}, {n}) float64 array")
    elif not accumulate:
        out[...] = 0.0
    if precision == "float64":
        target = out.T  # Fortran-ordered: dsyrk updates it in place; its upper triangle is out's lower one
        whole = x.dtype == np.float64 and not centring.active
        width = units if whole else min(units, _cast_width(n, chunk_bytes, 8))
        buffer = None if whole else np.empty(n * width, np.float64)  # one cast buffer for every chunk
        for k in range(0, units, width):
            chunk = np.ascontiguousarray(_chunk(x, slice(k, min(k + width, units)), np.float64, centring, first_row,
                                                first_col, buffer))
            dsyrk(1.0, chunk.T, beta=1.0, c=target, trans=1, lower=0, overwrite_c=1)
        return out if accumulate else mirror_lower(out)
    rows = strip_rows(n)
    scratch = np.empty((rows, n), dtype=np.float32) if scratch is None else scratch
    for k in range(0, units, SUM_UNITS):
        chunk = _chunk(x, slice(k, min(k + SUM_UNITS, units)), np.float32, centring, first_row, first_col)
        if rows == n:
            out += np.matmul(chunk, chunk.T, out=scratch)  # numpy calls syrk for a @ a.T (full result)
            continue
        for a in range(0, n, rows):  # row strips of the upper triangle: a float32 scratch of rows x n, not n x n
            b = min(a + rows, n)
            out[a:b, a:] += np.matmul(chunk[a:b], chunk[a:].T, out=scratch[:b - a, :n - a])
    return out if accumulate or rows == n else mirror_upper(out)


def mirror_lower(g: np.ndarray) -> np.ndarray:
    """Copy the lower triangle of ``g`` onto the upper one (the transpose of :func:`mirror_upper`)."""
    mirror_upper(g.T)
    return g


class PanelReader:
    """Reads a float32 spill file laid out as unit blocks with plain ``pread`` calls.

    The file holds an (n, n_units) matrix as consecutive unit blocks of ``block_units`` columns (the last may
    be narrower), each block a row-major (n, width) array: block k starts at byte ``4 n k block_units``. With
    ``block_units = n_units`` (the default) it is simply stimulus-major rows. A whole unit block is one
    contiguous read (:meth:`read_block`); a stimulus panel one contiguous read per block (:meth:`read`).

    Args:
        path: the file; n, n_units: its shape; block_units: its block width.

    ``bytes_read`` counts every byte the reader got back from the file, ``read_s`` the seconds spent reading
    and ``wait_s`` the seconds :func:`out_of_core_gram` waited for a panel (reads not hidden behind products).
    """

    def __init__(self, path: str | os.PathLike, n: int, n_units: int, block_units: int | None = None) -> None:
        self.path, self.n, self.n_units = os.fspath(path), int(n), int(n_units)
        self.block_units = self.n_units if block_units is None else max(1, min(int(block_units), self.n_units))
        self.bytes_read = 0
        self.read_s = self.wait_s = 0.0
        self._lock = threading.Lock()

    def blocks(self) -> list[tuple[int, int]]:
        """The (first, stop) units of each block."""
        return [(u, min(u + self.block_units, self.n_units)) for u in range(0, self.n_units, self.block_units)]

    def _pread(self, fd: int, target: np.ndarray, offset: int) -> None:
        view = memoryview(target.reshape(-1)).cast("B")
        while view:
            got = os.preadv(fd, [view[:1 << 30]], offset)
            if got <= 0:
                raise RSABridgeError(f"the spill file {self.path} is shorter than written (disk full?)")
            with self._lock:
                self.bytes_read += got
            view, offset = view[got:], offset + got

    def read(self, start: int, stop: int, buffer: np.ndarray | None = None) -> np.ndarray:
        """Stimuli ``start:stop`` as a (stop - start, n_units) float32 array (in ``buffer`` when given)."""
        t0 = time.perf_counter()
        rows = stop - start
        flat = np.empty(rows * self.n_units, np.float32) if buffer is None else buffer.reshape(-1)[:rows * self.n_units]
        panel = flat.reshape(rows, self.n_units)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for u0, u1 in self.blocks():
                offset = ITEMSIZE * (self.n * u0 + start * (u1 - u0))
                if u1 - u0 == self.n_units:
                    self._pread(fd, panel, offset)
                else:
                    piece = np.empty((rows, u1 - u0), np.float32)
                    self._pread(fd, piece, offset)
                    panel[:, u0:u1] = piece
        finally:
            os.close(fd)
        self.read_s += time.perf_counter() - t0
        return panel

    def read_block(self, k: int, buffer: np.ndarray | None = None) -> np.ndarray:
        """Unit block ``k``: all n stimuli as an (n, width) float32 array (in ``buffer`` when given)."""
        t0 = time.perf_counter()
        u0, u1 = self.blocks()[k]
        size = self.n * (u1 - u0)
        flat = np.empty(size, np.float32) if buffer is None else buffer.reshape(-1)[:size]
        fd = os.open(self.path, os.O_RDONLY)
        try:
            self._pread(fd, flat, ITEMSIZE * self.n * u0)
        finally:
            os.close(fd)
        self.read_s += time.perf_counter() - t0
        return flat.reshape(self.n, u1 - u0)


def out_of_core_gram(reader: PanelReader, plan: PanelPlan, precision: str = "float64", *,
                     centring: Centring = NO_CENTRING, out: np.ndarray | None = None,
                     chunk_bytes: int = 64 * 2 ** 20, progress: Callable[[int], None] | None = None) -> np.ndarray:
    """The (n, n) float64 Gram of a spilled layer, following ``plan`` (see the module docstring).

    Args:
        reader: the layer's :class:`PanelReader`; plan: its :func:`plan_panels`.
        precision: as :func:`tile_product`.
        centring: subtracted in the working precision (see :func:`tile_product`).
        out: optional C-ordered (n, n) float64 array for the result.
        chunk_bytes: the float64 cast chunk (see :func:`tile_product`).
        progress: called with the stimulus-pair count of each finished tile.

    A reader thread reads the next planned panel while the current tile is multiplied (BLAS and ``pread``
    release the GIL), so :data:`BUFFERS` panel buffers are live at most.
    """
    n = plan.n
    if out is None:
        out = np.empty((n, n), dtype=np.float64)
    pool = [np.empty(plan.panel_rows * plan.n_units, np.float32) for _ in range(min(BUFFERS, len(plan.reads)))]
    reads = list(plan.reads)

    def load(k: int, buffer: np.ndarray) -> np.ndarray:
        return reader.read(*plan.bounds[k], buffer=buffer)

    held: dict[int, np.ndarray] = {}
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rsa-bridge-panel-reader") as thread:
        pending = thread.submit(load, reads[0], pool[0]) if reads else None
        next_read, free = 1, pool[1:]
        for i, j in plan.tiles:
            for k in (i, j):
                if k in held:
                    continue
                t0 = time.perf_counter()
                panel = pending.result()
                reader.wait_s += time.perf_counter() - t0
                held = {key: value for key, value in held.items() if key in (i, j)}
                held[k] = panel
                free = [b for b in pool if not any(np.may_share_memory(b, h) for h in held.values())]
                pending = None
                if next_read < len(reads):
                    pending = thread.submit(load, reads[next_read], free[0])
                    next_read += 1
            (a0, a1), (b0, b1) = plan.bounds[i], plan.bounds[j]
            if len(plan.bounds) == 1:  # the whole layer in one panel: syrk straight into out
                symmetric_gram(held[i], precision, out=out, centring=centring, chunk_bytes=chunk_bytes)
            else:
                out[a0:a1, b0:b1] = tile_product(held[i], None if i == j else held[j], precision,
                                                 centring=centring, rows=(a0, b0), chunk_bytes=chunk_bytes)
            if progress is not None:
                progress((a1 - a0) * (b1 - b0))
    return mirror_upper(out, step=plan.panel_rows)
