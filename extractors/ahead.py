"""Images decoded ahead of the forward pass, by a thread that runs before the pass asks for them.

The command line's head start (:mod:`rsa_bridge.app.head_start`) builds the network in a background thread while
the main thread imports and checks the rest of the job; the same thread then decodes the first stimuli with
the network's own transform (Pillow's decoding and resizing and torch's normalisation release the GIL, so this
runs on the second core). :data:`AHEAD` holds those tensors until :func:`extractors.inputs.as_inputs`' loader
asks for them: :meth:`DecodedAhead.take` hands over the tensor of ``(path, transform)`` when the thread made it
with *that* transform object from *that* file, else None and the loader decodes the image itself, as before. The
tensors are the same bytes either way (the same two calls, ``transform(read_image(path))``, made them). The
first image the loader has to decode itself stops the thread (it is behind; an image asked for again, as the
probe pass's first one is, does not count), and an image the thread decodes after that is dropped; an error in
the thread (a corrupt image) only stops it: the loader meets the image and raises. A loader with another
transform (another network) drops what is held.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

#: bytes of decoded tensors held ahead at most (the rest is decoded by the forward pass's own threads); 384 MiB
#: holds the 640 images of the main job at 224 x 224 (588 KiB each)
AHEAD_BYTES = 384 * 2**20


class DecodedAhead:
    """Tensors of images decoded ahead, keyed by file; one producer (:meth:`run`), consumers :meth:`take`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done: dict[str, torch.Tensor] = {}
        self._given: set[str] = set()
        self._transform: Any = None
        self._stopped = True
        self.taken = 0  # tensors handed over since the last run (a check for tests)

    def run(self, paths: Sequence[str | Path], transform: Callable, limit_bytes: float = AHEAD_BYTES) -> int:
        """Decode ``paths`` in order with ``transform`` (in the calling thread) until :meth:`stop`, a miss of
        :meth:`take`, an error or ``limit_bytes``; returns how many images were decoded."""
        from stimuli import read_image

        with self._lock:
            self._done, self._transform, self._stopped, self.taken = {}, transform, False, 0
            self._given = set()
        held, count = 0, 0
        try:
            for path in paths:
                if held >= limit_bytes:
                    break
                out = transform(read_image(path))
                if not isinstance(out, torch.Tensor):
                    break
                with self._lock:
                    if self._stopped:
                        break
                    self._done[str(path)] = out
                held += out.numel() * out.element_size()
                count += 1
        except Exception:  # noqa: BLE001 - the loader meets the image itself and raises its own error
            pass
        finally:
            with self._lock:
                self._stopped = True
        return count

    def take(self, path: str | Path, transform: Callable) -> torch.Tensor | None:
        """The tensor of ``path`` under ``transform`` (handed over once), or None: decode it yourself."""
        with self._lock:
            if not self._done and self._stopped:
                return None
            if transform is not self._transform:  # another network's images: none of these will be asked for
                self._stopped, self._done = True, {}
                return None
            key = str(path)
            out = self._done.pop(key, None)
            if out is not None:
                self._given.add(key)
                self.taken += 1
            elif key not in self._given:  # (asked again, e.g. after the probe pass's first image: no miss)
                self._stopped = True  # the producer is behind: it stops
            return out

    def stop(self) -> None:
        """Stop the producer after its current image and drop every tensor not taken yet."""
        with self._lock:
            self._stopped = True
            self._done, self._transform, self._given = {}, None, set()

    def __len__(self) -> int:
        with self._lock:
            return len(self._done)


#: the process's images decoded ahead (empty unless a head start filled it)
AHEAD = DecodedAhead()
