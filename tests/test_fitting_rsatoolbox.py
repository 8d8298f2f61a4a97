"""Fitted RDM models equal rsatoolbox on the same folds and draws, to 1e-8.

References: rsatoolbox.model.ModelWeighted / ModelSelect, fit_regress_nn (rsatoolbox's NNLS fitter),
fit_regress, fit_select, rsatoolbox.inference.sets_k_fold, crossval, bootstrap_crossval and
eval_dual_bootstrap. rsatoolbox draws its own folds and samples from numpy's global random state; the tests
record them (wrapping ``bootstrap_sample`` and ``sets_k_fold`` where ``evaluate`` looks them up) and feed the
same ones to rsa_bridge.fitting.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

rsatoolbox = pytest.importorskip("rsatoolbox")
from rsatoolbox.inference import evaluate as rt_eval  # noqa: E402
from rsatoolbox.model import ModelFixed, ModelSelect, ModelWeighted, fit_regress, fit_regress_nn, fit_select  # noqa: E402
from rsatoolbox.rdm import RDMs  # noqa: E402

from rsa_bridge.fitting import CVOptions, FitData, ModelSpec, summarize  # noqa: E402
from rsa_bridge.fitting import bootstrap_crossval, crossval, dual_bootstrap  # noqa: E402
from rsa_bridge.fitting.fitters import FITTERS  # noqa: E402
from rsa_bridge.fitting.folds import Draw, Fold  # noqa: E402

N_STIM = 14
SUBJECTS = ("A", "B", "C", "D")
RT_METHOD = {"pearson": "corr", "cosine": "cosine"}


def make_data(seed=0):
    rng = np.random.default_rng(seed)
    feats = rng.normal(size=(3, N_STIM, 5))
    # scaled down: rsatoolbox's active-set NNLS stops only when every gradient entry is below 100 eps, which
    # rounding never reaches with O(1) model vectors (it then loops for ever); the fits are scale-free
    models = np.stack([squareform(pdist(f)) for f in feats]) * 1e-3
    shared = np.concatenate([feats[0], 0.5 * feats[2]], 1)
    brain = np.stack([squareform(pdist(np.concatenate([shared, rng.normal(size=(N_STIM, 5))], 1)))
                      for _ in range(2 * len(SUBJECTS))])
    groups = tuple(s for s in SUBJECTS for _ in range(2))
    ids = tuple(f"im{i:02d}" for i in range(N_STIM))
    ours = FitData(brain, groups, ids, models, ("m0", "m1", "m2"), {})
    idx = np.triu_indices(N_STIM, 1)
    data = RDMs(brain[:, idx[0], idx[1]], rdm_descriptors={"subject": list(groups)})
    rdm_models = RDMs(models[:, idx[0], idx[1]])
    return ours, data, rdm_models


def as_fold(train, test, ids):
    return Fold(tuple(dict.fromkeys(train[0].rdm_descriptors["subject"])),
                tuple(dict.fromkeys(test[0].rdm_descriptors["subject"])),
                tuple(ids[int(i)] for i in train[1]), tuple(ids[int(i)] for i in test[1]))


@pytest.mark.parametrize("method", ["pearson", "cosine"])
@pytest.mark.parametrize("name, ours_fitter", [("nnls", fit_regress_nn), ("regress", fit_regress)])
def test_fitters_equal_rsatoolbox(method, name, ours_fitter):
    ours, data, rdm_models = make_data()
    model = ModelWeighted("w", rdm_models)
    # a training subset with repeated stimuli, as in a bootstrap sample
    pattern_idx = np.sort(np.random.default_rng(1).integers(0, N_STIM, N_STIM))
    sample = data.subsample_pattern("index", pattern_idx)
    theirs = ours_fitter(model, sample, method=RT_METHOD[method], pattern_idx=pattern_idx, pattern_descriptor="index")
    from rsa_bridge.fitting.data import vectors

    w = FITTERS[name].fit(vectors(ours.model_rdms, pattern_idx), vectors(ours.rdms, pattern_idx), method)
    np.testing.assert_allclose(w, theirs, rtol=0, atol=1e-8)
    if name == "nnls":
        assert (w >= 0).all()


@pytest.mark.parametrize("method", ["pearson", "spearman", "cosine"])
def test_select_equals_rsatoolbox(method):
    ours, data, rdm_models = make_data(3)
    rt_name = {"pearson": "corr", "spearman": "spearman", "cosine": "cosine"}[method]
    theirs = fit_select(ModelSelect("s", rdm_models), data, method=rt_name)
    from rsa_bridge.fitting.data import vectors

    pos = np.arange(N_STIM)
    w = FITTERS["select"].fit(vectors(ours.model_rdms, pos), vectors(ours.rdms, pos), method)
    assert w.tolist() == [float(i == theirs) for i in range(3)]


@pytest.mark.parametrize("method", ["pearson", "cosine"])
def test_crossval_equals_rsatoolbox(method):
    ours, data, rdm_models = make_data(1)
    np.random.seed(4)
    train_set, test_set, _ = rt_eval.sets_k_fold(data, k_pattern=3, k_rdm=2, random=True, rdm_descriptor="subject")
    folds = [as_fold(tr, te, ours.stimulus_ids) for tr, te in zip(train_set, test_set)]
    models = [ModelWeighted("w", rdm_models), ModelSelect("s", rdm_models), ModelFixed("f", rdm_models[1])]
    theirs = rt_eval.crossval(models, data, train_set, test_set, method=RT_METHOD[method],
                              fitter=[fit_regress_nn, fit_select, None], calc_noise_ceil=False).evaluations[0]
    evals, weights = crossval(ours, [ModelSpec("w", "weighted", "nnls"), ModelSpec("s", "select"),
                                     ModelSpec("f", "fixed", components=("m1",))], folds, method)
    np.testing.assert_allclose(evals, theirs, rtol=0, atol=1e-8)
    # the weights of fold 0 are rsatoolbox's fit on fold 0's training set
    w0 = fit_regress_nn(models[0], train_set[0][0], method=RT_METHOD[method], pattern_idx=train_set[0][1],
                        pattern_descriptor="index")
    np.testing.assert_allclose(weights[0][2], w0, rtol=0, atol=1e-8)


class Recorder:
    """Wraps rsatoolbox's bootstrap_sample and sets_k_fold and keeps what they returned."""

    def __init__(self, monkeypatch, ids):
        self.draws, self.folds, self.ids = [], [], ids
        real_sample, real_folds = rt_eval.bootstrap_sample, rt_eval.sets_k_fold

        def sample(data, **kw):
            out = real_sample(data, **kw)
            self.draws.append(Draw(tuple(str(g) for g in out[1]), tuple(ids[int(i)] for i in out[2])))
            return out

        def folds(data, **kw):
            train, test, ceil = real_folds(data, **kw)
            self.folds.append([as_fold(tr, te, ids) for tr, te in zip(train, test)])
            return train, test, ceil

        monkeypatch.setattr(rt_eval, "bootstrap_sample", sample)
        monkeypatch.setattr(rt_eval, "sets_k_fold", folds)


