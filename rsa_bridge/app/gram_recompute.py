"""The ``recompute`` Gram route: each dask tile re-runs the forward pass over its two stimulus panels.

Under ``compare --scheduler ADDRESS --gram-tiles`` a spilled layer's (n, n) Gram is one dask task per tile
(i, j), i <= j, of a :class:`rsa_bridge.gram_panels.PanelPlan`. The ``tiles`` route
(:mod:`rsa_bridge.app.gram_tiles`) reads panels i and j from the spill file on shared storage; this route
instead gets the network on the worker and recomputes the panels' activations:

1. **The network** (:class:`RecomputeJob`, sent once to each worker and kept there for the whole pass):
   a torchvision model (``extractors.load_model``: ``weights`` an enum member, ``none`` with its seed, or a
   state-dict file on shared storage) is *rebuilt by name* on the worker and refused unless its state-dict
   SHA-256 equals the driver's; every other module (a user's ``nn.Module``, a ``timm:``/``hf:``/plugin
   model) *travels pickled* by dask (cloudpickle), refused on the driver when it does not pickle.
2. **The images**: the stimulus set (its paths must be readable by every worker at the same path: checked
   on each worker, one line naming the first unreadable file) or an in-memory image list/tensor (pickled).
3. **The pass**: the worker builds the same extraction plan (:func:`extractors.extract.prepare_plan`: the
   same preprocessing, batch size, memory layout, CPU float32) for the one layer and runs the *driver's
   batches* that cover a panel (:func:`extractors.extract.forward_rows`), so each stimulus goes through the
   network in the same batch as on the driver and its activations are the driver's, bit for bit on one
   machine. A worker keeps the batches it computed (up to ``cache_bytes``, oldest dropped first), so its
   later tiles reuse them; the forward passes of one worker run one at a time (hooks are per module).
4. **The tile**: :func:`rsa_bridge.gram_panels.tile_product` of the two panels with the driver's centring,
   written into the (n, n) Gram by the client, which mirrors the upper half: the same products as the
   ``tiles`` route, so the Gram equals the serial one to float64 rounding.

Only CPU passes are recomputed (a driver on an accelerator would give other rounding) and only layers
without a count sketch (``--reduce-units``); the planner (:mod:`rsa_bridge.app.gram_routes`) says why when
it cannot choose this route.

Example (a 2-process local cluster, a tiny network)::

    job = recompute_job(bound_pass, cache_bytes=2**30)     # bound_pass: extractors.streaming.SpilledPass
    check_workers(client, job)                              # one line if a worker cannot rebuild or read
    gram, report = recompute_gram(client, job, "features.0", plan)
"""
from __future__ import annotations

import os
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.gram_panels import (
    NO_CENTRING,
    Centring,
    PanelPlan,
    mirror_upper,
    tile_product,
)


@dataclass(frozen=True)
class RecomputeJob:
    """What every tile task of one forward pass needs (one copy per worker).

    Attributes:
        token: names the pass (the workers' caches are keyed by it).
        model_name, weights, seed, state_sha256, extra: a torchvision model rebuilt by name
            (``module`` None): its ``load_model`` arguments, the driver's state-dict SHA-256 it must match and
            ``rsa_bridge_info.extra`` (token pooling ...).
        module: the driver's ``nn.Module`` itself when it travels pickled (not rebuildable by name).
        images, transform, ids: the stimuli as given to the pass, its explicit transform and its stimulus ids.
        layers: layer name -> module path of the pass.
        batch_size, channels_last: the driver's batches and memory layout.
        cache_bytes: float32 activation bytes a worker keeps between its tiles.
    """

    token: str
    model_name: str
    weights: str
    seed: int | None
    state_sha256: str
    extra: dict
    module: Any
    images: Any
    transform: Any
    ids: tuple
    layers: dict
    batch_size: int
    channels_last: bool
    cache_bytes: float

    @property
    def network(self) -> str:
        """How the network reaches the workers, for provenance."""
        if self.module is None:
            return f"{self.model_name} ({self.weights}) rebuilt by name, state SHA-256 {self.state_sha256[:12]} checked"
        return f"{self.model_name} pickled by dask"


@dataclass(frozen=True)
class RecomputeReport:
    """What the recomputed tiles of one layer cost.

    Attributes:
        tiles: tasks run; planned_images: image forwards without any cache (:func:`planned_images`);
        images: image forwards the workers ran (their caches make it smaller); forward_s, product_s: summed
        seconds (worker wall clock); workers: workers that ran at least one tile.
    """

    tiles: int
    planned_images: int
    images: int
    forward_s: float
    product_s: float
    workers: int


def planned_images(plan: PanelPlan) -> int:
    """Image forward passes of the tiles of ``plan`` when no worker keeps a panel: each tile runs its panel(s)."""
    from rsa_bridge.app.gram_tiles import tile_rows

    return tile_rows(plan)


