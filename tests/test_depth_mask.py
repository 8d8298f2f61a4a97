"""Fast tests of the depth-mask method (issue 6): loss terms, metrics, fills, freezing, seeding, errors.

Independent references: hand-worked values, numpy + scipy.ndimage reimplementations. The networks
here are tiny and untrained (or hand-built); training-based tests live in test_depth_mask_training.py.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

from analyses.depth_mask import losses
from analyses.depth_mask.depthnet import TinyDepthNet, load_depth_net, save_depth_net
from analyses.depth_mask.masknet import build_mask_net
from analyses.depth_mask.metrics import (
    CONTROLS,
    DepthMaskCollapseWarning,
    abs_rel,
    delta1,
    detect_collapse,
    mask_density,
    rmse,
)
from analyses.depth_mask.representations import layer_preservation, masked_activations
from analyses.depth_mask.scenes import Camera, box_hit, ground_depth, make_scenes
from analyses.depth_mask.visualizer import DepthMaskVisualizer
from rsa_bridge.errors import RSABridgeError


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny convolutions: one thread is faster than two on a shared CPU, and the numbers don't depend
    on the thread count. The previous setting is restored after this module."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --- numpy reference of the loss (scipy.ndimage Sobel; no torch) --------------------------------
def np_sobel(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The loss's gx, gy for one (H, W) map. scipy's sobel correlates with -kx, so negate it."""
    return (-ndimage.sobel(d, axis=1, mode="constant", cval=0.0),
            -ndimage.sobel(d, axis=0, mode="constant", cval=0.0))


