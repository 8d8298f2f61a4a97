"""Unit-level attribute discovery: histograms, KL, prime units, visualness, pooling through the hook layer."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import torch
from torch import nn

from analyses.unit_attributes import (Extraction, UnitOptions, attributes_from_activations, split_by_label,
                                      unit_attributes)
from analyses.unit_attributes.activations import pooled_activations
from analyses.unit_attributes.histograms import (kl_divergence, null_prime_divergence, shared_edges, smooth,
                                                 unit_divergence, unit_histograms)
from analyses.unit_attributes.visualness import visualness
from rsa_bridge.errors import RSABridgeError
from stimuli import StimulusSet

PLANTED = 4  # the channel of PlantedNet that reads the label-dependent pixel


class PlantedNet(nn.Module):
    """conv (6 channels, 3x3) -> relu -> fc (10). Channel 4 copies the red pixel at each position; the
    other channels ignore red entirely, so only channel 4 can see a red spot."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(3)
        self.conv = nn.Conv2d(3, 6, 3, padding=1, bias=False)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(6 * 8 * 8, 10)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g) * 0.3)
            self.conv.weight[:, 0] = 0.0
            self.conv.weight[PLANTED] = 0.0
            self.conv.weight[PLANTED, 0, 1, 1] = 1.0
            self.fc.weight.copy_(torch.randn(self.fc.weight.shape, generator=g) * 0.05)
            self.fc.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.relu(self.conv(x)).flatten(1))


