"""Layer RDMs straight from a forward pass, without holding any layer's (stimulus x unit) matrix in memory.

An (n x n) Gram matrix over stimuli needs the product of every batch with every other batch, so a
true one-pass accumulator would have to keep the earlier batches anyway. rsa-bridge is honest about
that and runs in two phases per call:

1. **Extraction** (one forward pass per batch, stopped after the last requested layer): each layer's
   batch is checked for NaN/inf, its row sums (for ``correlation``) are accumulated in float64, it is
   optionally reduced to K units (below), and its float32 values are appended to a per-layer *store*.
   Small layers are stored in memory (on the extraction device) while their total stays within
   ``memory_budget`` bytes (smallest layers first); the others are written to a file in a temporary
   folder (deleted when the call ends, also on errors) as unit blocks (all stimuli x w units, row-major),
   one contiguous write per batch and block. Column sums are accumulated too for the unit-centred
   metrics (``euclidean``, ``sqeuclidean``).
2. **RDMs**, one layer at a time, by :mod:`rsa_bridge.gram_panels`: a layer in memory is one BLAS
   ``syrk`` (half the flops of ``X @ Y.T``) on a view of its activations; a spilled layer is read once, as
   unit blocks sized from ``gram_budget`` (:mod:`rsa_bridge.gram_blocks`: one block multiplied, the next read
   ahead by a reader thread), each added by ``syrk`` to the (n, n) Gram. The I/O is planned up front: the
   attrs ``gram_paths``, ``gram_io_planned_bytes`` and ``gram_io_read_bytes`` say what ran and what was read.
   Then the O(n^2) finish (:class:`rsa_bridge.gram.GramAccumulator`). A layer's store is deleted as soon as
   its RDM is done.
   Activations held in memory on an accelerator keep the torch accumulator there.

Peak memory is therefore: the model, its activations for one batch, one (n x n) Gram and the output
(L x n x n) RDMs, plus ``memory_budget`` and, for a spilled layer, ``gram_budget``. The disk holds at
most the spilled layers' float32 activations (n x p x 4 bytes each); reads come back through the OS page cache,
which the kernel can reclaim and which is not part of the process's resident memory.

**Unit reduction** (``reduce_units=K``, for very wide layers): every layer with more than K units is
mapped batch by batch to K units by a seeded *count sketch* (feature hashing; Weinberger et al. 2009):
unit u is added with a random sign to one of K random buckets, ``R`` is p x K with one +-1 per row.
``E[<Rx, Ry>] = <x, y>``, so Gram entries, norms and distances are unbiased with a relative error of
order ``1/sqrt(K)``. For ``correlation`` the rows are centred *before* the sketch and the cosine of
the sketched rows is taken (centring after a sketch would change the measure). The sketch of layer
``name`` is drawn from ``numpy.random.SeedSequence([seed, crc32(name)])``; the attrs record it.
"""
from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
from torch import nn

from extractors.extract import prepare_plan, run_plan
from extractors.feed import FeedOptions
from rsa_bridge.gram import GramAccumulator, block_width, check_finite_rows, check_metric
from rsa_bridge.gram_blocks import BlockPlan, plan_blocks, unit_block_gram
from rsa_bridge.gram_panels import NO_CENTRING, Centring, PanelReader, symmetric_gram
# DEFAULT_MEMORY_BUDGET: re-exported from its old place
from rsa_bridge.options import (AUTO_MEMORY_BUDGET, DEFAULT_MEMORY_BUDGET, RDMOptions,  # noqa: F401
                                options_from_keywords)
from extractors.inputs import Transform
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.progress import progress_bar
from rsa_bridge.model_rdms import LAYER
from rsa_bridge.provenance import clean_attrs, package_version
from rsa_bridge.rdm import COL, ROW
from rsa_bridge.rdm_store import RDMStore
from rsa_bridge.spill import spill_folder
from rsa_bridge.time_steps import TIME_STEP
from rsa_bridge.budget import check_activation_disk
from rsa_bridge import timing
from extractors.sketch import SKETCH_METHOD, CountSketch  # noqa: F401  (also importable from here)


