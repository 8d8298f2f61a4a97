"""Issue 30 round 3: id patterns, linear duplicate checks, repetitions as labels, and the traceback findings
(RDM datasets with a ``replicate`` dim, rsatoolbox RDMs in ``neural ceiling``, duplicate layer names, integer
stimulus ids). Numbers are checked against rsatoolbox / scipy or by hand."""
from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats
from scipy.spatial.distance import pdist, squareform

from rsa_bridge.app.cli import main
from rsa_bridge.duplicates import duplicates
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.neural import schema as S
from rsa_bridge.neural.id_patterns import MAX_WIDTH, check_pattern, format_ids
from rsa_bridge.rdm import COL, ROW, compute_rdm


# ------------------------------------------------------------------------------------------------ id patterns
@pytest.mark.parametrize("pattern, first, last", [
    ("image{n:04d}", "image0001", "image0003"), ("V4_{i:03d}", "V4_000", "V4_002"), ("s{i}", "s0", "s2"),
    ("{n:_<4}", "1___", "3___"), ("{i:>3d}|{n}", "  0|1", "  2|3"), ("a{{b}}{n}", "a{b}1", "a{b}3"),
    ("{n:=5}", "    1", "    3"), ("{n:0%dd}" % MAX_WIDTH, "0" * (MAX_WIDTH - 1) + "1", "0" * (MAX_WIDTH - 1) + "3"),
])
def test_documented_patterns_format_as_python_would(pattern, first, last):
    ids = format_ids(pattern, 3)
    assert ids == [pattern.format(i=k, n=k + 1) for k in range(3)] and (ids[0], ids[-1]) == (first, last)


@pytest.mark.parametrize("pattern, why", [
    ("{n:>300000000}", "width 300000000 is more than 64"), ("{i.real.foo}", "field {i.real.foo} is not n or i"),
    ("{n[0]}", "is not n or i"), ("{0}", "is not n or i"), ("{}", "is not n or i"), ("{n!r}", "conversion !r"),
    ("{n:x}", "format spec 'x'"), ("{n:.2f}", "format spec '.2f'"), ("{n:{i}}", "format spec '{i}'"),
    ("img", None), ("{{n}}", "no {n} or {i} field"), ("{n", "expected '}'"), ("x" * 257 + "{n}", "260 characters"),
])
def test_other_patterns_are_one_line_saying_what_is_allowed(pattern, why):
    if why is None:  # no brace at all: a file name, not a pattern (from_array reads it as a file)
        with pytest.raises(RSABridgeError, match="no {n} or {i} field"):
            check_pattern(pattern)
        return
    with pytest.raises(RSABridgeError) as info:
        format_ids(pattern, 3, "stimulus ids")
    message = str(info.value)
    assert "\n" not in message and why in message and "allowed: fields {n} (1-based) or {i} (0-based)" in message
    assert message.startswith("bad stimulus ids pattern") and len(message) < 400


def test_the_reported_patterns_on_the_command_line(tmp_path, capsys):
    np.save(tmp_path / "c.npy", np.ones((2, 3, 2)))
    for pattern, why in (("{n:>300000000}", "width"), ("{i.real.foo}", "field")):
        start = time.perf_counter()
        code = main(["neural", "import", str(tmp_path / "c.npy"), "--region", "V4", "--stimulus-ids", pattern,
                     "--out", str(tmp_path / "o.nc")])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and why in err[0] and time.perf_counter() - start < 5
    assert not (tmp_path / "o.nc").exists()


# --------------------------------------------------------------------------------------- linear duplicates
N_IDS = 200_000


