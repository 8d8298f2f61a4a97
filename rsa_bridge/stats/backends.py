"""Which code computes the per-sample similarities of a bootstrap: the CPU kernel, torch, or numpy.

Samples of a method whose record has a rank ``kernel`` (``spearman``, ``rho_a``; see
:mod:`rsa_bridge.methods`) come from the compiled one-pass kernel (:mod:`rsa_bridge.stats.rank_kernel`, numba,
all cores) or, when a torch device such as ``cuda`` is named, from :mod:`rsa_bridge.stats.rank_torch`; every
other case (and a machine without numba) uses the numpy path of :mod:`rsa_bridge.stats.bootstrap`. All give the same numbers to ~1e-15 (tests: 1e-10);
the result's ``bootstrap_backend`` attribute records which ran.
"""
from __future__ import annotations


from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from rsa_bridge.stats import weighted
from rsa_bridge.stats.resample import counts

#: the torch device of rank bootstraps whose call names none; the last entry counts (see :func:`default_device`)
DEFAULT_DEVICE_STACK: list[str | None] = [None]


def sample_bar(n_samples: int, progress: bool | None):
    """A bar over bootstrap samples (see :mod:`rsa_bridge.progress`: None = the session switch / automatic)."""
    from rsa_bridge.progress import progress_bar

    return progress_bar(total=n_samples, desc="bootstrap samples", unit="sample", progress=progress)


#: backend name -> when it runs; see :func:`rank_backend`
BACKENDS = {"numba": "methods with a rank kernel (spearman, rho_a) on the CPU when numba is installed "
                     "(rsa_bridge.stats.rank_kernel)",
            "torch": "methods with a rank kernel when a torch device is given, e.g. cuda (rsa_bridge.stats.rank_torch)",
            "numpy": "every other case (rsa_bridge.stats.weighted / masked)"}
#: samples per call of a fast backend (the progress bar moves between calls)
FAST_CHUNK = 256


@contextmanager
def default_device(device: str | None):
    """Within the block, bootstraps without a ``device`` use this torch device when it is a GPU.

    ``compare --device cuda`` runs its statistics inside ``default_device("cuda")``; ``cpu`` or None
    leave the CPU kernel in charge.
    """
    DEFAULT_DEVICE_STACK.append(device if device is not None and not str(device).startswith("cpu") else None)
    try:
        yield
    finally:
        DEFAULT_DEVICE_STACK.pop()


def rank_backend(method: str, device: str | None = None) -> str:
    """The backend that computes a bootstrap of ``method``: ``numba``, ``torch`` or ``numpy``.

    ``device``: a torch device string (``cuda``, ``cuda:1``, ``cpu``) asks for the torch backend;
    None takes numba when it is installed.
    """
    from rsa_bridge.methods import get

    if get(method).kernel is None:  # only a method whose record has a rank kernel runs on the fast backends
        return "numpy"
    device = device if device is not None else DEFAULT_DEVICE_STACK[-1]
    if device is not None:
        return "torch"
    from rsa_bridge.stats import rank_kernel

    return "numba" if rank_kernel.available() else "numpy"


@dataclass(frozen=True)
class SamplePath:
    """Where a resampling scheme's samples are computed: the method, the backend that runs it (``numba``,
    ``torch`` or ``numpy``, see :func:`rank_backend`), its torch device (or None) and n, the stimuli per RDM.

    Example::

        >>> SamplePath("spearman", "numpy", None, 20).n
        20
    """

    method: str
    backend: str
    device: str | None
    n: int


def fast_path_samples(path: SamplePath, model_vec, neural_vec, stim_idx, rdm_cnt, n_samples, progress=None,
                      observed=False):
    """Samples (B, L, A) of a method with a rank ``kernel`` from the compiled or torch kernel.

    ``path``: method, backend (``numba`` or ``torch``), device and n; ``model_vec`` (L, n(n-1)/2) and
    ``neural_vec`` area -> (R, n(n-1)/2) upper-triangle vectors; ``stim_idx`` (B, n) index sets or None;
    ``rdm_cnt`` area -> (B, R) RDM counts or None.

    ``observed=True``: also the statistic on the original data (L, A), from the same kernel with every
    stimulus and RDM once (returns ``(samples, observed)``; the RDMs are sorted only once).
    """
    from rsa_bridge.stats import rank_kernel, rank_torch

    method, backend, device, n = path.method, path.backend, path.device, path.n
    if backend == "numba":
        rank_kernel.set_threads(weighted.THREADS)
        prep = lambda x: rank_kernel.sorted_pairs(x, n)  # noqa: E731
        plan = rank_kernel.plan_chunks
        kernel = lambda mdl, area, c, p: rank_kernel.similarities(method, mdl, area, c, p)  # noqa: E731
    else:
        prep = lambda x: rank_torch.SortedTorch(x, n, device)  # noqa: E731
        plan = lambda mdl, area: None  # noqa: E731
        kernel = lambda mdl, area, c, p: rank_torch.similarities(method, mdl, area, c, device)  # noqa: E731
    areas = list(neural_vec)
    model = prep(model_vec)
    prepared = {a: prep(v) for a, v in neural_vec.items()}
    plans = {a: plan(model, prepared[a]) for a in areas}
    samples = np.full((n_samples, model_vec.shape[0], len(areas)), np.nan)
    bar = sample_bar(n_samples, progress)
    for start in range(0, n_samples, FAST_CHUNK):
        sl = slice(start, min(start + FAST_CHUNK, n_samples))
        b = sl.stop - sl.start
        if stim_idx is None:
            stim_counts, ok = np.ones((b, n)), np.ones(b, dtype=bool)
        else:
            stim_counts = counts(stim_idx[sl], n)
            ok = (stim_counts > 0).sum(axis=1) >= 3
        for j, area in enumerate(areas):
            sims = kernel(model, prepared[area], stim_counts, plans[area])  # (b, L, R)
            cnt = np.ones((b, sims.shape[2])) if rdm_cnt is None else rdm_cnt[area][sl]
            stat = np.einsum("blr,br->bl", sims, cnt) / cnt.sum(axis=1)[:, None]
            samples[sl, :, j] = np.where(ok[:, None], stat, np.nan)
        bar.update(b)
    bar.close()
    if not observed:
        return samples
    obs = np.stack([kernel(model, prepared[a], np.ones((1, n)), plans[a])[0].mean(axis=1) for a in areas], axis=1)
    return samples, obs
