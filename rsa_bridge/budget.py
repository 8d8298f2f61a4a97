"""Will the RDMs of a job fit? One line before any computing when they cannot.

A dense float64 RDM over n stimuli is 8 n^2 bytes: 0.07 MB at 92 stimuli, 11.5 MB at 1,200, 800 MB at
10,000, 3.9 GB at 22,000. ``compare`` holds every model-layer RDM and every brain RDM dense in memory,
and the statistics copy them once more (stacking across models, upper-triangle vectors), so its peak is
about :data:`COPIES` x (model RDMs + brain RDMs) x 8 n^2 bytes. :func:`check_rdm_memory` compares that
with the memory this process can have (``psutil`` available memory, or ``budget`` bytes) and
:func:`check_disk` the ``model_rdms.nc`` the job writes with the free space of its output folder.
Both raise :class:`rsa_bridge.errors.RSABridgeError` with how much is needed and what to change.

Not done (issue 19 item 3): RDMs that never exist dense in memory (upper triangles in a chunked
on-disk store, compared chunk by chunk); until then the check says where the limit is.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from rsa_bridge.errors import RSABridgeError

#: dense copies of every RDM at the peak of a compare job (the RDMs, the stack and vectors of the statistics)
COPIES = 2.5
#: model-layer RDMs assumed per model when the layers are not named (the default lists have 5 to 10)
DEFAULT_LAYERS = 8


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2 ** 30:.1f} GiB"


def rdm_bytes(n_stimuli: int, itemsize: int = 8) -> int:
    """Bytes of one dense (n, n) RDM."""
    return int(n_stimuli) ** 2 * itemsize


def needed_bytes(n_stimuli: int, n_model_rdms: int, n_brain_rdms: int) -> float:
    """Estimated peak bytes of a compare job's RDMs (see the module docstring)."""
    return COPIES * (n_model_rdms + n_brain_rdms) * rdm_bytes(n_stimuli)


def check_rdm_memory(n_stimuli: int, n_model_rdms: int, n_brain_rdms: int, budget: float | None = None) -> None:
    """Raise when the job's RDMs cannot fit in ``budget`` bytes (None: the memory available now)."""
    if budget is None:
        import psutil

        budget = psutil.virtual_memory().available
    need = needed_bytes(n_stimuli, n_model_rdms, n_brain_rdms)
    if need > budget:
        raise RSABridgeError(
            f"{n_stimuli} stimuli: {n_model_rdms} model-layer RDMs and {n_brain_rdms} brain RDMs need about "
            f"{_gib(need)} held as dense float64 matrices ({_gib(rdm_bytes(n_stimuli))} each, {COPIES:g} copies at "
            f"the peak), but {_gib(budget)} is available; score fewer layers (--layers), fewer models at once, or "
            "fewer stimuli, or use a machine with more memory")


def check_disk(folder: str | Path, n_stimuli: int, n_model_rdms: int, itemsize: int = 8) -> None:
    """Raise when ``folder`` lacks room for the model RDMs written there (dense, ``itemsize`` bytes)."""
    folder = Path(folder)
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    need = n_model_rdms * rdm_bytes(n_stimuli, itemsize)
    if need > free:
        raise RSABridgeError(f"{folder}: model_rdms.nc needs about {_gib(need)} ({n_model_rdms} RDMs of {n_stimuli} "
                             f"stimuli) but the disk has {_gib(free)} free; write to a larger disk (--out DIR) or "
                             "score fewer layers (--layers)")
