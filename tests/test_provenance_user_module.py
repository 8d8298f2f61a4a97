"""A user nn.Module is never labelled as trained weights: `weights user-module` + state-dict SHA-256."""
from __future__ import annotations

import hashlib
import json

import pytest
import torch
import xarray as xr
from torchvision import models as tvm
from torchvision import transforms as T

import extractors
from extractors.provenance import USER_MODULE, module_provenance, state_dict_sha256
from rsa_bridge.app.cache import RDMCache
from rsa_bridge.app.pipeline import RDMOptions, compare_models
from rsa_bridge.app.report import format_table, write_outputs
from tests.helpers import make_rdm_dataset, make_stimuli

ENUM_NAMES = set(tvm.MobileNet_V2_Weights.__members__) | {"default", "DEFAULT"}


def _independent_sha(model: torch.nn.Module) -> str:
    """Hash of the state dict written from scratch (names, dtype, shape, bytes), as the module documents."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(bytes(t.reshape(-1).view(torch.uint8).tolist()))
    return h.hexdigest()


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy_user")
    ids = make_stimuli(root / "stimuli", n=6, size=32)
    make_rdm_dataset(root / "toy.nc", ids)
    return root, ids


def _small_cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2),
                               torch.nn.Flatten(), torch.nn.Linear(16, 5))


def test_state_sha_matches_an_independent_hash():
    net = _small_cnn()
    assert state_dict_sha256(net) == _independent_sha(net)
    other = _small_cnn()
    with torch.no_grad():
        other[0].weight[0, 0, 0, 0] += 1e-3
    assert state_dict_sha256(other) != state_dict_sha256(net)


@pytest.mark.parametrize("weights_arg", ["default", "IMAGENET1K_V1", "IMAGENET1K_V2", "none"])
def test_untrained_user_module_is_never_labelled_default_or_enum(toy, tmp_path, weights_arg):
    root, _ = toy
    net = tvm.mobilenet_v2(weights=None).train()  # untrained, handed over in training mode
    transform = T.Compose([T.Resize(32), T.ToTensor()])
    result = compare_models(["mobilenet_v2"], dataset=str(root / "toy.nc"), layers=["features.1", "classifier.1"],
                            models=[net], transform=transform, weights=weights_arg, rdm=RDMOptions(batch_size=3),
                            progress=False, cache=tmp_path / "cache")
    table = result.table
    assert set(table["weights"]) == {USER_MODULE}
    assert not (set(table["weights"]) & ENUM_NAMES)
    sha = _independent_sha(net)
    assert set(table["state_sha256"]) == {sha} and set(table["module_training"]) == {True}
    assert table["transform"].str.contains("Resize(size=32", regex=False).all()
    attrs = result.results.attrs
    assert attrs["weights"] == USER_MODULE and attrs["state_sha256"] == sha and attrs["module_training"] == "True"
    assert "Resize(size=32" in attrs["transform"] and "Resize(size=32" in attrs["preprocessing"]
    head = format_table(result).splitlines()[0]
    assert f"weights {USER_MODULE}" in head and sha[:12] in head and "training mode" in head
    assert "Resize(size=32" in head
    assert not any(f"weights {name}" in head for name in ENUM_NAMES)
    # the files say so too
    write_outputs(result, tmp_path / "out")
    csv = (tmp_path / "out" / "results.csv").read_text()
    assert USER_MODULE in csv and sha in csv and "IMAGENET1K" not in csv
    with xr.open_dataset(tmp_path / "out" / "results.nc", engine="h5netcdf") as ds:
        assert ds.attrs["weights"] == USER_MODULE and ds.attrs["state_sha256"] == sha
    # and the cache: label, hash and mode in the key's description
    (entry,) = RDMCache(tmp_path / "cache").entries()
    assert entry.weights == f"{USER_MODULE}:{sha[:12]}"
    with xr.open_dataset(entry.path, engine="h5netcdf") as ds:
        description = json.loads(ds.attrs["rsa_bridge_cache_description"])
    assert description["model"]["weights"] == USER_MODULE and description["model"]["parameters_sha256"] == sha
    assert description["model"]["training"] is True


def test_loaded_model_changed_afterwards_becomes_user_module():
    net = extractors.load_model("mobilenet_v2", weights="none")
    assert module_provenance(net)["weights"] == "none"
    with torch.no_grad():
        net.classifier[1].bias.add_(1.0)
    record = module_provenance(net)
    assert record["weights"] == USER_MODULE and "loaded as none" in record["weights_origin"]
    assert record["seed"] is None


def test_plain_module_info_says_user_module():
    info = extractors.model_info(_small_cnn())
    assert info.weights == USER_MODULE and info.source == "user"
