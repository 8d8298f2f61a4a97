"""A head start for ``compare --model NAME``: the network is built in a background thread while the rest of the
job is imported and checked.

The main job's start is serial Python: ``import torch, torchvision`` (about 3.4 s on 2 cores), then xarray,
pandas, scipy, matplotlib and dask (about 2 s), the checks before any computing and the datasets' reading, then
the network's random initialisation (untrained AlexNet: 61 M parameters, about 0.5 s) and its state-dict hash.
The initialisation runs in torch's C++ code, which releases the GIL, so it can run on the second core while the
main thread imports the rest. :class:`HeadStart` starts that thread right after torch and torchvision are
imported; :meth:`HeadStart.models` hands the built module to :func:`rsa_bridge.app.pipeline.compare_models`
(``NetworkOptions(models=...)``), which reads its provenance off the module as it would off one it loaded
itself (:func:`extractors.provenance.module_provenance`: the same name, weights, seed and state hash), so
results and provenance are the same bits with or without the head start.

Only where the build needs nothing from the network and nothing the checks could refuse first: one torchvision
model (:func:`loads_offline`: untrained, a state-dict file or cached weights), the plain local
runner (no ``--scheduler``, ``--model-rdms``, ``--between-models`` or layer selection). When the build fails
in the thread, :meth:`HeadStart.models` returns None and the pipeline loads the model itself, so its error comes
where it always came (after the preflight checks). The thread is joined when the ``with`` block ends, on errors
and SIGTERM too (:class:`rsa_bridge.app.cli.Terminated` is raised in the main thread), and uses a private seeded
RNG (:func:`extractors.models.load_model`): the global torch RNG is untouched.
"""
from __future__ import annotations

import argparse
import threading
from contextlib import contextmanager
from typing import Any, Iterator

#: set to 0 to build the network in the pipeline as before (for comparisons; the results are the same)
HEAD_START_ENV = "RSA_BRIDGE_HEAD_START"


class HeadStart:
    """``load_model(name, weights, device=device)`` in a background thread (started at once)."""

    def __init__(self, name: str, weights: Any, device: str) -> None:
        self.name, self.weights, self.device = name, weights, device
        self._model: Any = None
        self._failed = False
        self._paths: list = []
        self._paths_given = threading.Event()
        self._built = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._build, name="rsa-bridge-head-start", daemon=True)
        self._thread.start()

    def _build(self) -> None:
        from extractors import load_model
        from extractors.ahead import AHEAD

        try:
            self._model = load_model(self.name, self.weights, device=self.device)
        except BaseException:  # noqa: BLE001 - the pipeline loads it again and raises its own error in its place
            self._failed = True
            return
        finally:
            self._built.set()
        self._paths_given.wait()
        transform = getattr(getattr(self._model, "rsa_bridge_info", None), "transform", None)
        if self._paths and transform is not None and not self._closing:
            AHEAD.run(self._paths, transform)  # until the forward pass catches up (extractors.ahead)

    def decode_ahead(self, paths: list | None) -> None:
        """Let the thread decode these images with the network's transform once it is built (None: none)."""
        self._paths = list(paths or [])
        self._paths_given.set()

    def models(self) -> list | None:
        """``[the built module]`` once it is built (handed over: asked again, None), or None when the build failed
        or the name is a control model after all (the pipeline then loads it as before)."""
        from rsa_bridge.control_rdms import is_control_model

        self._built.wait()  # not the decoding ahead, which goes on while the forward pass starts
        model, self._model = self._model, None
        return None if self._failed or model is None or is_control_model(self.name) else [model]

    def close(self) -> None:
        """Stop the decoding, wait for the thread (a finished job leaves no thread behind) and drop what it made."""
        from extractors.ahead import AHEAD

        self._closing = True
        self._paths_given.set()
        AHEAD.stop()
        self._thread.join()
        AHEAD.stop()
        self._model = None


def stimulus_paths(args: argparse.Namespace) -> list | None:
    """The image files the job will read, when they are known before the datasets are read: ``--stimuli``'s, or
    those of the one shipped dataset that ``--area``/``--dataset`` select; else None (nothing is decoded ahead).
    Any error here is the pipeline's to raise, in its place: None."""
    try:
        from rsa_bridge.datasets import SHIPPED, locate_area  # xarray and pandas: needed next anyway
        from stimuli import load_stimulus_set

        if args.stimuli is not None:
            return list(load_stimulus_set(args.stimuli).paths)
        names = {str(args.dataset)} if args.dataset is not None else {locate_area(a)[0] for a in args.area or []}
        shipped = SHIPPED.get(names.pop()) if len(names) == 1 else None
        if shipped is None or shipped.stimuli is None:
            return None
        return list(load_stimulus_set(shipped.stimuli).paths)
    except Exception:  # noqa: BLE001 - see the docstring
        return None


def wanted(args: argparse.Namespace) -> bool:
    """Whether ``compare``'s arguments are a job that :class:`HeadStart` applies to (see the module docstring)."""
    import os

    if os.environ.get(HEAD_START_ENV, "").strip() == "0":
        return False
    models = getattr(args, "model", None)
    if not models or len(models) != 1 or getattr(args, "model_rdms", None) is not None:
        return False
    if getattr(args, "between_models", False) or getattr(args, "scheduler", None):
        return False
    if getattr(args, "heldout_layer", None) or getattr(args, "select_on", None):
        return False
    return loads_offline(models[0], args.weights)


def loads_offline(name: str, weights: Any) -> bool:
    """Whether :func:`extractors.load_model` builds the torchvision model ``name`` with ``weights`` from this machine
    alone: untrained, a state-dict file, or an enum member whose file is already in the torch hub cache (never a
    download). Imports torch and torchvision (first, before the rest of the job).

    >>> loads_offline("alexnet", "none"), loads_offline("no_such_net", "none")
    (True, False)
    """
    from torchvision import models as tvm

    from extractors.models import _parse_weights, _weights_enum, cache_path  # the loader's own reading of weights
    from rsa_bridge.errors import RSABridgeError

    if str(name) not in tvm.list_models():
        return False
    try:
        kind, spec = _parse_weights(name, weights, _weights_enum(name))
    except RSABridgeError:
        return False
    return kind != "enum" or cache_path(spec).is_file()


@contextmanager
def head_start(args: argparse.Namespace) -> Iterator[HeadStart | None]:
    """A :class:`HeadStart` for ``args`` (None when it does not apply); its thread is joined on leaving."""
    start = HeadStart(args.model[0], args.weights, args.device) if wanted(args) else None
    try:
        yield start
    finally:
        if start is not None:
            start.close()
