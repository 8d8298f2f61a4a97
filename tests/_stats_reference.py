"""Shared inputs and rsatoolbox reference runs for the tests of rsa_bridge.stats (not a test module)."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def real_rdms(n_stimuli: int | None = None):
    """(IT (1, n, n), hIT (8, n, n)) from the shipped 92-image dataset, optionally the first n stimuli."""
    from rsa_bridge import load_dataset
    from rsa_bridge.datasets import area_rdms

    ds = load_dataset("kriegeskorte2008_92images")
    it, hit = area_rdms(ds, "IT").values, area_rdms(ds, "hIT").values
    if n_stimuli is not None:
        it, hit = it[:, :n_stimuli, :n_stimuli], hit[:, :n_stimuli, :n_stimuli]
    return it, hit


def model_like(reference: np.ndarray, n_models: int, seed: int, noise=(0.2, 0.6, 1.5, 3.0)) -> np.ndarray:
    """(n_models, n, n) symmetric zero-diagonal RDMs: ``reference`` plus increasing noise."""
    rng = np.random.default_rng(seed)
    n = reference.shape[-1]
    out = []
    for k in range(n_models):
        e = rng.normal(0, noise[k % len(noise)], (n, n))
        m = np.abs(reference + (e + e.T) / 2)
        np.fill_diagonal(m, 0.0)
        out.append(m)
    return np.stack(out)


def vectors(matrices: np.ndarray) -> np.ndarray:
    rows, cols = np.triu_indices(matrices.shape[-1], k=1)
    return matrices[..., rows, cols]


class Feeder:
    """Stands in for ``np.random.randint`` so rsatoolbox's bootstrap uses given index sets, in order."""

    def __init__(self, index_sets):
        self.queue = [np.asarray(i) for i in index_sets]

    def __call__(self, low, high, size=None):
        out = self.queue.pop(0)
        assert out.shape == (size,), (out.shape, size)
        return out.copy()


def rsatoolbox_bootstrap(models: np.ndarray, data: np.ndarray, method: str, over: str, stim=None, rdm_idx=None,
                         ceiling: bool = True, monkeypatch=None):
    """rsatoolbox's eval_bootstrap_{pattern,rdm,} on given index sets -> (evaluations (B, L), ceilings (B, 2))."""
    from rsatoolbox.inference import eval_bootstrap, eval_bootstrap_pattern, eval_bootstrap_rdm
    from rsatoolbox.model import ModelFixed
    from rsatoolbox.rdm import RDMs

    from rsa_bridge.compare import RSATOOLBOX_NAMES

    rt = RSATOOLBOX_NAMES[method]
    mods = [ModelFixed(f"m{k}", RDMs(vectors(models[k])[None])) for k in range(models.shape[0])]
    rdms = RDMs(vectors(data))
    if over == "stimuli":
        seq, fn, n = list(stim), eval_bootstrap_pattern, len(stim)
    elif over == "rdms":
        seq, fn, n = list(rdm_idx), eval_bootstrap_rdm, len(rdm_idx)
    else:
        seq, fn, n = [x for pair in zip(rdm_idx, stim) for x in pair], eval_bootstrap, len(stim)
    with monkeypatch.context() as patch, warnings.catch_warnings():
        patch.setattr(np.random, "randint", Feeder(seq))
        warnings.simplefilter("ignore")
        result = fn(mods, rdms, method=rt, N=n, boot_noise_ceil=ceiling)
    return result.evaluations, np.asarray(result.noise_ceiling).T
