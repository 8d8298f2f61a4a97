"""Training tests of the depth-mask method (issue 6): a λ sweep, control masks, a known region, the CLI.

A tiny depth network is trained here on synthetic scenes (seconds); mask networks are trained with
the paper's optimiser settings (Adam, lr 1e-4, weight decay 1e-4) for a few hundred steps.
"""
from __future__ import annotations

import argparse
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import xarray as xr
from PIL import Image
from torch import nn

from analyses.depth_mask import cli
from analyses.depth_mask.depthnet import save_depth_net, train_depth_net
from analyses.depth_mask.masknet import build_mask_net
from analyses.depth_mask.metrics import CONTROLS, DepthMaskCollapseWarning
from analyses.depth_mask.scenes import make_scenes, write_pngs
from analyses.depth_mask.sweep import lam_sweep
from analyses.depth_mask.visualizer import DepthMaskVisualizer
from rsa_bridge.errors import RSABridgeError

H, W = 32, 48
LAMS = (4.0, 5.0, 6.0)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny convolutions: one thread is faster than two on a shared CPU, and the numbers don't depend
    on the thread count. The previous setting is restored after this module."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def depth_net():
    return train_depth_net(n_scenes=256, height=H, width=W, steps=200, seed=0)


@pytest.fixture(scope="module")
def scenes():
    return make_scenes(16, H, W, seed=1)


@pytest.fixture(scope="module")
def sweep(depth_net, scenes):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DepthMaskCollapseWarning)
        return lam_sweep(depth_net, scenes.images, LAMS, stimulus_ids=scenes.stimulus_ids,
                         ground_truth=scenes.depth, steps=300, seed=0)


@pytest.mark.slow
def test_lam_sweep_density_falls_and_error_rises(sweep):
    density = sweep["mask_mean"].mean("presentation").values
    above = sweep["mask_frac_above_half"].mean("presentation").values
    error = sweep["fidelity_rmse"].mean("presentation").values
    assert np.all(np.diff(density) <= 1e-6), density
    assert np.all(np.diff(above) <= 1e-6), above
    assert np.all(np.diff(error) >= -1e-6), error
    # a real trade-off, not a set of collapsed masks
    assert list(sweep["collapse"].values) == ["none"] * len(LAMS)
    assert density[0] - density[-1] > 0.05 and error[-1] > error[0]
    assert sweep.attrs["lr"] == 1e-4 and sweep.attrs["weight_decay"] == 1e-4


@pytest.mark.slow
def test_learned_mask_beats_random_and_uniform_masks(depth_net, scenes):
    # lr 1e-3: closer to convergence in 300 steps than the paper's 1e-4
    vis = DepthMaskVisualizer(depth_net, lam=5.0, lr=1e-3, steps=300, seed=0).fit(scenes.images)
    assert vis.collapse is None
    learned = vis.masks(scenes.images)
    gen = torch.Generator().manual_seed(0)
    err = {"learned": vis.evaluate(scenes.images, masks=learned)["fidelity_rmse"].values.mean()}
    for name in ("shuffled", "bernoulli", "uniform"):
        control = CONTROLS[name](learned, gen)
        np.testing.assert_allclose(control.mean().item(), learned.mean().item(), rtol=0.05)
        err[name] = vis.evaluate(scenes.images, masks=control)["fidelity_rmse"].values.mean()
    np.testing.assert_allclose(err["learned"], vis.evaluate(scenes.images)["fidelity_rmse"].values.mean(), rtol=1e-6)
    for name in ("shuffled", "bernoulli", "uniform"):
        assert err["learned"] < 0.5 * err[name], err