def test_bootstrap_crossval_equals_rsatoolbox(monkeypatch):
    ours, data, rdm_models = make_data(2)
    rec = Recorder(monkeypatch, ours.stimulus_ids)
    models = [ModelWeighted("w", rdm_models), ModelSelect("s", rdm_models), ModelFixed("f", rdm_models[0])]
    np.random.seed(7)
    res = rt_eval.bootstrap_crossval(models, data, method="corr", fitter=[fit_regress_nn, fit_select, None], k_pattern=2,
                                     k_rdm=2, N=6, n_cv=2, rdm_descriptor="subject")
    options = CVOptions(method="pearson", k_pattern=2, k_rdm=2, n_boot=6, n_cv=2)
    it = iter(rec.folds)
    folds = [[next(it) for _ in range(2)] if len(set(d.groups)) >= 2 else None for d in rec.draws]
    specs = [ModelSpec("w"), ModelSpec("s", "select"), ModelSpec("f", "fixed", components=("m0",))]
    evals = bootstrap_crossval(ours, specs, rec.draws, folds, options)
    np.testing.assert_allclose(evals, res.evaluations, rtol=0, atol=1e-8, equal_nan=True)
    assert np.isfinite(evals).sum() >= 4 * evals[0].size  # most draws were cross-validated, not NaN
    s = summarize(evals, data.n_rdm, data.n_cond, 0.95, "bootstrap_crossval")
    np.testing.assert_allclose(s["mean"], res.get_means(), rtol=0, atol=1e-8)
    np.testing.assert_allclose(s["variance"], res.model_var, rtol=0, atol=1e-8)
    np.testing.assert_allclose(s["ci_t"], res.get_ci(0.95, "t-test"), rtol=0, atol=1e-8)
    if not np.isnan(res.evaluations).any():
        np.testing.assert_allclose(s["ci_percentile"], res.get_ci(0.95, "bootstrap"), rtol=0, atol=1e-8)


