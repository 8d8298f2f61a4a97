"""scripts/count_parameters.py: the library's parameter lists (issue 24). This test is the CI check.

No library function takes more than 10 parameters (the rarer knobs live in option objects: BootstrapOptions,
PermutationOptions, PredictivityOptions, RatesOptions, RenderSettings, ...); the test fails when one does.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "count_parameters.py"
#: functions with more than 10 parameters allowed (was 17, then 12; issue 24 brought it to 0)
REMAINING = 0


def _run(*args: str, root: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--root", str(root), *args], capture_output=True, text=True,
                          timeout=300)


def test_the_counter_counts_by_hand(tmp_path):
    pkg = tmp_path / "rsa_bridge"
    pkg.mkdir()
    (pkg / "m.py").write_text(textwrap.dedent('''
        def eleven(a, b, c, d, e, f, g, h, i, j, *args, k, **kw):
            pass

        def ten(a, b, c, d, e, f, g, h, /, i, *, j):
            pass

        class C:
            def method(self, a, b, c, d, e, f, g, h, i, j):
                """ten without self"""

            @staticmethod
            def static(self, a, b, c, d, e, f, g, h, i, j):
                pass

            @classmethod
            def cm(cls, a):
                def inner(x, y, z, w, v, u, t, s, r, q, p):
                    pass
    ''') + "\n".join(f"    x{k} = {k}" for k in range(51)).join(["def long():\n", "\n"]))
    done = _run("--json", root=tmp_path)
    report = json.loads(done.stdout)
    names = sorted((f["name"], f["parameters"]) for f in report["offenders"])
    assert names == [("C.cm.inner", 11), ("C.static", 11), ("eleven", 11)]
    assert report["at_least_10_parameters"] == 5 and report["more_than_10_parameters"] == 3
    assert report["longer_than_50_lines"] == 1 and done.returncode == 1
    (pkg / "m.py").write_text("def ok(a, b):\n    pass\n")
    assert _run(root=tmp_path).returncode == 0


def test_no_library_function_takes_more_than_10_parameters():
    done = _run("--json")
    report = json.loads(done.stdout)
    assert report["more_than_10_parameters"] <= REMAINING, "functions above 10 parameters:\n" + "\n".join(
        f"{f['path']}:{f['line']}: {f['name']} ({f['parameters']})" for f in report["offenders"])
    assert report["offenders"] == [] and done.returncode == 0, done.stdout + done.stderr