def recompute_blocked(bound: Any, layer: str) -> str:
    """Why ``layer`` of the pass ``bound`` (:class:`extractors.streaming.SpilledPass`) cannot be recomputed on the
    workers ("" when it can, as far as the driver knows)."""
    if bound is None:
        return "the forward pass was not bound to the planner"
    if bound.plan.device.type != "cpu":
        return f"the driver's pass ran on {bound.plan.device}; workers recompute on the CPU (other rounding)"
    if layer in bound.sketched:
        return "the layer is count-sketched (--reduce-units)"
    return ""


def recompute_job(bound: Any, cache_bytes: float) -> RecomputeJob:
    """The :class:`RecomputeJob` of a pass (an :class:`extractors.streaming.SpilledPass`).

    Raises:
        RSABridgeError: the model can neither be rebuilt by name nor pickled for the workers.
    """
    from extractors.provenance import USER_MODULE, state_dict_sha256

    plan = bound.plan
    info = plan.info
    by_name = info.source == "torchvision" and info.weights != USER_MODULE and bool(info.state_sha256)
    module = None
    sha = ""
    if by_name:
        sha = state_dict_sha256(plan.model)
        by_name = sha == info.state_sha256  # changed since it was loaded: a user module, sent as it is
    if not by_name:
        module = plan.model
        try:
            import cloudpickle

            cloudpickle.dumps(module)
        except Exception as err:  # noqa: BLE001 - any pickling failure: the module cannot reach the workers
            raise RSABridgeError(f"the model {info.name!r} cannot be rebuilt on the workers: it is not a "
                                 f"torchvision model loaded by name and does not pickle ({type(err).__name__}: "
                                 f"{str(err).splitlines()[0] if str(err) else ''}); use --gram-route tiles") from None
    return RecomputeJob(uuid.uuid4().hex, info.name, str(info.weights), info.seed, sha, dict(info.extra), module,
                        bound.images, bound.transform, tuple(plan.inputs.ids), dict(plan.layers), int(plan.batch_size),
                        bool(plan.channels_last), float(cache_bytes))


# ---- on the worker -------------------------------------------------------------------------------------------

@dataclass
class _Worker:
    """One worker's state for one pass: the network, a plan per layer, the cached batches."""

    model: Any
    plans: dict = field(default_factory=dict)
    batches: OrderedDict = field(default_factory=OrderedDict)
    held: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


_WORKERS: dict[str, _Worker] = {}
_WORKERS_LOCK = threading.Lock()


def _unreadable(images: Any) -> str | None:
    """The first image path this process cannot read (None: all readable, or images that travel in memory)."""
    paths = getattr(images, "paths", None)
    if paths is None and isinstance(images, (list, tuple)):
        paths = [p for p in images if isinstance(p, (str, os.PathLike))]
    for path in paths or ():
        if not os.access(path, os.R_OK):
            return os.fspath(path)
    return None


def _rebuild(job: RecomputeJob) -> Any:
    if job.module is not None:
        return job.module
    from extractors import load_model
    from extractors.models import DEFAULT_SEED
    from extractors.provenance import state_dict_sha256

    model = load_model(job.model_name, job.weights, seed=DEFAULT_SEED if job.seed is None else job.seed)
    got = state_dict_sha256(model)
    if got != job.state_sha256:
        raise RSABridgeError(f"{job.model_name} ({job.weights}) rebuilt on a worker has state-dict SHA-256 {got[:12]}, "
                             f"not the driver's {job.state_sha256[:12]}: give the workers the same weights files "
                             "(TORCH_HOME) and library versions, or use --gram-route tiles")
    model.rsa_bridge_info.extra.update(job.extra)
    return model


def _worker(job: RecomputeJob) -> _Worker:
    with _WORKERS_LOCK:
        state = _WORKERS.get(job.token)
        if state is None:
            missing = _unreadable(job.images)
            if missing is not None:
                raise RSABridgeError(f"a dask worker cannot read the stimulus image {missing!r}: put the stimuli on "
                                     "storage every worker mounts at the same path, or use --gram-route tiles")
            state = _WORKERS[job.token] = _Worker(_rebuild(job))
    return state


def _check(job: RecomputeJob) -> str:
    """On each worker: "" when it can recompute, else the one-line reason."""
    try:
        _worker(job)
    except RSABridgeError as err:
        return str(err)
    return ""


def _release(token: str) -> None:
    with _WORKERS_LOCK:
        _WORKERS.pop(token, None)


