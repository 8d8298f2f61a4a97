"""Pairing model time steps with neural time bins (rsa_bridge.time_steps) against scipy, stimuli matched by id."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy.spatial.distance import pdist, squareform
from scipy.stats import pearsonr, spearmanr

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.time_steps import TIME_STEP, pair_steps_with_bins, step_bin_similarity, step_rdms

IDS = [f"s{i}" for i in range(7)]


def _rdms(seed: int, count: int, dim: str) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    squares = np.stack([squareform(pdist(rng.normal(size=(7, 5)))) for _ in range(count)])
    return xr.DataArray(squares, dims=(dim, "stimulus_row", "stimulus_col"),
                        coords={dim: np.arange(count), "stimulus_row": IDS, "stimulus_col": IDS})


def test_grid_equals_scipy_with_neural_stimuli_in_another_order():
    model = _rdms(0, 3, "layer").assign_coords(layer=["IT@1", "IT@0", "V4@0"], module_path=("layer", ["a", "b", "c"]))
    steps = step_rdms(model, "IT")
    assert steps.dims == (TIME_STEP, "stimulus_row", "stimulus_col") and list(steps[TIME_STEP].values) == [0, 1]
    brain = _rdms(1, 4, "time_bin").assign_coords(time_bin_center=("time_bin", [50.0, 100.0, 150.0, 200.0]))
    order = [3, 0, 6, 1, 5, 2, 4]
    shuffled = brain.isel(stimulus_row=order, stimulus_col=order)
    iu = np.triu_indices(7, 1)
    for method, ref in (("spearman", spearmanr), ("pearson", pearsonr)):
        grid = step_bin_similarity(steps, shuffled, method)
        assert grid.dims == (TIME_STEP, "time_bin") and grid.attrs["method"] == method
        for t, layer in enumerate(["IT@0", "IT@1"]):
            for b in range(4):
                want = ref(model.sel(layer=layer).values[iu], brain.values[b][iu])[0]
                assert grid.values[t, b] == pytest.approx(want, abs=1e-12)
        assert list(grid["time_bin_center"].values) == [50.0, 100.0, 150.0, 200.0]
    pairs = pair_steps_with_bins(grid, first_bin=1, stride=2)
    assert list(pairs["paired_bin"].values) == [1, 3]
    assert pairs["paired_similarity"].values[1] == pytest.approx(grid.values[1, 3])
    assert list(pairs["peak_bin"].values) == list(np.argmax(grid.values, axis=1))
    late = pair_steps_with_bins(grid, first_bin=3)
    assert list(late["paired_bin"].values) == [3, -1] and np.isnan(late["paired_similarity"].values[1])
    assert "3 + t * 1" in late.attrs["pairing"]


@pytest.mark.parametrize("case, message", [
    ("ids", "stimulus ids of the model step RDMs and the neural time-bin RDMs differ"),
    ("dims", "must have dims"),
    ("constant", "constant"),
    ("no_steps", "no per-step layers IT@0"),
    ("stride", "stride >= 1"),
])
def test_refusals(case, message):
    steps = _rdms(0, 2, TIME_STEP)
    brain = _rdms(1, 3, "time_bin")
    with pytest.raises(RSABridgeError, match=message):
        if case == "ids":
            step_bin_similarity(steps, brain.assign_coords(stimulus_row=IDS[:-1] + ["x"], stimulus_col=IDS[:-1] + ["x"]))
        elif case == "dims":
            step_bin_similarity(steps.rename(time_step="layer"), brain)
        elif case == "constant":
            flat = brain.copy(data=np.where(np.eye(7, dtype=bool), 0.0, 1.0)[None].repeat(3, 0))
            step_bin_similarity(steps, flat)
        elif case == "no_steps":
            step_rdms(_rdms(0, 2, "layer").assign_coords(layer=["V1", "V2"]), "IT")
        else:
            pair_steps_with_bins(step_bin_similarity(steps, brain), stride=0)


@pytest.mark.parametrize("module", ["extractors.hooks", "extractors.cornet", "extractors.to_disk",
                                    "rsa_bridge.time_steps"])
def test_docstring_examples(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