def test_dual_bootstrap_equals_rsatoolbox(monkeypatch):
    ours, data, rdm_models = make_data(5)
    rec = Recorder(monkeypatch, ours.stimulus_ids)
    models = [ModelWeighted("w", rdm_models)]
    np.random.seed(11)
    res = rt_eval.eval_dual_bootstrap(models, data, method="cosine", fitter=[fit_regress], k_pattern=2, k_rdm=2,
                                      N=5, n_cv=2, rdm_descriptor="subject")
    options = CVOptions(method="cosine", k_pattern=2, k_rdm=2, n_boot=5, n_cv=2)
    it = iter(rec.folds)
    folds = []
    for d in rec.draws:
        if len(set(d.groups)) < 2:
            folds.append(None)
            continue
        per_rep = [[next(it) for _ in range(3)] for _ in range(2)]  # rsatoolbox: per repetition both, rdm, pattern
        folds.append([[per_rep[r][v] for r in range(2)] for v in range(3)])
    evals = dual_bootstrap(ours, [ModelSpec("w", "weighted", "regress")], rec.draws, folds, options)
    np.testing.assert_allclose(evals, res.evaluations, rtol=0, atol=1e-8, equal_nan=True)
    assert np.isfinite(evals).sum() >= 3 * evals[0].size
    s = summarize(evals, data.n_rdm, data.n_cond, 0.95, "dual_bootstrap")
    np.testing.assert_allclose(s["mean"], res.get_means(), rtol=0, atol=1e-8)
    np.testing.assert_allclose(s["variance"], res.model_var, rtol=0, atol=1e-8)
    np.testing.assert_allclose(s["ci_t"], res.get_ci(0.95, "t-test"), rtol=0, atol=1e-8)


def test_a_nan_fold_is_left_out_of_the_draw_mean():
    """A fold whose fit leaves the prediction undefined (NaN) does not make the model's variance NaN."""
    e = np.random.default_rng(0).normal(size=(30, 1, 3, 2))
    e[4, 0, 1, 0] = np.nan
    s = summarize(e, 8, 92, 0.95, "bootstrap_crossval", correction=False)
    means = np.nanmean(np.nanmean(e[:, 0], axis=-1), axis=-1)  # rsatoolbox get_means: repetitions, then folds
    assert s["mean"][0] == pytest.approx(means.mean())
    per_draw = np.nanmean(e[:, 0], axis=1).mean(axis=1)  # variance: fold NaN-mean, then mean over repetitions
    assert np.isfinite(s["variance"][0])
    assert s["variance"][0] == pytest.approx(np.var(per_draw, ddof=1) * 8 / 7)