class _MemoryStore:
    """A layer's (n, width) float32 activations in memory on ``device``."""

    def __init__(self, n: int, width: int, device: torch.device) -> None:
        self.data = torch.empty((n, width), dtype=torch.float32, device=device)

    def write(self, start: int, stop: int, batch: torch.Tensor) -> None:
        self.data[start:stop] = batch

    def blocks(self, width: int) -> Iterator[torch.Tensor]:
        for u0 in range(0, self.data.shape[1], width):
            yield self.data[:, u0:u0 + width]

    def close(self) -> None:
        self.data = torch.empty(0)


class _DiskStore:
    """A layer's (n, width) float32 activations in one file as consecutive unit blocks of ``plan.block_units``.

    Block k (units u0..u1) occupies bytes ``[4 n u0, 4 n u1)`` as a row-major (n, u1 - u0) array, so a batch
    writes one contiguous piece per block, the Gram reads each block in one go
    (:func:`rsa_bridge.gram_blocks.unit_block_gram`) and a stimulus panel is one piece per block. Plain reads
    and writes (no memory map), so the file's pages never count as this process's memory.
    """

    def __init__(self, folder: Path, index: int, plan: BlockPlan) -> None:
        self.path = folder / f"layer{index:03d}.f32"
        self.plan, self.n, self.width = plan, plan.n, plan.n_units
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)

    def write(self, start: int, stop: int, batch: torch.Tensor) -> None:
        rows = batch.detach().to("cpu").numpy()
        for u0, u1 in self.plan.blocks:
            piece = np.ascontiguousarray(rows[:, u0:u1], dtype=np.float32)
            view, offset = memoryview(piece).cast("B"), 4 * (self.n * u0 + start * (u1 - u0))
            while view:
                written = os.pwrite(self.fd, view, offset)
                view, offset = view[written:], offset + written

    def reader(self) -> PanelReader:
        return PanelReader(self.path, self.n, self.width, self.plan.block_units)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        self.path.unlink(missing_ok=True)


@dataclass
class SpilledPass:
    """What a ``spilled_gram`` that has a ``bind_pass`` method is told of the pass (the ``recompute`` Gram route,
    :mod:`rsa_bridge.app.gram_recompute`): given before the forward pass, ``forward_s`` filled in after it.

    Attributes:
        images, transform: as given to :func:`stream_rdms`; plan: its extraction plan (model, inputs, layers,
            batch size, device, memory layout); sketched: layers reduced by a count sketch.
        forward_s: seconds of decoding and forward passes over the ``n`` stimuli, measured on this pass (the
            spill writes and sums excluded); None before the pass.
    """

    images: Any
    transform: Transform | None
    plan: Any
    sketched: frozenset
    forward_s: float | None = None


def float64_sum(values: torch.Tensor, dim: int, scratch: list) -> torch.Tensor:
    """``values.sum(dim=dim, dtype=torch.float64)``, the same bits, through a float64 copy in a buffer reused from
    call to call (``scratch``: a list holding it). torch makes a fresh float64 copy per call instead, whose
    allocation and page faults cost about 3x the sum itself (a 64 x 193,600 batch: 24 instead of 85 ms)."""
    if not scratch or scratch[0].numel() < values.numel() or scratch[0].device != values.device:
        scratch[:] = [torch.empty(values.numel(), dtype=torch.float64, device=values.device)]
    return scratch[0][:values.numel()].view(values.shape).copy_(values).sum(dim=dim)


def device_budget(budget: float, device: torch.device, given: bool) -> float:
    """The activation budget on ``device``: an automatic budget (``given`` False) on a CUDA device is at most a
    quarter of that device's free memory (it was sized from the host's); a given one is kept as it is."""
    if given or device.type != "cuda":
        return budget
    return min(budget, 0.25 * float(torch.cuda.mem_get_info(device)[0]))


