"""Per-call capture (``layer@t``, ``layer@all``) and the CORnet-RT/S-style networks, against hand-unrolled passes.

References: the module's step function called by hand in a loop (the same weights), scipy's ``pdist``
for the RDMs of those hand-unrolled activations.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist, squareform
from torch import nn

from extractors import extract, load_model, resolve_layers, run_recorded
from extractors.hooks import split_call
from extractors.streaming import stream_rdms
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.options import RDMOptions
from rsa_bridge.time_steps import TIME_STEP


class Loop(nn.Module):
    """A toy recurrent net: ``block`` runs three times per pass on its own output."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Conv2d(3, 4, 3, padding=1)
        self.block = nn.Conv2d(4, 4, 3, padding=1)
        self.head = nn.Flatten()

    def step(self, h: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.block(h)) + 0.5 * h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for _ in range(3):
            h = self.step(h)
        return self.head(h)


@pytest.fixture(scope="module")
def loop() -> nn.Module:
    torch.manual_seed(0)
    return Loop().eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(6, 3, 6, 6, generator=torch.Generator().manual_seed(1))


def _by_hand(net: Loop, x: torch.Tensor) -> list[np.ndarray]:
    """``block``'s output at each call, computed without hooks."""
    outs, h = [], net.inp(x)
    with torch.no_grad():
        for _ in range(3):
            outs.append(net.block(h).reshape(len(x), -1).numpy())
            h = torch.relu(net.block(h)) + 0.5 * h
    return outs


def test_split_call():
    assert split_call("V2@3") == ("V2", 3)
    assert split_call("V2@ALL") == ("V2", "all")
    assert split_call("features.0") == ("features.0", None)
    with pytest.raises(RSABridgeError, match=r"'V2@x'.*call number.*V2@0 or V2@all"):
        split_call("V2@x")


def test_per_call_outputs_equal_the_hand_unrolled_pass(loop, images):
    want = _by_hand(loop, images)
    acts = extract(loop, images, ["block@1", "block@all", "inp"], batch_size=4, progress=False)
    assert list(acts) == ["block@1", "block@all", "inp"]
    np.testing.assert_allclose(acts["block@1"].values, want[1], rtol=1e-5, atol=1e-6)
    stacked = acts["block@all"]
    assert stacked.dims == (TIME_STEP, "presentation", "neuroid")
    assert list(stacked[TIME_STEP].values) == [0, 1, 2]
    assert list(stacked["step_module_path"].values) == ["block@0", "block@1", "block@2"]
    for t in range(3):
        np.testing.assert_allclose(stacked.sel({TIME_STEP: t}).values, want[t], rtol=1e-5, atol=1e-6)
    assert acts["block@1"].attrs[TIME_STEP] == 1
    assert acts["block@1"].attrs["call_order"] == "inp@0,block@0,block@1,block@2"
    assert stacked.attrs["module_path"] == "block" and stacked.attrs["time_steps"] == 3
    assert TIME_STEP not in acts["inp"].attrs  # an ordinary layer has no step


def test_run_recorded_reads_one_call_and_stops_early(loop, images):
    out = run_recorded(loop, images, {"b0": "block@0", "b2": "block@2"}, stop_early=True)
    want = _by_hand(loop, images)
    np.testing.assert_allclose(out["b2"].reshape(6, -1).numpy(), want[2], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["b0"].reshape(6, -1).numpy(), want[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layers, message", [
    (["block"], r"'block'.*runs 3 times.*block@0 \.\. block@2.*block@all"),
    (["block@3"], r"call 3 of module 'block', which runs 3 time\(s\).*block@0 \.\. block@2"),
    (["block@-1"], r"after '@' must be a call number"),
    (["nope@all"], r"unknown layer 'nope'"),
    (["block@1", "block@1"], r"requested twice"),
])
def test_bad_per_call_requests_are_one_line_errors(loop, images, layers, message):
    with pytest.raises(RSABridgeError, match=message) as err:
        extract(loop, images, layers, progress=False)
    assert "\n" not in str(err.value)


