"""Model files that run code load only with consent (``--allow-model-code`` / ``allow_model_code=True``).

The hostile file is a TorchScript depth network whose ``forward`` maps a private file with
``torch.from_file(shared=True)`` and overwrites its first bytes: the private file's content says whether the
network's code ran. Without the flag the command stops with one line (exit 2) before loading anything;
with it the network runs (the test's own control) and the output records the consent.
"""
from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import xarray as xr
from torch import nn

from analyses.depth_mask.depthnet import TinyDepthNet, load_depth_net, save_depth_net
from analyses.depth_mask.scenes import make_scenes, write_pngs
from extractors.model_code import (
    MODEL_CODE_ALLOWED,
    is_torchscript,
    load_model_code,
    require_model_code_consent,
)
from extractors.models import read_state_dict
from rsa_bridge.app.cli import main
from rsa_bridge.errors import RSABridgeError

SECRET = b"SECRETSECRET"


class FromFileDepth(nn.Module):
    """A depth network that, when run, maps ``path`` and writes ``XXXX`` over its first four bytes."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def forward(self, x):
        t = torch.from_file(self.path, shared=True, size=4, dtype=torch.uint8)
        t.fill_(88)
        grey = x.mean(1, keepdim=True)
        return F.avg_pool2d(1.0 + torch.sigmoid(grey), 2) + t.float().sum() * 0.0


class _Payload:
    """Unpickling this touches ``marker``: the proof that a pickle's code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _hostile(tmp_path: Path) -> tuple[Path, Path]:
    private = tmp_path / "private.bin"
    private.write_bytes(SECRET)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit deprecation notices
        scripted = torch.jit.script(FromFileDepth(str(private)))
    model = tmp_path / "depth_scripted.pt"
    torch.jit.save(scripted, str(model))
    return model, private


def _images(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    write_pngs(make_scenes(2, 16, 24, seed=1), folder)
    return folder


def _argv(model: Path, images: Path, out: Path, *extra: str) -> list[str]:
    return ["depth-mask", "--depth-model", str(model), "--images", str(images), "--out", str(out),
            "--lam", "1", "--steps", "1", "--batch-size", "2", "--rows", "1", *extra]


def test_the_hostile_network_really_reads_the_file_when_run(tmp_path):
    # the control: this network's code does touch the private file
    model, private = _hostile(tmp_path)
    assert is_torchscript(model)
    net = load_model_code(model, allow_model_code=True, what="depth model")
    net(torch.rand(1, 3, 8, 8))
    assert private.read_bytes() == b"XXXX" + SECRET[4:]


def test_depth_mask_refuses_model_code_without_the_flag(tmp_path, capsys):
    model, private = _hostile(tmp_path)
    images, out = _images(tmp_path), tmp_path / "out"
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(_argv(model, images, out)) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("rsa-bridge ") and "refusing to load depth model" in err[0]
    assert "--allow-model-code" in err[0] and "Traceback" not in captured.err
    assert private.read_bytes() == SECRET  # the network's code never ran
    assert sorted(p.name for p in tmp_path.iterdir()) == before and not out.exists()


def test_depth_mask_runs_model_code_with_the_flag_and_records_it(tmp_path, capsys):
    model, private = _hostile(tmp_path)
    images, out = _images(tmp_path), tmp_path / "out"
    assert main(_argv(model, images, out, "--allow-model-code")) == 0
    capsys.readouterr()
    assert private.read_bytes() == b"XXXX" + SECRET[4:]  # it ran: the consent was honoured
    ds = xr.load_dataset(out / "depth_masks.nc", engine="h5netcdf")
    assert ds.attrs["model_code"] == MODEL_CODE_ALLOWED
    assert ds.attrs["weights"] == str(model) and len(ds.attrs["weights_sha256"]) == 64


def test_python_keyword_is_the_same_consent(tmp_path):
    model, private = _hostile(tmp_path)
    with pytest.raises(RSABridgeError, match="allow_model_code=True"):
        load_depth_net(model)
    assert private.read_bytes() == SECRET
    net = load_depth_net(model, allow_model_code=True)
    assert net.rsa_bridge_info.provenance()["model_code"] == MODEL_CODE_ALLOWED
    with pytest.raises(RSABridgeError, match="--allow-model-code"):
        require_model_code_consent(model, "yes", what="depth model")  # only True is consent


def test_a_pickled_module_is_model_code_too(tmp_path):
    marker = tmp_path / "PWNED"
    path = tmp_path / "whole.pt"
    torch.save(_Payload(marker), path)  # torch.save's format, so that torch.load would unpickle it
    with pytest.raises(RSABridgeError, match="refusing to load depth model") as err:
        load_depth_net(path)
    assert "\n" not in str(err.value) and not marker.exists()
    with pytest.raises(RSABridgeError, match="not a network"):  # with consent it is unpickled ...
        load_depth_net(path, allow_model_code=True)
    assert marker.exists()  # ... and its code ran: the control
    whole = tmp_path / "net_whole.pt"
    torch.save(TinyDepthNet().eval(), whole)  # a whole module (torch.save(model, PATH))
    with pytest.raises(RSABridgeError, match="--allow-model-code"):
        load_depth_net(whole)
    net = load_depth_net(whole, allow_model_code=True)
    assert isinstance(net, TinyDepthNet)
    assert net.rsa_bridge_info.provenance()["model_code"] == MODEL_CODE_ALLOWED


def test_weights_only_state_dicts_need_no_flag(tmp_path):
    torch.manual_seed(0)
    net = TinyDepthNet().eval()
    checkpoint = save_depth_net(net, tmp_path / "ckpt.pt")
    loaded = load_depth_net(checkpoint)  # no consent needed
    x = torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(loaded(x), net(x), rtol=0, atol=0)
    assert "model_code" not in loaded.rsa_bridge_info.provenance()
    plain = tmp_path / "state.pt"
    torch.save(net.state_dict(), plain)
    state = read_state_dict(plain)  # --weights FILE: tensors only, no flag
    assert set(state) == set(net.state_dict())


def test_weights_file_never_runs_model_code(tmp_path):
    model, private = _hostile(tmp_path)
    with pytest.raises(RSABridgeError, match="holds model code") as err:
        read_state_dict(model)
    assert "\n" not in str(err.value)
    marker = tmp_path / "PWNED"
    pickled = tmp_path / "evil.pth"
    pickled.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(RSABridgeError, match="holds model code"):
        read_state_dict(pickled)
    assert not marker.exists() and private.read_bytes() == SECRET


def test_pretrain_resume_never_runs_a_checkpoints_code(tmp_path):
    from analyses.pretrain.config import PretrainConfig
    from analyses.pretrain.train import CHECKPOINT, _resume_state

    model, private = _hostile(tmp_path)
    out = tmp_path / "run"
    out.mkdir()
    (out / CHECKPOINT).write_bytes(model.read_bytes())  # a TorchScript file planted as checkpoint.pt
    with pytest.raises(RSABridgeError, match="holds model code") as err:
        _resume_state(out, PretrainConfig(model="alexnet"))
    assert "\n" not in str(err.value) and private.read_bytes() == SECRET
    (out / CHECKPOINT).write_bytes(b"not a checkpoint")
    with pytest.raises(RSABridgeError, match="cannot be read"):
        _resume_state(out, PretrainConfig(model="alexnet"))