def _centring(center: str | None, means: torch.Tensor | None, col_sums: torch.Tensor | None, n: int) -> Centring:
    """The :class:`rsa_bridge.gram_panels.Centring` of a metric's centring (``row``, ``column`` or None)."""
    if center == "row":
        return Centring(row_means=means.cpu().numpy())
    if center == "column":
        return Centring(col_means=(col_sums / n).cpu().numpy())
    return NO_CENTRING


def _layer_gram(store: Any, square: np.ndarray, precision: str, centring: Centring, options: RDMOptions,
                spilled_gram: Callable[..., dict] | None = None, layer: str = "") -> dict:
    """Fill ``square`` with a CPU layer's full symmetric float64 Gram; return what it read and computed."""
    if isinstance(store, _MemoryStore):
        x = store.data.numpy()
        symmetric_gram(x, precision, out=square, centring=centring, chunk_bytes=options.chunk_bytes)
        return {"path": "in memory (syrk)", "flops": x.shape[0] ** 2 * x.shape[1], "planned": 0, "read": 0}
    reader = store.reader()
    if spilled_gram is not None:
        return {**spilled_gram(reader, store.plan, precision, centring, square, layer=layer),
                "flops": store.n ** 2 * store.width}
    unit_block_gram(reader, store.plan, precision, centring=centring, out=square, chunk_bytes=options.chunk_bytes)
    return {"path": f"out of core: {store.plan.describe()}", "flops": store.n ** 2 * store.width,
            "planned": store.plan.planned_bytes, "read": reader.bytes_read}


def _linear_kernel(gram: torch.Tensor, metric: str, means: torch.Tensor | None, n_units: int) -> np.ndarray:
    """``H X X^T H`` (n, n) float64 from an accumulator's Gram (upper-triangle panels filled) before its finish.

    correlation Grams hold row-centred patterns, ``G_rc = G - p m m^T`` (m the row means, p units), so
    ``G = G_rc + p m m^T``; cosine Grams are uncentred; (sq)euclidean ones are already unit-centred.
    """
    upper = torch.triu(gram)
    g = (upper + torch.triu(gram, 1).T).cpu().numpy().astype(np.float64, copy=True)
    if metric == "correlation" and means is not None:
        m = means.cpu().numpy().astype(np.float64)
        g += n_units * np.outer(m, m)
    if metric in ("correlation", "cosine"):
        col = g.mean(axis=0)
        g = g - col[None, :] - col[:, None] + col.mean()
    return (g + g.T) / 2


