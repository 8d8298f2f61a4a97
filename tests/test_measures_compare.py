"""compare with --measure cka/linear: same forward pass, same RSA rows, values equal to direct computations."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from extractors import extract
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.measures.cka import center_gram, linear_cka
from rsa_bridge.measures.ceilings import mean_responses, neuroid_ceiling
from rsa_bridge.measures.predictivity import linear_predictivity
from rsa_bridge.measures.scoring import MeasureOptions
from rsa_bridge.measures.stats import cka_stats, weighted_cka
from rsa_bridge.neural.schema import make_rates
from rsa_bridge.app.pipeline import RDMOptions, StatsOptions, compare_model
from rsa_bridge.stats.resample import bootstrap_stimuli, counts
from tests.helpers import make_rdm_dataset, make_stimuli

N = 30


def _transform(image):
    return torch.from_numpy(np.asarray(image.resize((16, 16)), dtype=np.float32) / 255).permute(2, 0, 1)


class Counting(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 6, 3)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(6 * 14 * 14, 12)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.fc(self.relu(self.conv(x)).flatten(1))


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("measures")
    ids = make_stimuli(root / "stimuli", n=N, size=16)
    make_rdm_dataset(root / "toy.nc", ids)
    rng = np.random.default_rng(0)
    signal = rng.normal(size=(N, 8))
    reps = 4
    values = np.concatenate([signal + 0.5 * rng.normal(size=signal.shape) for _ in range(reps)])
    rates = make_rates(values, stimulus_ids=ids * reps, repetitions=np.repeat(np.arange(reps), N),
                       neuroid_ids=[f"n{j}" for j in range(8)], region="V1")
    return root, ids, rates


def _run(toy, measures, bootstrap=0, **kw):
    root, ids, rates = toy
    net = Counting()
    result = compare_model("toy", ["V1"], dataset=str(root / "toy.nc"), layers=["conv", "relu", "fc"], model=net,
                           transform=_transform, progress=False, rdm=RDMOptions(batch_size=8), measures=measures,
                           measure_options=MeasureOptions(responses=rates, n_splits=5, **kw),
                           stats=StatsOptions(bootstrap=bootstrap, seed=0))
    return result, net


def test_measures_from_one_pass_equal_direct_computation(toy):
    root, ids, rates = toy
    base, net0 = _run(toy, None)
    result, net = _run(toy, ["rsa", "cka", "linear"], bootstrap=50)
    assert net.calls == net0.calls <= int(np.ceil(N / 8)) + 1  # one pass (+ a shape probe), as for RSA alone
    t = result.table
    assert list(dict.fromkeys(t["measure"])) == ["rsa", "cka", "linear"]
    rsa = t[t["measure"] == "rsa"].reset_index(drop=True)
    np.testing.assert_array_equal(rsa["similarity"], base.table["similarity"])
    images = [Image.open(root / "stimuli" / f"{s}.png").convert("RGB") for s in ids]
    acts = extract(Counting(), torch.stack([_transform(im) for im in images]), ["conv", "relu", "fc"],
                   stimulus_ids=ids, batch_size=8)  # the pipeline's batches: the same float32 activations
    resp = mean_responses(rates).sel(stimulus_id=ids)
    neural = resp.values @ resp.values.T
    ceiling = neuroid_ceiling(rates, 10, 0).values
    for layer in ("conv", "relu", "fc"):
        x = acts[layer].values.astype(np.float64)
        row = t[(t["measure"] == "cka") & (t["layer"] == layer)].iloc[0]
        assert row["similarity"] == pytest.approx(linear_cka(x @ x.T, neural), abs=1e-8)
        ref = linear_predictivity(x @ x.T, resp, n_splits=5, seed=0, ceiling=ceiling)
        row = t[(t["measure"] == "linear") & (t["layer"] == layer)].iloc[0]
        # the pipeline's Gram sums in another order than x @ x.T; ridge's solve amplifies those last bits by the
        # Gram's condition number (to ~1e-8 with one BLAS thread), so the check is relative, at 1e-6
        assert row["similarity"] == pytest.approx(ref.median, rel=1e-6, abs=1e-9)
        assert row["score_over_ceiling"] == pytest.approx(ref.normalized, rel=1e-6, abs=1e-9)
        assert row["mean_over_neuroids"] == pytest.approx(ref.mean, rel=1e-6, abs=1e-9)
    res = result.results
    assert res["score"].dims == ("measure", "model_layer", "area")
    assert list(res["measure"].values) == ["rsa", "cka", "linear"]
    assert res["linear_per_neuroid_toy_V1"].shape == (3, 8)
    assert result.agreement is not None and set(result.agreement["measure"]) == {"rsa", "cka", "linear"}
    cka_rows = t[t["measure"] == "cka"]
    assert cka_rows["p_best"].sum() == pytest.approx(1.0)
    assert (cka_rows["ci_low"] <= cka_rows["ci_high"]).all()


def test_rsa_only_output_unchanged(toy):
    from rsa_bridge.app.report import format_table

    base, _ = _run(toy, None)
    assert "MEASURE" not in format_table(base) and "AGREEMENT" not in format_table(base)
    assert set(base.table["measure"]) == {"rsa"} and "score" not in base.results


def test_stratified_folds_from_manifest(toy):
    result, _ = _run(toy, ["linear"], labels="category")
    assert (result.table["measure"] == "linear").sum() == 3
    with pytest.raises(RSABridgeError, match="no such column"):
        _run(toy, ["linear"], labels="nonexistent")


def test_weighted_cka_equals_explicit_resample():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(25, 7)), rng.normal(size=(25, 5))
    kc, lc = center_gram(x @ x.T), center_gram(y @ y.T)
    idx = bootstrap_stimuli(25, 6, rng)
    got = weighted_cka((x @ x.T)[None], y @ y.T, counts(idx, 25))[:, 0]
    for s, i in enumerate(idx):
        keep = ~((i[:, None] == i[None, :]) & ~np.eye(25, dtype=bool))  # drop pairs of a stimulus with its copy
        a, b = kc[np.ix_(i, i)][keep], lc[np.ix_(i, i)][keep]
        assert got[s] == pytest.approx((a @ b) / np.sqrt((a @ a) * (b @ b)), abs=1e-12)


def test_cka_permutation_p_value():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 6))
    grams = np.stack([x @ x.T, (z := rng.normal(size=(40, 6))) @ z.T])
    neural = (x + 0.3 * rng.normal(size=x.shape)) @ (x + 0.3 * rng.normal(size=x.shape)).T
    obs = np.array([linear_cka(g, neural) for g in grams])
    st = cka_stats(grams, neural, obs, n_bootstrap=0, n_permutations=99, rng=rng)
    assert st.p_value[0] == pytest.approx(0.01) and st.p_value[1] > 0.05
    assert st.p_holm[0] <= 0.02


def test_measure_errors(toy, tmp_path, capsys):
    from rsa_bridge.app.cli import main
    from rsa_bridge.app.pipeline import compare_precomputed

    with pytest.raises(RSABridgeError, match="unknown measure"):
        _run(toy, ["no_such_measure"])
    root, ids, rates = toy
    with pytest.raises(RSABridgeError, match="pass --responses"):
        compare_model("toy", ["V1"], dataset=str(root / "toy.nc"), layers=["fc"], model=Counting(),
                      transform=_transform, progress=False, measures=["cka"])
    from rsa_bridge.app.report import write_outputs

    base = _run(toy, None)[0]
    with pytest.raises(RSABridgeError, match="precomputed model RDMs carry no Gram"):
        compare_precomputed(base.model_rdms["toy|toy"], ["V1"], dataset=str(root / "toy.nc"), measures=["rsa", "cka"])
    write_outputs(base, tmp_path)
    path = tmp_path / "model_rdms.nc"
    code = main(["compare", "--model-rdms", str(path), "--dataset", str(root / "toy.nc"), "--area", "V1",
                 "--measure", "cka", "--bootstrap", "0"])
    assert code == 2 and "carry no Gram" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", "--model", "alexnet", "--area", "V4", "--measure", "no_such_measure"])
    assert exit_info.value.code == 2
