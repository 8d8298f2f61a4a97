"""Stimulus sets: folders of images plus a manifest with ``stimulus_id`` and labels."""
from stimuli.errors import StimulusError
from stimuli.stimulus_set import StimulusSet, from_folder, load_stimulus_set, read_image

__all__ = ["StimulusError", "StimulusSet", "from_folder", "load_stimulus_set", "read_image"]
