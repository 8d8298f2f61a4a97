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
- ``recompute``: the same tiles, but each worker re-runs the forward pass over its tile's two panels instead of
  reading them (:mod:`rsa_bridge.app.gram_recompute`): ``recompute_images`` image forwards (the sum over tiles
  of their panels' rows, about (P + 1) n, fewer when a worker keeps its panels) and no activation I/O.

**Recompute or read** (:class:`RouteCosts`, known before the layer's Gram): the tiles read ``tile_read_bytes`` at
the workers' read rate (``--gram-read-rate``, else measured by one worker reading up to :data:`PROBE_BYTES` of the
layer's spill file, the quickest of :data:`PROBE_READS` reads), ``read_s = tile_read_bytes / rate``; recomputing
costs ``forward_s = images * t``, with ``images`` = ``recompute_images`` (``min(recompute_images, workers * n)``
when a worker's batch cache, the gram budget, holds the whole layer) and ``t`` the decode + forward seconds per
image measured on the driver's own pass (the whole pass, stopped after its last layer: an upper bound for earlier
layers). Both routes run the same products, so ``recompute`` wins when ``forward_s < read_s``, i.e. when one
image's forward pass is quicker than reading its ``n_units * 4`` bytes: slow shared storage, cheap networks, wide
layers. ``--gram-route tiles`` / ``recompute`` overrules the costs (``recompute`` is refused before the forward
pass when the workers cannot rebuild the network or read the images). The driver still spills a layer that goes to
``recompute``: the route is chosen from the forward time of that same pass, so the spill is written before the
choice (and stays the fallback).

The routes the planner chose are recorded in the results' attrs (``gram_routes``, one line per spilled layer
in the order they ran, plus the layers kept in memory in the model RDMs' ``gram_paths``).

Example: ``rsa-bridge compare --model alexnet --area IT --scheduler tcp://HOST:8786 --gram-tiles --spill-dir
/shared/scratch`` (docs/guide/scale.md, "Gram tiles on several machines").
"""
from __future__ import annotations

import math
import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Iterator

from rsa_bridge.errors import RSABridgeError

if TYPE_CHECKING:  # numpy only in annotations: the CLI reads ROUTE_CHOICES without importing it
    import numpy as np

#: route name -> what it does (the planner's vocabulary; docs and attrs use these words)
ROUTES = {
    "driver": "on the driver: in memory (syrk), or read once out of core when the workers cannot read the spill",
    "tiles": "one dask task per stimulus-panel tile, reading the spilled activations from shared storage",
    "recompute": "one dask task per tile, each worker re-running the forward pass over the tile's panels",
}
#: ``--gram-route`` choices: ``auto`` (by the costs) or one of the dask routes
ROUTE_CHOICES = ("auto", *(route for route in ROUTES if route != "driver"))
#: bytes of the spill file one worker reads to measure the read rate (when ``--gram-read-rate`` is not given)
PROBE_BYTES = 16 * 2 ** 20
#: reads of the probe; the quickest counts
PROBE_READS = 3


@dataclass(frozen=True)
class GramTiles:
    """``compare --gram-tiles`` as :func:`rsa_bridge.app.distributed.compare_many` takes it.

    Attributes:
        route: a :data:`ROUTE_CHOICES` (``--gram-route``); read_rate: bytes per second the workers read the
            spill at (``--gram-read-rate``; None: measured per layer by one worker).
    """

    route: str = "auto"
    read_rate: float | None = None


@dataclass(frozen=True)
class GramSetting:
    """What the planner knows about the cluster.

    Attributes:
        workers: dask workers up (0: none).
        shared_storage: whether the workers can read the driver's spill folder (a local cluster, or
            ``--spill-dir`` on storage every machine mounts at the same path).
        panel_budget: bytes of three stimulus panels per tile task (``RDMOptions.gram_budget``).
        route: a :data:`ROUTE_CHOICES` (``--gram-route``; ``auto``: by the costs).
        read_rate: bytes per second the workers read the spill at (``--gram-read-rate``; None: measured).
    """

    workers: int
    shared_storage: bool
    panel_budget: float
    route: str = "auto"
    read_rate: float | None = None

    def __post_init__(self) -> None:
        if self.route not in ROUTE_CHOICES:
            raise RSABridgeError(f"--gram-route is one of {', '.join(ROUTE_CHOICES)}, not {self.route!r}")
        if self.read_rate is not None and not self.read_rate > 0:
            raise RSABridgeError(f"--gram-read-rate is bytes per second > 0, not {self.read_rate!r}")


@dataclass(frozen=True)
class RouteCosts:
    """What the planner weighs between ``tiles`` and ``recompute`` for one layer.

    Attributes:
        forward_s_per_image: decode + forward seconds per image of the driver's pass (None: unknown).
        read_rate: bytes per second the workers read the spill at (None: unknown); read_rate_from: how it is
            known (``given``, ``measured ...``).
        blocked: why ``recompute`` cannot run ("" when it can).
    """

    forward_s_per_image: float | None = None
    read_rate: float | None = None
    read_rate_from: str = "unknown"
    blocked: str = ""


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
        read_s, forward_s: the costs weighed, seconds (0 when not weighed).
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
    read_s: float = 0.0
    forward_s: float = 0.0

    def describe(self) -> str:
        """One line for the attrs: the route, then why."""
        return f"{self.route} ({self.reason})"


def plan_gram_route(n: int, n_units: int, setting: GramSetting, in_memory: bool = False,
                    costs: RouteCosts | None = None) -> GramRoute:
    """The route of one layer's (n, n) Gram (see the module docstring).

    Args:
        n, n_units: the layer's activations, (n, n_units) float32.
        setting: :class:`GramSetting`.
        in_memory: the layer's activations stayed in the driver's memory (``RDMOptions.memory_budget``).
        costs: :class:`RouteCosts` to weigh ``recompute`` against ``tiles`` (None: ``tiles`` unless
            ``setting.route`` says ``recompute``).

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

        At 1 ms per image forward, the 116 image forwards take 0.116 s; the 6032 bytes at 10 kB/s take 0.6 s:

        >>> slow = RouteCosts(forward_s_per_image=1e-3, read_rate=1e4, read_rate_from="given")
        >>> plan_gram_route(29, 13, GramSetting(2, True, 3 * 4 * 13 * 8), costs=slow).route
        'recompute'
    """
    from rsa_bridge.app.gram_tiles import tile_bytes
    from rsa_bridge.gram_panels import plan_panels

    n, n_units = int(n), int(n_units)
    base = dict(n=n, n_units=n_units, flops=n * n * n_units, file_bytes=n * n_units * 4)
    if in_memory:
        return GramRoute("driver", f"{base['file_bytes']} bytes fit the memory budget: one syrk here", **base)
    if not setting.shared_storage and setting.route != "recompute":  # recompute reads no spill
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
    shape = (f"{len(plan.tiles)} tiles of {len(plan.bounds)} panels <= {plan.panel_rows} stimuli on "
             f"{setting.workers} worker(s): ")
    reading = f"{read} bytes read ({read / base['file_bytes']:.2f}x the file)"
    # a worker whose batch cache (the gram budget) holds the whole layer runs each image at most once
    kept = min(recompute, setting.workers * n) if base["file_bytes"] <= setting.panel_budget else recompute
    route, weighed, read_s, forward_s = _weigh(setting, costs, read, kept)
    forwards = f"{kept} image forwards" + ("" if kept == recompute else f" ({recompute} without the workers' caches)")
    if route == "recompute":
        reason = f"{shape}{forwards} instead of {reading}; {weighed}"
    else:
        reason = (f"{shape}{reading}, {base['flops'] / setting.workers:.3g} multiply-adds per worker; recompute "
                  f"would run {forwards} instead{'; ' + weighed if weighed else ''}")
    return GramRoute(route, reason, panels=len(plan.bounds), tiles=len(plan.tiles), tile_read_bytes=read,
                     recompute_images=recompute, workers=setting.workers, read_s=read_s, forward_s=forward_s, **base)


def _weigh(setting: GramSetting, costs: RouteCosts | None, read: int, images: int) -> tuple[str, str, float, float]:
    """(route, why, read seconds, forward seconds) between ``tiles`` and ``recompute``."""
    if setting.route == "recompute":
        return "recompute", "asked for (--gram-route recompute)", 0.0, 0.0
    if setting.route == "tiles":
        return "tiles", "asked for (--gram-route tiles)", 0.0, 0.0
    if costs is None:
        return "tiles", "", 0.0, 0.0
    if costs.blocked:
        return "tiles", f"recompute cannot run: {costs.blocked}", 0.0, 0.0
    if costs.forward_s_per_image is None or costs.read_rate is None:
        return "tiles", "recompute not weighed: forward time or read rate unknown", 0.0, 0.0
    read_s, forward_s = read / costs.read_rate, images * costs.forward_s_per_image
    sums = (f"{images} x {costs.forward_s_per_image * 1e3:.3g} ms = {forward_s:.3g} s of forwards vs {read} bytes "
            f"at {costs.read_rate:.3g} B/s ({costs.read_rate_from}) = {read_s:.3g} s of reads")
    if forward_s < read_s:
        return "recompute", f"cheaper: {sums}", read_s, forward_s
    return "tiles", f"reading is cheaper: {sums}", read_s, forward_s


def _probe_read(path: str, n: int, n_units: int, block_units: int | None, rows: int) -> tuple[int, float]:
    """On a worker: (bytes, seconds) of reading the first ``rows`` stimuli of a spill file, the quickest of
    :data:`PROBE_READS` reads into one buffer (a busy moment or the buffer's first touch is not the storage)."""
    import numpy as np

    from rsa_bridge.gram_panels import PanelReader

    reader = PanelReader(path, n, n_units, block_units)
    buffer = np.empty(rows * n_units, np.float32)
    best = math.inf
    for _ in range(PROBE_READS):
        t0 = time.perf_counter()
        reader.read(0, rows, buffer=buffer)
        best = min(best, time.perf_counter() - t0)
    return reader.bytes_read // PROBE_READS, best


class RoutedGram:
    """A ``spilled_gram`` for :func:`extractors.streaming.stream_rdms` that asks :func:`plan_gram_route` per layer.

    ``tiles`` runs :func:`rsa_bridge.app.gram_tiles.dask_gram` on ``client``; ``recompute``
    :func:`rsa_bridge.app.gram_recompute.recompute_gram` (``bind_pass`` gets the pass before its forward
    pass: the network and images the workers need, and its measured forward time); ``driver`` the serial
    unit-block Gram. ``routes`` lists every choice in the order the layers ran. ``close()`` frees the workers.
    """

    def __init__(self, client: Any, setting: GramSetting, chunk_bytes: int | None = None):
        self.client, self.setting, self.chunk_bytes = client, setting, chunk_bytes
        self.routes: list[tuple[str, GramRoute]] = []
        self._lock = threading.Lock()
        self._bound: Any = None
        self._job: Any = None
        self._shared: Any = None
        self._failed = ""

    def bind_pass(self, bound: Any) -> None:
        """The pass about to run (:class:`extractors.streaming.SpilledPass`). With ``--gram-route recompute``
        the workers rebuild the network and check the images now, before the forward pass.

        Raises:
            RSABridgeError: ``--gram-route recompute`` and the pass cannot be recomputed on the workers.
        """
        from rsa_bridge.app.gram_recompute import recompute_blocked

        self.close()
        self._bound, self._failed = bound, ""
        if self.setting.route == "recompute":
            why = recompute_blocked(bound, "") or (bound.sketched and "count-sketched layers (--reduce-units)")
            if why:
                raise RSABridgeError(f"--gram-route recompute cannot run: {why}; use --gram-route tiles or auto")
            self._prepare()

    def _prepare(self) -> None:
        """Send the job to the workers and have each rebuild the network and check the images (raises)."""
        from rsa_bridge.app.gram_recompute import check_workers, recompute_job

        job = recompute_job(self._bound, self.setting.panel_budget)
        check_workers(self.client, job)
        self._job, self._shared = job, self.client.scatter(job, broadcast=True, hash=False)  # once per pass

    def close(self) -> None:
        """Drop the recompute job's network and cached activations on the workers."""
        from rsa_bridge.app.gram_recompute import release

        if self._job is not None:
            release(self.client, self._job)
            self._job = self._shared = None

    def _costs(self, reader: Any, blocks: Any, layer: str) -> RouteCosts | None:
        from rsa_bridge.app.gram_recompute import recompute_blocked

        if self.setting.route != "auto" or not self.setting.shared_storage or self.setting.workers < 1:
            return None  # forced, or the driver's
        blocked = recompute_blocked(self._bound, layer) or self._failed
        forward = None
        if self._bound is not None and self._bound.forward_s is not None:
            forward = self._bound.forward_s / blocks.n
        if blocked:
            return RouteCosts(forward, blocked=blocked)
        if self.setting.read_rate is not None:
            return RouteCosts(forward, self.setting.read_rate, "given: --gram-read-rate")
        rows = max(1, min(blocks.n, PROBE_BYTES // (4 * blocks.n_units)))
        got, seconds = self.client.submit(_probe_read, str(reader.path), blocks.n, blocks.n_units,
                                          reader.block_units, rows, pure=False).result()
        return RouteCosts(forward, got / max(seconds, 1e-9), f"measured: a worker read {got} bytes in {seconds:.3g} s")

    def __call__(self, reader: Any, blocks: Any, precision: str, centring: Any, out: np.ndarray,
                 layer: str = "") -> dict:
        from rsa_bridge.progress import progress_bar

        costs = self._costs(reader, blocks, layer)
        route = plan_gram_route(blocks.n, blocks.n_units, self.setting, costs=costs)
        if route.route == "recompute" and self._job is None:
            try:
                self._prepare()
            except RSABridgeError as err:  # auto: the costs chose it, the workers cannot: read the spill instead
                if self.setting.route == "recompute":
                    raise
                self._failed = str(err)
                route = plan_gram_route(blocks.n, blocks.n_units, self.setting, costs=replace(costs, blocked=str(err)))
        name = str(getattr(reader, "path", "?")).rsplit("/", 1)[-1]
        with self._lock:
            self.routes.append((name, route))
        bar = progress_bar(total=max(1, route.tiles), unit="tile", desc=f"{layer or name} Gram: {route.describe()}")
        try:
            return self._run(route, reader, blocks, precision, centring, out, layer, bar)
        finally:
            bar.close()

    def _run(self, route: GramRoute, reader: Any, blocks: Any, precision: str, centring: Any, out: np.ndarray,
             layer: str, bar: Any) -> dict:
        from rsa_bridge.app.gram_recompute import recompute_gram
        from rsa_bridge.app.gram_tiles import dask_gram
        from rsa_bridge.gram_blocks import unit_block_gram
        from rsa_bridge.gram_panels import plan_panels

        if route.route in ("tiles", "recompute"):
            plan = plan_panels(blocks.n, blocks.n_units, self.setting.panel_budget)
        if route.route == "recompute":
            _, done = recompute_gram(self.client, self._job, layer, plan, precision, centring=centring, out=out,
                                     progress=bar, shared_job=self._shared)
            return {"path": f"recompute: dask tiles: {len(plan.bounds)} panels of <= {plan.panel_rows} stimuli, "
                            f"{done.tiles} tiles, {done.images} image forwards ({done.planned_images} without the "
                            f"workers' caches; {done.forward_s:.3g} s getting panels, {done.product_s:.3g} s of "
                            f"products, summed over tiles) on {done.workers} worker(s); network: {self._job.network}",
                    "planned": 0, "read": 0}
        if route.route == "tiles":
            _, report = dask_gram(self.client, reader.path, plan, precision, centring=centring,
                                  block_units=reader.block_units, out=out)
            bar.update(route.tiles)
            return {"path": f"tiles: dask tiles: {plan.describe()} on {report.workers} worker(s)",
                    "planned": report.planned_bytes, "read": report.read_bytes}
        extra = {} if self.chunk_bytes is None else {"chunk_bytes": self.chunk_bytes}
        unit_block_gram(reader, blocks, precision, centring=centring, out=out, **extra)
        bar.update(1)
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
                         "mounts at the same path (NFS, Lustre, a shared SSD); give it, add --gram-route recompute "
                         "(the workers then read the stimuli, not the spill), or drop --gram-tiles")
