"""Issue 30: data files that read other files, and data attributes that name paths outside their folder.

Every hostile file is built here with h5py from a clean file of its format, then read through the public API
and the command line: each is refused with one RSABridgeError line (exit 2 on the command line) naming the
object and the file, and the private file's bytes appear in no output. Clean files still load (and the
shapes of the attacks are shown to work on a plain h5py reader, so the refusals are not vacuous).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr

from rsa_bridge.app.cli import main
from rsa_bridge.datasets import dataset_header, load_dataset
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.hdf5_guard import check_self_contained, is_hdf5
from rsa_bridge.model_rdms import read_model_rdms
from rsa_bridge.neural import schema as S
from rsa_bridge.neural.exporters import export_rates
from rsa_bridge.neural.load import read_neural
from rsa_bridge.rdm import COL, ROW
from tests.helpers import make_rdm_dataset, make_stimuli

SECRET = b"PRIVATE-KEY-0123456789-do-not-leak!"
MARKERS = ("PRIVATE-KEY", "do-not-leak", str(list(SECRET[:6]))[1:-1])  # text, and the bytes as numbers
ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------- builders
@pytest.fixture
def secret(tmp_path) -> Path:
    """A private text file elsewhere on disk, and an HDF5 file holding the same bytes (for links)."""
    folder = tmp_path / "private"
    folder.mkdir()
    (folder / "secret.txt").write_bytes(SECRET)
    with h5py.File(folder / "secret.h5", "w") as handle:
        handle["x"] = np.frombuffer(SECRET, dtype=np.uint8)
    return folder / "secret.txt"


def _external_storage(group, name, secret):
    group.create_dataset(name, shape=(len(SECRET),), dtype="u1", external=[(str(secret), 0, len(SECRET))])


def _external_link(group, name, secret):
    group[name] = h5py.ExternalLink(str(secret.with_suffix(".h5")), "/x")


def _virtual(group, name, secret):
    layout = h5py.VirtualLayout(shape=(len(SECRET),), dtype="u1")
    layout[:] = h5py.VirtualSource(str(secret.with_suffix(".h5")), "x", shape=(len(SECRET),))
    group.create_virtual_dataset(name, layout)


ATTACKS = {"external storage": (_external_storage, "HDF5 external storage"),
           "external link": (_external_link, "HDF5 external link"),
           "virtual dataset": (_virtual, "HDF5 virtual dataset")}


def plant(path: Path, attack: str, secret: Path, where: str = "/leak") -> Path:
    """Add a hostile object at ``where`` (intermediate groups made) to an existing HDF5 file."""
    parent, _, name = where.rpartition("/")
    with h5py.File(path, "a") as handle:
        group = handle.require_group(parent) if parent else handle
        ATTACKS[attack][0](group, name, secret)
    return path


def _rates(n_stim=6, n_rep=3, n_neur=4, seed=0):
    rng = np.random.default_rng(seed)
    ids = [f"img{k:02d}" for k in range(n_stim)]
    values = rng.normal(10, 2, (n_stim * n_rep, n_neur))
    return S.make_rates(values, stimulus_ids=ids * n_rep, repetitions=np.repeat(np.arange(n_rep), n_stim),
                        neuroid_ids=[f"n{k}" for k in range(n_neur)], region="V4", units="spikes/s")


def _model_rdms(ids, path: Path) -> Path:
    rng = np.random.default_rng(3)
    rdms = []
    for _ in range(2):
        x = rng.normal(size=(len(ids), 5))
        r = 1 - np.corrcoef(x)
        np.fill_diagonal(r, 0.0)
        rdms.append((r + r.T) / 2)
    xr.Dataset({"rdm": (("layer", ROW, COL), np.stack(rdms))},
               coords={"layer": ["l0", "l1"], ROW: ids, COL: ids}).to_netcdf(path, engine="h5netcdf")
    return path


def _leaks(*texts) -> bool:
    return any(m in str(t) for t in texts for m in MARKERS)


def _one_line_refusal(err: str, path: Path, attack: str) -> None:
    assert "\n" not in err.strip(), err
    assert repr(str(path)) in err and ATTACKS[attack][1] in err and "self-contained" in err, err
    assert not _leaks(err)


# ------------------------------------------------------------------------------- the attacks are real
def test_the_planted_objects_do_read_the_private_file(tmp_path, secret):
    """Without the guard h5py hands out the other file's bytes: the fixtures are real attacks."""
    for attack in ATTACKS:
        path = plant(tmp_path / f"{attack}.h5", attack, secret)
        with h5py.File(path, "r") as handle:
            assert handle["leak"][()].tobytes() == SECRET
        with pytest.raises(RSABridgeError) as info:
            check_self_contained(path)
        _one_line_refusal(str(info.value), path, attack)
        assert "'/leak'" in str(info.value)