def _rows(job: RecomputeJob, state: _Worker, layer: str, start: int, stop: int) -> tuple[np.ndarray, int]:
    """Stimuli ``start:stop`` of ``layer`` as float32 (rows, units), from the driver's batches; images computed."""
    from extractors.extract import forward_rows, prepare_plan
    from extractors.feed import FeedOptions

    size = job.batch_size
    parts, computed = [], 0
    with state.lock:
        plan = state.plans.get(layer)
        if plan is None:
            plan = state.plans[layer] = prepare_plan(
                state.model, job.images, [job.layers[layer]], size, "cpu", job.transform, False, list(job.ids),
                FeedOptions(decode_workers=0, channels_last=job.channels_last))
            if tuple(plan.inputs.ids) != job.ids:
                raise RSABridgeError("the worker's stimuli are not the driver's (ids or order differ)")
        for k in range(start // size, (stop - 1) // size + 1):
            a, b = k * size, min((k + 1) * size, len(job.ids))
            rows = state.batches.get((layer, k))
            if rows is None:
                rows = next(iter(forward_rows(plan, a, b).values())).numpy()
                computed += b - a
                state.batches[(layer, k)] = rows
                state.held += rows.nbytes
                while state.held > job.cache_bytes and len(state.batches) > 1:
                    _, old = state.batches.popitem(last=False)
                    state.held -= old.nbytes
            parts.append(rows[max(start, a) - a:min(stop, b) - a])
    return np.concatenate(parts) if len(parts) > 1 else parts[0], computed


def _tile(job: RecomputeJob, layer: str, bounds: tuple, ij: tuple[int, int], precision: str,
          centring: Centring) -> dict:
    """One task: tile (i, j) of ``layer``'s Gram from recomputed activations."""
    i, j = ij
    state = _worker(job)
    t0 = time.perf_counter()
    a, done_a = _rows(job, state, layer, *bounds[i])
    b, done_b = (None, 0) if i == j else _rows(job, state, layer, *bounds[j])
    t1 = time.perf_counter()
    tile = tile_product(a, b, precision, centring=centring, rows=(bounds[i][0], bounds[j][0]))
    return {"ij": ij, "tile": tile, "images": done_a + done_b, "forward_s": t1 - t0,
            "product_s": time.perf_counter() - t1, "worker": os.getpid()}


# ---- on the client -------------------------------------------------------------------------------------------

def check_workers(client: Any, job: RecomputeJob) -> None:
    """Every worker rebuilds the network and checks the stimulus files (kept for the tiles).

    Raises:
        RSABridgeError: the first worker's reason, in one line.
    """
    answers = client.run(_check, job)
    for address, reason in sorted(answers.items()):
        if reason:
            raise RSABridgeError(f"worker {address}: {reason}")


def release(client: Any, job: RecomputeJob) -> None:
    """Drop the pass's network and cached batches on every worker."""
    client.run(_release, job.token)


def recompute_gram(client: Any, job: RecomputeJob, layer: str, plan: PanelPlan, precision: str = "float64", *,
                   centring: Centring = NO_CENTRING, out: np.ndarray | None = None, progress: Any = None,
                   shared_job: Any = None) -> tuple[np.ndarray, RecomputeReport]:
    """The (n, n) float64 Gram of ``layer`` (a name of ``job.layers``), one dask task per tile of ``plan``,
    each recomputing its panels' activations (see the module docstring).

    Args:
        client: a ``dask.distributed.Client``; job: :func:`recompute_job`; plan: the layer's
            :func:`rsa_bridge.gram_panels.plan_panels` (``plan.n`` = the pass's stimuli).
        precision, centring: as :func:`rsa_bridge.gram_panels.tile_product`; out: optional C-ordered (n, n)
            float64 array for the result; progress: a bar updated by one per finished tile; shared_job: ``job``
            already scattered to every worker (a future; None: scattered here, for this layer only).

    Returns:
        (gram, :class:`RecomputeReport`).

    Raises:
        RSABridgeError: an unknown layer or a plan over other stimuli (before any task); a worker's refusal.
    """
    if layer not in job.layers or plan.n != len(job.ids):
        raise RSABridgeError(f"layer {layer!r} over {plan.n} stimuli is not in the recompute job "
                             f"({', '.join(job.layers)} over {len(job.ids)} stimuli)")
    n = plan.n
    gram = np.empty((n, n), dtype=np.float64) if out is None else out
    if shared_job is None:
        shared_job = client.scatter(job, broadcast=True, hash=False)
    shared = client.scatter(centring, broadcast=True, hash=False) if centring.active else centring
    futures = [client.submit(_tile, shared_job, layer, plan.bounds, ij, precision, shared, pure=False)
               for ij in plan.tiles]
    from rsa_bridge.app.gram_tiles import collect_tiles

    sums, workers = collect_tiles(futures, plan, gram, ("images", "forward_s", "product_s"), progress)
    report = RecomputeReport(len(futures), planned_images(plan), int(sums["images"]), float(sums["forward_s"]),
                             float(sums["product_s"]), workers)
    return mirror_upper(gram, step=plan.panel_rows), report
