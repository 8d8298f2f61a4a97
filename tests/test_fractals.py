"""FractalDB-style fractals: IFS rules, chaos game, search statistic, instances, seeding, manifest, CLI."""
from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from rsa_bridge.errors import RSABridgeError
from stimuli import StimulusError, ifs, load_stimulus_set
from stimuli import fractals
from stimuli.fractals import RenderSettings, SearchSettings, make_fractal_set

# small settings that keep a whole fractal set under a few seconds
SMALL_SEARCH = SearchSettings(n_points=20_000, size=128, pad=6, threshold=0.2)
SMALL = dict(categories=2, instances=1, render=RenderSettings(size=40, points=3_000), search=SMALL_SEARCH)


def sequential_orbit(params: np.ndarray, choices: np.ndarray) -> np.ndarray:
    """Reference chaos game: one map per step in a plain loop."""
    out = np.zeros((len(choices) + 1, 2))
    x = y = 0.0
    for k, i in enumerate(choices):
        a, b, c, d, e, f = params[i]
        x, y = a * x + b * y + e, c * x + d * y + f
        out[k + 1] = x, y
    return out


def png_digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.png"))}


# ---------------------------------------------------------------- IFS rules


def test_probabilities_are_abs_det_normalised():
    rng = np.random.default_rng(5)
    params = rng.uniform(-1, 1, size=(5, 6))
    p = ifs.selection_probabilities(params)
    det = np.abs([a * d - b * c for a, b, c, d, _, _ in params])
    np.testing.assert_allclose(p, det / det.sum(), rtol=1e-14)
    np.testing.assert_allclose(p * det.sum(), det, rtol=1e-14)
    assert p.sum() == pytest.approx(1.0, abs=1e-15)
    # hand-worked: |det| = 0.5*0.5 - 0 = 0.25 and |0*0 - 1*1| = 1  ->  p = 0.2, 0.8
    hand = np.array([[0.5, 0, 0, 0.5, 0, 0], [0, 1, 1, 0, 0, 0]], dtype=float)
    np.testing.assert_allclose(ifs.selection_probabilities(hand), [0.2, 0.8], rtol=1e-15)
    with pytest.raises(StimulusError, match="singular"):
        ifs.selection_probabilities(np.zeros((3, 6)))


def test_random_systems_follow_the_rules():
    rng = np.random.default_rng(0)
    systems = [ifs.random_system(rng) for _ in range(300)]
    assert {s.n_maps for s in systems} == set(range(2, 8))
    for s in systems:
        assert s.params.shape == (s.n_maps, 6)
        assert np.all(np.abs(s.params) < 1)
        det = np.abs(s.params[:, 0] * s.params[:, 3] - s.params[:, 1] * s.params[:, 2])
        np.testing.assert_allclose(s.probabilities, det / det.sum(), rtol=1e-13)
    values = np.concatenate([s.params.ravel() for s in systems])
    assert values.min() < -0.99 and values.max() > 0.99 and abs(values.mean()) < 0.05


def test_25_weight_vectors_exact():
    w = ifs.weight_vectors(0.1)
    assert w.shape == (25, 6)
    assert np.array_equal(w[0], np.ones(6))
    # hand-checked rows: 1 + 4*param + factor_index
    assert np.array_equal(w[1], [0.8, 1, 1, 1, 1, 1])
    assert np.array_equal(w[4], [1.2, 1, 1, 1, 1, 1])
    assert np.array_equal(w[10], [1, 1, 0.9, 1, 1, 1])  # c, factor 1 - delta
    assert np.array_equal(w[19], [1, 1, 1, 1, 1.1, 1])  # e, factor 1 + delta
    assert np.array_equal(w[24], [1, 1, 1, 1, 1, 1.2])
    changed = w[1:] != 1
    assert np.all(changed.sum(axis=1) == 1)
    pairs = {(int(np.argmax(row != 1)), float(row[row != 1][0])) for row in w[1:]}
    assert pairs == {(j, f) for j in range(6) for f in (0.8, 0.9, 1.1, 1.2)}
    assert np.array_equal(ifs.weight_vectors(0.05)[1], [0.9, 1, 1, 1, 1, 1])


def test_weighted_system_multiplies_params_and_keeps_probabilities():
    system = ifs.random_system(np.random.default_rng(2), n_maps=3)
    weighted = system.weighted(ifs.weight_vectors()[10])
    np.testing.assert_array_equal(weighted.params[:, 2], system.params[:, 2] * 0.9)
    np.testing.assert_array_equal(np.delete(weighted.params, 2, axis=1), np.delete(system.params, 2, axis=1))
    np.testing.assert_array_equal(weighted.probabilities, system.probabilities)


def test_4_flips_exact():
    image = np.arange(6).reshape(2, 3)
    assert np.array_equal(ifs.FLIPS[0](image), [[0, 1, 2], [3, 4, 5]])
    assert np.array_equal(ifs.FLIPS[1](image), [[3, 4, 5], [0, 1, 2]])  # top-bottom
    assert np.array_equal(ifs.FLIPS[2](image), [[2, 1, 0], [5, 4, 3]])  # left-right
    assert np.array_equal(ifs.FLIPS[3](image), [[5, 4, 3], [2, 1, 0]])  # both
    assert sorted(ifs.FLIPS) == [0, 1, 2, 3]