def np_terms(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """l_dif terms of (B, H, W) arrays, written from the issue's formula in numpy."""
    rows = {"depth": [], "grad_x": [], "grad_y": [], "normal": []}
    for p, t in zip(pred, target):
        pgx, pgy = np_sobel(p)
        tgx, tgy = np_sobel(t)
        rows["depth"].append(np.log(np.abs(p - t) + 0.5))
        rows["grad_x"].append(np.log(np.abs(pgx - tgx) + 0.5))
        rows["grad_y"].append(np.log(np.abs(pgy - tgy) + 0.5))
        pn = np.stack([-pgx, -pgy, np.ones_like(p)])
        tn = np.stack([-tgx, -tgy, np.ones_like(t)])
        cos = (pn * tn).sum(0) / (np.linalg.norm(pn, axis=0) * np.linalg.norm(tn, axis=0))
        rows["normal"].append(np.abs(1 - cos))
    return {k: float(np.mean(v)) for k, v in rows.items()}


def test_sobel_matches_scipy():
    d = np.random.default_rng(0).normal(size=(2, 6, 9))
    gx, gy = losses.sobel_gradients(torch.tensor(d))
    for i in range(2):
        rx, ry = np_sobel(d[i])
        np.testing.assert_allclose(gx[i, 0].numpy(), rx, atol=1e-12)
        np.testing.assert_allclose(gy[i, 0].numpy(), ry, atol=1e-12)


def test_sobel_sign_on_a_ramp():
    # depth increasing to the right by 1 per pixel: interior gx = (1+2+1) * (d[j-1] - d[j+1]) = -8
    ramp = torch.arange(6, dtype=torch.float64).repeat(5, 1)[None]
    gx, gy = losses.sobel_gradients(ramp)
    assert torch.all(gx[0, 0, 1:-1, 1:-1] == -8)
    assert torch.all(gy[0, 0, 1:-1, 1:-1] == 0)
    n = losses.surface_normals(ramp)
    assert torch.all(n[0, :, 2, 2] == torch.tensor([8.0, 0.0, 1.0], dtype=torch.float64))


def test_loss_terms_hand_worked():
    # Y = 0 on 3 x 3, Ŷ = 1 at the centre only. With zero padding the centre's impulse gives
    # gx = [[-1,0,1],[-2,0,2],[-1,0,1]] and gy = its transpose, everywhere zero for Y.
    target = torch.zeros(1, 3, 3, dtype=torch.float64)
    pred = target.clone()
    pred[0, 1, 1] = 1.0
    t = losses.difference_terms(pred, target)
    l15, l05, l25 = math.log(1.5), math.log(0.5), math.log(2.5)
    assert t["depth"].item() == pytest.approx((l15 + 8 * l05) / 9, abs=1e-12)
    assert t["grad_x"].item() == pytest.approx((4 * l15 + 2 * l25 + 3 * l05) / 9, abs=1e-12)
    assert t["grad_y"].item() == pytest.approx((4 * l15 + 2 * l25 + 3 * l05) / 9, abs=1e-12)
    # normals (-gx, -gy, 1) vs (0, 0, 1): corners cos = 1/sqrt(3), edge centres 1/sqrt(5), centre 1
    normal = (4 * (1 - 1 / math.sqrt(3)) + 4 * (1 - 1 / math.sqrt(5))) / 9
    assert t["normal"].item() == pytest.approx(normal, abs=1e-12)
    mask = torch.full((1, 6, 6), 0.25, dtype=torch.float64)
    loss, parts = losses.mask_loss(pred, target, mask, lam=5.0)
    total = (l15 + 8 * l05) / 9 + 2 * (4 * l15 + 2 * l25 + 3 * l05) / 9 + normal
    assert parts["l_dif"].item() == pytest.approx(total, abs=1e-12)
    assert loss.item() == pytest.approx(total + 5.0 * 0.25, abs=1e-12)


def test_loss_matches_numpy_reimplementation():
    rng = np.random.default_rng(1)
    target = rng.uniform(1, 8, size=(3, 7, 10))
    pred = target + rng.normal(0, 0.7, size=target.shape)
    got = losses.difference_terms(torch.tensor(pred)[:, None], torch.tensor(target))
    ref = np_terms(pred, target)
    for k in ref:
        assert got[k].item() == pytest.approx(ref[k], rel=1e-10, abs=1e-12), k
    assert losses.l_dif(torch.tensor(pred), torch.tensor(target)).item() == pytest.approx(sum(ref.values()), rel=1e-10)


def test_perfect_reconstruction_is_three_log_half():
    y = torch.rand(2, 5, 5, dtype=torch.float64) + 1
    assert losses.l_dif(y, y).item() == pytest.approx(3 * math.log(0.5), abs=1e-12)


# --- metrics and masks ---------------------------------------------------------------------------
def test_metrics_match_numpy():
    rng = np.random.default_rng(2)
    b = rng.uniform(0.5, 9, size=(3, 4, 5))
    a = b * rng.uniform(0.6, 1.5, size=b.shape)
    b[0, 0, 0] = 0.0  # invalid reference pixel: left out
    ta, tb = torch.tensor(a), torch.tensor(b)
    for i in range(3):
        ok = b[i] > 0
        ai, bi = a[i][ok], b[i][ok]
        assert rmse(ta, tb)[i].item() == pytest.approx(np.sqrt(np.mean((ai - bi) ** 2)), rel=1e-12)
        assert abs_rel(ta, tb)[i].item() == pytest.approx(np.mean(np.abs(ai - bi) / bi), rel=1e-12)
        assert delta1(ta, tb)[i].item() == pytest.approx(np.mean(np.maximum(ai / bi, bi / ai) < 1.25), rel=1e-12)


def test_density_and_controls_keep_density():
    gen = torch.Generator().manual_seed(0)
    m = torch.rand(4, 16, 16, generator=gen) ** 3
    dens = mask_density(m)
    np.testing.assert_allclose(dens["mask_mean"].numpy(), m.reshape(4, -1).mean(1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(dens["mask_frac_above_half"].numpy(), (m > 0.5).reshape(4, -1).float().mean(1).numpy())
    shuffled = CONTROLS["shuffled"](m, gen)
    assert torch.equal(shuffled.reshape(4, -1).sort(1).values, m.reshape(4, -1).sort(1).values)
    assert not torch.equal(shuffled, m)
    uniform = CONTROLS["uniform"](m, gen)
    np.testing.assert_allclose(uniform.reshape(4, -1).mean(1).numpy(), dens["mask_mean"].numpy(), rtol=1e-6)
    assert torch.all(uniform.reshape(4, -1).std(1) < 1e-6)
    big = torch.rand(2, 64, 64, generator=gen)
    bern = CONTROLS["bernoulli"](big, gen)
    assert set(bern.unique().tolist()) <= {0.0, 1.0}
    np.testing.assert_allclose(bern.reshape(2, -1).mean(1).numpy(), big.reshape(2, -1).mean(1).numpy(), atol=0.03)


def test_detect_collapse():
    assert detect_collapse(torch.full((2, 8, 8), 0.001)) == "all_zeros"
    assert detect_collapse(torch.full((2, 8, 8), 0.999)) == "all_ones"
    assert detect_collapse(torch.full((2, 8, 8), 0.4)) == "constant"
    m = torch.zeros(2, 8, 8)
    m[:, :4] = 1.0
    assert detect_collapse(m) is None


# --- small networks -------------------------------------------------------------------------------
class BNDepth(nn.Module):
    """A depth net with BatchNorm (running statistics would move in train mode), full resolution."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 1, 3, padding=1))

    def forward(self, x):
        return 1.0 + nn.functional.softplus(self.body(x))


def _images(n=6, h=16, w=24, seed=0):
    return make_scenes(n, h, w, seed=seed)


def test_fills_act_on_normalised_image():
    torch.manual_seed(0)
    net = TinyDepthNet(image_mean=(0.2, 0.4, 0.6), image_std=(0.5, 0.25, 0.1))
    pixels = torch.from_numpy(_images(2).images)
    mask = torch.zeros(2, 16, 24)
    mask[:, :, :12] = 1.0
    results = {}
    for fill in ("mean", "black", "blur"):
        vis = DepthMaskVisualizer(net, fill=fill, blur_sigma=2.0)
        x = vis.normalize(pixels)
        xm = vis.apply_mask(x, mask)
        pix = xm * vis._std[:, None, None] + vis._mean[:, None, None]  # back to pixel units
        torch.testing.assert_close(pix[..., :12], pixels[..., :12])
        results[fill] = pix[..., 12:]
        ref_x = x
    mean = torch.tensor([0.2, 0.4, 0.6])[None, :, None, None]
    torch.testing.assert_close(results["mean"], mean.expand_as(results["mean"]))
    torch.testing.assert_close(results["black"], torch.zeros_like(results["black"]), atol=1e-6, rtol=0)
    # blur: separable Gaussian, radius ceil(3 sigma) = 6, reflect padding = scipy's "mirror" mode
    ref = ndimage.gaussian_filter(ref_x.numpy(), sigma=(0, 0, 2.0, 2.0), mode="mirror", truncate=3.0)
    blurred = ref * vis._std.numpy()[:, None, None] + vis._mean.numpy()[:, None, None]
    np.testing.assert_allclose(results["blur"].numpy(), blurred[..., 12:], atol=1e-5)


def test_depth_net_frozen_bit_identical_after_fit():
    torch.manual_seed(0)
    net = BNDepth()
    net.train()  # the visualizer must put it in eval mode
    before = {k: v.clone() for k, v in net.state_dict().items()}
    vis = DepthMaskVisualizer(net, lam=5.0, steps=8, batch_size=3, lr=1e-2)
    mask_before = [p.clone() for p in vis.mask_net.parameters()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DepthMaskCollapseWarning)
        vis.fit(_images().images)
    assert not net.training
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k  # weights, BN running stats, num_batches_tracked
    assert any(not torch.equal(a, b) for a, b in zip(mask_before, vis.mask_net.parameters()))


def test_seeded_runs_identical():
    torch.manual_seed(0)
    net = TinyDepthNet()
    images = _images().images

    def run(seed):
        vis = DepthMaskVisualizer(net, lam=5.0, steps=6, batch_size=4, lr=1e-2, seed=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DepthMaskCollapseWarning)
            vis.fit(images)
        return vis.masks(images), [h["loss"] for h in vis.history]

    torch.manual_seed(123)  # the global RNG must not matter
    m1, h1 = run(3)
    torch.manual_seed(456)
    m2, h2 = run(3)
    m3, _ = run(4)
    assert torch.equal(m1, m2) and h1 == h2
    assert not torch.equal(m1, m3)


def test_collapse_is_warned():
    torch.manual_seed(0)
    vis = DepthMaskVisualizer(TinyDepthNet(), lam=500.0, steps=15, batch_size=6, lr=0.1)
    with pytest.warns(DepthMaskCollapseWarning, match="all_zeros.*lower lam"):
        vis.fit(_images().images)
    assert vis.collapse == "all_zeros"
    with pytest.warns(DepthMaskCollapseWarning):
        ds = vis.evaluate(_images().images)
    assert ds.attrs["collapse"] == "all_zeros"


def test_lower_resolution_output_and_ground_truth_resizing():
    torch.manual_seed(0)
    net = TinyDepthNet()  # predicts at half resolution
    scenes = _images(3)
    vis = DepthMaskVisualizer(net)
    ones = torch.ones(3, 16, 24)
    ds = vis.evaluate(scenes.images, scenes.depth, masks=ones)
    # ground truth area-averaged over 2 x 2 blocks (numpy), compared with the full-image prediction
    gt = scenes.depth.reshape(3, 8, 2, 12, 2).mean(axis=(2, 4))
    y = net(vis.normalize(torch.from_numpy(scenes.images))).detach().numpy()[:, 0]
    ref = np.sqrt(((y - gt) ** 2).reshape(3, -1).mean(1))
    np.testing.assert_allclose(ds["full_accuracy_rmse"].values, ref, rtol=1e-5)
    np.testing.assert_allclose(ds["fidelity_rmse"].values, 0.0, atol=1e-6)  # all-ones mask changes nothing
    np.testing.assert_allclose(ds["mask_mean"].values, 1.0)
    assert ds.attrs["depth_resolution"].startswith("8x12")


def test_masked_activations_use_the_extractor():
    torch.manual_seed(0)
    net = TinyDepthNet()
    vis = DepthMaskVisualizer(net, mask_net=build_mask_net(seed=1))
    scenes = _images(4)
    full, masked = masked_activations(vis, scenes.images, ["enc1", "enc3"])
    x = vis.normalize(torch.from_numpy(scenes.images))
    with torch.no_grad():
        e1 = net.enc1(x)
        m = vis.masks(scenes.images)[:, None]
        e1m = net.enc1(x * m)
    np.testing.assert_allclose(full["enc1"].values, e1.reshape(4, -1).numpy(), atol=1e-6)
    np.testing.assert_allclose(masked["enc1"].values, e1m.reshape(4, -1).numpy(), atol=1e-6)
    assert full["enc3"].attrs["module_path"] == "enc3"
    ones_full, ones_masked = masked_activations(vis, scenes.images, ["enc2"], masks=torch.ones(4, 16, 24))
    np.testing.assert_array_equal(ones_full["enc2"].values, ones_masked["enc2"].values)
    ds = layer_preservation(vis, scenes.images, ["enc1", "enc4"], controls=("uniform",))
    assert ds["rdm_similarity"].dims == ("layer", "condition")
    assert list(ds["condition"].values) == ["learned", "uniform"]
    assert np.all(np.abs(ds["pattern_correlation"].values) <= 1 + 1e-9)
    # given all-ones masks: every layer is preserved exactly (and so is the uniform control of density 1)
    kept = layer_preservation(vis, scenes.images, ["enc1", "enc4"], controls=("uniform",), masks=np.ones((4, 16, 24)))
    np.testing.assert_allclose(kept["rdm_similarity"].values, 1.0, atol=1e-9)
    np.testing.assert_allclose(kept["pattern_correlation"].values, 1.0, atol=1e-6)
    with pytest.raises(RSABridgeError, match="masks must be"):
        layer_preservation(vis, scenes.images, ["enc1"], masks=np.ones((4, 8, 8)))


# --- scenes ---------------------------------------------------------------------------------------
def test_scene_geometry_is_analytic():
    cam = Camera(focal=40.0, cx=15.5, cy=8.0, height_m=1.5)
    g = ground_depth(cam, 24, 32, far=10.0)
    assert g[20, 3] == pytest.approx(1.5 * 40.0 / 12.0)  # h f / (v - cy)
    assert g[8, 0] == 10.0 and g[2, 5] == 10.0  # horizon and sky: far plane
    rays = cam.rays(24, 32)
    lo, hi = np.array([-0.5, 0.5, 3.0]), np.array([0.5, 1.5, 4.0])
    t, axis = box_hit(rays, lo, hi)
    # pixel (v=20, u=15.5 +- 0.5): ray y = 12/40 * 3 = 0.9 in [0.5, 1.5] at z = 3: front face
    assert t[20, 15] == pytest.approx(3.0) and axis[20, 15] == 2
    assert np.isinf(t[0, 0])
    a, b = make_scenes(3, 16, 24, seed=5), make_scenes(3, 16, 24, seed=5)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.depth, b.depth)
    assert a.images.shape == (3, 3, 16, 24) and a.images.min() >= 0 and a.images.max() <= 1


# --- loading and bad input ------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit deprecation notices
def test_save_load_checkpoint_and_torchscript(tmp_path):
    torch.manual_seed(0)
    net = TinyDepthNet(image_mean=(0.3, 0.3, 0.3)).eval()
    x = torch.rand(2, 3, 16, 16)
    path = save_depth_net(net, tmp_path / "net.pt")
    loaded = load_depth_net(path)
    torch.testing.assert_close(loaded(x), net(x), rtol=0, atol=0)
    torch.testing.assert_close(loaded.image_mean, net.image_mean)
    assert loaded.rsa_bridge_info.weights == str(path)
    scripted = torch.jit.trace(BNDepth().eval(), x)
    torch.jit.save(scripted, str(tmp_path / "script.pt"))
    with pytest.raises(RSABridgeError, match="--allow-model-code"):  # TorchScript runs code: consent first
        load_depth_net(tmp_path / "script.pt")
    s = load_depth_net(tmp_path / "script.pt", allow_model_code=True)
    assert s(x).shape == (2, 1, 16, 16)


def test_bad_inputs_raise_clear_errors(tmp_path):
    with pytest.raises(RSABridgeError, match="neither a known name"):
        load_depth_net(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a network")
    with pytest.raises(RSABridgeError, match="junk.pt"):
        load_depth_net(tmp_path / "junk.pt")
    with pytest.raises(RSABridgeError, match="fill"):
        DepthMaskVisualizer(TinyDepthNet(), fill="grey")
    with pytest.raises(RSABridgeError, match="lam"):
        DepthMaskVisualizer(TinyDepthNet(), lam=-1.0)
    with pytest.raises(RSABridgeError, match=r"\(N, 3, H, W\)"):
        DepthMaskVisualizer(TinyDepthNet()).masks(np.zeros((2, 16, 16), dtype=np.float32))
    bad_mask_net = nn.Sequential(nn.Conv2d(3, 1, 3, stride=2, padding=1), nn.Sigmoid())
    with pytest.raises(RSABridgeError, match="input resolution"):
        DepthMaskVisualizer(TinyDepthNet(), mask_net=bad_mask_net).masks(np.zeros((1, 3, 16, 16), dtype=np.float32))
