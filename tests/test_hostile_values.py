"""Issue 30 (hostile input, round 3), items 6 and 7: data checks relative to scale, numerics at any scale, and the
"wrong successes" of the hostile-input campaign (each reproduced and now refused in one line, or fixed)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import pdist, squareform

from rsa_bridge.app.cli import main
from rsa_bridge.compare import compare_rdms, compare_vectors
from rsa_bridge.condensed import check_square
from rsa_bridge.datasets import load_dataset, validate_rdm_dataset
from rsa_bridge.definitions import COMPARISONS
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.methods._numeric import pool_rms, pool_zscores, scaled
from rsa_bridge.neural import schema as S
from rsa_bridge.neural.importers import from_array, read_brainscore
from rsa_bridge.neural.published import read_net2brain
from rsa_bridge.rdm import COL, ROW, rdm_dataarray
from rsa_bridge.value_checks import (
    CONVERTED_ATTR,
    RTOL,
    finite_times,
    real_numbers,
    similarity_to_dissimilarity,
    whole_numbers,
)

BUILT_IN = ("spearman", "pearson", "kendall_tau_a", "rho_a", "cosine", "whitened_pearson", "whitened_cosine")
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _one_line(err) -> str:
    text = str(err.value) if hasattr(err, "value") else str(err)
    assert "\n" not in text.strip()
    return text


def _rdm(n: int, seed: int = 0) -> np.ndarray:
    return squareform(pdist(np.random.default_rng(seed).normal(size=(n, 4)), "correlation"))


def _dataset(values: np.ndarray) -> xr.Dataset:
    ids = [f"s{k}" for k in range(values.shape[-1])]
    return xr.Dataset({"V4": ((ROW, COL), values)}, coords={ROW: ids, COL: ids}, attrs={"name": "t"})


# ------------------------------------------------------------------------------------- 3. numerics at any scale
def test_the_finding_pearson_at_1e300_and_1e_minus_300():
    a, b = squareform(_rdm(8, 1)), squareform(_rdm(8, 2))
    r = float(compare_vectors(a, b, "pearson")[0, 0])
    assert r == pytest.approx(stats.pearsonr(a, b)[0], abs=1e-14)
    for factor in (1e300, 1e-300):
        assert float(compare_vectors(a * factor, b, "pearson")[0, 0]) == pytest.approx(r, abs=1e-14)
        assert float(compare_vectors(a, b * factor, "pearson")[0, 0]) == pytest.approx(r, abs=1e-14)
    rho = stats.spearmanr(a, b)[0]
    assert float(compare_vectors(a * 1e300, b * 1e-300, "spearman")[0, 0]) == pytest.approx(rho, abs=1e-14)


@SETTINGS
@given(seed=st.integers(0, 2 ** 32 - 1), n=st.integers(4, 9), k=st.integers(-300, 300))
def test_every_method_is_scale_invariant(seed, n, k):
    rng = np.random.default_rng(seed)
    m = n * (n - 1) // 2
    a = rng.uniform(0.01, 2.0, size=(2, m))
    b = rng.uniform(0.01, 2.0, size=(3, m))
    for method in BUILT_IN:
        plain = compare_vectors(a, b, method)
        for left, right in ((a * 10.0 ** k, b), (a, b * 10.0 ** k), (a * 10.0 ** k, b * 10.0 ** -k)):
            np.testing.assert_allclose(compare_vectors(left, right, method), plain, rtol=0, atol=1e-12,
                                       err_msg=f"{method} at 10^{k}")
    np.testing.assert_allclose(compare_vectors(a * 10.0 ** k, b, "pearson")[0, 0], stats.pearsonr(a[0], b[0])[0],
                               atol=1e-12)
    np.testing.assert_allclose(compare_vectors(a, b * 10.0 ** k, "spearman")[1, 2], stats.spearmanr(a[1], b[2])[0],
                               atol=1e-12)


def test_power_of_two_scaling_is_exact_so_ordinary_results_are_unchanged():
    rng = np.random.default_rng(5)
    a, b = rng.random((3, 21)), rng.random((2, 21))
    x = scaled(a)
    assert np.all((np.abs(x).max(axis=1) >= 0.5) & (np.abs(x).max(axis=1) < 1.0))
    assert np.array_equal(x * (a / x), a)  # a per-row power of two
    # the textbook formula on the unscaled values: the same to the last bits that rounding allows
    ac, bc = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    direct = (ac @ bc.T) / np.outer(np.linalg.norm(ac, axis=1), np.linalg.norm(bc, axis=1))
    np.testing.assert_allclose(compare_vectors(a, b, "pearson"), direct, rtol=1e-15, atol=1e-16)
    assert np.array_equal(compare_vectors(a, b, "pearson"), compare_vectors(a * 2.0 ** 900, b * 2.0 ** -900,
                                                                              "pearson"))
    for pool in (pool_rms, pool_zscores):  # the noise-ceiling pools do not overflow either
        np.testing.assert_allclose(pool(a * 1e300), pool(a), rtol=1e-14)


def test_constant_check_is_relative():
    a = np.array([[1.0, 2.0, 3.0, 5.0, 8.0, 13.0]]) * 1e-300
    b = np.array([[2.0, 1.0, 4.0, 3.0, 6.0, 5.0]])
    assert np.isfinite(compare_vectors(a, b, "pearson")).all()  # was refused as "constant" (squares underflowed)
    for constant in (np.full((1, 6), 1e-300), np.full((1, 6), 0.1), np.full((1, 6), 3e300)):
        for method in ("pearson", "whitened_pearson", "spearman", "rho_a"):
            with pytest.raises(RSABridgeError, match="constant") as err:
                compare_vectors(constant, b, method)
            _one_line(err)
    noisy = np.full((1, 6), 0.1) + np.array([0, 1, 0, 1, 0, 0]) * np.spacing(0.1)  # one-ulp noise is constant
    with pytest.raises(RSABridgeError, match="constant"):
        compare_vectors(noisy, b, "pearson")


def test_compare_cli_at_1e300_gives_the_unscaled_numbers(tmp_path, capsys):
    from tests.helpers import make_rdm_dataset, make_stimuli
    from tests.test_hostile_files import _model_rdms

    ids = make_stimuli(tmp_path / "data" / "stimuli", n=6)
    make_rdm_dataset(tmp_path / "data" / "ds.nc", ids)
    _model_rdms(ids, tmp_path / "m.nc")
    model = xr.load_dataset(tmp_path / "m.nc")
    results = {}
    for name, factor in (("plain", 1.0), ("big", 1e300), ("small", 1e-300)):
        (model * factor).to_netcdf(tmp_path / f"{name}.nc", engine="h5netcdf")
        code = main(["compare", "--model-rdms", str(tmp_path / f"{name}.nc"), "--dataset",
                     str(tmp_path / "data" / "ds.nc"), "--bootstrap", "0", "--method", "pearson", "--quiet",
                     "--out", str(tmp_path / f"out_{name}")])
        assert code == 0, capsys.readouterr().err
        table = pd.read_csv(tmp_path / f"out_{name}" / "results.csv")
        results[name] = table.sort_values(list(table.columns[:2])).select_dtypes("number")
    v1 = model["rdm"].sel(layer="l0").values
    ref = xr.load_dataset(tmp_path / "data" / "ds.nc")["V1"].sel({ROW: model[ROW].values, COL: model[COL].values})
    expected = stats.pearsonr(squareform(v1, checks=False), squareform(ref.values, checks=False))[0]
    assert compare_rdms(rdm_dataarray(v1 * 1e300, list(model[ROW].values)),
                        rdm_dataarray(ref.values, list(ref[ROW].values)), "pearson") == pytest.approx(expected)
    for name in ("big", "small"):
        np.testing.assert_allclose(results[name].to_numpy(dtype=float), results["plain"].to_numpy(dtype=float),
                                   rtol=1e-12, atol=1e-12, equal_nan=True)


# --------------------------------------------------------------------------------- 1. checks relative to scale
def test_the_finding_one_huge_entry_no_longer_hides_asymmetry_or_a_diagonal():
    d = _rdm(6)
    d[0, 1] = d[1, 0] = 1e10
    validate_rdm_dataset(_dataset(d))
    asym = d.copy()
    asym[2, 3] *= 1.01
    with pytest.raises(RSABridgeError, match=r"not symmetric \(entry \[2, 3\]") as err:
        validate_rdm_dataset(_dataset(asym))
    _one_line(err)
    diag = d.copy()
    np.fill_diagonal(diag, 50.0)
    with pytest.raises(RSABridgeError, match=r"non-zero diagonal \(entry \[0, 0\] = 50") as err:
        validate_rdm_dataset(_dataset(diag))
    _one_line(err)
    one = _rdm(6)
    one[4, 4] = 1e-3 * np.median(one[4])  # relative to its own row, not to the matrix
    with pytest.raises(RSABridgeError, match=r"entry \[4, 4\]"):
        check_square(one, "x")
    one[4, 4] = 1e-12 * np.median(one[4])  # rounding noise passes
    check_square(one, "x")


def test_the_findings_through_load_dataset_and_the_cli(tmp_path, capsys):
    d = _rdm(6)
    d[0, 1] = d[1, 0] = 1e10
    np.fill_diagonal(d, 50.0)
    path = tmp_path / "bad.nc"
    _dataset(d).to_netcdf(path, engine="h5netcdf")
    with pytest.raises(RSABridgeError, match="non-zero diagonal"):
        load_dataset(path)
    code = main(["compare", "--model-rdms", str(path), "--dataset", str(path), "--bootstrap", "0", "--quiet",
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "non-zero diagonal" in err


@SETTINGS
@given(seed=st.integers(0, 2 ** 32 - 1), n=st.integers(3, 8), spread=st.integers(0, 300),
       relative=st.floats(10 * RTOL, 1.0), sign=st.sampled_from([-1.0, 1.0]))
def test_symmetry_is_checked_per_entry_at_any_scale(seed, n, spread, relative, sign):
    rng = np.random.default_rng(seed)
    m = n * (n - 1) // 2
    d = squareform(10.0 ** rng.uniform(-spread, spread, size=m) * rng.uniform(1, 2, size=m))
    check_square(d, "x")
    i, j = rng.choice(n, size=2, replace=False)
    same = d.copy()
    same[i, j] *= 1 + 0.5 * RTOL  # below the tolerance
    check_square(same, "x")
    both = d.copy()
    both[i, j] = both[j, i] = d[i, j] * (1 + relative)  # a symmetric change of any size passes
    check_square(both, "x")
    bad = d.copy()
    bad[i, j] = d[i, j] * (1 + sign * relative)
    with pytest.raises(RSABridgeError, match="not symmetric") as err:
        check_square(bad, "x")
    _one_line(err)
    with pytest.raises(RSABridgeError, match="not symmetric"):
        compare_rdms(bad, d, "spearman")


def test_compare_rdms_symmetry_no_longer_absolute():
    d = _rdm(5) * 1e-300
    bad = d.copy()
    bad[0, 1] *= 2  # |difference| ~ 1e-300, far below the old absolute 1e-12
    with pytest.raises(RSABridgeError, match="not symmetric"):
        compare_rdms(bad, _rdm(5, 1))


def test_complex_or_text_rdms_are_one_line():
    with pytest.raises(RSABridgeError, match="complex") as err:
        validate_rdm_dataset(_dataset(_rdm(5) * (1 + 1j)))
    _one_line(err)
    with pytest.raises(RSABridgeError, match="not complex") as err:
        rdm_dataarray(_rdm(4) + 1j, list("abcd"))
    _one_line(err)
    text = _rdm(4).astype(object)
    text[1, 2] = "far"
    with pytest.raises(RSABridgeError, match=r"position \[1, 2\] holds 'far'") as err:
        rdm_dataarray(text, list("abcd"))
    _one_line(err)


# ----------------------------------------------------------------------------------- 2. similarity matrices
def test_similarity_matrices_are_named_and_the_conversion_is_one_function():
    d = _rdm(6)
    s = 1.0 - d
    with pytest.raises(RSABridgeError, match="similarity matrix.*--similarity-to-dissimilarity") as err:
        validate_rdm_dataset(_dataset(s))
    _one_line(err)
    back = similarity_to_dissimilarity(s)
    np.testing.assert_allclose(back, d, atol=1e-15)
    assert np.all(np.diagonal(back) == 0.0)
    converted = similarity_to_dissimilarity(_dataset(s))
    validate_rdm_dataset(converted)
    assert converted["V4"].attrs[CONVERTED_ATTR].startswith("similarity")
    far = _rdm(6) * 3.0  # diagonal 1 but entries beyond 1: a non-zero diagonal, not a similarity matrix
    np.fill_diagonal(far, 1.0)
    far[0, 1] = far[1, 0] = 2.5
    with pytest.raises(RSABridgeError) as err:
        check_square(far, "x")
    assert "non-zero diagonal" in str(err.value) and "similarity" not in str(err.value)


def _net2brain(folder, values):
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "fmri_IT_RDMs.npz", rdm=values)
    return folder


def test_net2brain_similarities_refused_then_converted(tmp_path, capsys):
    d = np.stack([_rdm(5, k) for k in range(3)])
    src = _net2brain(tmp_path / "n2b", 1.0 - d)
    with pytest.raises(RSABridgeError, match="similarity matrix") as err:
        read_net2brain(src)
    _one_line(err)
    imported = read_net2brain(src, similarity_to_dissimilarity=True)
    np.testing.assert_allclose(imported.data["IT"].values, d, atol=1e-15)
    assert CONVERTED_ATTR in imported.data["IT"].attrs
    code = main(["neural", "import", str(src), "--format", "net2brain", "--out", str(tmp_path / "a.nc")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--similarity-to-dissimilarity" in err
    assert not (tmp_path / "a.nc").exists()
    code = main(["neural", "import", str(src), "--format", "net2brain", "--similarity-to-dissimilarity",
                 "--out", str(tmp_path / "b.nc")])
    assert code == 0, capsys.readouterr().err
    np.testing.assert_allclose(load_dataset(tmp_path / "b.nc")["IT"].values, d, atol=1e-15)
    code = main(["neural", "import", str(src), "--format", "csv", "--similarity-to-dissimilarity",
                 "--out", str(tmp_path / "c.nc")])
    assert code == 2 and "do not apply to format 'csv'" in capsys.readouterr().err


def test_net2brain_asymmetry_and_diagonal_are_checked_before_the_symmetrisation(tmp_path):
    d = np.stack([_rdm(5, k) for k in range(2)])
    bad = d.copy()
    bad[1, 0, 3] *= 1.5
    with pytest.raises(RSABridgeError, match=r"IT \(subject 2\) RDM is not symmetric"):
        read_net2brain(_net2brain(tmp_path / "a", bad))
    diag = d.copy()
    diag[0, 2, 2] = 0.3
    with pytest.raises(RSABridgeError, match="non-zero diagonal"):
        read_net2brain(_net2brain(tmp_path / "b", diag))


# ------------------------------------------------------------------------------- 1. whole numbers, real numbers
@SETTINGS
@given(values=st.lists(st.integers(-10 ** 6, 10 ** 6), min_size=1, max_size=30), data=st.data())
def test_whole_number_columns_refuse_any_fraction_or_nan(values, data):
    arr = np.asarray(values, dtype=np.float64)
    assert whole_numbers(arr, "repetition").tolist() == values
    k = data.draw(st.integers(0, len(values) - 1))
    bad = arr.copy()
    bad[k] = data.draw(st.one_of(st.just(np.nan), st.just(np.inf),
                                 st.floats(0.001, 0.999).map(lambda f: values[k] + f)))
    if bad[k] == np.round(bad[k]):  # a fraction too small for the float to hold
        return
    with pytest.raises(RSABridgeError, match=rf"repetition must hold whole numbers; position {k} ") as err:
        whole_numbers(bad, "repetition")
    _one_line(err)


def test_the_findings_nan_and_fractional_repetitions():
    values = np.arange(12.0).reshape(4, 3)
    for reps, shown in (([0, 1, np.nan, 0], "nan"), ([0, 1, 0.5, 0], "0.5"), ([0, 1, "two", 0], "'two'")):
        with pytest.raises(RSABridgeError, match=rf"repetition.*position 2 holds {shown}") as err:
            S.make_rates(values, stimulus_ids=["a", "a", "b", "b"], repetitions=reps, neuroid_ids=["x", "y", "z"],
                         region="V4")
        _one_line(err)
    rates = S.make_rates(values, stimulus_ids=["a", "a", "b", "b"], repetitions=[0, 1, 0, 1],
                         neuroid_ids=["x", "y", "z"], region="V4")
    flat = S.flat_coords(rates).assign_coords({S.REPETITION: (S.PRESENTATION, [0.0, 1.0, np.nan, 1.0])})
    with pytest.raises(RSABridgeError, match="repetition must hold whole numbers; position 2"):
        S.validate_rates(flat)


def test_brainscore_nan_repetitions_are_not_minus_two_to_the_63(tmp_path):
    rates = S.flat_coords(S.make_rates(np.arange(12.0).reshape(4, 3), stimulus_ids=["a", "a", "b", "b"],
                                       repetitions=[0, 1, 0, 1], neuroid_ids=["x", "y", "z"], region="V4"))
    da = rates.assign_coords({S.REPETITION: (S.PRESENTATION, [0.0, np.nan, 0.0, 1.0])})
    da.attrs = {}
    path = tmp_path / "bs.nc"
    da.to_dataset(name="rates").to_netcdf(path, engine="h5netcdf")
    with pytest.raises(RSABridgeError, match="repetition must hold whole numbers; position 1 holds nan") as err:
        read_brainscore(path)
    _one_line(err)


def test_the_finding_complex_rates_keep_no_silent_imaginary_part():
    arr = np.ones((3, 4, 2)) + 0j
    arr[1, 2, 0] += 0.5j
    with pytest.raises(RSABridgeError, match=r"not complex.*position \[1, 2, 0\]") as err:
        from_array(arr, stimulus_ids="img{n}", region="V4")
    _one_line(err)
    with pytest.raises(RSABridgeError, match="not complex") as err:
        S.make_rates(np.ones((2, 2)) * 1j, stimulus_ids=["a", "b"], repetitions=[0, 0], neuroid_ids=["x", "y"],
                     region="V4")
    _one_line(err)


def test_text_where_numbers_are_expected_is_one_line():
    values = np.arange(6.0).reshape(2, 3).astype(object)
    values[1, 0] = "12 Hz"
    with pytest.raises(RSABridgeError, match=r"rates must be numbers; position \[1, 0\] holds '12 Hz'") as err:
        S.make_rates(values, stimulus_ids=["a", "b"], repetitions=[0, 0], neuroid_ids=["x", "y", "z"], region="V4")
    _one_line(err)
    with pytest.raises(RSABridgeError, match="time_bin_start must be numbers; position 0 holds .start.") as err:
        S.make_rates(np.ones((2, 3, 2)), stimulus_ids=["a", "b"], repetitions=[0, 0], neuroid_ids=["x", "y", "z"],
                     region="V4", options=S.RatesOptions(time_bins=[("start", 50), (50, 100)]))
    _one_line(err)
    assert real_numbers(np.array([1, 2], dtype=object), "x").dtype == np.float64
    with pytest.raises(RSABridgeError, match="True/False"):
        real_numbers(np.array([True, False]), "x")
    with pytest.raises(RSABridgeError, match=r"onset must be finite times; row 1 holds nan \(1 such rows\)"):
        finite_times([0.0, np.nan, 2.0], "onset")


def test_csv_repetition_names_its_row(tmp_path, capsys):
    path = tmp_path / "r.csv"
    pd.DataFrame({"stimulus_id": ["a", "a", "b"], "neuroid_id": ["x", "x", "x"], "repetition": ["0", "1.5", "0"],
                  "rate": [1.0, 2.0, 3.0]}).to_csv(path, index=False)
    code = main(["neural", "import", str(path), "--region", "V4", "--out", str(tmp_path / "o.nc")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "row 3 holds '1.5'" in err


# ------------------------------------------------------------------------------------------------ NWB times
@pytest.mark.parametrize("column", ["start_time", "onset"])
def test_the_finding_nan_trial_start_or_onset_is_one_line(tmp_path, capsys, column):
    pytest.importorskip("pynwb")
    import h5py

    from rsa_bridge.neural.nwb import read_nwb
    from tests.test_nwb import _write

    path = _write(tmp_path / "s.nwb")
    options = {}
    if column == "onset":
        from pynwb import NWBHDF5IO

        with NWBHDF5IO(str(path), "a") as io:  # an onset column next to start_time
            nwb = io.read()
            nwb.trials.add_column(name="onset", description="onset s", data=[t[0] for t in nwb_trials()])
            io.write(nwb)
        options["onset_column"] = "onset"
    with h5py.File(path, "a") as handle:
        handle[f"intervals/trials/{column}"][2] = np.nan
    with pytest.raises(RSABridgeError, match=rf"trials {column} must be finite times; row 2 holds nan") as err:
        read_nwb(path, stop=100, **options)
    _one_line(err)
    argv = ["neural", "import", str(path), "--window-stop", "100", "--out", str(tmp_path / "o.nc")]
    if options:
        argv += ["--onset-column", "onset"]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "finite times" in err


def nwb_trials():
    from tests.test_nwb import TRIALS

    return TRIALS


# ------------------------------------------------------------------------------------ RDM stores (chunked sums)
@pytest.mark.parametrize("method", ["pearson", "cosine", "spearman", "rho_a"])
def test_rdm_store_sums_are_scale_invariant(method):
    from rsa_bridge.chunked_compare import compare_store
    from rsa_bridge.rdm_store import RDMStore

    rng = np.random.default_rng(4)
    a, b = rng.random((2, 45)), rng.random((2, 45))
    plain = compare_vectors(a, b, method)
    for factor in (1.0, 1e300, 1e-300):
        with RDMStore([str(i) for i in range(10)], memory_budget=0) as store:
            store.put("l1", a[0] * factor)
            store.put("l2", a[1] * factor)
            r = compare_store(store, {"IT": b / factor}, method, chunk_size=7)["IT"]
        np.testing.assert_allclose(r, plain, rtol=0, atol=1e-12)  # was NaN (pearson) or 0 (cosine) at 1e300


def test_rdm_store_overflow_is_one_line_not_nan():
    from rsa_bridge.chunked_compare import compare_store
    from rsa_bridge.rdm_store import RDMStore

    rng = np.random.default_rng(4)
    a, b = rng.random(45), rng.random((1, 45))
    a[7:] *= 1e308  # the first chunk sets the scale, the later ones are 1e308 times larger
    with RDMStore([str(i) for i in range(10)], memory_budget=0) as store:
        store.put("l1", a)
        with pytest.raises(RSABridgeError, match="too many orders of magnitude") as err:
            compare_store(store, {"IT": b}, "pearson", chunk_size=7)
    _one_line(err)


@pytest.mark.parametrize("method", ["pearson", "cosine"])
def test_bootstrap_fast_path_is_scale_invariant(method):
    record = COMPARISONS[method]
    rng = np.random.default_rng(6)
    x = rng.random((2, 15))
    w = rng.integers(0, 3, size=(4, 15)).astype(np.float64)
    w[:, :3] = 1.0  # every sample keeps a few pairs
    plain = record.dot.prepare(x, w, None)
    for factor in (1e300, 1e-300):
        np.testing.assert_allclose(record.dot.prepare(x * factor, w, None), plain, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(record.dot.pool_values(x * factor, w, None),
                                   record.dot.pool_values(x, w, None), rtol=1e-12, atol=1e-14)
    assert np.array_equal(record.dot.prepare(x * 2.0 ** 500, w, None), plain)  # exact: bit-identical


def test_complex_model_rdms_from_matlab_are_one_line(tmp_path):
    from scipy.io import savemat

    from rsa_bridge.model_rdms import read_model_rdms

    savemat(tmp_path / "m.mat", {"conv1": _rdm(5) * (1 + 0.5j)})
    with pytest.raises(RSABridgeError, match="model RDM 'conv1' must be real numbers, not complex") as err:
        read_model_rdms(tmp_path / "m.mat", stimulus_ids=list("abcde"))
    _one_line(err)


def test_complex_activations_are_one_line_and_binary_ones_still_work():
    from rsa_bridge.rdm import compute_rdm

    x = np.random.default_rng(7).random((5, 4))
    with pytest.raises(RSABridgeError, match=r"activations must be real numbers, not complex.*position \[1, 0\]"):
        compute_rdm(x + np.eye(5, 4, k=-1) * 1j, "euclidean")
    binary = x > 0.5
    np.testing.assert_allclose(compute_rdm(binary, "euclidean").values,
                               squareform(pdist(binary.astype(float), "euclidean")), atol=1e-12)
