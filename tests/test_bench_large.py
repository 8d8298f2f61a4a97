"""The generated data of benchmarks/bench_large_compare.py and the opt-in stage timings (rsa_bridge.timing)."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import pdist, squareform
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]


def _large_data():
    spec = importlib.util.spec_from_file_location("large_data", ROOT / "benchmarks" / "large_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((folder / "stimuli").iterdir())}


def test_generated_set_is_seeded_and_matches_its_neural_file(tmp_path):
    from rsa_bridge.datasets import load_dataset
    from stimuli import load_stimulus_set

    ld = _large_data()
    a = ld.build(40, seed=3, root=tmp_path / "a")
    b = ld.build(40, seed=3, root=tmp_path / "b")
    c = ld.build(40, seed=4, root=tmp_path / "c")
    assert _digests(a) == _digests(b)                      # same seed: same bytes, manifest included
    assert len(_digests(a)) == 41
    png = [k for k in _digests(a) if k.endswith(".png")]
    assert all(_digests(a)[k] != _digests(c)[k] for k in png)  # another seed: other images
    # the first images do not depend on N (one stream per image)
    small = ld.build(10, seed=3, root=tmp_path / "small")
    assert all(_digests(small)[k] == _digests(a)[k] for k in _digests(small) if k.endswith(".png"))

    stim = load_stimulus_set(a / "stimuli")
    ds = load_dataset(a / "neural.nc")                    # validates square, symmetric, zero diagonal
    assert stim.stimulus_ids == [str(s) for s in ds["stimulus_row"].values]
    assert len(set(stim.stimulus_ids)) == 40
    assert ds.attrs["synthetic"] == "yes" and "not a recording" in ds.attrs["source"]
    assert list(ds.data_vars) == ["V4"] and ds["V4"].shape == (1, 40, 40)


def test_neural_rdm_equals_scipy_and_shares_the_images_structure():
    ld = _large_data()
    stats = np.stack([ld.pixel_statistics(ld.image(i, 0)) for i in range(80)])
    # pixel statistics are block means of the image (independent check by explicit loops)
    img = ld.image(5, 0).astype(np.float64) / 255
    s = img.shape[0] // ld.POOL
    blocks = [img[r * s:(r + 1) * s, c * s:(c + 1) * s].mean(axis=(0, 1)) for r in range(ld.POOL) for c in range(ld.POOL)]
    np.testing.assert_allclose(stats[5], np.ravel(blocks), atol=1e-12)

    responses = ld.neural_responses(stats, seed=0, n_rdms=2)
    rdms = ld.neural_rdms(stats, seed=0, n_rdms=2)
    for k in range(2):
        np.testing.assert_allclose(rdms[k], squareform(pdist(responses[k], "correlation")), atol=1e-6)
        assert np.array_equal(rdms[k], rdms[k].T) and not np.diagonal(rdms[k]).any()
    rows, cols = np.triu_indices(80, 1)
    pixel_rdm = squareform(pdist(stats, "correlation"))
    rho = spearmanr(rdms[0][rows, cols], pixel_rdm[rows, cols])[0]
    assert rho > 0.2                                      # shared latent structure: similarities are not ~0
    assert not np.array_equal(rdms[0], rdms[1])           # a fresh noise draw per RDM


def test_timing_is_off_by_default(monkeypatch, tmp_path):
    from rsa_bridge import timing

    monkeypatch.delenv(timing.ENV, raising=False)
    monkeypatch.setattr(timing, "_state", {})
    with timing.stage("x"):
        pass
    timing.begin("y")
    timing.end("y")
    assert timing.recorder() is None
    assert list(tmp_path.iterdir()) == []


def test_timing_records_stages(monkeypatch, tmp_path):
    from rsa_bridge import timing

    path = tmp_path / "t.json"
    monkeypatch.setenv(timing.ENV, str(path))
    monkeypatch.setattr(timing, "_state", {})
    with timing.stage("sleep"):
        time.sleep(0.06)
    with timing.stage("sleep"):
        x = np.ones(2 ** 24)                             # 128 MiB while the stage runs
        time.sleep(0.1)
        del x
    timing.begin("left_open")
    rec = timing.recorder()
    data = json.loads(path.read_text())                   # written after every stage
    assert data["process"]["finished"] is False
    rec.write()
    rec.stop.set()
    data = json.loads(path.read_text())
    sleep = data["stages"]["sleep"]
    assert sleep["calls"] == 2 and sleep["wall_s"] >= 0.16 and sleep["cpu_s"] >= 0
    assert sleep["peak_rss_mib"] * 2 ** 20 >= 2 ** 27
    assert data["stages"]["left_open"]["open"] is True
    assert data["process"]["finished"] is True and data["process"]["max_rss_mib"] > 0


def test_timing_of_a_tiny_compare_run(tmp_path):
    ld = _large_data()
    folder = ld.build(12, seed=1, root=tmp_path / "data")
    path = tmp_path / "timings.json"
    env = {**os.environ, "RSA_BRIDGE_TIMINGS": str(path), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "rsa_bridge", "compare", "--model", "alexnet", "--weights", "none",
           "--layers", "conv1,fc8", "--dataset", str(folder / "neural.nc"), "--stimuli", str(folder / "stimuli"),
           "--bootstrap", "20", "--permutations", "20", "--out", str(tmp_path / "out"), "--no-cache", "--quiet"]
    subprocess.run(cmd, check=True, env=env, cwd=ROOT, capture_output=True)
    data = json.loads(path.read_text())
    for name in ("decode_forward", "gram_rdm", "comparison", "statistics", "bootstrap", "permutations", "write"):
        stage = data["stages"][name]
        assert stage["calls"] == 1 and stage["wall_s"] >= 0 and stage["cpu_s"] >= 0 and stage["peak_rss_mib"] > 0
        assert "open" not in stage
    assert data["process"]["finished"] is True
    assert data["stages"]["statistics"]["wall_s"] >= data["stages"]["bootstrap"]["wall_s"]
    assert pd.read_csv(tmp_path / "out" / "results.csv")["n_stimuli"].eq(12).all()


def test_estimate_uses_the_measured_growth_of_each_stage():
    spec = importlib.util.spec_from_file_location("bench_large_compare", ROOT / "benchmarks" / "bench_large_compare.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    base = {"job": "compare", "precision": "float64", "variant": "dense", "extra": "", "rc": 0}
    rows = [{**base, "n": n, "stages": {"gram_rdm": {"cpu_s": 3.0 * n ** 2}, "decode_forward": {"cpu_s": 0.5 * n}}}
            for n in (1000, 2000)]
    rows.append({**base, "n": 4000, "rc": 1, "stages": {"gram_rdm": {"cpu_s": 1.0}}})  # failed runs are ignored
    (est,) = bench.estimate(rows, [8000])
    assert est["estimated"] and est["exponents"] == {"gram_rdm": 2.0, "decode_forward": 1.0}
    assert est["stages"]["gram_rdm"]["cpu_s"] == pytest.approx(3.0 * 8000 ** 2)
    assert est["cpu_s"] == pytest.approx(3.0 * 8000 ** 2 + 0.5 * 8000)
    (one,) = bench.estimate(rows[:1], [4000])                 # one size: the stated growth model
    assert one["exponents"]["gram_rdm"] == 2.0 and one["exponents"]["decode_forward"] == 1.0