# ---------------------------------------------------------------- chaos game and drawing


@pytest.mark.parametrize("n_steps,block", [(0, 64), (1, 64), (1000, 7), (5003, 64), (4096, 64), (300, 1)])
def test_blocked_chaos_game_matches_sequential_loop(n_steps, block):
    rng = np.random.default_rng(n_steps)
    system = ifs.random_system(rng, n_maps=4)
    system = ifs.IFSystem(system.params * 0.7, system.probabilities)  # contractive
    choices = ifs.map_choices(system, n_steps, rng)
    got = ifs.iterate_maps(system.params, choices, block=block)
    want = sequential_orbit(system.params, choices)
    assert got.shape == (n_steps + 1, 2)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * max(np.abs(want).max(), 1))
    assert np.array_equal(got[0], [0.0, 0.0])


def test_map_choices_follow_probabilities():
    system = ifs.IFSystem(np.zeros((3, 6)), np.array([0.2, 0.5, 0.3]))
    choices = ifs.map_choices(system, 200_000, np.random.default_rng(1))
    freq = np.bincount(choices, minlength=3) / choices.size
    np.testing.assert_allclose(freq, [0.2, 0.5, 0.3], atol=0.005)


def test_divergent_points_dropped():
    points = np.zeros((300, 2))
    points[150:, 0] = np.nan
    assert len(ifs.drop_divergent(points)) == 50  # 100 points before the first NaN go too
    points = np.ones((300, 2))
    points[250, 1] = 1e12
    assert len(ifs.drop_divergent(points)) == 150
    assert len(ifs.drop_divergent(np.ones((30, 2)))) == 30
    # grows by about 1.05 per step: passes 1e10 after roughly 470 steps
    slow = ifs.IFSystem(np.array([[1.05, 0, 0, 1.05, 1, 1], [1.05, 0, 0, -1.05, 1, 0]]), np.array([0.5, 0.5]))
    kept = ifs.chaos_game(slow, 5000, np.random.default_rng(0))
    orbit = sequential_orbit(slow.params, ifs.map_choices(slow, 4999, np.random.default_rng(0)))
    first = int(np.argmax(np.abs(orbit).max(axis=1) > 1e10))
    assert 300 < first < 600 and len(kept) == first - 100
    np.testing.assert_allclose(kept, orbit[: first - 100], rtol=1e-12)


def test_points_to_pixels_hand_worked():
    points = np.array([[0.0, 0.0], [1.0, 2.0], [0.5, 1.0], [0.25, 1.9]])
    rows, cols = ifs.points_to_pixels(points, size=16, pad=3)  # inner span 10 pixels
    assert cols.tolist() == [3, 13, 8, 5]  # 3 + 10 * x, floored
    assert rows.tolist() == [13, 3, 8, 3]  # y points up: 3 + 10 * (2 - y) / 2, floored
    rows, cols = ifs.points_to_pixels(np.array([[1.0, 5.0], [1.0, 6.0]]), size=16, pad=3)
    assert cols.tolist() == [8, 8]  # zero span: the middle


