"""load_model: cached torchvision weights, offline errors, state-dict files, untrained models."""
from __future__ import annotations

import hashlib
import urllib.error
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from extractors import load_model
from rsa_bridge.errors import RSABridgeError

# torchvision's file name for SqueezeNet1_1_Weights.IMAGENET1K_V1 (small: 1.2 M parameters)
SQUEEZE_FILE = "squeezenet1_1-b8a52dc0.pth"
ALEXNET_FILE = "alexnet-owt-7be5be79.pth"


@pytest.fixture
def torch_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.delenv("RSA_BRIDGE_OFFLINE", raising=False)
    return home


def _squeezenet_state(seed: int, **kwargs) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return torchvision.models.squeezenet1_1(**kwargs).state_dict()


def _same_state(model: nn.Module, state: dict[str, torch.Tensor]) -> bool:
    mine = model.state_dict()
    return mine.keys() == state.keys() and all(torch.equal(mine[k], state[k]) for k in state)


def test_offline_without_cache_says_where_the_file_goes(torch_home, monkeypatch):
    monkeypatch.setenv("RSA_BRIDGE_OFFLINE", "1")
    with pytest.raises(RSABridgeError) as err:
        load_model("alexnet")
    message = str(err.value)
    assert str(torch_home / "hub" / "checkpoints" / ALEXNET_FILE) in message
    assert "--weights PATH" in message and "--weights none" in message and "RSA_BRIDGE_OFFLINE" in message
    assert "\n" not in message
    assert not (torch_home / "hub" / "checkpoints" / ALEXNET_FILE).exists()


def test_failed_download_is_the_same_clear_error(torch_home, monkeypatch):
    def no_network(url, dst, *args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(RSABridgeError, match="could not be downloaded.*Name or service not known") as err:
        load_model("squeezenet1_1", "IMAGENET1K_V1")  # an enum member name works like "default"
    assert str(torch_home / "hub" / "checkpoints" / SQUEEZE_FILE) in str(err.value)


def test_cached_file_at_torchvision_path_is_loaded(torch_home):
    state = _squeezenet_state(seed=5)
    target = torch_home / "hub" / "checkpoints" / SQUEEZE_FILE
    target.parent.mkdir(parents=True)
    torch.save(state, target)
    before = torch.get_rng_state()
    model = load_model("squeezenet1_1")  # weights="default" -> SqueezeNet1_1_Weights.IMAGENET1K_V1
    assert torch.equal(torch.get_rng_state(), before)  # the global RNG is untouched
    assert _same_state(model, state) and not model.training
    info = model.rsa_bridge_info
    assert info.weights == "IMAGENET1K_V1" and info.weights_sha256 == "" and info.seed is None
    assert info.preprocessing.startswith("ImageClassification(crop_size=[224], resize_size=[256]")


def test_corrupt_cached_file_is_named(torch_home):
    target = torch_home / "hub" / "checkpoints" / SQUEEZE_FILE
    target.parent.mkdir(parents=True)
    target.write_bytes(b"\x00not a checkpoint")
    with pytest.raises(RSABridgeError, match="could not be loaded.*corrupt") as err:
        load_model("squeezenet1_1")
    assert str(target) in str(err.value)


def test_state_dict_file_loads_and_records_sha256(tmp_path):
    state = _squeezenet_state(seed=7)
    plain, nested, parallel = tmp_path / "plain.pt", tmp_path / "nested.pt", tmp_path / "parallel.pt"
    torch.save(state, plain)
    torch.save({"state_dict": state, "epoch": 3}, nested)
    torch.save({f"module.{k}": v for k, v in state.items()}, parallel)
    for path in (plain, nested, parallel):
        model = load_model("squeezenet1_1", weights=str(path))
        assert _same_state(model, state)
        info = model.rsa_bridge_info
        assert info.weights == str(path) and info.seed is None
        assert info.weights_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert info.preprocessing.startswith("ImageClassification(")  # the DEFAULT enum's transforms
    assert _same_state(load_model("squeezenet1_1", weights=plain), state)  # a Path works too


def test_bad_state_dict_files_are_clear_errors(tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"PK\x03\x04 truncated zip")
    with pytest.raises(RSABridgeError, match=r"cannot read weights file .*corrupt\.pt"):
        load_model("squeezenet1_1", weights=str(corrupt))
    other = tmp_path / "resnet18.pt"
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18().state_dict(), other)
    with pytest.raises(RSABridgeError, match=r"does not fit torchvision's squeezenet1_1: \d+ missing keys.*unexpected"):
        load_model("squeezenet1_1", weights=str(other))
    ten = tmp_path / "ten_classes.pt"
    torch.save(_squeezenet_state(seed=0, num_classes=10), ten)
    with pytest.raises(RSABridgeError, match=r"2 shape mismatches \(classifier.1.weight file \(10, 512, 1, 1\)"):
        load_model("squeezenet1_1", weights=str(ten))
    not_dict = tmp_path / "list.pt"
    torch.save([torch.zeros(2)], not_dict)
    with pytest.raises(RSABridgeError, match="not a state dict"):
        load_model("squeezenet1_1", weights=str(not_dict))
    with pytest.raises(RSABridgeError, match="neither one of 'default', 'none'.*nor an existing file"):
        load_model("squeezenet1_1", weights=str(tmp_path / "missing.pt"))


def test_untrained_is_reproducible_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = load_model("squeezenet1_1", weights="none")
    b = load_model("squeezenet1_1", weights=None)
    assert torch.equal(torch.get_rng_state(), before)
    assert _same_state(b, a.state_dict())
    assert a.rsa_bridge_info.weights == "none" and a.rsa_bridge_info.seed == 0
    # the seed is the whole story: seed 0 under torch's own RNG gives the same network
    assert _same_state(a, _squeezenet_state(seed=0))
    c = load_model("squeezenet1_1", weights="none", seed=1)
    assert not _same_state(c, a.state_dict()) and c.rsa_bridge_info.seed == 1


def test_unknown_model_suggests_names():
    with pytest.raises(RSABridgeError, match="unknown model 'alexnett'.*'alexnet'"):
        load_model("alexnett", weights="none")