def test_deep_and_referenced_objects_are_found_and_clean_references_pass(tmp_path, secret):
    path = plant(tmp_path / "deep.h5", "external storage", secret, where="/a/b/c/d/leak")
    with pytest.raises(RSABridgeError, match=r"dataset '/a/b/c/d/leak' stores its data in another file"):
        check_self_contained(path)
    # references (MATLAB cell arrays, NetCDF dimension scales, NWB tables) and soft-link cycles are walked safely
    clean = tmp_path / "refs.h5"
    with h5py.File(clean, "w") as handle:
        target = handle.create_dataset("#refs#/a", data=np.arange(3.0))
        refs = handle.create_dataset("cell", shape=(2,), dtype=h5py.ref_dtype)
        refs[0] = target.ref
        handle["cell"].attrs.create("self", [refs.ref], dtype=h5py.ref_dtype)
        kind = np.dtype([("n", "i4"), ("r", h5py.ref_dtype)])  # NWB-style compound with a reference
        handle.create_dataset("table", data=np.array([(1, target.ref), (2, refs.ref)], dtype=kind))
        handle["table"].attrs.create("region", target.regionref[1:], dtype=h5py.regionref_dtype)
        handle["loop"] = h5py.SoftLink("/loop")
        handle["alias"] = h5py.SoftLink("/#refs#/a")
    check_self_contained(clean)
    with h5py.File(clean, "a") as handle:  # a referenced dataset that leaks is refused, whatever its name
        _external_storage(handle["#refs#"], "b", secret)
        handle["cell"][1] = handle["#refs#/b"].ref
    with pytest.raises(RSABridgeError, match="'/#refs#/b' stores its data in another file"):
        check_self_contained(clean)


def test_the_walk_is_bounded(tmp_path, monkeypatch):
    path = tmp_path / "many.h5"
    with h5py.File(path, "w") as handle:
        for k in range(30):
            handle.create_group(f"g{k}")
    check_self_contained(path)
    monkeypatch.setenv("RSA_BRIDGE_MAX_HDF5_OBJECTS", "20")
    with pytest.raises(RSABridgeError, match="more than 20 HDF5 objects.*RSA_BRIDGE_MAX_HDF5_OBJECTS"):
        check_self_contained(path)
    monkeypatch.setenv("RSA_BRIDGE_MAX_HDF5_OBJECTS", "lots")
    with pytest.raises(RSABridgeError, match="must be a whole number"):
        check_self_contained(path)


def test_files_that_are_not_hdf5_are_not_opened(tmp_path):
    rates = _rates()
    for fmt, name in (("csv", "r.csv"), ("numpy", "r.npz")):
        path = export_rates(rates, tmp_path / name, fmt)
        assert not is_hdf5(path)
        check_self_contained(path)
    xr.Dataset({"a": ("x", np.arange(3.0))}).to_netcdf(tmp_path / "v3.nc", engine="scipy")  # NetCDF-3
    assert not is_hdf5(tmp_path / "v3.nc")
    check_self_contained(tmp_path / "v3.nc")
    mat73 = export_rates(rates, tmp_path / "r.mat", "mat")  # MATLAB v5 by default: not HDF5
    assert not is_hdf5(mat73)
    from rsa_bridge.neural.exporters import write_mat

    v73 = write_mat(rates, tmp_path / "r73.mat", version="7.3")  # the HDF5 superblock sits after a 512-byte user block
    assert is_hdf5(v73) and v73.read_bytes()[:6] == b"MATLAB"


