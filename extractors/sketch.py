"""The count sketch of :mod:`extractors.streaming`'s ``reduce_units``: a seeded linear map of p units to K.

Unit u is added with a random sign to one of K random buckets (feature hashing; Weinberger et al. 2009), so
``E[<Rx, Ry>] = <x, y>``: Gram entries, norms and distances stay unbiased with a relative error of order
``1/sqrt(K)``. The sketch of layer ``name`` is drawn from ``numpy.random.SeedSequence([seed, crc32(name)])``.

Example::

    >>> import torch
    >>> sketch = CountSketch(6, 2, seed=0, name="conv1")
    >>> x = torch.arange(12.0).reshape(2, 6)          # (stimuli, units) -> (stimuli, K)
    >>> bool(torch.allclose(sketch(x), x @ sketch.matrix()))
    True
"""
from __future__ import annotations

import zlib

import numpy as np
import torch

SKETCH_METHOD = "count sketch (feature hashing, one random +-1 per unit; Weinberger et al. 2009)"


class CountSketch:
    """A seeded linear map from p to K units: unit u goes to bucket ``bucket[u]`` with sign ``sign[u]``.

    Args:
        n_units: p, the layer's units.
        k: K < p, the reduced units.
        seed: integer seed; ``name`` is mixed in so equal-width layers get independent sketches.
        device: where the map is applied.
    """

    def __init__(self, n_units: int, k: int, seed: int, name: str = "", device: str | torch.device = "cpu") -> None:
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(name.encode())]))
        self.n_units, self.k = int(n_units), int(k)
        self.bucket = torch.from_numpy(rng.integers(0, k, size=n_units)).to(device)
        self.sign = torch.from_numpy(rng.integers(0, 2, size=n_units).astype(np.float32) * 2 - 1).to(device)

    def matrix(self) -> torch.Tensor:
        """The dense (p, K) float32 map (for checks; the sketch itself never builds it)."""
        dense = torch.zeros((self.n_units, self.k), dtype=torch.float32, device=self.bucket.device)
        dense[torch.arange(self.n_units, device=self.bucket.device), self.bucket] = self.sign
        return dense

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(B, p) -> (B, K) in x's dtype: ``x @ matrix()`` computed by one index_add."""
        out = torch.zeros((x.shape[0], self.k), dtype=x.dtype, device=x.device)
        return out.index_add_(1, self.bucket, x * self.sign.to(x.dtype))
