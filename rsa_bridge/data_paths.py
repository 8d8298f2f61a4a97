"""What a data file's attributes may say: text where text is expected, and paths that stay in the file's folder.

A NetCDF file's attributes come from whoever wrote the file. Two rules keep them harmless:

- :func:`text_attr`: an attribute that should be a string (``stimulus_set``, ``name``, ``units`` ...) and is a
  number, an array or bytes is one :class:`RSABridgeError` line, never a traceback further on.
- :func:`inside_folder`: an attribute that names a file or folder (``stimulus_set`` of an RDM dataset,
  ``repeat_rates`` of an area) is resolved relative to the folder of the data file and must stay inside it:
  no absolute path, no ``..`` that climbs out (the rule of :mod:`stimuli.stimulus_set` for manifest file
  names), and no symbolic link that leads out (the resolved path must lie in the resolved folder). So a
  downloaded dataset cannot make ``compare`` read images, or rates, from elsewhere on the disk.

Example::

    >>> from pathlib import Path
    >>> inside_folder(Path("/data/v4"), "stimuli", "dataset 'v4.nc': attribute 'stimulus_set'")  # doctest: +SKIP
    PosixPath('/data/v4/stimuli')
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from stimuli.stimulus_set import _leaving  # the manifest rule: absolute, or climbing out with ``..``

from rsa_bridge.errors import RSABridgeError


def text_attr(attrs: Mapping[str, Any], key: str, where: str, what: str = "text") -> str | None:
    """``attrs[key]`` as a string, None when absent; anything but a string is a one-line error.

    Args:
        attrs: a file's (or variable's) attributes.
        key: the attribute.
        where: names the file and object for the message (``"dataset 'x.nc'"``).
        what: what the string should be, for the message (``"a folder relative to the file"``).
    """
    if key not in attrs:
        return None
    value = attrs[key]
    if isinstance(value, str):
        return str(value)
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    raise RSABridgeError(f"{where}: attribute {key!r} must be {what}; it is {type(value).__name__} {shown}; "
                         "fix or delete the attribute")


def inside_folder(folder: str | os.PathLike, name: str, where: str) -> Path:
    """``folder / name`` resolved, when it stays inside ``folder`` (see the module docstring).

    Raises:
        RSABridgeError: ``name`` is empty of meaning (NUL byte), absolute, climbs out with ``..``, or leads out
            through a symbolic link.
    """
    advice = ("rsa-bridge follows only paths inside the data file's folder; move the files there and name them "
              "relative to it (or delete the attribute and name them yourself, e.g. --stimuli DIR)")
    if "\x00" in name or _leaving(name):
        raise RSABridgeError(f"{where} is {name!r}, outside the data file's folder; {advice}")
    root = Path(folder).resolve()
    target = (root / name).resolve()
    if not target.is_relative_to(root):
        raise RSABridgeError(f"{where} is {name!r}, which leads out of the data file's folder (to "
                             f"{str(target)!r}, through a symbolic link); {advice}")
    return target
