"""Feed the forward pass: decode and preprocess the next batches in worker threads while the model runs.

A plain loop decodes a batch (PIL open, resize, crop, normalise), then runs the network on it, then decodes
the next: the cores take turns. :func:`prefetch_batches` keeps up to ``workers + 1`` batches in flight in a
thread pool instead, so decoding overlaps the forward pass. Threads suffice: Pillow releases the GIL while it
decodes and resizes, and the weights' transforms are torch operations, which release it too. Batches come
back **in order** (each is a future, consumed in submission order), whatever the decode times, so stimulus
``i`` is row ``i`` exactly as in the serial loop; the tensors are the same bytes (the same function makes
them). An error in a worker (a corrupt image: :class:`stimuli.StimulusError`) is raised by the consumer when
it reaches that batch, as the serial loop would raise it, and the batches still queued are cancelled.

Peers: ``torch.utils.data.DataLoader(num_workers=...)`` runs worker *processes* with a prefetch factor;
processes pay for pickling every batch and for their start-up with torch imported; threads need neither,
and keep a corrupt image's error the same object the serial loop raises (docs/guide/scale.md, "Forward pass").

:func:`auto_decode_workers` picks the thread count when the caller does not: one thread per two cores (at
least one, at most :data:`MAX_DECODE_WORKERS`), so the network keeps its intra-op threads (measured on 2
cores: reducing torch to 1 thread to make room for a decode thread was 1.5x slower).
"""
from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import torch

from rsa_bridge.errors import RSABridgeError

#: most decode threads :func:`auto_decode_workers` picks (more rarely helps: the forward pass is the bottleneck)
MAX_DECODE_WORKERS = 4


def auto_decode_workers(cpus: int | None = None) -> int:
    """Decode threads when none are asked for: ``max(1, min(MAX_DECODE_WORKERS, cpus // 2))``.

    Args:
        cpus: usable cores (None: ``os.sched_getaffinity`` where it exists, else ``os.cpu_count()``).

    >>> auto_decode_workers(2), auto_decode_workers(8), auto_decode_workers(64)
    (1, 4, 4)
    """
    if cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(MAX_DECODE_WORKERS, int(cpus) // 2))


def check_workers(workers: int | None) -> int:
    """``workers`` as a count >= 0 (0: decode in the calling thread), None resolved by :func:`auto_decode_workers`.

    Raises:
        RSABridgeError: not a whole number >= 0.
    """
    if workers is None:
        return auto_decode_workers()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise RSABridgeError(f"decode workers must be a whole number >= 0 (0 = decode in the main thread), "
                             f"not {workers!r}")
    return workers


def prefetch_batches(load: Callable[[int, int], torch.Tensor], n: int, batch_size: int,
                     workers: int) -> Iterator[tuple[int, int, torch.Tensor]]:
    """``(start, stop, load(start, stop))`` for consecutive batches of ``batch_size`` out of ``n``, in order.

    Args:
        load: ``load(start, stop)`` -> tensor (stop - start, C, H, W) (:class:`extractors.inputs.Inputs.load`).
        n: stimuli; batch_size: stimuli per batch (the last may be smaller).
        workers: decode threads; 0 = call ``load`` in this thread, batch after batch (the serial loop).

    Errors raised by ``load`` reach the caller unchanged, at the batch that raised them.

    >>> import torch
    >>> data = torch.arange(10.0).reshape(10, 1)
    >>> batches = list(prefetch_batches(lambda a, b: data[a:b], 10, 4, 2))
    >>> tuple((a, b) for a, b, _ in batches)
    ((0, 4), (4, 8), (8, 10))
    >>> torch.equal(torch.cat([t for *_, t in batches]), data)
    True
    """
    bounds = [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
    if workers <= 0:
        for start, stop in bounds:
            yield start, stop, load(start, stop)
        return
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rsa-bridge-decode")
    pending: deque[tuple[int, int, Future]] = deque()
    todo = iter(bounds)
    try:
        for start, stop in todo:  # fill the queue: workers decoding + one batch ready for the network
            pending.append((start, stop, pool.submit(load, start, stop)))
            if len(pending) > workers:
                break
        while pending:
            start, stop, future = pending.popleft()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append((*nxt, pool.submit(load, *nxt)))
            yield start, stop, future.result()
    finally:  # an error, or the consumer stopped early: drop what is queued, wait for what runs
        for *_, future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True)
class FeedOptions:
    """How batches reach the network (speed only: the activations equal the serial loop's to float tolerance).

    Attributes:
        decode_workers: decode threads (None: :func:`auto_decode_workers`; 0: decode in the main thread). With
            one thread the batches are decoded one after another as in the serial loop; with more, a caller's
            transform that draws random numbers from a shared generator draws them in another order.
        channels_last: run 4-D image batches and the model's convolution weights in channels-last memory
            layout (None: yes for 4-D inputs). Measured on CPU it cuts AlexNet's forward CPU time by about
            15% and MobileNetV2's by about 35%; the convolutions then sum in another order, so activations
            differ from the contiguous layout by float32 rounding (about 1e-7 relative), and the model's
            parameters are left in that layout.

    >>> FeedOptions(decode_workers=0).workers()
    0
    """

    decode_workers: int | None = None
    channels_last: bool | None = None

    def __post_init__(self) -> None:
        if self.decode_workers is not None:
            check_workers(self.decode_workers)
        if self.channels_last is not None and not isinstance(self.channels_last, bool):
            raise RSABridgeError(f"channels_last is True, False or None (automatic), not {self.channels_last!r}")

    def workers(self) -> int:
        """The decode threads to start (None resolved)."""
        return check_workers(self.decode_workers)

    def use_channels_last(self, example: torch.Tensor) -> bool:
        """Whether batches like ``example`` (one preprocessed batch) run channels-last."""
        wanted = True if self.channels_last is None else self.channels_last
        return bool(wanted and isinstance(example, torch.Tensor) and example.ndim == 4)
