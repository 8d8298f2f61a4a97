"""Model files that run code: loaded only with an explicit opt-in (``--allow-model-code``).

A TorchScript archive (``torch.jit.save``) carries its own program, and a whole ``nn.Module`` saved with
``torch.save(model, PATH)`` is a Python pickle: loading or running either executes whatever the file's
author wrote (a TorchScript ``forward`` may call ``torch.from_file`` on any file it likes). So every
loader of such a file asks :func:`require_model_code_consent` first, and loads nothing without
``allow_model_code=True`` (``--allow-model-code`` on the command line). Plain state dicts read with
``torch.load(weights_only=True)`` (``--weights FILE``, checkpoints of our own networks) hold tensors
only and need no consent.

This module is the one definition of that rule; :func:`load_model_code` is the one loader.

Example::

    >>> require_model_code_consent("net.pt", False, what="depth model")   # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    rsa_bridge.errors.RSABridgeError: refusing to load depth model 'net.pt': ... pass --allow-model-code ...
"""
from __future__ import annotations

import io
import os
import pickle
import pickletools
import warnings
import zipfile
from pathlib import Path

import torch
from torch import nn

from rsa_bridge.errors import RSABridgeError

#: the command-line flag and the Python keyword that give consent
MODEL_CODE_FLAG = "--allow-model-code"
MODEL_CODE_KEYWORD = "allow_model_code"
#: provenance attribute recording the consent, and its value
MODEL_CODE_ATTR = "model_code"
MODEL_CODE_ALLOWED = "allowed (--allow-model-code / allow_model_code=True)"


def is_torchscript(path: str | os.PathLike) -> bool:
    """True when ``path`` is a TorchScript archive (a zip with ``constants.pkl`` or a ``code/`` folder)."""
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as archive:
            return any(n.endswith("constants.pkl") or "/code/" in n for n in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def require_model_code_consent(path: str | os.PathLike, allow_model_code: bool, *, what: str = "model file") -> None:
    """Raise one :class:`RSABridgeError` line unless ``allow_model_code`` is true.

    Args:
        path: the file about to be loaded (named in the message).
        allow_model_code: the user's explicit consent (``--allow-model-code`` / ``allow_model_code=True``).
        what: how the file is named in the message (``"depth model"``).
    """
    if allow_model_code is True:
        return
    raise RSABridgeError(
        f"refusing to load {what} {str(path)!r}: it holds model code (TorchScript or a pickled Python object), and "
        f"loading or running it executes whatever its author wrote, including reading your files; pass "
        f"{MODEL_CODE_FLAG} ({MODEL_CODE_KEYWORD}=True) only for a file you trust completely, or use a plain "
        "state dict (torch.save(model.state_dict(), PATH)), which needs no consent"
    )


#: pickle opcodes that import or call Python objects (what a pickle of tensors only does not need)
_CODE_OPCODES = frozenset({"GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "REDUCE", "NEWOBJ", "NEWOBJ_EX", "BUILD"})
#: most bytes of a pickle stream inspected (a model's pickle holds structure; tensors are stored apart)
_SCAN_BYTES = 64 * 2**20


def _pickle_stream(path: Path) -> bytes:
    if zipfile.is_zipfile(path):  # torch.save's zip format: the pickle is <name>/data.pkl
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith("data.pkl")]
            if not names:
                return b""
            with archive.open(names[0]) as member:
                return member.read(_SCAN_BYTES)
    with open(path, "rb") as handle:
        return handle.read(_SCAN_BYTES)


def holds_code(path: str | os.PathLike) -> bool:
    """True when ``path`` is model code: a TorchScript archive, or a pickle that imports or calls Python
    objects (a whole ``nn.Module``, any class). Nothing in the file is run: the pickle is only parsed
    (:func:`pickletools.genops`). Damaged or non-pickle bytes are not code. Meant for a file that
    ``torch.load(weights_only=True)`` refused."""
    path = Path(path)
    try:
        if is_torchscript(path):
            return True
        stream = _pickle_stream(path)
        return any(op.name in _CODE_OPCODES for op, _, _ in pickletools.genops(io.BytesIO(stream)))
    except (OSError, zipfile.BadZipFile, ValueError, EOFError, UnicodeDecodeError):
        return False


def load_model_code(path: str | os.PathLike, *, allow_model_code: bool = False, what: str = "model file") -> nn.Module:
    """A network from a file that runs code: a TorchScript archive, or a whole pickled ``nn.Module``.

    Consent is checked first (:func:`require_model_code_consent`); nothing is read before it. The
    module is returned in eval mode on the CPU.

    Raises:
        RSABridgeError: no consent, an unreadable file, or a pickle that is not an ``nn.Module``.
    """
    require_model_code_consent(path, allow_model_code, what=what)
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit deprecation notices
            if is_torchscript(path):
                net = torch.jit.load(str(path), map_location="cpu")
            else:
                net = torch.load(path, map_location="cpu", weights_only=False)  # consent given above
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, ValueError, AttributeError,
            ModuleNotFoundError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:240]
        raise RSABridgeError(f"cannot load {what} {str(path)!r}: {first}") from None
    if not isinstance(net, nn.Module):
        raise RSABridgeError(f"{what} {str(path)!r} holds a {type(net).__name__}, not a network (torch.nn.Module)")
    return net.eval()