def planted_images(n: int = 60, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """(n, 3, 8, 8) noise in [0, 0.5]; positives (every other image) get a red pixel of 2.0 somewhere."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0.0, 0.5, size=(n, 3, 8, 8))
    positive = np.arange(n) % 2 == 0
    for i in np.flatnonzero(positive):
        images[i, 0, rng.integers(8), rng.integers(8)] = 2.0
    return torch.tensor(images, dtype=torch.float32), positive


# ---- histograms and KL -------------------------------------------------------------------------------


def test_histograms_equal_numpy_histogram_on_the_same_edges(rng):
    values = rng.normal(size=(150, 12))
    values[:, 3] = np.round(values[:, 3] * 2) / 2  # many values exactly on edges
    values[:, 5] = 7.0  # a constant unit
    edges = shared_edges(values, 8)
    counts = unit_histograms(values, edges)
    for u in range(values.shape[1]):
        assert np.array_equal(counts[u], np.histogram(values[:, u], edges[u])[0])
    assert edges[5, 0] == 6.5 and edges[5, -1] == 7.5
    assert np.allclose(edges[0, [0, -1]], [values[:, 0].min(), values[:, 0].max()])


def test_kl_equals_scipy_entropy_on_the_same_histograms(rng):
    values = rng.gamma(2.0, size=(90, 20))
    positive = rng.random(90) < 0.4
    values[positive, 2] += 1.5
    found = unit_divergence(values, positive, bins=7, epsilon=1e-3)
    for u in range(20):
        assert found.divergence[u] == pytest.approx(scipy.stats.entropy(found.p_positive[u], found.p_negative[u]),
                                                    rel=1e-12, abs=1e-15)
        # and from the raw counts: scipy normalises counts / n + epsilon itself
        pos = np.histogram(values[positive, u], found.edges[u])[0] / positive.sum() + 1e-3
        neg = np.histogram(values[~positive, u], found.edges[u])[0] / (~positive).sum() + 1e-3
        assert found.divergence[u] == pytest.approx(scipy.stats.entropy(pos, neg), rel=1e-12, abs=1e-15)
    assert np.allclose(found.p_positive.sum(axis=1), 1.0)


def test_kl_hand_worked_and_smoothing():
    p, q = np.array([[0.5, 0.5]]), np.array([[0.25, 0.75]])
    assert kl_divergence(p, q)[0] == pytest.approx(0.5 * np.log(2) + 0.5 * np.log(2 / 3))
    # counts (3, 0, 1) with epsilon 0.1: (0.75 + 0.1, 0.1, 0.25 + 0.1) / 1.3
    assert np.allclose(smooth(np.array([[3, 0, 1]]), 0.1), np.array([[0.85, 0.1, 0.35]]) / 1.3)


def test_identical_distributions_have_zero_divergence():
    values = np.tile(np.arange(10.0), 2)[:, None]
    positive = np.arange(20) < 10
    assert unit_divergence(values, positive, bins=5).divergence[0] == pytest.approx(0.0, abs=1e-15)


def test_null_prime_divergence_matches_a_plain_loop(rng):
    values = rng.normal(size=(40, 30))
    positive = np.arange(40) < 15
    got = null_prime_divergence(values, positive, 5, 6, 1e-3, 4, np.random.default_rng(9))
    shuffle = np.random.default_rng(9)
    for i in range(4):
        div = unit_divergence(values, shuffle.permutation(positive), 6, 1e-3).divergence
        assert got[i] == pytest.approx(np.sort(div)[::-1][:5].mean(), rel=1e-12)


# ---- pooling through the hook layer, planted unit ------------------------------------------------------


def test_pooled_activations_equal_direct_max_and_mean_over_space():
    model = PlantedNet().eval()
    images, _ = planted_images(23)
    with torch.no_grad():
        conv = model.conv(images)
        fc = model(images)
    for pooling, expected in (("max", conv.amax(dim=(2, 3))), ("mean", conv.mean(dim=(2, 3)))):
        acts = pooled_activations(model, images, ["conv", "fc"], pooling=pooling, batch_size=5, progress=False)
        assert acts.layers["conv"].unit_shape == (6, 8, 8)
        assert np.allclose(acts.layers["conv"].values, expected.numpy(), atol=1e-6)
        assert np.allclose(acts.layers["fc"].values, fc.numpy(), atol=1e-6)  # flat layer: not pooled
        assert acts.stimulus_ids == [str(i) for i in range(23)]
    flat = pooled_activations(model, images, ["conv"], pooling="none", batch_size=8, progress=False)
    assert np.allclose(flat.layers["conv"].values, conv.reshape(23, -1).numpy(), atol=1e-6)


def test_planted_unit_ranks_first_and_is_visual():
    model = PlantedNet().eval()
    images, positive = planted_images(60)
    ds = unit_attributes(model, images, is_positive=positive, layers=["conv", "fc"],
                         options=UnitOptions(k=2, folds=5, permutations=10),
                         extraction=Extraction(batch_size=16, progress=False))
    conv = ds.sel(layer="conv")
    assert int(conv["prime_unit"][0]) == PLANTED
    assert int(conv["rank"][PLANTED]) == 1
    assert int(conv["is_prime"][PLANTED]) == 1
    assert float(conv["divergence"][PLANTED]) > 2 * float(conv["divergence"].drop_sel(unit=PLANTED).max())
    assert float(conv["visualness"]) >= 0.95
    assert float(conv["prime_divergence_excess"]) > 0.5
    assert ds.attrs["perceptual_depth"] == "conv"
    assert ds.attrs["n_positive"] == 30 and ds.attrs["n_negative"] == 30
    assert list(ds["n_units"].values) == [6, 10]
    assert np.isnan(float(conv["divergence"].sel(unit=6)))  # padding beyond the conv layer's 6 units
    assert int(conv["rank"].sel(unit=6)) == -1


def test_visualness_null_is_near_chance_and_planted_is_high():
    rng = np.random.default_rng(7)
    n = 120
    positive = rng.permutation(np.arange(n) < n // 2)
    noise = rng.normal(size=(n, 40))
    null = visualness(noise, positive, 8, bins=10, epsilon=1e-3, folds=5, seed=0)
    assert abs(null.accuracy - 0.5) < 0.12
    assert abs(null.balanced_accuracy - 0.5) < 0.12
    planted = noise.copy()
    planted[:, 17] += 3.0 * positive
    high = visualness(planted, positive, 8, bins=10, epsilon=1e-3, folds=5, seed=0)
    assert high.accuracy > 0.9
    assert len(high.fold_accuracy) == 5
    again = visualness(planted, positive, 8, bins=10, epsilon=1e-3, folds=5, seed=0)
    assert np.array_equal(again.fold_accuracy, high.fold_accuracy)


def test_choosing_units_on_all_stimuli_is_optimistic_in_fold_is_not():
    rng = np.random.default_rng(1)
    n = 40
    positive = np.arange(n) < n // 2
    noise = rng.normal(size=(n, 2000))
    honest = visualness(noise, positive, 10, bins=4, epsilon=1e-3, folds=5, seed=0, selection="in_fold")
    leaky = visualness(noise, positive, 10, bins=4, epsilon=1e-3, folds=5, seed=0, selection="all")
    assert abs(honest.accuracy - 0.5) < 0.15
    assert leaky.accuracy > honest.accuracy + 0.2


@pytest.mark.parametrize("classifier", ["linear_svm", "lda"])
def test_other_classifiers_find_the_planted_unit(classifier):
    rng = np.random.default_rng(2)
    positive = np.arange(80) % 2 == 0
    values = rng.normal(size=(80, 20))
    values[:, 3] += 4.0 * positive  # Bayes accuracy 0.977
    result = visualness(values, positive, 4, bins=10, epsilon=1e-3, classifier=classifier, folds=4, seed=0)
    assert result.accuracy > 0.9


# ---- labels and errors -------------------------------------------------------------------------------


def _set(tmp_path, **columns) -> StimulusSet:
    n = len(next(iter(columns.values())))
    manifest = pd.DataFrame({"stimulus_id": [f"s{i}" for i in range(n)], "filename": [f"s{i}.png" for i in range(n)],
                             **columns})
    return StimulusSet(tmp_path, manifest, "toy")


def test_split_by_label_binary_default_value_and_negative(tmp_path):
    stim = _set(tmp_path, animate=[1, 0, 1, 0, 1], kind=["cat", "car", "dog", None, "car"])
    split = split_by_label(stim, "animate")
    assert split.stimulus_ids == ["s0", "s1", "s2", "s3", "s4"]
    assert split.is_positive.tolist() == [True, False, True, False, True]
    split = split_by_label(stim, "kind", "car")
    assert split.stimulus_ids == ["s0", "s1", "s2", "s4"] and split.n_left_out == 1
    assert split.is_positive.tolist() == [False, True, False, True]
    split = split_by_label(stim, "kind", "cat", negative="car")
    assert split.stimulus_ids == ["s0", "s1", "s4"] and split.is_positive.tolist() == [True, False, False]
    floats = _set(tmp_path, animate=[1.0, 0.0, np.nan, 1.0])
    assert split_by_label(floats, "animate", "1").is_positive.tolist() == [True, False, True]


@pytest.mark.parametrize("column, positive, negative, message", [
    ("colour", None, None, "has no label column 'colour'"),
    ("kind", None, None, "say which value is positive"),
    ("kind", "bird", None, "no stimulus has kind = 'bird'"),
    ("same", "x", None, "negative set is empty"),
    ("kind", "cat", "bird", "no stimulus has kind = 'bird' (the negative set)"),
])
def test_split_by_label_errors(tmp_path, column, positive, negative, message):
    stim = _set(tmp_path, kind=["cat", "car", "dog"], same=["x", "x", "x"])
    with pytest.raises(RSABridgeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        split_by_label(stim, column, positive, negative)


def test_bad_options_are_clear_errors(rng):
    values = {"a": rng.normal(size=(20, 5))}
    positive = np.arange(20) < 10
    with pytest.raises(RSABridgeError, match="5 units .* fewer than k = 8"):
        attributes_from_activations(values, positive, UnitOptions(k=8, folds=2))
    with pytest.raises(RSABridgeError, match="negative set is empty"):
        attributes_from_activations(values, np.ones(20, bool), UnitOptions(k=2))
    with pytest.raises(RSABridgeError, match="positive set is empty"):
        attributes_from_activations(values, np.zeros(20, bool), UnitOptions(k=2))
    with pytest.raises(RSABridgeError, match="at least 12 stimuli in each set"):
        attributes_from_activations(values, positive, UnitOptions(k=2, folds=12))
    for bad, match in ((UnitOptions(bins=1), "bins"), (UnitOptions(epsilon=0.0), "epsilon"),
                       (UnitOptions(pooling="median"), "pooling"), (UnitOptions(classifier="mlp"), "classifier")):
        with pytest.raises(RSABridgeError, match=match):
            attributes_from_activations(values, positive, bad)
