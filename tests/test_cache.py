"""The model-RDM cache: a hit equals a fresh computation; every changed input is a miss; writes are atomic."""
from __future__ import annotations

import functools
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from PIL import Image
from torch import nn
from torchvision import transforms as T

import rsa_bridge.app.cache as cache_mod
import rsa_bridge.io as rio
from rsa_bridge.app.cache import RDMCache, cached_network_rdms, default_dir, file_digests
from rsa_bridge.app.pipeline import network_rdms
from rsa_bridge.options import RDMOptions
from stimuli import load_stimulus_set
from tests.helpers import make_stimuli

LAYERS = ["0", "2"]


def tiny_net(seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.Flatten())
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return net.eval()


def resize(size: int = 16):
    return T.Compose([T.Resize(size), T.ToTensor()])


@pytest.fixture
def stim(tmp_path):
    make_stimuli(tmp_path / "stimuli", n=8, size=24)
    return load_stimulus_set(tmp_path / "stimuli")


class Counting:
    """network_rdms with a call counter."""

    def __init__(self):
        self.calls = 0

        @functools.wraps(network_rdms)
        def compute(*args, **kwargs):
            self.calls += 1
            return network_rdms(*args, **kwargs)

        self.compute = compute


def run(counter, net, stim, store, layers=LAYERS, metric="correlation", transform=None, **options):
    return cached_network_rdms(counter.compute, net, stim, layers, RDMOptions(metric=metric, batch_size=4, **options),
                               progress=False, transform=transform or resize(), cache=store)


def fresh_rdms(net, stim, layers=LAYERS, metric="correlation", transform=None, **options):
    return network_rdms(net, stim, layers, RDMOptions(metric=metric, batch_size=4, **options), progress=False,
                        transform=transform or resize())


def test_hit_is_identical_to_a_fresh_computation_and_says_so(stim, tmp_path, capsys):
    counter, store, net = Counting(), RDMCache(tmp_path / "c"), tiny_net()
    first = run(counter, net, stim, store)
    assert counter.calls == 1 and len(store.entries()) == 1
    capsys.readouterr()
    second = run(counter, net, stim, store)
    assert counter.calls == 1, "the second run must not compute"
    assert "read from" in capsys.readouterr().err
    fresh = fresh_rdms(net, stim)
    xr.testing.assert_identical(second, fresh)
    xr.testing.assert_identical(first, fresh)
    np.testing.assert_array_equal(second.values, fresh.values)  # bit for bit, float64
    entry = store.entries()[0]
    assert entry.layers == "0,2" and entry.n_stimuli == 8 and entry.stimulus_set == "stimuli"


@pytest.mark.parametrize("change", ["resize", "normalize", "layers", "metric", "weights", "architecture", "precision",
                                    "reduce"])
def test_every_changed_input_is_a_miss(change, stim, tmp_path):
    counter, store = Counting(), RDMCache(tmp_path / "c")
    run(counter, tiny_net(), stim, store)
    net, kwargs = tiny_net(), {}
    if change == "resize":  # Brain-Score's cache ignored the image size
        kwargs["transform"] = resize(18)
    elif change == "normalize":
        kwargs["transform"] = T.Compose([T.Resize(16), T.ToTensor(), T.Normalize([0.5] * 3, [0.25] * 3)])
    elif change == "layers":
        kwargs["layers"] = ["0"]
    elif change == "metric":
        kwargs["metric"] = "euclidean"
    elif change == "weights":  # one parameter nudged in place: same class, same "name"
        with torch.no_grad():
            net[2].bias[0] += 1e-3
    elif change == "architecture":
        net[1].inplace = True
    options = {"precision": {"precision": "float32"}, "reduce": {"reduce_units": 20, "reduce_seed": 1}}.get(change, {})
    changed = run(counter, net, stim, store, **kwargs, **options)
    assert counter.calls == 2 and len(store.entries()) == 2
    expected = fresh_rdms(net, stim, **kwargs, **options)
    xr.testing.assert_identical(changed, expected)


def test_a_changed_image_byte_is_a_miss_even_with_the_old_size_and_mtime(stim, tmp_path):
    counter, store, net = Counting(), RDMCache(tmp_path / "c"), tiny_net()
    run(counter, net, stim, store)
    victim = stim.paths[3]
    before = os.stat(victim)
    pixels = np.array(Image.open(victim))
    pixels[0, 0, 0] ^= 1
    Image.fromarray(pixels).save(victim)
    os.utime(victim, ns=(before.st_atime_ns, before.st_mtime_ns))  # as `cp -p` or rsync -t would leave it
    assert os.stat(victim).st_mtime_ns == before.st_mtime_ns
    again = run(counter, net, stim, store)
    assert counter.calls == 2
    xr.testing.assert_identical(again, fresh_rdms(net, stim))


