"""Stimulus sets: folders of images plus a manifest with ``stimulus_id`` and labels.

Also: stimulus-set builders (folders, CSVs, archives), FractalDB-style fractals and image-statistics
control models. Names are imported on first use (PEP 562), so importing this package is cheap.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from stimuli.errors import StimulusError

#: public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "StimulusSet": "stimuli.stimulus_set", "from_folder": "stimuli.stimulus_set",
    "load_stimulus_set": "stimuli.stimulus_set", "read_image": "stimuli.stimulus_set",
    "from_archive": "stimuli.builders", "from_csv": "stimuli.builders", "from_folder_tree": "stimuli.builders",
    "write_manifest": "stimuli.builders", "contact_sheet": "stimuli.contact_sheet",
    "CONTROL_MODELS": "stimuli.controls", "ControlFeatures": "stimuli.controls",
    "control_features": "stimuli.controls", "make_fractal_set": "stimuli.fractals",
    "RenderSettings": "stimuli.fractals",
}

__all__ = sorted(["StimulusError", *_EXPORTS])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'stimuli' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover
    from stimuli.builders import from_archive, from_csv, from_folder_tree, write_manifest  # noqa: F401
    from stimuli.contact_sheet import contact_sheet  # noqa: F401
    from stimuli.controls import CONTROL_MODELS, ControlFeatures, control_features  # noqa: F401
    from stimuli.fractals import RenderSettings, make_fractal_set  # noqa: F401
    from stimuli.stimulus_set import StimulusSet, from_folder, load_stimulus_set, read_image  # noqa: F401
