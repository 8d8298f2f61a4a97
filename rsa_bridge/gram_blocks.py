"""A spilled layer's Gram reading each byte once: unit blocks accumulated by syrk into the resident (n, n) Gram.

A streamed layer's RDM needs its (n, n) float64 Gram in memory anyway (it becomes the RDM in place), so a
spilled layer is best read as **unit blocks**: all n stimuli x w units, each block one contiguous read of
the spill file (:class:`rsa_bridge.gram_panels.PanelReader` with ``block_units = w``), added to the Gram by one
BLAS ``syrk`` (``G += B B^T``, the symmetric half only). The file is read exactly once whatever n and the
budget (``planned_bytes`` = the file), while a reader thread reads block k + 1 during the product of block k.
:func:`plan_blocks` sizes w so that two blocks (the one multiplied and the one read ahead) fit the budget.

Stimulus panels (:func:`rsa_bridge.gram_panels.out_of_core_gram`) read the file about (P + 1) / 2 times for P
panels; they are for when the Gram is split into independent tiles (:mod:`rsa_bridge.app.gram_tiles`). The
same file serves both: a stimulus panel is one contiguous piece of each unit block.

Example::

    >>> import numpy as np, tempfile, os
    >>> from rsa_bridge.gram_panels import PanelReader
    >>> x = np.arange(40, dtype=np.float32).reshape(5, 8) % 7
    >>> plan = plan_blocks(5, 8, budget_bytes=2 * 4 * 5 * 3)            # blocks of 3 units: 3, 3, 2
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     write_blocks(x, os.path.join(folder, "layer.f32"), plan.block_units)
    ...     reader = PanelReader(os.path.join(folder, "layer.f32"), 5, 8, plan.block_units)
    ...     gram = unit_block_gram(reader, plan)
    >>> bool(np.allclose(gram, x.astype(float) @ x.T.astype(float)))
    True
    >>> reader.bytes_read == plan.planned_bytes == x.nbytes
    True
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.gram_panels import (
    ITEMSIZE,
    NO_CENTRING,
    Centring,
    PanelReader,
    mirror_lower,
    mirror_upper,
    strip_rows,
    symmetric_gram,
)

#: unit blocks held at once: the one multiplied and the one read ahead
BLOCK_BUFFERS = 2


@dataclass(frozen=True)
class BlockPlan:
    """The I/O plan of a unit-block Gram: ``blocks`` (first, stop) units of width <= ``block_units``; each is
    read once, ``planned_bytes`` in all (the file)."""

    n: int
    n_units: int
    block_units: int
    blocks: tuple[tuple[int, int], ...]
    planned_bytes: int

    def describe(self) -> str:
        """One line for provenance and logs."""
        return (f"{len(self.blocks)} unit blocks of <= {self.block_units} units, each read once: "
                f"{self.planned_bytes} bytes")


def block_units_for(n: int, budget_bytes: float, buffers: int = BLOCK_BUFFERS) -> int:
    """Units per block so that ``buffers`` blocks of all ``n`` stimuli fit ``budget_bytes`` (>= 1 or an error)."""
    if not np.isfinite(budget_bytes):
        return 2 ** 62
    width = int(budget_bytes // (buffers * ITEMSIZE * max(1, int(n))))
    if width < 1:
        raise RSABridgeError(
            f"a Gram budget of {budget_bytes:.0f} bytes cannot hold {buffers} unit blocks of {n} stimuli "
            f"({buffers * ITEMSIZE * n} bytes for one unit each); raise the Gram budget (RDMOptions.gram_budget)")
    return width


def plan_blocks(n: int, n_units: int, budget_bytes: float) -> BlockPlan:
    """The unit blocks of an (n, n_units) float32 layer under ``budget_bytes`` (see :func:`block_units_for`)."""
    n, n_units = int(n), int(n_units)
    if n < 1 or n_units < 1:
        raise RSABridgeError(f"a Gram needs stimuli and units; got ({n}, {n_units})")
    width = min(n_units, block_units_for(n, budget_bytes))
    blocks = tuple((u, min(u + width, n_units)) for u in range(0, n_units, width))
    return BlockPlan(n, n_units, width, blocks, n * n_units * ITEMSIZE)


def write_blocks(x: np.ndarray, path: str | os.PathLike, block_units: int) -> None:
    """Write an in-memory (n, p) array as the unit-block file :class:`PanelReader` reads (tests, benchmarks)."""
    with open(path, "wb") as handle:
        handle.writelines(np.ascontiguousarray(x[:, u:u + block_units], dtype=np.float32).tobytes()
                          for u in range(0, x.shape[1], block_units))


def unit_block_gram(reader: PanelReader, plan: BlockPlan, precision: str = "float64", *,
                    centring: Centring = NO_CENTRING, out: np.ndarray | None = None,
                    chunk_bytes: int = 64 * 2 ** 20) -> np.ndarray:
    """The (n, n) float64 Gram of a spilled layer from its unit blocks, each read once.

    Args:
        reader: a :class:`PanelReader` of the file with ``block_units = plan.block_units``.
        plan: :func:`plan_blocks`; precision, centring, chunk_bytes: as
            :func:`rsa_bridge.gram_panels.symmetric_gram`.
        out: optional C-ordered (n, n) float64 array for the result.

    Returns:
        The full symmetric Gram (``out`` when given).
    """
    if reader.block_units != plan.block_units:
        raise ValueError("the reader's block width differs from the plan's")
    n = plan.n
    out = np.zeros((n, n), dtype=np.float64) if out is None else out
    out[...] = 0.0
    scratch = np.empty((strip_rows(n), n), dtype=np.float32) if precision == "float32" else None
    buffers = [np.empty(n * plan.block_units, np.float32) for _ in range(min(BLOCK_BUFFERS, len(plan.blocks)))]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rsa-bridge-block-reader") as thread:
        pending = thread.submit(reader.read_block, 0, buffers[0])
        for k, (u0, _) in enumerate(plan.blocks):
            t0 = time.perf_counter()
            block = pending.result()
            reader.wait_s += time.perf_counter() - t0
            if k + 1 < len(plan.blocks):
                pending = thread.submit(reader.read_block, k + 1, buffers[(k + 1) % len(buffers)])
            symmetric_gram(block, precision, out=out, centring=centring, first_col=u0, accumulate=True,
                           chunk_bytes=chunk_bytes, scratch=scratch)
    if precision == "float64":
        return mirror_lower(out)
    return out if strip_rows(n) == n else mirror_upper(out)
