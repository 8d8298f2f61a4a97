"""The stimulus/RDM bootstrap as dask tasks: batches of samples on a cluster, equal to the serial run.

Every random draw happens on the client, in the order :func:`rsa_bridge.stats.bootstrap_similarity`
makes them (the stimulus index sets first, then each area's RDM index sets in area order); the
workers only evaluate batches of given index sets. A sample's statistic does not depend on which
batch or worker computed it, so the samples equal the serial run's for the same seed (a test checks
it to 1e-14: numpy's reductions may round differently for a different batch shape). The RDMs are scattered to the workers once.

    from rsa_bridge.distributed import connect
    with connect("local:2") as client:
        boot = bootstrap_on_dask(model_rdms, {"V4": v4}, client=client, n_samples=1000, seed=0)

Only the exact scheme is distributed (above :data:`rsa_bridge.stats.subset.EXACT_MAX_STIMULI` the
subset scheme is cheap enough to run on the client).
"""
from __future__ import annotations

import numpy as np

from rsa_bridge.stats._inputs import comparison_inputs
from rsa_bridge.stats.bootstrap import BootstrapResult, bootstrap_similarity
from rsa_bridge.stats.resample import Seed, as_generator, bootstrap_rdms, bootstrap_stimuli


def _batch(model, neural, method, over, ceiling, stim, rdm):
    return bootstrap_similarity(model, neural, method=method, over=over, ceiling=ceiling, stimulus_indices=stim,
                                rdm_indices=rdm, n_samples=1 if stim is None else stim.shape[0], progress=False,
                                scheme="exact")


def bootstrap_on_dask(model_rdms, neural_rdms, *, client, method: str = "spearman", n_samples: int = 1000,
                      over: str = "stimuli", seed: Seed = None, ceiling: bool = False,
                      batch_size: int = 100) -> BootstrapResult:
    """:func:`rsa_bridge.stats.bootstrap_similarity` with batches of ``batch_size`` samples as dask tasks.

    Args:
        client: a ``dask.distributed.Client`` (see :func:`rsa_bridge.distributed.connect`).
        batch_size: samples per task.
        the rest: as :func:`rsa_bridge.stats.bootstrap_similarity` (exact scheme).

    Returns:
        the :class:`BootstrapResult` the serial call with the same seed returns.
    """
    labels, model_mat, neural_mat, _, neural_vec = comparison_inputs(model_rdms, neural_rdms, method)
    n = model_mat.shape[1]
    rng = as_generator(seed)
    stim = bootstrap_stimuli(n, n_samples, rng) if over in ("stimuli", "both") else None
    rdm = ({a: bootstrap_rdms(v.shape[0], n_samples, rng) for a, v in neural_vec.items()}
           if over in ("rdms", "both") else None)
    model_f, neural_f = client.scatter([model_mat, neural_mat], broadcast=True)
    futures = []
    for start in range(0, n_samples, batch_size):
        sl = slice(start, min(start + batch_size, n_samples))
        s = None if stim is None else stim[sl]
        r = None if rdm is None else {a: i[sl] for a, i in rdm.items()}
        if s is None:  # over='rdms': the batch size comes from the RDM index sets
            futures.append(client.submit(_rdm_batch, model_f, neural_f, method, ceiling, r, pure=False))
        else:
            futures.append(client.submit(_batch, model_f, neural_f, method, over, ceiling, s, r, pure=False))
    parts = client.gather(futures)
    samples = np.concatenate([p.samples for p in parts])
    ceil = np.concatenate([p.ceiling for p in parts]) if ceiling else None
    first = parts[0]
    return BootstrapResult(samples, first.observed, labels, first.areas, method, over,
                           int(seed) if isinstance(seed, (int, np.integer)) else None, stim, rdm, ceil,
                           first.backend, first.scheme)


def _rdm_batch(model, neural, method, ceiling, rdm):
    size = next(iter(rdm.values())).shape[0]
    return bootstrap_similarity(model, neural, method=method, over="rdms", ceiling=ceiling, rdm_indices=rdm,
                                n_samples=size, progress=False, scheme="exact")
