"""The documented path for a real depth network: its class + a state-dict file (``load_depth_net_weights``),
then the same analysis; results and figures say which depth network ran."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from analyses.depth_mask.depthnet import describe_depth_net, load_depth_net_weights, train_depth_net
from analyses.depth_mask.metrics import DepthMaskCollapseWarning
from analyses.depth_mask.scenes import make_scenes
from analyses.depth_mask.sweep import lam_sweep, write_results
from rsa_bridge.errors import RSABridgeError


class UserDepthNet(nn.Module):
    """A stand-in for a real depth network: normalised (B, 3, H, W) -> positive depth (B, 1, H/2, W/2)."""

    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Conv2d(3, 6, 3, stride=2, padding=1)
        self.head = nn.Conv2d(6, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.softplus(self.head(torch.relu(self.enc(x)))) + 0.5


def test_a_state_dict_depth_network_runs_the_analysis(tmp_path):
    torch.manual_seed(0)
    trained = UserDepthNet().eval()
    path = tmp_path / "user_depth.pt"
    torch.save(trained.state_dict(), path)
    torch.manual_seed(1)
    net = load_depth_net_weights(UserDepthNet(), path, size=(16, 24))
    scenes = make_scenes(4, 16, 24, seed=1)
    x = torch.from_numpy(scenes.images)
    with torch.no_grad():
        torch.testing.assert_close(net(x), trained(x))  # the file's weights, not the fresh ones
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DepthMaskCollapseWarning)
        ds = lam_sweep(net, scenes.images, [5.0], steps=3, batch_size=2)
    label = ds.attrs["depth_network"]
    assert label.startswith(f"UserDepthNet, weights {path}") and "sha256" in label
    assert ds.attrs["weights"] == str(path) and len(ds.attrs["weights_sha256"]) == 64
    assert ds["depth"].shape == (4, 8, 12) and ds["mask"].shape == (1, 4, 16, 24)
    assert np.isfinite(ds["fidelity_rmse"].values).all()
    files = write_results(ds, scenes.images, tmp_path / "out", rows=2)
    assert files["figure"].stat().st_size > 0
    import xarray as xr

    written = xr.load_dataset(files["netcdf"], engine="h5netcdf")
    assert written.attrs["depth_network"] == label


def test_the_synthetic_network_is_labelled_as_such():
    net = train_depth_net(n_scenes=8, height=16, width=24, steps=2, batch_size=4)
    assert describe_depth_net(net).startswith("TinyDepthNet trained here on synthetic scenes (synthetic_scenes n=8")
    assert describe_depth_net(net).endswith("not a real depth network")
    from analyses.depth_mask.figures import mask_grid

    images, depth = np.zeros((2, 3, 8, 8)), np.ones((2, 4, 4))
    fig, _ = mask_grid(images, depth, {5.0: np.ones((2, 8, 8))}, {5.0: depth}, caption=describe_depth_net(net))
    assert fig._supxlabel.get_text().startswith("depth network N: TinyDepthNet trained here on synthetic scenes")
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_a_wrong_file_or_shape_is_refused(tmp_path):
    path = tmp_path / "w.pt"
    torch.save(UserDepthNet().state_dict(), path)
    with pytest.raises(RSABridgeError, match="does not fit"):
        load_depth_net_weights(nn.Sequential(nn.Conv2d(3, 1, 1)), path)

    class NotDepth(UserDepthNet):
        def forward(self, x):
            return super().forward(x).repeat(1, 3, 1, 1)

    with pytest.raises(RSABridgeError, match=r"returned \(1, 3, 16, 24\).*\(B, 1, h, w\)"):
        load_depth_net_weights(NotDepth(), path, size=(32, 48))
    with pytest.raises(RSABridgeError, match="does not exist"):
        load_depth_net_weights(UserDepthNet(), tmp_path / "missing.pt")