def test_calls_of_different_shapes_cannot_share_a_time_step_dim(images):
    class Shared(nn.Module):  # one ReLU applied to two tensors of different sizes
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 3)
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(self.conv(self.act(x))).flatten(1)

    net = Shared().eval()
    with pytest.raises(RSABridgeError, match=r"'act@all'.*different shapes.*act@0, act@1"):
        extract(net, images, ["act@all"], progress=False)
    acts = extract(net, images, ["act@0", "act@1"], progress=False)  # one by one they work
    np.testing.assert_array_equal(acts["act@0"].values, torch.relu(images).reshape(6, -1).numpy())
    rdms = stream_rdms(net, images, ["act@all"], RDMOptions(batch_size=6), progress=False)  # RDMs need no stacking
    assert list(rdms["layer"].values) == ["act@0", "act@1"]


def test_stream_rdms_expand_all_with_a_time_step_coordinate(loop, images):
    rdms = stream_rdms(loop, images, ["inp", "block@all"], RDMOptions(batch_size=4), progress=False)
    assert list(rdms["layer"].values) == ["inp", "block@0", "block@1", "block@2"]
    assert list(rdms[TIME_STEP].values) == [0, 0, 1, 2]
    assert list(rdms["module_path"].values) == ["inp", "block@0", "block@1", "block@2"]
    assert rdms.attrs["call_order"] == "inp@0,block@0,block@1,block@2"
    for t, acts in enumerate(_by_hand(loop, images)):
        np.testing.assert_allclose(rdms.sel(layer=f"block@{t}").values, squareform(pdist(acts, "correlation")),
                                   atol=1e-6)
    from rsa_bridge.rdm_store import RDMStore

    store = stream_rdms(loop, images, ["inp", "block@all"], RDMOptions(batch_size=4), progress=False,
                        out_store=RDMStore([str(i) for i in range(6)]))  # the store path (large stimulus sets)
    assert [store.coords[name][TIME_STEP] for name in store.names] == [0, 0, 1, 2]
    np.testing.assert_allclose(store.to_dataarray().values, rdms.values, atol=1e-12)


def test_resolve_keeps_the_suffix_after_aliases_and_presets():
    model = load_model("cornet_s", "none")
    assert resolve_layers(model, "V2@1,IT@all") == [("V2@1", "V2@1"), ("IT@all", "IT@all")]
    assert [n for n, _ in resolve_layers(model, None)] == ["V1", "V2@all", "V4@all", "IT@all"]


# --- CORnet-style networks ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small() -> torch.Tensor:
    return torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(2))


def test_cornet_s_step_rdms_differ_per_step_and_equal_the_hand_unrolled_blocks(small):
    model = load_model("cornet_s", "none", seed=0)
    rdms = stream_rdms(model, small, ["V2@all", "V4@all"], RDMOptions(batch_size=5), progress=False)
    assert list(rdms["layer"].values) == ["V2@0", "V2@1", "V4@0", "V4@1", "V4@2", "V4@3"]
    assert list(rdms[TIME_STEP].values) == [0, 1, 0, 1, 2, 3]
    with torch.no_grad():  # the forward pass unrolled by hand: each area's step function in a loop
        h = model.V1(small)
        for area in ("V2", "V4"):
            for t in range(getattr(model, area).steps):
                h = getattr(model, area)(h, t)
                want = squareform(pdist(h.reshape(len(small), -1).double().numpy(), "correlation"))
                np.testing.assert_allclose(rdms.sel(layer=f"{area}@{t}").values, want, atol=1e-5)
    v4 = rdms.sel(layer=[f"V4@{t}" for t in range(4)]).values
    assert all(np.abs(v4[t] - v4[t + 1]).max() > 2e-4 for t in range(3))  # the steps differ, 20x the tolerance


