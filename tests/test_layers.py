"""The shape of the code: import layers (import-linter; more in test_import_rules.py), a command line that starts at once."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import rsa_bridge
from rsa_bridge import _siblings
from rsa_bridge.app import cli

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "torchvision", "numpy", "xarray", "pandas", "scipy", "matplotlib")


@pytest.mark.skipif(shutil.which("lint-imports") is None, reason="import-linter is not installed (pip install -e '.[test]')")
def test_import_contracts_hold():
    run = subprocess.run(["lint-imports"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "0 broken" in run.stdout


def test_lint_imports_catches_a_core_module_importing_extractors(tmp_path):
    """The contracts are not vacuous: the same config on a copy with one bad import is broken."""
    if shutil.which("lint-imports") is None:
        pytest.skip("import-linter is not installed")
    for name in ("rsa_bridge", "extractors", "stimuli", "analyses"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("data", "__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with open(tmp_path / "rsa_bridge" / "align.py", "a") as f:
        f.write("\nfrom extractors import extract  # noqa\n")
    run = subprocess.run(["lint-imports"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin:" + str(Path(sys.executable).parent)})
    assert run.returncode != 0
    assert "rsa_bridge.align -> extractors" in run.stdout


def test_top_level_names():
    from rsa_bridge.app.pipeline import compare_model
    from rsa_bridge.layer_scores import compare_layers

    assert rsa_bridge.compare_model is compare_model
    assert rsa_bridge.compare_layers is compare_layers
    assert set(rsa_bridge.__all__) <= set(dir(rsa_bridge))
    with pytest.raises(AttributeError):
        rsa_bridge.no_such_name  # noqa: B018


def _fresh(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [["--help"]] + [[name, "--help"] for name in cli.all_commands()])
def test_help_imports_nothing_heavy(argv):
    code = (f"import sys, json, contextlib, io\nfrom rsa_bridge.app.cli import main\n"
            f"with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    try: main({argv!r})\n    except SystemExit: pass\n"
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    assert _fresh(code) == []


def test_analyses_commands_come_from_entry_points():
    plugins = cli.plugin_commands()
    assert {"depth-mask", "missed-detections", "units", "pretrain"} <= set(plugins)
    assert all(m.startswith("analyses.") for m in plugins.values())
    assert not any(m.startswith("analyses") for m in cli.COMMANDS.values())


def test_a_broken_plugin_is_listed_as_unavailable(monkeypatch, capsys):
    monkeypatch.setattr(cli, "plugin_commands", lambda: {"broken": "no_such_module_anywhere.cli"})
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "broken" in capsys.readouterr().out


def test_shadowing_folder_is_detected(tmp_path, monkeypatch):
    (tmp_path / "analyses").mkdir()
    (tmp_path / "analyses" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "analyses", raising=False)  # as in a fresh notebook kernel
    found = _siblings.shadowed()
    assert set(found) == {"analyses"} and str(tmp_path) in found["analyses"]
    assert "Rename your folder 'analyses'" in _siblings.message("analyses", found["analyses"])


def test_own_siblings_are_not_reported():
    assert _siblings.shadowed() == {}


def test_light_defaults_match_the_registries():
    from analyses.unit_attributes import defaults
    from analyses.unit_attributes.activations import POOLING
    from analyses.unit_attributes.visualness import CLASSIFIERS

    assert tuple(POOLING) == defaults.POOLING_NAMES
    assert tuple(CLASSIFIERS) == defaults.CLASSIFIER_NAMES


def test_dataset_index_is_current():
    """``rsa-bridge datasets`` prints the checked-in index; it must equal what the NetCDF files say
    (refresh with ``python -m rsa_bridge.catalogue``)."""
    from rsa_bridge.catalogue import build_index, read_index

    assert read_index() == build_index()


def test_datasets_command_imports_nothing_heavy(capsys):
    code = ("import sys, json, contextlib, io\nfrom rsa_bridge.app.cli import main\n"
            "buf = io.StringIO()\nwith contextlib.redirect_stdout(buf):\n    main(['datasets'])\n"
            f"print(json.dumps([[m for m in {HEAVY!r} if m in sys.modules], buf.getvalue()]))")
    heavy, printed = _fresh(code)
    assert heavy == []
    assert "cowley2023_v4_210325" in printed and "hIT" in printed


@pytest.mark.parametrize("argv", [["compare", "--bootstrap", "abc"], ["no-such-command"], ["neural", "import"]])
def test_argparse_errors_are_one_line_and_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "error:" in err and "--help" in err