# --------------------------------------------------------------- every HDF5-based reader, API and CLI
def _rates_netcdf(tmp_path):
    return export_rates(_rates(), tmp_path / "rates.nc", "netcdf"), {}


def _brainscore(tmp_path):
    return export_rates(_rates(), tmp_path / "assembly.nc", "brainscore"), {"format": "brainscore"}


def _mat73(tmp_path):
    from rsa_bridge.neural.exporters import write_mat

    return write_mat(_rates(), tmp_path / "rates.mat", version="7.3"), {"stimulus_ids": "img{i:02d}", "region": "V4"}


def _rsatoolbox(tmp_path):
    return export_rates(_rates(), tmp_path / "rates.h5", "rsatoolbox"), {"format": "rsatoolbox"}


def _rsatoolbox_rdms(tmp_path):
    from rsatoolbox.rdm import RDMs

    ids = [f"img{k:02d}" for k in range(5)]
    values = np.random.default_rng(0).uniform(0.1, 1, (2, 10))
    RDMs(values, pattern_descriptors={"stimulus_id": ids}).save(str(tmp_path / "rdms.h5"), file_type="hdf5")
    return tmp_path / "rdms.h5", {"format": "rsatoolbox-rdms", "region": "IT"}


def _rdm_netcdf(tmp_path):
    make_rdm_dataset(tmp_path / "ds.nc", [f"img{k:02d}" for k in range(6)])
    return tmp_path / "ds.nc", {}


def _algonauts(tmp_path):
    rng = np.random.default_rng(0)
    with h5py.File(tmp_path / "target_fmri.mat", "w", userblock_size=512) as handle:
        for area in ("EVC", "IT"):
            x = rng.uniform(0.1, 1, (3, 5, 5))
            x = (x + np.swapaxes(x, 1, 2)) / 2
            x[:, range(5), range(5)] = 0
            handle[f"{area}_RDMs"] = np.transpose(x)
    return tmp_path / "target_fmri.mat", {"format": "algonauts2019"}


def _henaff(tmp_path):
    with h5py.File(tmp_path / "m1_p1_image_sequences.mat", "w", userblock_size=512) as handle:
        handle["naturalStruct/placeholder"] = np.zeros(2)
    return tmp_path / "m1_p1_image_sequences.mat", {"format": "henaff2021-v1"}


def _nwb(tmp_path):
    pytest.importorskip("pynwb")
    from tests.test_nwb import _write

    return _write(tmp_path / "session.nwb"), {"start": 50, "stop": 250}


FORMATS = {"rates netcdf": _rates_netcdf, "brainscore netcdf": _brainscore, "mat v7.3": _mat73,
           "rsatoolbox hdf5": _rsatoolbox, "rsatoolbox rdms hdf5": _rsatoolbox_rdms, "rdm netcdf": _rdm_netcdf,
           "algonauts .mat": _algonauts, "henaff .mat": _henaff, "nwb": _nwb}
CLEAN_READS = ("rates netcdf", "brainscore netcdf", "mat v7.3", "rsatoolbox hdf5", "rsatoolbox rdms hdf5",
               "rdm netcdf", "algonauts .mat", "nwb")


@pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::DeprecationWarning", "ignore::UserWarning")
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_reader_refuses_every_attack(tmp_path, secret, fmt):
    path, options = FORMATS[fmt](tmp_path)
    if fmt in CLEAN_READS:
        read_neural(path, **options)  # the clean file loads
    hostile = tmp_path / ("hostile_" + path.name)
    for attack in ATTACKS:
        hostile.write_bytes(path.read_bytes())
        plant(hostile, attack, secret, where="/zz/leak")
        with pytest.raises(RSABridgeError) as info:
            read_neural(hostile, **options)
        _one_line_refusal(str(info.value), hostile, attack)


_CLI_NAMES = {"start": "window-start", "stop": "window-stop"}


def _cli_options(options: dict) -> list[str]:
    return [item for key, value in options.items()
            for item in (f"--{_CLI_NAMES.get(key, key).replace('_', '-')}", str(value))]


@pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::DeprecationWarning", "ignore::UserWarning")
@pytest.mark.parametrize("fmt", ["rates netcdf", "mat v7.3", "rsatoolbox hdf5", "algonauts .mat", "nwb"])
def test_neural_import_on_the_command_line_writes_nothing(tmp_path, secret, capsys, fmt):
    path, options = FORMATS[fmt](tmp_path)
    for attack in ATTACKS:
        plant(path, attack, secret, where=f"/{attack.replace(' ', '_')}")
        out = tmp_path / f"out_{attack.replace(' ', '_')}.nc"
        code = main(["neural", "import", str(path), *_cli_options(options), "--out", str(out)])
        captured = capsys.readouterr()
        assert code == 2
        _one_line_refusal(captured.err, path, attack)
        assert not out.exists() and not _leaks(captured.out)
        with h5py.File(path, "a") as handle:  # the next attack alone
            del handle[f"/{attack.replace(' ', '_')}"]


def test_the_reported_attack_mat_variable_in_another_file(tmp_path, secret, monkeypatch):
    """``rsa-bridge neural import x.mat --out o.csv``: the .mat's only variable keeps its data in a private file.
    Without the guard the private bytes become the imported rates; with it, run as a separate process as a user
    would, the import is refused and nothing is written."""
    path = tmp_path / "x.mat"
    with h5py.File(path, "w", userblock_size=512) as handle:
        handle.create_dataset("rates", shape=(len(SECRET), 1), dtype="u1",
                              external=[(str(secret), 0, len(SECRET))])
        handle["rates"].attrs["MATLAB_class"] = np.bytes_("uint8")
    options = {"region": "V4", "layout": "neuroid,stimulus", "stimulus_ids": "s{i}"}
    with monkeypatch.context() as patch:  # the attack, with the guard switched off
        patch.setattr("rsa_bridge.io.check_self_contained", lambda path: None)
        leaked = read_neural(path, **options)
    assert np.asarray(leaked.data.values, dtype=np.uint8).ravel().tobytes() == SECRET
    out = tmp_path / "o.csv"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "rsa_bridge", "neural", "import", str(path), "--region", "V4",
                           "--layout", "neuroid,stimulus", "--stimulus-ids", "s{i}", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "dataset '/rates' stores its data in another file" in proc.stderr
    assert not out.exists() and not _leaks(proc.stdout, proc.stderr)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("o")] == []


# ------------------------------------------------------------------------- compare and the RDM readers
@pytest.fixture
def toy(tmp_path):
    ids = make_stimuli(tmp_path / "data" / "stimuli", n=6)
    make_rdm_dataset(tmp_path / "data" / "ds.nc", ids)
    _model_rdms(ids, tmp_path / "model_rdms.nc")
    return tmp_path


@pytest.mark.parametrize("attack", ATTACKS)
def test_rdm_datasets_and_model_rdms_are_refused_by_every_reader(toy, secret, attack):
    dataset = plant(toy / "data" / "ds.nc", attack, secret)
    for read in (load_dataset, dataset_header):
        with pytest.raises(RSABridgeError) as info:
            read(dataset)
        _one_line_refusal(str(info.value), dataset, attack)
    model = plant(toy / "model_rdms.nc", attack, secret)
    with pytest.raises(RSABridgeError) as info:
        read_model_rdms(model)
    _one_line_refusal(str(info.value), model, attack)
    from rsa_bridge.rdm_netcdf import read_model_rdm_store

    with pytest.raises(RSABridgeError) as info:
        read_model_rdm_store(model, None)
    _one_line_refusal(str(info.value), model, attack)


def test_compare_refuses_a_hostile_dataset_and_hostile_model_rdms(toy, secret, capsys):
    def compare(dataset, model, out):
        code = main(["compare", "--model-rdms", str(model), "--dataset", str(dataset), "--bootstrap", "0",
                     "--quiet", "--out", str(out)])
        captured = capsys.readouterr()
        return code, captured

    dataset, model = toy / "data" / "ds.nc", toy / "model_rdms.nc"
    clean_dataset, clean_model = dataset.read_bytes(), model.read_bytes()
    code, captured = compare(dataset, model, toy / "ok")
    assert code == 0, captured.err
    for attack in ATTACKS:
        for victim in (dataset, model):
            dataset.write_bytes(clean_dataset)
            model.write_bytes(clean_model)
            plant(victim, attack, secret)
            out = toy / f"out_{attack.replace(' ', '_')}_{victim.stem}"
            code, captured = compare(dataset, model, out)
            assert code == 2
            _one_line_refusal(captured.err, victim, attack)
            assert not out.exists() and not _leaks(captured.out)


