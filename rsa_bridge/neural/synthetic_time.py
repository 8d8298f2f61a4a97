"""Synthetic time-resolved firing rates with a planted latency per area (for tests, docs and teaching).

Each stimulus s has a latent feature vector z_s (``n_features``, standard normal). A neuroid of area a
has fixed random weights w on the features; its rate in a presentation at time t is

    rate = baseline + gain * g_a(t) * (w . z_s) + noise,     g_a(t) = exp(-(t - peak_a)^2 / (2 width^2))

so the stimulus structure of area a (its RDM) is strongest at ``peak_a`` ms and drowned by noise far
from it. The RDM of the latent features (``correlation`` metric) is the "model" that matches every area
best at its peak: time-resolved RSA should recover the planted peaks.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from stimuli.keywords import refuse_keywords
from rsa_bridge.neural.schema import RatesOptions, make_rates
from rsa_bridge.rdm import compute_rdm


@dataclass(frozen=True)
class LatencyDesign:
    """The sizes and signal of :func:`planted_latency_rates` (defaults: 40 stimuli, 30 neuroids per area, ...).

    Attributes:
        n_stimuli, n_neuroids (per area), n_repetitions, n_features: sizes.
        bin_ms, t_max: bins [0, bin_ms), ... up to t_max ms after onset.
        width: the temporal s.d. of the stimulus signal (ms); gain, noise: signal and noise s.d.

    Example::

        >>> LatencyDesign(n_stimuli=30).n_stimuli, LatencyDesign().bin_ms
        (30, 10.0)
    """

    n_stimuli: int = 40
    n_neuroids: int = 30
    n_repetitions: int = 4
    n_features: int = 6
    bin_ms: float = 10.0
    t_max: float = 300.0
    width: float = 20.0
    gain: float = 0.4
    noise: float = 1.0


def planted_latency_rates(peaks: dict[str, float] | None = None, *, seed: int = 0,
                          design: LatencyDesign | None = None, **stray) -> tuple[xr.DataArray, xr.DataArray]:
    """Rates (presentation, neuroid, time_bin) of areas with planted peak latencies, and the model RDM.

    Args:
        peaks: area -> peak latency in ms (default V4 75 ms, IT 135 ms: centres of 10 ms bins).
        seed: the one seed of every draw.
        design: sizes, bins and signal (:class:`LatencyDesign`; None: its defaults). The old keywords
            (``n_stimuli=`` ...) are a TypeError naming the field.

    Returns:
        (rates in arbitrary units (spikes/s-like), model RDM (stimulus_row, stimulus_col) of the features).

    Example::

        >>> rates, model = planted_latency_rates({"V4": 75.0}, design=LatencyDesign(n_stimuli=8, n_neuroids=3))
        >>> rates.dims, rates.shape, model.shape        # 8 stimuli x 4 repetitions, 30 bins of 10 ms
        (('presentation', 'neuroid', 'time_bin'), (32, 3, 30), (8, 8))
    """
    refuse_keywords("planted_latency_rates", stray, LatencyDesign, "design")
    d = design if design is not None else LatencyDesign()
    n_stimuli, n_neuroids, n_repetitions, n_features = d.n_stimuli, d.n_neuroids, d.n_repetitions, d.n_features
    bin_ms, t_max, width, gain, noise = d.bin_ms, d.t_max, d.width, d.gain, d.noise
    peaks = peaks or {"V4": 75.0, "IT": 135.0}
    rng = np.random.default_rng(seed)
    ids = [f"stim{k:03d}" for k in range(n_stimuli)]
    z = rng.normal(0, 1, (n_stimuli, n_features))
    starts = np.arange(0.0, t_max, bin_ms)
    centers = starts + bin_ms / 2
    blocks, regions, neuroid_ids = [], [], []
    for area, peak in peaks.items():
        w = rng.normal(0, 1, (n_features, n_neuroids))
        g = np.exp(-((centers - peak) ** 2) / (2 * width ** 2))  # (T,)
        signal = (z @ w)[:, :, None] * g[None, None, :]  # (S, N, T)
        reps = [5.0 + gain * signal + rng.normal(0, noise, signal.shape) for _ in range(n_repetitions)]
        blocks.append(np.concatenate(reps, axis=0))  # (R*S, N, T)
        regions += [area] * n_neuroids
        neuroid_ids += [f"{area}_{k:03d}" for k in range(n_neuroids)]
    values = np.concatenate(blocks, axis=1)
    rates = make_rates(values, stimulus_ids=ids * n_repetitions,
                       repetitions=np.repeat(np.arange(n_repetitions), n_stimuli), neuroid_ids=neuroid_ids,
                       region=regions, animal="synthetic", units="spikes/s",
                       options=RatesOptions(
                           time_bins=list(zip(starts, starts + bin_ms)),
                           attrs={"name": "planted_latency", "source": "rsa_bridge.neural.synthetic_time",
                                  "planted_peaks_ms": ",".join(f"{a}={p:g}" for a, p in peaks.items()), "seed": seed}))
    model = compute_rdm(z, "correlation", stimulus_ids=ids)
    return rates, model
