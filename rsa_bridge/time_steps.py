"""Model time steps and brain time bins: the ``time_step`` axis and an explicit pairing with ``time_bin``.

A recurrent network read per call (``V2@0``, ``V2@1``, ...; :mod:`extractors.hooks`) has a
``time_step`` axis: the call number of a module within one forward pass. It is named after the neural
``time_bin`` convention (Brain-Score's dimension names) but is kept a separate name on purpose: a step
counts iterations of the recurrence and has no unit of time, while a bin has a start and an end in
milliseconds after stimulus onset. Equating them is a modelling choice, so it is made here, explicitly,
by :func:`pair_steps_with_bins`, and recorded.
"""
from __future__ import annotations

TIME_STEP = "time_step"
