"""Where each layer's Gram runs under ``compare --scheduler ADDRESS --gram-tiles``: one planner per layer.

The forward pass runs on the driver (the process that runs ``compare``). Per layer, :func:`plan_gram_route`
picks one of three routes (:data:`ROUTES`) and says which and why in bytes, flops and workers:

- ``driver``: a layer whose float32 activations fit ``RDMOptions.memory_budget`` stays in memory and is one
  BLAS ``syrk`` on the driver (:mod:`rsa_bridge.gram_panels`); a spilled layer whose spill folder the workers
  cannot read (or when no worker is up) is read once out of core on the driver (:mod:`rsa_bridge.gram_blocks`).
- ``tiles``: a spilled layer on storage the workers share is one dask task per stimulus-panel tile
  (:func:`rsa_bridge.app.gram_tiles.dask_gram`, panels sized so three fit ``RDMOptions.gram_budget`` on a
  worker). The tiles read ``tile_read_bytes`` (about P + 1 times the file for P panels) and the driver holds
  only the (n, n) Gram.
- ``recompute`` (**planned, not implemented**; never chosen): each worker would re-run the forward pass over
  its tile's two panels instead of reading spilled activations: ``recompute_images`` image forwards (the
  sum over tiles of their panels' rows, about (P + 1) n) and no activation I/O. It beats ``tiles`` when one
  image's forward pass takes less time than reading its ``n_units * 4`` bytes of every layer the pass
  serves, i.e. on slow shared storage and cheap networks; the planner reports the count so that choice
  can be made once the route exists.

The routes the planner chose are recorded in the results' attrs (``gram_routes``, one line per spilled layer
in the order they ran, plus the layers kept in memory in the model RDMs' ``gram_paths``).

Example: ``rsa-bridge compare --model alexnet --area IT --scheduler tcp://HOST:8786 --gram-tiles --spill-dir
/shared/scratch`` (docs/guide/scale.md, "Gram tiles on several machines").
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterator

import numpy as np

from rsa_bridge.errors import RSABridgeError

#: route name -> what it does (the planner's vocabulary; docs and attrs use these words)
ROUTES = {
    "driver": "on the driver: in memory (syrk), or read once out of core when the workers cannot read the spill",
    "tiles": "one dask task per stimulus-panel tile, reading the spilled activations from shared storage",
    "recompute": "each worker re-runs the forward pass over its tile's panels (planned, not implemented)",
}


@dataclass(frozen=True)
class GramSetting:
    """What the planner knows about the cluster.

    Attributes:
        workers: dask workers up (0: none).
        shared_storage: whether the workers can read the driver's spill folder (a local cluster, or
            ``--spill-dir`` on storage every machine mounts at the same path).
        panel_budget: bytes of three stimulus panels per tile task (``RDMOptions.gram_budget``).
    """

    workers: int
    shared_storage: bool
    panel_budget: float


@dataclass(frozen=True)
class GramRoute:
    """The planner's choice for one layer and its numbers.

    Attributes:
        route: a key of :data:`ROUTES`; reason: why, in words.
        n, n_units: stimuli and (float32) units of the layer's activations.
        flops: ``n**2 * n_units`` multiply-adds of the Gram; file_bytes: ``n * n_units * 4``.
        panels, tiles: of the stimulus-panel plan (0 when not planned); tile_read_bytes: bytes the tiles read.
        recompute_images: image forward passes the ``recompute`` route would run (0 when not planned).
        workers: workers the tiles could use.
    """

    route: str
    reason: str
    n: int
    n_units: int
    flops: int
    file_bytes: int
    panels: int = 0
    tiles: int = 0
    tile_read_bytes: int = 0
    recompute_images: int = 0
    workers: int = 0

    def describe(self) -> str:
        """One line for the attrs: the route, then why."""
        return f"{self.route} ({self.reason})"


def plan_gram_route(n: int, n_units: int, setting: GramSetting, in_memory: bool = False) -> GramRoute:
    """The route of one layer's (n, n) Gram (see the module docstring).

    Args:
        n, n_units: the layer's activations, (n, n_units) float32.
        setting: :class:`GramSetting`.
        in_memory: the layer's activations stayed in the driver's memory (``RDMOptions.memory_budget``).

    A layer whose three one-stimulus panels do not fit ``setting.panel_budget`` goes to the driver (said in
    the reason): the budget is only known to be too small once the layer's width is, after the forward pass.

    Examples:
        29 stimuli x 13 units, three 8-stimulus panels per task: panels of 8, 8, 8, 5 stimuli, 4 + 6 tiles,
        each reading its panels: (29 + 3 x 29) rows x 13 units x 4 bytes.

        >>> route = plan_gram_route(29, 13, GramSetting(workers=2, shared_storage=True, panel_budget=3 * 4 * 13 * 8))
        >>> route.route, route.panels, route.tiles, route.tile_read_bytes, route.recompute_images
        ('tiles', 4, 10, 6032, 116)
        >>> plan_gram_route(29, 13, GramSetting(workers=2, shared_storage=False, panel_budget=1e9)).route
        'driver'
    """
    from rsa_bridge.app.gram_tiles import tile_bytes
    from rsa_bridge.gram_panels import plan_panels

    n, n_units = int(n), int(n_units)
    base = dict(n=n, n_units=n_units, flops=n * n * n_units, file_bytes=n * n_units * 4)
    if in_memory:
        return GramRoute("driver", f"{base['file_bytes']} bytes fit the memory budget: one syrk here", **base)
    if not setting.shared_storage:
        return GramRoute("driver", "the workers cannot read the spill folder: read once out of core here", **base)
    if setting.workers < 1:
        return GramRoute("driver", "no dask worker is up: read once out of core here", **base)
    try:
        plan = plan_panels(n, n_units, setting.panel_budget)
    except RSABridgeError:  # found after the forward pass: the layer is still computed, here, not lost
        return GramRoute("driver", f"--gram-budget {setting.panel_budget:.0f} bytes cannot hold 3 one-stimulus "
                         f"panels of {n_units} units per tile task: read once out of core here", **base)
    rows = [b - a for a, b in plan.bounds]
    recompute = sum(rows[i] + (rows[j] if j != i else 0) for i, j in plan.tiles)
    read = tile_bytes(plan)
    reason = (f"{len(plan.tiles)} tiles of {len(plan.bounds)} panels <= {plan.panel_rows} stimuli on "
              f"{setting.workers} worker(s): {read} bytes read ({read / base['file_bytes']:.2f}x the file), "
              f"{base['flops'] / setting.workers:.3g} multiply-adds per worker; recompute would run "
              f"{recompute} image forwards instead")
    return GramRoute("tiles", reason, panels=len(plan.bounds), tiles=len(plan.tiles), tile_read_bytes=read,
                     recompute_images=recompute, workers=setting.workers, **base)


class RoutedGram:
    """A ``spilled_gram`` for :func:`extractors.streaming.stream_rdms` that asks :func:`plan_gram_route` per layer.

    ``tiles`` runs :func:`rsa_bridge.app.gram_tiles.dask_gram` on ``client``; ``driver`` the serial unit-block
    Gram. ``routes`` lists every choice in the order the layers ran.
    """

    def __init__(self, client: Any, setting: GramSetting, chunk_bytes: int | None = None):
        self.client, self.setting, self.chunk_bytes = client, setting, chunk_bytes
        self.routes: list[tuple[str, GramRoute]] = []
        self._lock = threading.Lock()

    def __call__(self, reader: Any, blocks: Any, precision: str, centring: Any, out: np.ndarray) -> dict:
        from rsa_bridge.app.gram_tiles import dask_gram
        from rsa_bridge.gram_blocks import unit_block_gram
        from rsa_bridge.gram_panels import plan_panels

        route = plan_gram_route(blocks.n, blocks.n_units, self.setting)
        with self._lock:
            self.routes.append((str(getattr(reader, "path", "?")).rsplit("/", 1)[-1], route))
        if route.route == "tiles":
            plan = plan_panels(blocks.n, blocks.n_units, self.setting.panel_budget)
            _, report = dask_gram(self.client, reader.path, plan, precision, centring=centring,
                                  block_units=reader.block_units, out=out)
            return {"path": f"tiles: dask tiles: {plan.describe()} on {report.workers} worker(s)",
                    "planned": report.planned_bytes, "read": report.read_bytes}
        extra = {} if self.chunk_bytes is None else {"chunk_bytes": self.chunk_bytes}
        unit_block_gram(reader, blocks, precision, centring=centring, out=out, **extra)
        return {"path": f"driver: out of core: {blocks.describe()}", "planned": blocks.planned_bytes,
                "read": reader.bytes_read}

    def attrs(self) -> dict:
        """``gram_routes`` (one ``file: route (reason)`` line per spilled layer, or a note) and the setting."""
        lines = [f"{name}: {route.describe()}" for name, route in self.routes]
        return {"gram_routes": "; ".join(lines) or "every layer in memory on the driver (memory budget)",
                "gram_route_setting": str(asdict(self.setting))}


_SPILLED: ContextVar[Callable[..., dict] | None] = ContextVar("rsa_bridge_spilled_gram", default=None)


def current_spilled_gram() -> Callable[..., dict] | None:
    """The ``spilled_gram`` that :func:`use_spilled_gram` set here (None: the serial out-of-core Gram)."""
    return _SPILLED.get()


@contextmanager
def use_spilled_gram(run: Callable[..., dict] | None) -> Iterator[None]:
    """Within the block, :func:`rsa_bridge.app.pipeline.network_rdms` passes ``run`` as ``spilled_gram``."""
    token = _SPILLED.set(run)
    try:
        yield
    finally:
        _SPILLED.reset(token)


def shared_storage(client: Any, spill_dir: Any) -> bool:
    """Whether the workers can read the driver's spill folder: ``--spill-dir`` given (storage every machine
    mounts at the same path), or every worker on this machine (a local cluster).

    Raises:
        RSABridgeError: workers on other machines and no ``--spill-dir`` (checked before any forward pass).
    """
    if spill_dir is not None:
        return True
    def local(address: str) -> bool:
        host = address.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
        return address.startswith("inproc://") or host in ("127.0.0.1", "localhost", "::1")

    if all(local(str(address)) for address in client.scheduler_info().get("workers", {})):
        return True
    raise RSABridgeError("--gram-tiles with workers on other machines needs --spill-dir DIR on storage every worker "
                         "mounts at the same path (NFS, Lustre, a shared SSD); give it, or drop --gram-tiles")