def stream_rdms(
    model: nn.Module,
    images: Any,
    layers: Sequence[str] | str | None = None,
    options: RDMOptions | None = None,
    *,
    transform: Transform | None = None,
    progress: bool | None = None,
    stimulus_ids: Sequence[str] | None = None,
    kernels_out: dict | None = None,
    out_store: RDMStore | None = None,
    spilled_gram: Callable[..., dict] | None = None,
    **old_keywords: Any,
) -> xr.DataArray | RDMStore:
    """RDMs of ``layers`` of ``model`` for ``images``, streaming activations (see the module docstring).

    Args:
        model, images, layers, transform, progress, stimulus_ids: as in :func:`extractors.extract`
            (progress: tqdm bars; None = see :mod:`rsa_bridge.progress`).
        options: :class:`rsa_bridge.options.RDMOptions` (default ``RDMOptions()``): metric, precision
            (``"float64"`` equals :func:`rsa_bridge.rdm.compute_rdm`; ``"float32"`` sums float32 block products
            in float64, ~1e-6 absolute error), ``reduce_units``/``reduce_seed`` (sketch layers wider than K
            units), ``memory_budget`` (bytes of float32 activations kept in memory on ``device`` rather than
            on disk; None = a quarter of the memory available, 64 MiB to 2 GiB
            (:func:`rsa_bridge.budget.auto_memory_budget`), ``math.inf`` = never spill, 0 = spill every layer),
            ``batch_size``, ``device``, ``spill_dir``, ``chunk_bytes``.
        kernels_out: a dict that, when given, receives per layer name the (n, n) float64 linear Gram of the
            unit-centred activations, ``H X X^T H`` (for CKA and linear predictivity, :mod:`rsa_bridge.measures`),
            recovered from the same accumulated Gram before its finish (no second pass); with
            ``reduce_units`` it is the Gram of the sketched (row-centred, for correlation) units.
        out_store: an :class:`rsa_bridge.rdm_store.RDMStore` over the same stimulus ids: each finished layer RDM
            is put there (with its ``module_path`` and ``n_units``) and the store is returned with the attrs
            below, so only one (n, n) Gram/RDM exists at a time instead of the (L, n, n) array.
        spilled_gram: computes a spilled layer's Gram instead of this process, e.g. as dask tiles
            (:func:`rsa_bridge.app.gram_tiles.tile_executor`): called as ``spilled_gram(reader, plan, precision,
            centring, square, layer=NAME)`` with the layer's :class:`rsa_bridge.gram_panels.PanelReader` (its
            ``path`` on storage the workers share: ``options.spill_dir``), :class:`rsa_bridge.gram_blocks.BlockPlan` and
            :class:`rsa_bridge.gram_panels.Centring`; it fills ``square`` with the full (n, n) Gram and returns
            ``{"path": str, "planned": bytes, "read": bytes}`` (recorded in the attrs). When it has a
            ``bind_pass`` method, that is called with a :class:`SpilledPass` before the forward pass.
        old_keywords: the options as separate keywords (``metric=``, ``batch_size=``, ...) of earlier releases
            are removed: any is a TypeError naming the RDMOptions field to use.

    Returns:
        ``out_store`` when given (its attrs updated as below); else
        float64 DataArray (layer, stimulus_row, stimulus_col), coords ``module_path`` and ``n_units``
        (the layer's own unit count) on ``layer``; attrs: model provenance, metric, rdm_precision,
        reduce_units / reduce_method / reduce_seed / reduced_layers when reducing, rsa_bridge_version.

    Raises:
        RSABridgeError: as :func:`extractors.extract` and :func:`rsa_bridge.rdm.compute_rdm`, plus bad options.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> from rsa_bridge.options import RDMOptions
        >>> from rsa_bridge.rdm import compute_rdm
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(12, 5)).eval()
        >>> x = torch.randn(6, 3, 2, 2, generator=torch.Generator().manual_seed(0))
        >>> rdms = stream_rdms(net, x, ["1"], RDMOptions(batch_size=4), progress=False)
        >>> rdms.dims, rdms.shape
        (('layer', 'stimulus_row', 'stimulus_col'), (1, 6, 6))
        >>> import numpy as np                     # equals the in-memory RDM of the same activations
        >>> bool(np.allclose(rdms[0].values, compute_rdm(net(x).detach().numpy()).values, atol=1e-12))
        True
    """
    options = options_from_keywords(options, old_keywords, "stream_rdms")
    metric, precision, reduce_units, reduce_seed = options.metric, options.precision, options.reduce_units, \
        options.reduce_seed
    batch_size, device = options.batch_size, options.device
    memory_budget = options.budget_bytes  # None: sized from the memory available now (recorded in the attrs)
    plan = prepare_plan(model, images, layers, batch_size, device, transform, progress, stimulus_ids,
                        FeedOptions(decode_workers=options.decode_workers))
    memory_budget = device_budget(memory_budget, plan.device, options.memory_budget is not None)
    ids, n = list(plan.inputs.ids), len(plan.inputs)
    if n < 3:
        raise RSABridgeError(f"an RDM needs at least 3 stimuli; got {n}")
    names = [name for name, _ in plan.layers]
    units = {name: math.prod(plan.unit_shapes[name]) for name in names}
    sketches = {name: CountSketch(units[name], reduce_units, reduce_seed, name, plan.device)
                for name in names if reduce_units is not None and units[name] > reduce_units}
    width = {name: sketches[name].k if name in sketches else units[name] for name in names}
    # a sketched correlation layer holds centred rows; its Gram is finished as a cosine
    gram_metric = {name: ("cosine" if name in sketches and metric == "correlation" else metric) for name in names}
    block = block_width(n, precision, options.chunk_bytes)
    if out_store is not None and out_store.ids != ids:
        raise RSABridgeError("out_store covers other stimulus ids (or another order) than the images")
    in_memory, left = set(), float(memory_budget)  # the narrowest layers' activations stay in memory
    for name in sorted(names, key=lambda m: width[m]):
        if 4.0 * n * width[name] <= left:
            in_memory.add(name)
            left -= 4.0 * n * width[name]
    spill = sum(4.0 * n * width[name] for name in names if name not in in_memory)
    same_disk = out_store is not None and out_store.spill_dir == options.spill_dir
    if spill and same_disk and out_store.memory_budget < len(names) * out_store.vector_bytes:
        spill += len(names) * out_store.vector_bytes  # the store's layers are written while activations wait
    if spill:  # one line before the forward pass, not an OSError an hour into it
        check_activation_disk(options.spill_dir, spill, n, len(names) - len(in_memory))
    # the out-of-core Gram's unit blocks must fit its budget: refused before the forward pass
    blocks = {name: plan_blocks(n, width[name], options.gram_budget_bytes) for name in names if name not in in_memory}
    out = np.empty((len(names) if out_store is None else 1, n, n), dtype=np.float64)  # one square for a store
    # per-call layers (V2@0, V2@1, ...; extractors.hooks) carry their call number as a time_step coordinate
    steps = {name: {TIME_STEP: int(plan.layer_attrs(name, path).get(TIME_STEP, 0))}
             for name, path in plan.layers} if plan.per_call() else {}
    io: dict[str, dict] = {}
    bound = SpilledPass(images, transform, plan, frozenset(sketches)) if hasattr(spilled_gram, "bind_pass") else None
    if bound is not None:  # e.g. the recompute route's checks, before the forward pass
        spilled_gram.bind_pass(bound)
    with spill_folder("rsa-bridge-spill-", options.spill_dir) as folder:  # sweeps killed runs' folders
        stores: dict[str, Any] = {
            name: _MemoryStore(n, width[name], plan.device) if name in in_memory
            else _DiskStore(Path(folder), names.index(name), blocks[name]) for name in names}
        try:
            sums = {name: torch.zeros(n, dtype=torch.float64, device=plan.device)
                    for name in names if gram_metric[name] == "correlation"}
            col_sums = {name: torch.zeros(width[name], dtype=torch.float64, device=plan.device)
                        for name in names if check_metric(gram_metric[name]).center == "column"}
            scratch: list = []  # one float64 buffer for the row/column sums of every batch
            with torch.inference_mode():
                timing.begin("decode_forward")
                pass_start, writing_s = time.perf_counter(), 0.0
                for start, stop, batch in run_plan(plan, on_device=True):
                    body_start = time.perf_counter()
                    for name in names:
                        values = batch.pop(name)
                        if name not in sums or name in sketches:  # else checked by its float64 row sums below
                            check_finite_rows(values, ids, start)
                        if name in sketches:
                            if metric == "correlation":
                                values = values.to(torch.float64)
                                values = values - values.mean(dim=1, keepdim=True)
                            values = sketches[name](values).to(torch.float32)
                        elif name in sums:  # a float64 sum of float32 values is finite iff they all are
                            sums[name][start:stop] = float64_sum(values, 1, scratch)
                            check_finite_rows(sums[name][start:stop, None], ids, start)
                        if name in col_sums:
                            col_sums[name] += float64_sum(values, 0, scratch)
                        stores[name].write(start, stop, values)
                        del values
                    writing_s += time.perf_counter() - body_start
                if bound is not None:
                    bound.forward_s = time.perf_counter() - pass_start - writing_s
                timing.end("decode_forward")
                timing.note("decode_forward", memory_budget_bytes=memory_budget,
                            spilled_layers=len(names) - len(in_memory))
                timing.begin("gram_rdm")
                bar = progress_bar(total=sum(width.values()), unit="unit", unit_scale=True, desc="layer RDMs",
                                   progress=plan.progress)
                try:
                    for index, name in enumerate(names):
                        means = sums[name] / units[name] if name in sums else None
                        square = out[index if out_store is None else 0]
                        if plan.device.type == "cpu" or name not in in_memory:  # numpy BLAS (syrk / panels)
                            centring = _centring(check_metric(gram_metric[name]).center, means,
                                                 col_sums.get(name), n)
                            done = _layer_gram(stores[name], square, precision, centring, options, spilled_gram, name)
                            acc = GramAccumulator.filled(torch.from_numpy(square), gram_metric[name], width[name])
                            bar.update(width[name])
                            io[name] = done
                            timing.add("gram_rdm", gram_flops=done["flops"], io_planned_bytes=done["planned"],
                                       io_read_bytes=done["read"])
                        else:  # activations in memory on an accelerator: the torch accumulator there
                            acc = GramAccumulator(n, gram_metric[name], row_means=means, precision=precision,
                                                  device=plan.device)
                            for piece in stores[name].blocks(block):
                                acc.add(piece)
                                bar.update(piece.shape[1])
                            io[name] = {"path": f"in memory on {plan.device.type} (torch)", "planned": 0, "read": 0}
                        stores[name].close()
                        if kernels_out is not None:
                            kernels_out[name] = _linear_kernel(acc.gram, gram_metric[name], means, units[name])
                        rdm = acc.finish(ids)
                        if rdm.data_ptr() != square.ctypes.data:
                            square[...] = rdm.cpu().numpy()
                        del rdm
                        if out_store is not None:
                            out_store.put(name, square, check=False, module_path=dict(plan.layers)[name],
                                          n_units=int(units[name]), **steps.get(name, {}))
                        del acc
                finally:
                    bar.close()
                    timing.end("gram_rdm")
        finally:
            for store in stores.values():
                store.close()
    attrs = {
        **plan.info.provenance(),
        "preprocessing": plan.inputs.preprocessing,
        **plan.inputs.attrs,
        "stimulus_set": plan.inputs.source,
        "metric": metric,
        "rdm_engine": "extractors.streaming (Gram by BLAS syrk: in memory, or unit blocks read once out of core)",
        "gram_paths": "; ".join(f"{name}: {io[name]['path']}" for name in names),
        "gram_io_planned_bytes": int(sum(v["planned"] for v in io.values())),
        "gram_io_read_bytes": int(sum(v["read"] for v in io.values())),
        "rdm_precision": precision,
        "activation_memory_budget": str(memory_budget) if math.isinf(memory_budget) else int(memory_budget),
        "activation_memory_budget_from": "given" if options.memory_budget is not None else AUTO_MEMORY_BUDGET,
        "spilled_layers": ",".join(name for name in names if name not in in_memory) or "none",
        **({"call_order": ",".join(plan.call_order)} if steps else {}),
        **{f"forward_{key}": value for key, value in plan.feed_attrs().items()},
        "rsa_bridge_version": package_version(),
    }
    if reduce_units is not None:
        attrs.update(reduce_units=int(reduce_units), reduce_method=SKETCH_METHOD,
                     reduce_seed=int(reduce_seed), reduced_layers=",".join(sketches) or "none")
    if out_store is not None:
        out_store.attrs.update(clean_attrs(attrs))
        return out_store
    return xr.DataArray(
        out,
        dims=(LAYER, ROW, COL),
        coords={LAYER: names, ROW: ids, COL: ids,
                "module_path": (LAYER, [path for _, path in plan.layers]),
                "n_units": (LAYER, [int(units[name]) for name in names]),
                **({TIME_STEP: (LAYER, [steps[name][TIME_STEP] for name in names])} if steps else {})},
        attrs=clean_attrs(attrs),
    )
