"""Multiple-comparison families: per model x area over that model's layers; controls form their own family."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from rsa_bridge import load_dataset
from rsa_bridge.app.cli import main
from rsa_bridge.datasets import area_rdms
from rsa_bridge.options import StatsOptions
from rsa_bridge.rdm import COL, ROW
from rsa_bridge.stats import PermutationOptions, fdr_bh, holm, permutation_test
from rsa_bridge.stats.resample import as_generator
from rsa_bridge.stats.summary import compare_statistics, describe_families, family_corrected, p_families

from _stats_reference import model_like, real_rdms


def test_family_corrected_by_hand():
    p = np.array([[0.01], [0.04], [0.03], [0.02], [0.5]])
    fam = ["a", "a", "a", "controls", "controls"]
    out = family_corrected(p, fam, "holm")
    # family a: sorted 0.01, 0.03, 0.04 -> 3*0.01, max(0.03, 2*0.03), max(0.06, 1*0.04) = 0.03, 0.06, 0.06
    np.testing.assert_allclose(out[:3, 0], [0.03, 0.06, 0.06])
    # controls: 0.02, 0.5 -> 2*0.02 = 0.04, max(0.04, 0.5) = 0.5
    np.testing.assert_allclose(out[3:, 0], [0.04, 0.5])
    bh = family_corrected(p, fam, "fdr_bh")
    # family a: q = min_j>=i k p(j)/j: 0.01*3/1=0.03, 0.03*3/2=0.045, 0.04*3/3=0.04 -> 0.03, 0.04, 0.04
    np.testing.assert_allclose(bh[:3, 0], [0.03, 0.04, 0.04])


def test_families_of_labels_and_their_description():
    labels = ["alexnet:conv1", "alexnet:conv2", "vgg16:fc7", "pixels:pixels", "gabor:gabor"]
    fam = p_families(labels, controls=["pixels", "gabor"])
    assert fam == ["alexnet", "alexnet", "vgg16", "controls", "controls"]
    assert describe_families(labels, fam) == ("per area, each model's layers form one family (alexnet: 2 layers; "
                                              "vgg16: 1 layer); the controls form their own family (pixels, gabor: "
                                              "2 tests)")


def test_compare_statistics_corrects_within_each_family():
    ds = load_dataset("kriegeskorte2008_92images")
    ids = [str(s) for s in ds[ROW].values]
    it, _ = real_rdms()
    values = model_like(it[0], 6, seed=2, noise=(0.5, 2.0, 8.0, 30.0, 1.0, 50.0))
    labels = ["a:l1", "a:l2", "a:l3", "b:l1", "pixels:pixels", "gabor:gabor"]
    rdms = xr.DataArray(values, dims=("model_layer", ROW, COL), coords={"model_layer": labels, ROW: ids, COL: ids})
    st = compare_statistics(rdms, ds, ["IT", "hIT"], "spearman", StatsOptions(permutations=40), rng=as_generator(1),
                            controls=["pixels", "gabor"])
    ref = permutation_test(rdms, {a: area_rdms(ds, a) for a in ("IT", "hIT")}, n_permutations=40,
                           seed=as_generator(1), options=PermutationOptions(keep_null=False))
    np.testing.assert_array_equal(st.p_value, ref.p_value)
    for rows in ([0, 1, 2], [3], [4, 5]):
        for j in range(2):
            np.testing.assert_array_equal(st.p_holm[rows, j], holm(ref.p_value[rows, j]))
            np.testing.assert_array_equal(st.p_fdr[rows, j], fdr_bh(ref.p_value[rows, j]))
    assert not np.array_equal(st.p_holm, ref.corrected("holm"))  # the old family (all rows) differs


def test_cli_footnote_names_the_family(tmp_path, capsys):
    ds = load_dataset("kriegeskorte2008_92images")
    ids = [str(s) for s in ds[ROW].values]
    it, _ = real_rdms()
    rdms = xr.DataArray(model_like(it[0], 3, seed=4), dims=("layer", ROW, COL),
                        coords={"layer": ["l1", "l2", "l3"], ROW: ids, COL: ids})
    xr.Dataset({"rdm": rdms}).to_netcdf(tmp_path / "toy.nc", engine="h5netcdf")
    assert main(["compare", "--model-rdms", str(tmp_path / "toy.nc"), "--area", "IT", "--bootstrap", "0",
                 "--permutations", "20", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "after Holm correction within its family: per area, each model's layers form one family (toy: 3 layers)" \
        in out
    results = xr.open_dataset(tmp_path / "out" / "results.nc", engine="h5netcdf").load()
    assert results.attrs["stats_p_correction_family"].startswith("per area, each model's layers")


@pytest.mark.slow
def test_controls_form_their_own_family_in_compare_models(capsys):
    assert main(["compare", "--model", "pixels", "--model", "luminance_contrast", "--area", "IT", "--bootstrap", "0",
                 "--permutations", "20", "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert "the controls form their own family (pixels, luminance_contrast: 2 tests)" in out