def test_patches_match_a_plain_loop():
    rng = np.random.default_rng(4)
    size, n = 20, 60
    rows, cols = rng.integers(1, size - 1, n), rng.integers(1, size - 1, n)
    image = ifs.draw_patches(rows, cols, size, np.random.default_rng(9))
    masks = np.random.default_rng(9).integers(1, 512, size=n, dtype=np.uint16)
    want = np.zeros((size, size), dtype=np.uint8)
    for r, c, m in zip(rows, cols, masks):
        assert 1 <= m <= 511
        for bit in range(9):
            if m >> bit & 1:
                want[r + bit // 3 - 1, c + bit % 3 - 1] = 127
    assert np.array_equal(image, want)
    points = ifs.draw_points(rows, cols, size)
    assert set(np.unique(points)) == {0, 127} and np.count_nonzero(points) == len(set(zip(rows, cols)))


def test_search_statistic_equals_filling_rate_of_rendered_image():
    settings = SearchSettings()  # FractalDB: 100,000 points, 512 x 512, pad 6, rate >= 0.2
    result = fractals.search_categories(1, seed=3, settings=settings)
    category = result.categories[0]
    assert category.filling_rate >= 0.2 and result.n_candidates == category.candidate + 1
    rng = fractals.stream_rng(3, fractals.SEARCH_STREAM, category.candidate)
    system = ifs.random_system(rng)
    np.testing.assert_array_equal(system.params, category.system.params)
    image = ifs.render(system, 100_000, 512, rng, pad=6, draw="point")
    assert image.shape == (512, 512)
    assert np.count_nonzero(image) / (512 * 512) == category.filling_rate
    # every earlier candidate was rejected on the same statistic
    for candidate in range(category.candidate):
        assert fractals.evaluate_candidate(3, candidate, settings)[1] < 0.2


# ---------------------------------------------------------------- sets on disk


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("fractals") / "set"
    return make_fractal_set(out, seed=11, **SMALL)


def test_manifest_is_correct(small_set):
    m = small_set.manifest
    assert list(m.columns) == ["stimulus_id", "filename", "category", "weight_index", "flip", "instance"]
    assert len(m) == 2 * 25 * 1 * 4 and m["stimulus_id"].is_unique
    combos = set(zip(m["category"], m["weight_index"], m["flip"], m["instance"]))
    assert combos == {(c, w, f, 0) for c in range(2) for w in range(25) for f in range(4)}
    row = m[(m["category"] == 1) & (m["weight_index"] == 7) & (m["flip"] == 2)].iloc[0]
    assert row["stimulus_id"] == "c00001_w07_i000_f2" and row["filename"] == "c00001/c00001_w07_i000_f2.png"
    assert all(p.is_file() for p in small_set.paths)
    assert load_stimulus_set(small_set.root).stimulus_ids == small_set.stimulus_ids


def test_saved_images_are_the_instances_in_their_flips(small_set):
    table = pd.read_csv(small_set.root / "categories.csv")
    part = table[table["category"] == 1]
    params = part[list(ifs.PARAM_NAMES)].to_numpy()
    det = np.abs(params[:, 0] * params[:, 3] - params[:, 1] * params[:, 2])
    np.testing.assert_allclose(part["probability"], det / det.sum(), rtol=1e-12)
    category = fractals.FractalCategory(1, ifs.IFSystem(params, part["probability"].to_numpy()), 0, 0.0)
    render = SMALL["render"]
    image = fractals.render_instance(category, 5, 0, seed=11, size=render.size, n_points=render.points)
    m = small_set.manifest.set_index("stimulus_id")
    for flip, expected in enumerate([image, image[::-1], image[:, ::-1], image[::-1, ::-1]]):
        saved = np.asarray(Image.open(small_set.root / m.loc[f"c00001_w05_i000_f{flip}", "filename"]))
        assert saved.dtype == np.uint8 and saved.shape == (render.size,) * 2
        assert np.array_equal(saved, expected)
    assert set(np.unique(image)) == {0, 127}


def test_same_seed_byte_identical_other_seed_differs(small_set, tmp_path):
    again = make_fractal_set(tmp_path / "again", seed=11, **SMALL)
    first = png_digests(small_set.root)
    assert png_digests(again.root) == first and len(first) == 200
    assert (again.root / "manifest.csv").read_bytes() == (small_set.root / "manifest.csv").read_bytes()
    assert (again.root / "categories.csv").read_bytes() == (small_set.root / "categories.csv").read_bytes()
    other = png_digests(make_fractal_set(tmp_path / "other", seed=12, **SMALL).root)
    assert sum(first[k] != other[k] for k in first) == len(first)


def test_instances_differ_and_are_reproducible():
    rng = np.random.default_rng(0)
    category = fractals.FractalCategory(0, ifs.random_system(rng), 0, 0.0)
    a = fractals.render_instance(category, 0, 0, seed=1, size=48, n_points=4000)
    assert np.array_equal(a, fractals.render_instance(category, 0, 0, seed=1, size=48, n_points=4000))
    assert not np.array_equal(a, fractals.render_instance(category, 0, 1, seed=1, size=48, n_points=4000))
    point = fractals.render_instance(category, 0, 0, seed=1, size=48, n_points=4000, draw="point")
    assert np.count_nonzero(point) < np.count_nonzero(a)
    with pytest.raises(StimulusError, match="weight_index"):
        fractals.render_instance(category, 25, 0)


def test_existing_folder_refused_and_failed_build_leaves_nothing(tmp_path, monkeypatch):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x.txt").write_text("keep")
    with pytest.raises(StimulusError, match="not empty"):
        make_fractal_set(busy, **SMALL)
    assert (busy / "x.txt").read_text() == "keep"

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(fractals, "render_instance", broken)
    with pytest.raises(RuntimeError):
        make_fractal_set(tmp_path / "new", **SMALL)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy"]


def test_cli_fractals(tmp_path, capsys):
    from rsa_bridge.app.commands import stimuli_cmd

    parser = argparse.ArgumentParser()
    stimuli_cmd.register(parser.add_subparsers(dest="command"))
    out = tmp_path / "cli"
    args = parser.parse_args(
        ["stimuli", "fractals", "--categories", "1", "--instances", "2", "--out", str(out),
         "--size", "32", "--points", "2000", "--seed", "3", "--quiet"]
    )
    assert args.func(args) == 0
    stimulus_set = load_stimulus_set(out)
    assert len(stimulus_set) == 1 * 25 * 2 * 4
    assert set(stimulus_set.manifest["instance"]) == {0, 1}
    assert "wrote 200 images of 1 categories" in capsys.readouterr().out
    args = parser.parse_args(["stimuli", "fractals", "--out", str(out), "--categories", "1", "--quiet"])
    with pytest.raises(RSABridgeError, match="not empty"):  # StimulusError is an RSABridgeError too
        args.func(args)