def _ids_with_one_duplicate(n: int = N_IDS) -> list[str]:
    ids = [f"stim{k:06d}" for k in range(n)]
    ids[-1] = ids[n // 2]  # the duplicate sits at the far end
    return ids


def test_duplicates_helper_by_hand():
    assert duplicates(["b", "a", "b", "c", "a", "b"]) == ["b", "a"] and duplicates([]) == []
    assert duplicates([("a", 0), ("a", 1), ("a", 0)]) == [("a", 0)]


@pytest.mark.parametrize("check", ["compute_rdm", "make_rates stimulus", "make_rates neuroid", "rdm store",
                                   "extractor ids", "from_array file"])
def test_200000_ids_with_one_duplicate_are_refused_fast_naming_it(check, tmp_path):
    from extractors.inputs import _check_ids  # imports (torch) before the clock starts
    from rsa_bridge.neural.importers import from_array
    from rsa_bridge.rdm_store import RDMStore

    ids = _ids_with_one_duplicate()
    dup = ids[-1]
    if check == "from_array file":
        (tmp_path / "ids.txt").write_text("\n".join(ids))
    start = time.perf_counter()
    with pytest.raises(RSABridgeError) as info:
        if check == "compute_rdm":
            compute_rdm(np.zeros((N_IDS, 1)), "euclidean", stimulus_ids=ids)
        elif check == "make_rates stimulus":
            S.make_rates(np.ones((N_IDS, 1)), stimulus_ids=ids, repetitions=np.zeros(N_IDS, int), neuroid_ids=["n"],
                         region="V4")
        elif check == "make_rates neuroid":
            S.make_rates(np.ones((1, N_IDS)), stimulus_ids=["a"], repetitions=[0], neuroid_ids=ids, region="V4")
        elif check == "rdm store":
            RDMStore(ids)
        elif check == "extractor ids":
            _check_ids(ids, N_IDS, "images")
        else:
            from_array(np.ones((1, N_IDS)), layout="neuroid,stimulus", stimulus_ids=str(tmp_path / "ids.txt"),
                       region="V4")
    elapsed = time.perf_counter() - start
    assert repr(dup) in str(info.value) and "\n" not in str(info.value)
    assert elapsed < 5, f"{elapsed:.1f} s"


def test_compare_rdms_and_rdm_datasets_name_the_duplicate():
    from rsa_bridge.compare import compare_rdms
    from rsa_bridge.datasets import validate_rdm_dataset

    ids = ["a", "b", "c", "a"]
    m = squareform(pdist(np.arange(8.0).reshape(4, 2) ** 2))
    rdm = xr.DataArray(m, dims=(ROW, COL), coords={ROW: ids, COL: ids})
    with pytest.raises(RSABridgeError, match="duplicate stimulus ids: 'a'"):
        compare_rdms(rdm, rdm)
    with pytest.raises(RSABridgeError, match="duplicate stimulus ids: 'a'"):
        validate_rdm_dataset(xr.Dataset({"IT": rdm}), where="toy")


# -------------------------------------------------------------------------------- repetitions are labels
def _rates(reps, stim=("a", "a", "b", "c")):
    values = np.arange(2.0 * len(reps)).reshape(len(reps), 2)
    return S.make_rates(values, stimulus_ids=list(stim), repetitions=list(reps), neuroid_ids=["x", "y"], region="V4")


def test_to_array_lays_out_repetition_labels_without_allocating_by_them():
    from rsa_bridge.neural.exporters import to_array
    from rsa_bridge.neural.load import describe_rates

    array, stim, neur = to_array(_rates([0, 10 ** 12, 5, 7]))  # sparse: each stimulus's k-th showing
    nan = np.nan
    expected = np.array([[[0, 2], [4, nan], [6, nan]], [[1, 3], [5, nan], [7, nan]]])
    np.testing.assert_array_equal(array, expected)
    assert stim == ["a", "b", "c"] and neur == ["x", "y"]
    assert describe_rates(_rates([0, 10 ** 12, 5, 7]))["padding_share"] == pytest.approx(1 - 4 / 6)
    dense, _, _ = to_array(_rates([0, 2, 2, 0]))  # dense labels: slot k is the k-th smallest number, as before
    np.testing.assert_array_equal(dense, np.array([[[0, 2], [nan, 4], [6, nan]], [[1, 3], [nan, 5], [7, nan]]]))
    back, _, _ = to_array(_rates([0, 1, 0, 1]))  # 0..K-1: slot == repetition, as it always was
    np.testing.assert_array_equal(back[:, 0, :], [[0, 2], [1, 3]])


def test_export_of_a_repetition_of_10_to_the_12(tmp_path, capsys):
    rows = ["stimulus_id,neuroid_id,repetition,rate"] + [f"{s},{n},{r},{v}" for v, (s, n, r) in enumerate(
        [("a", "x", 0), ("a", "y", 0), ("a", "x", 10 ** 12), ("a", "y", 10 ** 12), ("b", "x", 3), ("b", "y", 3)])]
    (tmp_path / "r.csv").write_text("\n".join(rows) + "\n")
    assert main(["neural", "export", str(tmp_path / "r.csv"), "--region", "V4", "--to", "numpy",
                 "--out", str(tmp_path / "e.npz")]) == 0
    capsys.readouterr()
    with np.load(tmp_path / "e.npz") as z:
        np.testing.assert_array_equal(z["rates"], [[[0, 2], [4, np.nan]], [[1, 3], [5, np.nan]]])


# ------------------------------------------------------------------------- replicate dims, rsatoolbox RDMs
N_STIM = 8
SUBJECTS = ["s1", "s1", "s2", "s2", "s3"]


def _brain_and_model(tmp_path):
    from rsatoolbox.rdm import RDMs

    rng = np.random.default_rng(7)
    ids = [f"img{k}" for k in range(N_STIM)]
    base = rng.normal(size=(N_STIM, 6))
    vecs = np.stack([pdist(base + rng.normal(size=base.shape), "correlation") for _ in SUBJECTS])
    RDMs(vecs, dissimilarity_measure="correlation", pattern_descriptors={"stimulus_id": ids},
         rdm_descriptors={"subject": SUBJECTS}).save(str(tmp_path / "brain.h5"), file_type="hdf5")
    model = np.stack([squareform(pdist(base + s * rng.normal(size=base.shape))) for s in (0.5, 3.0)])
    xr.Dataset({"rdm": (("layer", ROW, COL), model)}, coords={"layer": ["near", "far"], ROW: ids, COL: ids}
               ).to_netcdf(tmp_path / "model.nc", engine="h5netcdf")
    return vecs, model, ids


def _rsatoolbox_ceiling(vecs, groups=None):
    from rsatoolbox.inference import boot_noise_ceiling
    from rsatoolbox.rdm import RDMs

    desc = None if groups is None else {"group": np.asarray(groups)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return boot_noise_ceiling(RDMs(vecs, rdm_descriptors=desc), method="spearman",
                                  rdm_descriptor="group" if groups is not None else "index")


def _ceiling_line(capsys) -> tuple[float, float]:
    line = capsys.readouterr().out.strip().splitlines()[-1]
    parts = line.split()
    return float(parts[parts.index("lower") + 1]), float(parts[parts.index("upper") + 1])


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")
def test_neural_import_then_compare_and_ceiling_on_the_same_file(tmp_path, capsys):
    vecs, model, _ = _brain_and_model(tmp_path)
    lower, upper = _rsatoolbox_ceiling(vecs)
    src = ["--format", "rsatoolbox-rdms", "--region", "IT"]
    assert main(["neural", "ceiling", str(tmp_path / "brain.h5"), *src]) == 0  # rsatoolbox RDMs directly
    assert _ceiling_line(capsys) == pytest.approx((lower, upper), abs=1e-4)
    assert main(["neural", "import", str(tmp_path / "brain.h5"), *src, "--out", str(tmp_path / "it.nc")]) == 0
    capsys.readouterr()
    with xr.open_dataset(tmp_path / "it.nc", engine="h5netcdf") as ds:
        assert ds["IT"].dims == ("replicate", ROW, COL)  # what neural import writes
    assert main(["neural", "ceiling", str(tmp_path / "it.nc"), "--area", "IT"]) == 0
    assert _ceiling_line(capsys) == pytest.approx((lower, upper), abs=1e-4)
    assert main(["neural", "ceiling", str(tmp_path / "it.nc"), "--area", "IT", "--groups", "subject"]) == 0
    assert _ceiling_line(capsys) == pytest.approx(_rsatoolbox_ceiling(vecs, groups=SUBJECTS), abs=1e-4)

    assert main(["compare", "--model-rdms", str(tmp_path / "model.nc"), "--dataset", str(tmp_path / "it.nc"),
                 "--area", "IT", "--bootstrap", "0", "--quiet", "--out", str(tmp_path / "out")]) == 0
    capsys.readouterr()
    table = pd.read_csv(tmp_path / "out" / "results.csv").set_index("layer")
    tri = np.triu_indices(N_STIM, 1)
    for k, layer in enumerate(["near", "far"]):
        per_rdm = np.array([stats.spearmanr(model[k][tri], squareform(v)[tri])[0] for v in vecs])
        per_subject = [per_rdm[np.asarray(SUBJECTS) == s].mean() for s in dict.fromkeys(SUBJECTS)]
        assert table.loc[layer, "similarity"] == pytest.approx(np.mean(per_subject), abs=1e-10)  # mean of units
        assert table.loc[layer, "n_rdms"] == len(SUBJECTS)
    grouped = _rsatoolbox_ceiling(vecs, groups=SUBJECTS)  # compare resamples whole subjects (auto grouping)
    assert table["resampling_unit"].iloc[0] == "subject"
    assert table["ceiling_lower"].iloc[0] == pytest.approx(grouped[0], abs=1e-10)
    assert table["ceiling_upper"].iloc[0] == pytest.approx(grouped[1], abs=1e-10)


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")
def test_integer_stimulus_ids_are_strings_everywhere(tmp_path, capsys):
    """Integer ids in a NetCDF are read as their decimal strings: an int-id file and a str-id file agree."""
    _, model, _ = _brain_and_model(tmp_path)
    rng = np.random.default_rng(2)
    brain = np.stack([squareform(pdist(rng.normal(size=(N_STIM, 4)))) for _ in range(3)])
    results = {}
    for kind, ids in (("int", list(range(N_STIM))), ("str", [str(k) for k in range(N_STIM)])):
        xr.Dataset({"IT": (("subject", ROW, COL), brain)}, coords={ROW: ids, COL: ids, "subject": ["a", "b", "c"]},
                   attrs={"name": kind}).to_netcdf(tmp_path / f"{kind}.nc", engine="h5netcdf")
        xr.Dataset({"rdm": (("layer", ROW, COL), model)}, coords={"layer": ["near", "far"], ROW: ids, COL: ids}
                   ).to_netcdf(tmp_path / f"m_{kind}.nc", engine="h5netcdf")
    for model_kind in ("int", "str"):
        for data_kind in ("int", "str"):
            out = tmp_path / f"out_{model_kind}_{data_kind}"
            assert main(["compare", "--model-rdms", str(tmp_path / f"m_{model_kind}.nc"), "--dataset",
                         str(tmp_path / f"{data_kind}.nc"), "--bootstrap", "0", "--quiet", "--out", str(out)]) == 0
            results[model_kind, data_kind] = pd.read_csv(out / "results.csv")["similarity"].to_numpy()
    capsys.readouterr()
    first = results["int", "int"]
    tri = np.triu_indices(N_STIM, 1)
    expected = np.mean([stats.spearmanr(model[0][tri], b[tri])[0] for b in brain])
    assert first[0] == pytest.approx(expected, abs=1e-10)
    for value in results.values():
        np.testing.assert_array_equal(value, first)
    assert main(["neural", "ceiling", str(tmp_path / "int.nc"), "--area", "IT"]) == 0
    assert _ceiling_line(capsys) == pytest.approx(_rsatoolbox_ceiling(np.stack([squareform(b) for b in brain])),
                                                  abs=1e-4)


def test_duplicate_layer_names_are_one_line(tmp_path):
    from rsa_bridge.model_rdms import as_model_rdms, read_model_rdms

    ids = ["a", "b", "c"]
    m = np.stack([squareform(pdist(np.arange(6.0).reshape(3, 2) ** p)) for p in (1, 2)])
    xr.Dataset({"rdm": (("layer", ROW, COL), m)}, coords={"layer": ["x", "x"], ROW: ids, COL: ids}
               ).to_netcdf(tmp_path / "m.nc", engine="h5netcdf")
    with pytest.raises(RSABridgeError, match="duplicate layer names 'x'"):
        read_model_rdms(tmp_path / "m.nc")
    with pytest.raises(RSABridgeError, match="duplicate layer names 'x'"):
        as_model_rdms(xr.DataArray(m, dims=("model", ROW, COL), coords={"model": ["x", "x"], ROW: ids, COL: ids}))
    assert list(as_model_rdms(xr.DataArray(m, dims=("model", ROW, COL), coords={ROW: ids, COL: ids}))["layer"].values) \
        == ["0", "1"]


@pytest.mark.parametrize("bad, shown", [(1.5, "1.5"), (np.nan, "nan"), (1e30, "1e+30"), (2 ** 63 - 1, str(2 ** 63 - 1)),
                                        (-(2 ** 60), str(-(2 ** 60)))])
def test_repetition_numbers_from_any_reader_are_bounded_whole_numbers(bad, shown):
    values = np.array([[1.0, 2.0], [3.0, 5.0], [4.0, 1.0]])
    reps = np.array([0, bad, 2], dtype=np.float64 if isinstance(bad, float) else np.int64)
    with pytest.raises(RSABridgeError, match="whole numbers of at most 2\\*\\*53") as info:
        S.make_rates(values, stimulus_ids=["a", "b", "c"], repetitions=reps, neuroid_ids=["x", "y"], region="V4")
    assert shown in str(info.value) and "\n" not in str(info.value)
    ok = S.make_rates(values, stimulus_ids=["a", "b", "c"], repetitions=[0, 2 ** 53, 7.0], neuroid_ids=["x", "y"],
                      region="V4")
    assert ok["repetition"].values.tolist() == [0, 2 ** 53, 7]