def test_cornet_rt_unrolls_in_biological_time(small):
    model = load_model("cornet_rt", "none", seed=0)
    acts = extract(model, small, ["V1@all", "IT@all", "V2@2"], progress=False)
    assert acts["V1@all"].sizes[TIME_STEP] == 5 and acts["IT@all"].sizes[TIME_STEP] == 2
    with torch.no_grad():
        names, latest, hand = ["V1", "V2", "V4", "IT"], {}, {n: [] for n in ("V1", "V2", "V4", "IT")}
        for _ in range(5):
            new = {}
            for k, name in enumerate(names):
                inp = small if k == 0 else latest.get(names[k - 1])
                if inp is not None:
                    new[name] = getattr(model, name)(inp, latest.get(name))
                    hand[name].append(new[name].reshape(len(small), -1).numpy())
            latest.update(new)
    for t in range(5):
        np.testing.assert_allclose(acts["V1@all"].sel({TIME_STEP: t}).values, hand["V1"][t], rtol=1e-4, atol=1e-5)
    for t in range(2):
        np.testing.assert_allclose(acts["IT@all"].sel({TIME_STEP: t}).values, hand["IT"][t], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(acts["V2@2"].values, hand["V2"][2], rtol=1e-4, atol=1e-5)
    assert acts["IT@all"].attrs["step_offsets"] == "V1:0,V2:1,V4:2,IT:3"
    assert acts["IT@all"].attrs["call_order"] == "V1@0,V1@1,V2@0,V1@2,V2@1,V1@3,V2@2,IT@0,V1@4,V2@3,IT@1"


def test_cornet_weights_seed_and_state_dict_round_trip(tmp_path, small):
    a, b = load_model("cornet_rt", "none", seed=0), load_model("cornet_rt", "none", seed=1)
    assert a.rsa_bridge_info.seed == 0 and a.rsa_bridge_info.weights == "none"
    assert a.rsa_bridge_info.state_sha256 != b.rsa_bridge_info.state_sha256
    path = tmp_path / "rt.pt"
    torch.save(b.state_dict(), path)
    c = load_model("cornet_rt", str(path))
    assert c.rsa_bridge_info.weights == str(path) and len(c.rsa_bridge_info.weights_sha256) == 64
    with torch.no_grad():
        np.testing.assert_allclose(c(small).numpy(), b(small).numpy(), rtol=1e-6)
    with pytest.raises(RSABridgeError, match="ships no pretrained weights for cornet_s"):
        load_model("cornet_s", "default")
    with pytest.raises(RSABridgeError, match="does not fit"):
        load_model("cornet_s", str(path))


def test_layers_command_lists_areas_with_their_steps(capsys):
    from rsa_bridge.app.cli import main

    assert main(["layers", "--model", "cornet_s"]) == 0
    out = capsys.readouterr().out
    for area in ("V1", "V2", "V4", "IT"):
        assert f"\n* {area} " in out
    assert "V4  4 steps: V4@0 .. V4@3, V4@all" in out
    assert "V1  " not in out.split("# time steps")[1]  # V1 of CORnet-S runs once
    assert main(["layers", "--model", "cornet_rt"]) == 0
    assert "V1  5 steps" in capsys.readouterr().out


def test_compare_pipeline_scores_each_step_as_a_layer(tmp_path):
    from rsa_bridge.app.network import NetworkOptions
    from rsa_bridge.app.pipeline import compare_model
    from scipy.stats import spearmanr
    from tests.helpers import make_rdm_dataset, make_stimuli

    ids = make_stimuli(tmp_path / "stimuli", n=8)
    make_rdm_dataset(tmp_path / "toy.nc", ids)
    model = load_model("cornet_rt", "none", seed=0)
    result = compare_model("cornet_rt", dataset=str(tmp_path / "toy.nc"), progress=False,
                           network=NetworkOptions(layers=["V4@all", "IT@1"], models=[model], cache=False))
    table = result.table
    assert list(dict.fromkeys(table["layer"])) == ["V4@0", "V4@1", "V4@2", "IT@1"]
    assert list(table.drop_duplicates("layer")[TIME_STEP]) == [0, 1, 2, 1]
    assert list(result.results[TIME_STEP].values) == [0, 1, 2, 1]
    rdms = result.model_rdms[next(iter(result.model_rdms))]
    assert list(rdms[TIME_STEP].values) == [0, 1, 2, 1]
    import xarray as xr

    single = table[(table["layer"] == "V4@2") & (table["n_rdms"] == 1)]
    assert len(single) == 1  # an area with one RDM: its similarity is one Spearman correlation (by stimulus_id)
    brain = xr.open_dataset(tmp_path / "toy.nc", engine="h5netcdf")[str(single["area"].iloc[0])].load()
    brain = brain if brain.ndim == 2 else brain.isel({brain.dims[0]: 0})
    order = [str(s) for s in rdms["stimulus_row"].values]
    b = brain.sel(stimulus_row=order, stimulus_col=order).values
    iu = np.triu_indices(len(order), 1)
    want = spearmanr(rdms.sel(layer="V4@2").values[iu], b[iu])[0]
    assert float(single["similarity"].iloc[0]) == pytest.approx(want, abs=1e-10)
