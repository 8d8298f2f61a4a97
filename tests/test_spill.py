"""Spill folders left by a killed run are swept when the next run spills into the same folder."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from rsa_bridge.rdm_store import RDMStore
from rsa_bridge.spill import OWNER, spill_folder, stale, sweep

pytestmark = pytest.mark.skipif(os.name != "posix", reason="process ids are checked on POSIX only")


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _folder(root, name, owner):
    path = root / name
    path.mkdir()
    (path / "features.bin").write_bytes(b"x" * 1000)
    if owner is not None:
        (path / OWNER).write_text(owner if isinstance(owner, str) else json.dumps(owner))
    return path


def test_only_dead_owners_of_this_host_are_swept(tmp_path):
    host = socket.gethostname()
    dead = _folder(tmp_path, "rsa-bridge-spill-dead", {"pid": _dead_pid(), "host": host})
    dead_rdms = _folder(tmp_path, "rsa-bridge-rdms-dead", {"pid": _dead_pid(), "host": host})
    keep = [
        _folder(tmp_path, "rsa-bridge-spill-live", {"pid": os.getppid(), "host": host}),
        _folder(tmp_path, "rsa-bridge-spill-me", {"pid": os.getpid(), "host": host}),
        _folder(tmp_path, "rsa-bridge-spill-other-host", {"pid": _dead_pid(), "host": host + "-elsewhere"}),
        _folder(tmp_path, "rsa-bridge-spill-no-owner", None),
        _folder(tmp_path, "rsa-bridge-spill-garbled", "{not json"),
        _folder(tmp_path, "someone-else", {"pid": _dead_pid(), "host": host}),
    ]
    # a dead-looking id whose lock is held: a live process in another PID namespace, or a reused id
    locked = _folder(tmp_path, "rsa-bridge-spill-locked", {"pid": _dead_pid(), "host": host})
    keep.append(locked)
    link = tmp_path / "rsa-bridge-spill-link"
    link.symlink_to(dead_rdms, target_is_directory=True)
    import fcntl

    with open(locked / OWNER, "rb") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        held = subprocess.run([sys.executable, "-c", f"from rsa_bridge.spill import stale; from pathlib import Path; "
                               f"print(stale(Path({str(locked)!r})))"], capture_output=True, text=True)
        assert held.stdout.strip() == "False", held.stderr
        assert stale(dead) and not stale(keep[0]) and not stale(link)
        assert sorted(sweep(tmp_path)) == sorted([dead, dead_rdms])
    assert not dead.exists() and not dead_rdms.exists()
    assert all(p.exists() for p in keep)


def test_a_new_spill_folder_has_an_owner_and_sweeps_first(tmp_path):
    dead = _folder(tmp_path, "rsa-bridge-rdms-old", {"pid": _dead_pid(), "host": socket.gethostname()})
    folder = spill_folder("rsa-bridge-spill-", tmp_path)
    owner = json.loads((tmp_path / folder.name / OWNER).read_text())
    assert owner["pid"] == os.getpid() and not dead.exists()
    folder.cleanup()
    with pytest.raises(ValueError):
        spill_folder("elsewhere-", tmp_path)


def test_a_killed_runs_store_is_removed_by_the_next_store(tmp_path):
    """SIGKILL leaves the spill file; the next RDMStore that spills into the same folder removes it."""
    script = textwrap.dedent(f"""
        import os, signal
        import numpy as np
        from rsa_bridge.rdm_store import RDMStore
        store = RDMStore([str(i) for i in range(50)], memory_budget=0, spill_dir={str(tmp_path)!r})
        store.put("layer", np.arange(1225.0))
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == -signal.SIGKILL, done.stderr
    left = [p for p in tmp_path.iterdir() if p.name.startswith("rsa-bridge-rdms-")]
    assert len(left) == 1 and (left[0] / "rdms.h5").exists()
    with RDMStore([str(i) for i in range(50)], memory_budget=0, spill_dir=tmp_path) as store:
        store.put("layer", np.arange(1225.0))
        assert not left[0].exists()
        assert store.spill_path.exists()
    assert list(tmp_path.iterdir()) == []


def test_sigterm_ends_a_command_cleanly_and_removes_its_spill(tmp_path):
    """SIGTERM (a scheduler's time limit) during a command: exit 143 with one line, the spill folder removed
    (Python's default would end the process and leave it)."""
    script = textwrap.dedent(f"""
        import argparse, sys, time
        import numpy as np
        from rsa_bridge.app import cli
        from rsa_bridge.rdm_store import RDMStore

        def hold(args):
            with RDMStore([str(i) for i in range(50)], memory_budget=0, spill_dir={str(tmp_path)!r}) as store:
                store.put("layer", np.arange(1225.0))
                print("ready", flush=True)
                time.sleep(60)

        def build():
            parser = argparse.ArgumentParser()
            sub = parser.add_subparsers(dest="command")
            sub.add_parser("hold").set_defaults(func=hold)
            return parser

        cli.build_parser = build
        sys.exit(cli.main(["hold"]))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    assert [p for p in tmp_path.iterdir() if p.name.startswith("rsa-bridge-rdms-")]
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "rsa-bridge hold: terminated (SIGTERM)" in err
    assert list(tmp_path.iterdir()) == []


def test_activations_that_cannot_fit_the_spill_disk_are_one_line_before_the_forward_pass(tmp_path, monkeypatch):
    """stream_rdms spills the activations beyond its memory budget (43.5 GB for AlexNet at 22,000 stimuli):
    a disk without that room is refused before any batch runs, naming the need and what to change."""
    import collections

    import torch
    from torch import nn

    import rsa_bridge.budget as budget
    from extractors.streaming import stream_rdms
    from rsa_bridge.errors import RSABridgeError
    from rsa_bridge.options import RDMOptions

    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 50), nn.ReLU(), nn.Linear(50, 7)).eval()
    x = torch.randn(40, 3, 2, 2, generator=torch.Generator().manual_seed(0))
    calls = []
    net[1].register_forward_hook(lambda *a: calls.append(1))
    need = 4 * 40 * (50 + 7)  # float32 activations of both layers, all spilled (memory budget 0)
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(budget.shutil, "disk_usage", lambda p: usage(10 ** 9, 0, need - 1))
    options = RDMOptions(memory_budget=0, spill_dir=str(tmp_path), batch_size=8)
    with pytest.raises(RSABridgeError, match=r"activations of 2 layer\(s\) for 40 stimuli.*TMPDIR") as err:
        stream_rdms(net, x, ["1", "3"], options, progress=False)
    assert "\n" not in str(err.value)
    assert len(calls) <= 1  # at most the one-image probe that finds the layers' shapes
    monkeypatch.setattr(budget.shutil, "disk_usage", lambda p: usage(10 ** 9, 0, need))
    rdms = stream_rdms(net, x, ["1", "3"], options, progress=False)
    assert rdms.shape == (2, 40, 40)