def test_digest_memo_skips_rehashing_but_never_serves_a_stale_digest(stim, tmp_path, monkeypatch):
    hashed = []
    real = cache_mod.file_sha256
    monkeypatch.setattr(cache_mod, "file_sha256", lambda p: hashed.append(Path(p).name) or real(p))
    monkeypatch.setattr(cache_mod, "RACY_NS", 0)  # the files were written just now
    monkeypatch.setattr(cache_mod, "_DIGESTS", {})
    memo = tmp_path / "memo"
    first = file_digests(stim.paths, memo)
    assert len(hashed) == 8 and (memo / cache_mod.MEMO_FILE).is_file()
    monkeypatch.setattr(cache_mod, "_DIGESTS", {})  # a new process: only the on-disk memo
    assert file_digests(stim.paths, memo) == first and len(hashed) == 8
    stim.paths[5].write_bytes(stim.paths[5].read_bytes() + b"\0")
    third = file_digests(stim.paths, memo)
    assert hashed[8:] == [stim.paths[5].name]
    assert third[5] == real(stim.paths[5]) != first[5] and third[:5] == first[:5]


def test_recent_files_are_not_memoised(stim, tmp_path, monkeypatch):
    monkeypatch.setattr(cache_mod, "_DIGESTS", {})
    file_digests(stim.paths, tmp_path / "memo")  # the files are seconds old: racy, not memoised
    assert cache_mod._DIGESTS == {} and not (tmp_path / "memo" / cache_mod.MEMO_FILE).exists()


def test_corrupt_entry_is_discarded_with_a_warning_and_recomputed(stim, tmp_path):
    counter, store, net = Counting(), RDMCache(tmp_path / "c"), tiny_net()
    first = run(counter, net, stim, store)
    entry = store.entries()[0].path
    entry.write_bytes(entry.read_bytes()[:200])
    with pytest.warns(RuntimeWarning, match="unreadable"):
        again = run(counter, net, stim, store)
    assert counter.calls == 2 and len(store.entries()) == 1
    xr.testing.assert_identical(again, first)


def test_error_during_write_leaves_no_entry_and_no_temp_file(stim, tmp_path, monkeypatch):
    store, net = RDMCache(tmp_path / "c"), tiny_net()

    def broken(self, path, *args, **kwargs):
        Path(path).write_bytes(b"\x89HDF half")
        raise OSError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", broken)
    monkeypatch.setattr(rio, "IN_MEMORY_MAX", -1)  # the writer writes the file itself (not rendered in memory)
    with pytest.warns(RuntimeWarning, match="could not store"):
        rdms = run(Counting(), net, stim, store)
    assert rdms.sizes["layer"] == 2
    assert store.entries() == [] and list((tmp_path / "c").rglob("*.tmp")) == []


@pytest.mark.slow
def test_process_killed_mid_write_leaves_no_entry(stim, tmp_path):
    """SIGKILL while the entry's bytes are half written: no entry appears; the next run recomputes."""
    root = tmp_path / "c"
    script = textwrap.dedent(f"""
        import os, signal, sys
        from pathlib import Path
        import xarray as xr
        sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
        from tests.test_cache import Counting, run, tiny_net
        from rsa_bridge.app.cache import RDMCache
        from stimuli import load_stimulus_set

        def dying(self, path, *args, **kwargs):
            Path(path).write_bytes(b"\\x89HDF\\r\\n\\x1a\\n" + b"x" * 4096)
            os.kill(os.getpid(), signal.SIGKILL)

        xr.Dataset.to_netcdf = dying
        import rsa_bridge.io as rio
        rio.IN_MEMORY_MAX = -1  # the writer writes the file itself (not rendered in memory)
        run(Counting(), tiny_net(), load_stimulus_set({str(stim.root)!r}), RDMCache({str(root)!r}))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == -9, proc.stderr
    store = RDMCache(root)
    assert store.entries() == []
    assert len(list(root.rglob(".*.tmp"))) == 1  # the killed write's temp file, never under an entry name
    counter = Counting()
    rdms = run(counter, tiny_net(), stim, store)
    assert counter.calls == 1 and len(store.entries()) == 1
    xr.testing.assert_identical(rdms, fresh_rdms(tiny_net(), stim))


def test_a_lambda_transform_is_not_cached(stim, tmp_path, capsys):
    counter, store = Counting(), RDMCache(tmp_path / "c")
    transform = resize()
    run(counter, tiny_net(), stim, store, transform=lambda im: transform(im))
    assert counter.calls == 1 and store.entries() == []
    assert "not cached" in capsys.readouterr().err


def test_cache_off_and_default_location(stim, tmp_path, monkeypatch):
    counter = Counting()
    monkeypatch.setenv("RSA_BRIDGE_CACHE", str(tmp_path / "env"))
    assert default_dir() == tmp_path / "env"
    run(counter, tiny_net(), stim, False)
    assert not (tmp_path / "env").exists()
    run(counter, tiny_net(), stim, None)
    assert len(RDMCache().entries()) == 1 and RDMCache().root == tmp_path / "env"
    monkeypatch.delenv("RSA_BRIDGE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_dir() == tmp_path / "xdg" / "rsa-bridge"