# --------------------------------------------------------------------------- paths named by data attributes
def _rewrite(path: Path, change) -> Path:
    """``path`` rewritten after ``change(dataset)`` (read fully and closed first)."""
    with xr.open_dataset(path, engine="h5netcdf") as handle:
        ds = handle.load()
    change(ds)
    ds.to_netcdf(path.with_suffix(".tmp"), engine="h5netcdf")
    os.replace(path.with_suffix(".tmp"), path)
    return path


def _dataset_with(toy: Path, **attrs) -> Path:
    return _rewrite(toy / "data" / "ds.nc", lambda ds: ds.attrs.update(attrs))


@pytest.fixture
def outside(tmp_path) -> Path:
    """A real stimulus folder outside the dataset's folder (what a hostile stimulus_set points at)."""
    make_stimuli(tmp_path / "elsewhere", n=6)
    return tmp_path / "elsewhere"


@pytest.mark.parametrize("kind", ["absolute", "dotdot", "deep dotdot", "symlink", "symlink inside a folder"])
def test_stimulus_set_outside_the_dataset_folder_is_refused(toy, outside, capsys, kind):
    from rsa_bridge.app.pipeline import stimuli_for

    data = toy / "data"
    if kind == "symlink":
        (data / "imgs").symlink_to(outside, target_is_directory=True)
        name = "imgs"
    elif kind == "symlink inside a folder":
        (data / "sub").mkdir()
        (data / "sub" / "link").symlink_to(outside, target_is_directory=True)
        name = "sub/link"
    else:
        name = {"absolute": str(outside), "dotdot": "../elsewhere",
                "deep dotdot": "stimuli/../../../" + str(outside.relative_to(outside.anchor))}[kind]
    path = _dataset_with(toy, stimulus_set=name)
    dataset = load_dataset(path)  # the RDMs load; the folder is not followed
    assert "stimuli_path" not in dataset.attrs
    with pytest.raises(RSABridgeError) as info:  # refused where the images are needed and none are named
        stimuli_for(dataset, None)
    message = str(info.value)
    assert "\n" not in message and "stimulus_set" in message and repr(name) in message
    assert "outside" in message or "leads out" in message
    assert len(stimuli_for(dataset, toy / "data" / "stimuli")) == 6  # --stimuli DIR: the user names the images
    code = main(["compare", "--model", "alexnet", "--weights", "none", "--dataset", str(path), "--bootstrap", "0",
                 "--quiet", "--out", str(toy / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "stimulus_set" in err and not (toy / "out").exists()


def test_stimulus_set_inside_the_folder_and_inner_symlinks_still_work(toy, capsys):
    data = toy / "data"
    assert load_dataset(data / "ds.nc").attrs["stimuli_path"] == str((data / "stimuli").resolve())
    (data / "alias").symlink_to(data / "stimuli", target_is_directory=True)  # a link that stays inside
    path = _dataset_with(toy, stimulus_set="./alias/")
    assert load_dataset(path).attrs["stimuli_path"] == str((data / "stimuli").resolve())
    path = _dataset_with(toy, stimulus_set="stimuli/sub/..")  # '..' that stays inside is fine
    assert load_dataset(path).attrs["stimuli_path"] == str((data / "stimuli").resolve())


def test_a_stimuli_path_written_into_the_file_is_ignored(toy, outside):
    path = _dataset_with(toy, stimuli_path=str(outside))
    assert load_dataset(path).attrs["stimuli_path"] == str((toy / "data" / "stimuli").resolve())
    _rewrite(path, lambda ds: ds.attrs.pop("stimulus_set"))
    assert "stimuli_path" not in load_dataset(path).attrs


def test_repeat_rates_outside_the_dataset_folder_is_refused(tmp_path):
    from rsa_bridge.neural.ceiling import single_rdm_ceiling
    from rsa_bridge.neural.rdms import rates_to_rdm_dataset

    rates = _rates(n_rep=4)
    for folder in ("private", "data"):
        (tmp_path / folder).mkdir()
        S.save_rates(rates, tmp_path / folder / "rates.nc")
    ds = rates_to_rdm_dataset(rates, "correlation", name="toy")
    for name, ok in (("rates.nc", True), (str(tmp_path / "private" / "rates.nc"), False),
                     ("../private/rates.nc", False)):
        ds["V4"].attrs["repeat_rates"] = name
        ds.to_netcdf(tmp_path / "data" / f"ds{len(name)}.nc", engine="h5netcdf")
        loaded = load_dataset(tmp_path / "data" / f"ds{len(name)}.nc")
        if ok:
            ceiling, note = single_rdm_ceiling(loaded, "V4", "spearman", n_splits=4)
            assert ceiling is not None and "split-half" in note
        else:
            with pytest.raises(RSABridgeError, match="repeat_rates.*outside the data file's folder"):
                single_rdm_ceiling(loaded, "V4", "spearman", n_splits=4)


# ------------------------------------------------------------------------------- attributes of the wrong type
@pytest.mark.parametrize("key,value", [("stimulus_set", 5), ("stimulus_set", np.arange(3)), ("stimulus_set", 2.5),
                                       ("stimulus_set", np.void(b"../x")), ("stimulus_set", [b"stimuli", b"x"]),
                                       ("name", 7), ("name", np.array([1.0, 2.0]))])
def test_wrong_type_dataset_attributes_are_one_line(toy, capsys, key, value):
    path = toy / "data" / "ds.nc"
    with h5py.File(path, "a") as handle:  # opaque bytes and string lists too (xarray would not write them)
        handle.attrs[key] = value
    for read in (load_dataset, dataset_header):
        with pytest.raises(RSABridgeError) as info:
            read(path)
        assert "\n" not in str(info.value) and f"attribute {key!r} must be text" in str(info.value)
    code = main(["compare", "--model-rdms", str(toy / "model_rdms.nc"), "--dataset", str(path), "--bootstrap", "0",
                 "--quiet", "--out", str(toy / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and f"attribute {key!r} must be text" in err


def test_wrong_type_area_attributes_are_one_line(toy):
    path = _rewrite(toy / "data" / "ds.nc", lambda ds: ds["IT"].attrs.update(metric=np.array([1, 2])))
    with pytest.raises(RSABridgeError, match=r"area 'IT': attribute 'metric' must be text"):
        load_dataset(path)


@pytest.mark.parametrize("key,value", [(S.KIND_ATTR, np.array([1, 2])), ("units", 3),
                                       ("rsa_bridge_multiindex_presentation", 4),
                                       ("rsa_bridge_multiindex_presentation", "stimulus_id,no_such_level"),
                                       ("missing", np.array([0.5, 1.5]))])
def test_wrong_type_rate_attributes_are_one_line(tmp_path, capsys, key, value):
    path = export_rates(_rates(), tmp_path / "rates.nc", "netcdf")
    with h5py.File(path, "a") as handle:
        handle.attrs[key] = value
    with pytest.raises(RSABridgeError) as info:
        read_neural(path)
    assert "\n" not in str(info.value) and repr(key) in str(info.value)
    assert main(["neural", "info", str(path)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_a_file_found_clean_is_walked_again_once_it_changes(tmp_path):
    """Clean files are remembered by (device, inode, size, mtime, ctime); an edit in place is walked again."""
    path = tmp_path / "edited.h5"
    with h5py.File(path, "w") as handle:
        handle["x"] = np.arange(3.0)
    check_self_contained(path)
    check_self_contained(path)  # remembered: no second walk needed, still no error
    with h5py.File(path, "a") as handle:
        handle["leak"] = h5py.ExternalLink(str(tmp_path / "other.h5"), "/data")
    with pytest.raises(RSABridgeError, match="another file|external"):
        check_self_contained(path)
