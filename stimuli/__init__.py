"""Stimulus sets: folders of images plus a manifest with ``stimulus_id`` and labels."""
from stimuli.errors import StimulusError
from stimuli.stimulus_set import StimulusSet, from_folder, load_stimulus_set, read_image

__all__ = ["StimulusError", "StimulusSet", "from_folder", "load_stimulus_set", "read_image"]

# issue 8: stimulus-set tools, FractalDB-style fractals and image-statistics control models
from stimuli.builders import from_archive, from_csv, from_folder_tree, write_manifest  # noqa: E402
from stimuli.contact_sheet import contact_sheet  # noqa: E402
from stimuli.controls import CONTROL_MODELS, ControlFeatures, control_features  # noqa: E402
from stimuli.fractals import make_fractal_set  # noqa: E402

__all__ += [
    "CONTROL_MODELS", "ControlFeatures", "contact_sheet", "control_features", "from_archive", "from_csv",
    "from_folder_tree", "make_fractal_set", "write_manifest",
]