class RegionDepthNet(nn.Module):
    """Depth that depends only on the pixels inside a known rectangle.

    depth = ramp(row) * (1 + s), s = mean over the rectangle of the squared normalised pixels;
    output at half resolution (2 x 2 average pooling).
    """

    def __init__(self, h: int, w: int, rows: tuple[int, int], cols: tuple[int, int]) -> None:
        super().__init__()
        region = torch.zeros(1, 1, h, w)
        region[..., rows[0]:rows[1], cols[0]:cols[1]] = 1.0
        self.register_buffer("region", region)
        ramp = (2.0 + 6.0 * torch.arange(h) / (h - 1)).view(1, 1, h, 1).expand(1, 1, h, w)
        self.register_buffer("ramp", ramp.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        energy = (x ** 2).mean(1, keepdim=True) * self.region
        s = energy.sum((2, 3), keepdim=True) / self.region.sum()
        return F.avg_pool2d(self.ramp * (1.0 + s), 2)


@pytest.mark.slow
def test_mask_concentrates_on_the_region_depth_depends_on():
    net = RegionDepthNet(32, 32, rows=(4, 16), cols=(16, 30))
    images = make_scenes(12, 32, 32, seed=2).images
    region = net.region[0, 0].bool()
    # start from a nearly whole image (head bias 2: M ~ 0.88); lr 3e-3 to move in 150 steps
    vis = DepthMaskVisualizer(net, mask_net=build_mask_net(0, init_bias=2.0), lam=5.0, lr=3e-3, steps=150)
    vis.fit(images)
    m = vis.masks(images)
    inside, outside = m[:, region].mean().item(), m[:, ~region].mean().item()
    share = (m[:, region].sum() / m.sum()).item()
    area = region.float().mean().item()
    assert inside > 0.9 and outside < 0.35, (inside, outside)
    assert share > 2 * area, (share, area)


# --- the command -----------------------------------------------------------------------------------
def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    cli.register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.mark.slow
def test_cli_end_to_end(tmp_path, depth_net, capsys):
    folder = tmp_path / "images"
    write_pngs(make_scenes(4, H, W, seed=3), folder)
    weights = save_depth_net(depth_net, tmp_path / "depth.pt")
    out = tmp_path / "out"
    rc = run_cli(["depth-mask", "--depth-model", str(weights), "--images", str(folder), "--lam", "5,6",
                  "--out", str(out), "--steps", "20", "--lr", "1e-3", "--rows", "2"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "mask_mean" in printed and "wrote figure" in printed
    ds = xr.load_dataset(out / "depth_masks.nc", engine="h5netcdf")
    assert list(ds["lam"].values) == [5.0, 6.0]
    assert ds["mask"].shape == (2, 4, H, W) and ds["depth"].shape == (4, H // 2, W // 2)
    ids = [str(s) for s in ds["stimulus_id"].values]
    assert ids == [f"scene_{i:04d}" for i in range(4)]
    for lam in (5, 6):
        for i, sid in enumerate(ids):
            png = np.asarray(Image.open(out / "masks" / f"lam_{lam}" / f"{sid}.png"), dtype=np.float64) / 255
            np.testing.assert_allclose(png, ds["mask"].sel(lam=float(lam)).values[i], atol=0.5 / 255 + 1e-6)
    fig = Image.open(out / "depth_masks.png")
    assert fig.size[0] > fig.size[1] > 100
    assert not list(out.rglob(".*.tmp"))


def test_cli_bad_input(tmp_path):
    from analyses.depth_mask.depthnet import TinyDepthNet

    torch.manual_seed(0)
    weights = str(save_depth_net(TinyDepthNet(), tmp_path / "w.pt"))
    empty = tmp_path / "empty"
    empty.mkdir()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.png").write_bytes(b"\x89PNG not really")
    out = str(tmp_path / "o")
    # the image folder is read before the depth model is built or trained
    with pytest.raises(RSABridgeError, match="no image files"):
        run_cli(["depth-mask", "--depth-model", "tiny-synthetic", "--images", str(empty), "--out", out])
    with pytest.raises(RSABridgeError, match="does not exist"):
        run_cli(["depth-mask", "--depth-model", weights, "--images", str(tmp_path / "nope"), "--out", out])
    with pytest.raises(RSABridgeError, match="cannot read image"):
        run_cli(["depth-mask", "--depth-model", weights, "--images", str(broken), "--out", out])
    for bad in ("1,,x", "", "1;3", "-1,2", "nan"):
        with pytest.raises(RSABridgeError, match="--lam"):
            run_cli(["depth-mask", "--depth-model", weights, "--images", str(empty), "--out", out, f"--lam={bad}"])
    write_pngs(make_scenes(2, 16, 16, seed=0), tmp_path / "ok")
    with pytest.raises(RSABridgeError, match="missing.pt"):
        run_cli(["depth-mask", "--depth-model", str(tmp_path / "missing.pt"), "--images", str(tmp_path / "ok"),
                 "--out", out])
    assert not (tmp_path / "o").exists()
