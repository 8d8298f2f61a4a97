"""Up-front memory estimates for the resampling options, refused with one line before any computing.

The statistics of ``compare`` hold, per bootstrap sample, the resampled stimulus indices (int64), their
sorted copy and a count table (3 x 8 bytes per stimulus) plus one similarity per layer and RDM; per
permutation, a permuted index vector and one similarity per layer and RDM. :func:`check_statistics_memory`
multiplies these out with the smallest possible layer count, so a refusal is never a false alarm, and
compares the result with :func:`stimuli.limits.memory_budget` (80% of RAM or ``RSA_BRIDGE_MAX_MEMORY``).

``--reduce-units K`` needs no check: a layer is sketched only when it is wider than K, so the sketch is
never larger than the layer itself. Seeds are bounded to what NumPy, PyTorch and NetCDF attributes hold
(:data:`MAX_SEED`).
"""
from __future__ import annotations

from stimuli.limits import check_memory, format_size, memory_budget  # noqa: F401  (re-exported)

from rsa_bridge.errors import RSABridgeError

#: the largest seed every random step accepts (torch.manual_seed and int64 NetCDF attributes)
MAX_SEED = 2**63 - 1


def check_seed(seed: int, option: str = "--seed") -> int:
    """``seed`` if it is a whole number in [0, 2**63 - 1]; otherwise a one-line :class:`RSABridgeError`."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise RSABridgeError(f"{option} must be a whole number from 0 to {MAX_SEED} (2**63 - 1); got {seed!r}")
    return seed


def statistics_bytes(n_stimuli: int, bootstrap: int = 0, permutations: int = 0, n_layers: int = 1,
                     n_rdms: int = 1) -> float:
    """Bytes the bootstrap and permutation arrays of one comparison need (a lower bound, see module doc)."""
    per_sample = 3 * 8 * n_stimuli + 8 * n_layers * n_rdms
    per_permutation = 8 * n_stimuli + 8 * n_layers * n_rdms
    return float(bootstrap) * per_sample + float(permutations) * per_permutation


def check_statistics_memory(n_stimuli: int, bootstrap: int = 0, permutations: int = 0, n_layers: int = 1,
                            n_rdms: int = 1) -> None:
    """Refuse ``--bootstrap`` / ``--permutations`` counts whose arrays cannot fit in memory.

    Example: ``check_statistics_memory(92, bootstrap=10**12)`` raises "--bootstrap 1000000000000 (92 stimuli)
    needs about 2.0 PiB of memory ...; use fewer samples, e.g. --bootstrap 1000".
    """
    for option, count, kwargs in (("--bootstrap", bootstrap, {"bootstrap": bootstrap}),
                                  ("--permutations", permutations, {"permutations": permutations})):
        if count:
            check_memory(statistics_bytes(n_stimuli, n_layers=n_layers, n_rdms=n_rdms, **kwargs),
                         f"{option} {count} ({n_stimuli} stimuli)",
                         f"use fewer samples, e.g. {option} 1000", error=RSABridgeError)


def check_splits_memory(n_splits: int, n_stimuli: int, n_neuroids: int = 0) -> None:
    """Refuse ``--splits`` whose split-half arrays cannot fit: per split, two RDM vectors of
    n_stimuli (n_stimuli - 1) / 2 pairs and two reliabilities per neuroid, float64."""
    pairs = n_stimuli * (n_stimuli - 1) / 2
    check_memory(float(n_splits) * 16.0 * (pairs + n_neuroids), f"--splits {n_splits} ({n_stimuli} stimuli)",
                 "use fewer splits, e.g. --splits 100", error=RSABridgeError)
