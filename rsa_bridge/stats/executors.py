"""Where the samples of a bootstrap or a permutation test are computed: here in one batch, or in batches elsewhere.

A bootstrap (or a permutation test) is B independent evaluations of one statistic, each on its own index
set. Every random draw happens first, on the caller's side, in the order the serial code draws them; an
**executor** then evaluates the statistic on contiguous batches of those index sets and hands the parts
back in order. One sample's value depends only on its index set and on where it falls inside the
statistic's own chunks (the compiled rank kernel computes :data:`rsa_bridge.stats.backends.FAST_CHUNK`
samples per call and groups them in SIMD lanes from each chunk's start), so batches whose boundaries are
multiples of the statistic's ``quantum`` give the serial numbers **bit for bit**.

Executors are small strategy objects with one method, :meth:`SerialExecutor.run`:

- :data:`SERIAL`: one batch in this process (the default; exactly the code path of a plain call);
- :class:`rsa_bridge.stats.dask_bootstrap.DaskExecutor`: batches as dask tasks on a ``dask.distributed``
  client (``rsa-bridge compare --scheduler``).

Which one runs: the ``executor=`` argument of :func:`rsa_bridge.stats.bootstrap_similarity` /
:func:`rsa_bridge.stats.permutation_test`, else the innermost :func:`use_executor` block (``compare
--scheduler`` runs all its statistics in one), else :data:`SERIAL`. What ran is recorded as
``bootstrap_executor`` / ``permutation_executor`` in the results' attrs.

    >>> import numpy as np
    >>> parts, ran = SERIAL.run(lambda scale, x, progress: scale * x.sum(axis=1), (2.0,), (np.ones((3, 4)),), 3)
    >>> parts, ran
    ([array([8., 8., 8.])], 'serial')
    >>> batch_slices(1000, quantum=256, tasks=4)
    [slice(0, 256, None), slice(256, 512, None), slice(512, 768, None), slice(768, 1000, None)]

Peers: joblib's ``parallel_config`` backends (a context choosing where ``Parallel`` runs) and
scikit-learn's ``n_jobs``; rsatoolbox and Brain-Score compute their bootstraps serially in one process.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping, Protocol, Sequence

import numpy as np

#: kind of the attrs that record where a statistic's samples were computed
ATTRS = {"boot": "bootstrap_executor", "perm": "permutation_executor"}


class Executor(Protocol):
    """What a bootstrap or permutation test needs from an executor."""

    def run(self, fn: Callable, shared: Sequence, split: Sequence, n: int, quantum: int = 1,
            progress: bool | None = None, desc: str = "samples") -> tuple[list, str]:
        """``[fn(*shared, *split_batch, progress) for each batch]`` in order, and a description of what ran."""


def take(item: Any, sl: slice) -> Any:
    """Rows ``sl`` of a split argument: an array (axis 0), a mapping of arrays (each), or None."""
    if item is None:
        return None
    if isinstance(item, Mapping):
        return {k: v[sl] for k, v in item.items()}
    return item[sl]


def batch_slices(n: int, quantum: int = 1, tasks: int = 1, batch_size: int | None = None) -> list[slice]:
    """Contiguous batches of ``n`` samples, each boundary a multiple of ``quantum``.

    ``batch_size`` (rounded up to a multiple of ``quantum``) fixes the size; otherwise the samples are
    spread over at most ``tasks`` batches.
    """
    quantum = max(1, int(quantum))
    blocks = -(-n // quantum)
    size = (-(-max(1, batch_size) // quantum) * quantum if batch_size is not None
            else -(-blocks // max(1, tasks)) * quantum)
    return [slice(s, min(s + size, n)) for s in range(0, n, size)]


class SerialExecutor:
    """Every sample in one batch, in this process: the plain call's own code path."""

    description = "serial"

    def run(self, fn: Callable, shared: Sequence, split: Sequence, n: int, quantum: int = 1,
            progress: bool | None = None, desc: str = "samples") -> tuple[list, str]:
        return [fn(*shared, *split, progress)], self.description


#: the default executor
SERIAL = SerialExecutor()
#: the executors of the open :func:`use_executor` blocks; the last one is in force
_STACK: list[Executor] = []


@contextmanager
def use_executor(executor: Executor | None) -> Iterator[None]:
    """Within the block, bootstraps and permutation tests that name no executor use ``executor``
    (None: :data:`SERIAL`)."""
    _STACK.append(SERIAL if executor is None else executor)
    try:
        yield
    finally:
        _STACK.pop()


def resolve_executor(executor: Executor | None = None) -> Executor:
    """``executor``, else the one of the innermost :func:`use_executor` block, else :data:`SERIAL`."""
    if executor is not None:
        return executor
    return _STACK[-1] if _STACK else SERIAL


def concatenate(parts: list[np.ndarray | None]) -> np.ndarray | None:
    """The batches' arrays joined along axis 0 (None when the statistic produced none)."""
    return None if parts[0] is None else np.concatenate(parts, axis=0)


def executor_attrs(statistics: Sequence) -> dict:
    """``bootstrap_executor`` / ``permutation_executor`` of the statistics that ran.

    ``statistics``: :class:`rsa_bridge.stats.summary.CompareStatistics` (one per dataset); several
    different descriptions are joined with `` | ``.
    """
    out = {}
    for field, name in ATTRS.items():
        ran = [getattr(getattr(st, field, None), "executor", None) for st in statistics]
        ran = list(dict.fromkeys(r for r in ran if r is not None))
        if ran:
            out[name] = " | ".join(ran)
    return out
