"""A spilled layer's Gram as dask tasks: one task per tile of the out-of-core plan, read from shared storage.

:mod:`rsa_bridge.gram_panels` multiplies a layer's stimulus panels in one process. Here each tile (i, j),
i <= j, of the same :class:`rsa_bridge.gram_panels.PanelPlan` is one dask task: a worker opens the layer's
float32 spill file (a path every worker can read: a shared or network file system; stimulus-major rows or
the unit blocks :mod:`extractors.streaming` writes), reads panel i (and j), centres and multiplies them with
:func:`rsa_bridge.gram_panels.tile_product` and hands back
the (rows_i, rows_j) float64 tile with the bytes it read and its read and product seconds. The client
writes the tiles into the (n, n) Gram and mirrors the upper half: equal to the serial
:func:`rsa_bridge.gram_panels.out_of_core_gram` tile for tile (the same products, the same chunks).

Each task reads its own panels, so the cluster reads ``sum over tiles of (rows_i + rows_j) * p * 4`` bytes
(:func:`tile_bytes`; about P + 1 times the file for P panels, against (P + 1) / 2 in one process, which
keeps panels between tiles): the price of independent tasks. The per-tile costs it returns are what
``benchmarks/bench_gram.py --tiles`` projects to larger runs with (docs/guide/scale.md).

Example (a 2-process local cluster; any ``dask.distributed.Client`` works)::

    from dask.distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1) as cluster, Client(cluster) as client:
        gram, report = dask_gram(client, "layer000.f32", plan)
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.gram_panels import (
    NO_CENTRING,
    Centring,
    PanelPlan,
    PanelReader,
    mirror_upper,
    plan_panels,
    tile_product,
)


@dataclass(frozen=True)
class TileReport:
    """What the tiles of one dask Gram cost.

    Attributes:
        tiles: tasks run; planned_bytes: :func:`tile_bytes` of the plan; read_bytes: bytes the workers read.
        read_s, product_s: summed over tiles, seconds reading panels and multiplying them (worker wall clock).
        workers: workers that ran at least one tile.
    """

    tiles: int
    planned_bytes: int
    read_bytes: int
    read_s: float
    product_s: float
    workers: int


def tile_rows(plan: PanelPlan) -> int:
    """Stimulus rows the tiles of ``plan`` take in all: each task takes its panel(s) once (i and j, or i once)."""
    rows = [b - a for a, b in plan.bounds]
    return sum(rows[i] + (rows[j] if j != i else 0) for i, j in plan.tiles)


def tile_bytes(plan: PanelPlan) -> int:
    """Bytes the dask tiles of ``plan`` read: each task reads its panel(s) once."""
    return tile_rows(plan) * plan.n_units * 4


def _tile(path: str, plan: PanelPlan, ij: tuple[int, int], precision: str, centring: Centring,
          block_units: int | None) -> dict:
    """One task: tile (i, j) of the Gram from the spill file at ``path``."""
    i, j = ij
    reader = PanelReader(path, plan.n, plan.n_units, block_units)
    t0 = time.perf_counter()
    a = reader.read(*plan.bounds[i])
    b = None if i == j else reader.read(*plan.bounds[j])
    t1 = time.perf_counter()
    tile = tile_product(a, b, precision, centring=centring, rows=(plan.bounds[i][0], plan.bounds[j][0]))
    return {"ij": ij, "tile": tile, "read": reader.bytes_read, "read_s": t1 - t0,
            "product_s": time.perf_counter() - t1, "worker": os.getpid()}


def dask_gram(client: Any, path: str | os.PathLike, plan: PanelPlan, precision: str = "float64", *,
              centring: Centring = NO_CENTRING, block_units: int | None = None,
              out: np.ndarray | None = None) -> tuple[np.ndarray, TileReport]:
    """The (n, n) float64 Gram of the spill file at ``path`` (``plan.n`` rows of ``plan.n_units`` float32),
    one dask task per tile of ``plan``.

    Args:
        client: a ``dask.distributed.Client`` whose workers can read ``path``.
        plan: :func:`rsa_bridge.gram_panels.plan_panels` of the layer (its panel budget is per worker).
        precision, centring: as :func:`rsa_bridge.gram_panels.tile_product`.
        block_units: the file's unit-block width (:class:`rsa_bridge.gram_panels.PanelReader`; None: stimulus-major
            rows, one block): a spill file of :mod:`extractors.streaming` is read as it was written.
        out: optional C-ordered (n, n) float64 array for the result.

    Returns:
        (gram, :class:`TileReport`).

    Raises:
        RSABridgeError: when ``path`` is not a file of ``n * n_units * 4`` bytes (checked before any task).
    """
    path = os.fspath(path)
    if not os.path.isfile(path) or os.path.getsize(path) != plan.file_bytes:
        size = os.path.getsize(path) if os.path.isfile(path) else "no file"
        raise RSABridgeError(f"the spill file {path!r} holds {size} bytes, not the {plan.file_bytes} bytes of "
                             f"({plan.n}, {plan.n_units}) float32 activations; write it first, on storage the "
                             "workers share")
    n = plan.n
    gram = np.empty((n, n), dtype=np.float64) if out is None else out
    shared = client.scatter(centring, broadcast=True) if centring.active else centring
    futures = [client.submit(_tile, path, plan, ij, precision, shared, block_units, pure=False) for ij in plan.tiles]
    sums, workers = collect_tiles(futures, plan, gram, ("read", "read_s", "product_s"))
    report = TileReport(len(futures), tile_bytes(plan), int(sums["read"]), float(sums["read_s"]),
                        float(sums["product_s"]), workers)
    return mirror_upper(gram, step=plan.panel_rows), report


def collect_tiles(futures: list, plan: PanelPlan, gram: np.ndarray, totals: tuple[str, ...],
                  progress: Any = None) -> tuple[dict, int]:
    """Write each finished tile task's ``tile`` into the (n, n) ``gram`` at its panel pair ``ij`` (the upper
    half; :func:`rsa_bridge.gram_panels.mirror_upper` completes it), in the order the tasks finish, releasing
    each; returns the sums of the tasks' ``totals`` (bytes, seconds) and how many workers ran them."""
    from dask.distributed import as_completed

    sums, workers = dict.fromkeys(totals, 0), set()
    for future in as_completed(futures):
        done = future.result()
        (a0, a1), (b0, b1) = plan.bounds[done["ij"][0]], plan.bounds[done["ij"][1]]
        gram[a0:a1, b0:b1] = done["tile"]
        for key in totals:
            sums[key] += done[key]
        workers.add(done["worker"])
        future.release()
        if progress is not None:
            progress.update(1)
    return sums, len(workers)


def tile_executor(client: Any, budget_bytes: float) -> Callable[..., dict]:
    """A ``spilled_gram`` for :func:`extractors.streaming.stream_rdms`: each spilled layer's Gram as dask tiles
    (:func:`dask_gram`) of stimulus panels sized so three fit ``budget_bytes`` on a worker.

    Raises (when a layer's Gram runs):
        RSABridgeError: the budget cannot hold three one-stimulus panels of the layer (:func:`plan_panels`).
    """

    def run(reader: PanelReader, blocks: Any, precision: str, centring: Centring, out: np.ndarray,
            layer: str = "") -> dict:
        plan = plan_panels(blocks.n, blocks.n_units, budget_bytes)
        _, report = dask_gram(client, reader.path, plan, precision, centring=centring, block_units=reader.block_units,
                              out=out)
        return {"path": f"dask tiles: {plan.describe()} on {report.workers} worker(s)",
                "planned": report.planned_bytes, "read": report.read_bytes}

    return run
