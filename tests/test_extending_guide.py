"""The extending guide is executed (issue 24 item 6): its RDM metric, model source and analysis examples run here
on scratch modules (registries and entry points monkeypatched; no network, no real weights).

The comparison-method and neural-data-format sections run in tests/test_methods_extending.py and
tests/test_neural_formats.py. Each block is read from docs/guide/extending.md by its marker comment, so the test
fails when the guide's code stops working.
"""
from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform
from scipy.stats import pearsonr, spearmanr

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "guide" / "extending.md"


def guide_block(marker: str) -> str:
    """The python block after ``<!-- extending:MARKER -->`` in the guide."""
    match = re.search(rf"<!-- extending:{marker} -->\n```python\n(.*?)```", GUIDE.read_text(), re.S)
    assert match, f"the extending guide lost its {marker} example"
    return match.group(1)


def test_every_section_has_an_executed_example():
    text = GUIDE.read_text()
    sections = re.findall(r"^## (.+)$", text, re.M)
    assert sections == ["Names: one registry helper", "An RDM metric", "A comparison method", "A model source",
                        "A neural-data format", "An analysis (a command of its own)"]
    for marker in ("metric", "model-source", "neural-format", "analysis"):
        assert f"<!-- extending:{marker} -->" in text
    # the comparison method's blocks are executed by tests/test_methods_extending.py (by their file comment)
    assert "# mylab_methods.py" in text


# --- an RDM metric -------------------------------------------------------------------------------------------

def _with_metric(monkeypatch, record):
    """Add ``record`` as if it were one more entry of definitions._METRICS (the registries built from it)."""
    from rsa_bridge import definitions, gram, rdm
    from rsa_bridge.registry import Registry

    metrics = Registry("RDM metric", {**{n: definitions.METRICS[n] for n in definitions.METRICS},
                                      record.name: record})
    for module in (definitions, gram, rdm):
        monkeypatch.setattr(module, "METRICS", metrics)
    monkeypatch.setattr(gram, "GRAM_METRICS", {n: gram.GramPlan(m.centre, gram._finisher(m)) for n, m in metrics.items()})


def test_the_guides_metric_record_is_the_registrys():
    from rsa_bridge.definitions import METRICS, MetricDefinition

    record = eval(guide_block("metric"), {"MetricDefinition": MetricDefinition})  # the block is one expression
    assert record == METRICS["correlation"]


def test_a_scratch_metric_is_one_record(monkeypatch):
    """A column-centred cosine, added as the guide says, runs through compute_rdm and equals scipy."""
    from rsa_bridge.definitions import MetricDefinition
    from rsa_bridge.errors import RSABridgeError
    from rsa_bridge.rdm import compute_rdm

    record = MetricDefinition("column_cosine", "1 - cosine of x_i, x_j after centring each unit", "column",
                              "one_minus_cosine", "zero", {})
    _with_metric(monkeypatch, record)
    x = np.random.default_rng(0).normal(size=(9, 6)) + 2.0
    got = compute_rdm(x, "column_cosine")
    np.testing.assert_allclose(got.values, squareform(pdist(x - x.mean(axis=0), "cosine")), atol=1e-12)
    with pytest.raises(RSABridgeError, match="column_cosine"):
        compute_rdm(x, "column_cosin")  # an unknown name names the new one among the choices


# --- a model source ----------------------------------------------------------------------------------------

@pytest.fixture
def mylab(tmp_path, monkeypatch):
    """The guide's source as mylab_models/rsa_source.py, found through the rsa_bridge.model_sources entry point."""
    pytest.importorskip("torch")
    from extractors.sources import registry

    package = tmp_path / "mylab_models"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "rsa_source.py").write_text(guide_block("model-source"))
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m.startswith("mylab_models")]:
        monkeypatch.delitem(sys.modules, name)
    entry = metadata.EntryPoint("mylab", "mylab_models.rsa_source:SOURCE", registry.ENTRY_POINT_GROUP)

    class Points:
        @staticmethod
        def entry_points(group=None):
            return [entry] if group == registry.ENTRY_POINT_GROUP else metadata.entry_points(group=group)

    monkeypatch.setattr(registry, "metadata", Points)
    monkeypatch.setattr(registry, "SOURCES", dict(registry.SOURCES))
    return tmp_path


def test_the_guides_model_source_loads_through_its_entry_point(mylab):
    import torch

    from extractors import load_model
    from rsa_bridge.errors import RSABridgeError

    a = load_model("mylab:tiny", "none", seed=3)
    b = load_model("mylab:tiny", "none", seed=3)
    c = load_model("mylab:tiny", "none", seed=4)
    info = a.rsa_bridge_info
    assert (info.name, info.weights, info.source, info.seed) == ("mylab:tiny", "none", "mylab", 3)
    for (k, va), vb, vc in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values()):
        assert torch.equal(va, vb), k
    assert not all(torch.equal(va, vc) for va, vc in zip(a.state_dict().values(), c.state_dict().values()))
    path = mylab / "tiny.pt"
    torch.save(c.state_dict(), path)
    loaded = load_model("mylab:tiny", str(path), seed=0)
    import hashlib

    assert loaded.rsa_bridge_info.weights_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert all(torch.equal(x, y) for x, y in zip(loaded.state_dict().values(), c.state_dict().values()))
    with pytest.raises(RSABridgeError, match="ships no default weights"):
        load_model("mylab:tiny", "default")
    with pytest.raises(RSABridgeError, match="mylab has no model 'huge'"):
        load_model("mylab:huge", "none")


def test_the_guides_model_source_rdms_equal_plain_hooks(mylab):
    import torch

    from extractors import load_model
    from extractors.extract import extract
    from rsa_bridge.rdm import compute_rdm

    model = load_model("mylab:tiny", "none", seed=1)
    images = torch.from_numpy(np.random.default_rng(2).normal(size=(7, 3, 12, 12))).float()
    got = extract(model, images, ["0", "4"], batch_size=3, progress=False)
    seen = {}
    hooks = [dict(model.named_modules())[name].register_forward_hook(
        lambda _m, _i, out, name=name: seen.__setitem__(name, out.detach().reshape(out.shape[0], -1).numpy()))
        for name in ("0", "4")]
    with torch.no_grad():
        model(images)
    for h in hooks:
        h.remove()
    for name in ("0", "4"):
        layer = got[name] if not hasattr(got, "layers") else got.layers[name]
        ours = compute_rdm(np.asarray(layer).reshape(7, -1)).values
        np.testing.assert_allclose(ours, squareform(pdist(seen[name].astype(np.float64), "correlation")), atol=1e-6)


# --- an analysis (a command of its own) --------------------------------------------------------------------

@pytest.fixture
def my_analysis(tmp_path, monkeypatch):
    """The guide's cli module as my_analysis/cli.py, registered in the rsa_bridge.commands entry-point group."""
    import importlib.metadata as md

    package = tmp_path / "my_analysis"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "cli.py").write_text(guide_block("analysis"))
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m.startswith("my_analysis")]:
        monkeypatch.delitem(sys.modules, name)
    from rsa_bridge.app import cli

    entry = md.EntryPoint("my-analysis", "my_analysis.cli", cli.ENTRY_POINT_GROUP)
    real = md.entry_points
    monkeypatch.setattr(md, "entry_points",
                        lambda **kw: [entry] if kw.get("group") == cli.ENTRY_POINT_GROUP else real(**kw))
    return cli


@pytest.mark.parametrize("method, reference", [("spearman", spearmanr), ("pearson", pearsonr)])
def test_the_guides_analysis_runs_as_a_sub_command(my_analysis, capsys, method, reference):
    assert my_analysis.main(["my-analysis", "--method", method, "--seed", "5"]) == 0
    printed = capsys.readouterr().out
    value = float(printed.strip().rsplit(" ", 1)[1])
    rng = np.random.default_rng(5)
    a, b = (pdist(rng.normal(size=(12, 6)), "correlation") for _ in range(2))
    assert printed.startswith(f"{method} of two random RDMs (seed 5): ")
    assert value == pytest.approx(reference(a, b)[0], abs=1e-6)


def test_the_guides_analysis_refuses_an_unknown_method_in_one_line(my_analysis, capsys):
    # argparse_type passes an unknown name on: the library refuses it with the registry's one line, exit code 2
    assert my_analysis.main(["my-analysis", "--method", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0
    assert err.startswith("rsa-bridge my-analysis: error: unknown comparison method 'nope'; choose one of spearman")
    try:
        code = my_analysis.main(["--help"])
    except SystemExit as done:  # argparse's --help exits
        code = done.code
    assert code in (0, None) and "my-analysis" in capsys.readouterr().out
