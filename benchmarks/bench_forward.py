"""Benchmark: the forward stage against a plain torchvision loop, and the main job against its compute floor.

All in one run (issue 29 part 2), on the same images and the same machine load:

* **Forward stage** (``extractors.extract.run_plan`` over the model's default layers: decode, preprocess,
  forward with hooks, float32 rows on the CPU), as ``compare`` runs it (decode threads, channels-last, batch
  size from the memory budget) and as it ran before (``--decode-workers 0``, contiguous, batch 32), against
  the **plain loop**: ``PIL.Image.open`` -> RGB -> the weights' transforms -> ``torch.stack`` -> ``model(x)``
  under ``torch.inference_mode``, batch 32, nothing hooked. Wall and CPU seconds (``time.process_time``:
  every thread of this process); ``cpu/wall`` near 2 on 2 cores means both cores were busy. The variants are
  interleaved and repeated ``--repeat`` times (paired: one repeat runs every variant back to back).
  Images: the 640 shipped V4 images (cowley2023_v4_210325, 112 px JPEG) and ``--synthetic`` 64-px PNGs of
  ``benchmarks/large_data.py``.
* **Main job floor**: ``rsa-bridge compare --model alexnet --area V4 --weights none --bootstrap 0
  --no-cache`` in a child process (wall by the parent; its stages from ``RSA_BRIDGE_TIMINGS``), against the
  floor = the plain loop's wall on the same 640 images + the Gram products at the syrk rate measured in the
  same repeat (``scipy.linalg.blas.dsyrk`` on a 640 x 32768 float64 block: n^2 p flops per layer of p units).
  Also per repeat: the ``gram_rdm`` stage over its syrk floor, the job's wall outside its stages, the memory
  budget the job used and how many layers it spilled, the forward stage alone (same repeat), and the wall of a
  child ``python -c "import torch, torchvision"`` (the fixed import cost every torch job pays, not in the floor).

Results: ``--json FILE`` (no machine paths; load average and torch threads recorded).

    OMP_NUM_THREADS unset; PYTHONPATH=. python benchmarks/bench_forward.py --synthetic 2000 --repeat 3 \\
        --json benchmarks/results/forward_alexnet.json
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from extractors import load_model, resolve_layers  # noqa: E402
from extractors.extract import prepare_plan, run_plan  # noqa: E402
from extractors.feed import FeedOptions  # noqa: E402
from extractors.models import model_info  # noqa: E402

MAIN_JOB = ["compare", "--model", "alexnet", "--area", "V4", "--weights", "none", "--bootstrap", "0", "--no-cache",
            "--quiet"]


def clock(fn) -> dict:
    t0, c0 = time.perf_counter(), time.process_time()
    extra = fn() or {}
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "cores_busy": round(cpu / wall, 2), **extra}


def plain_loop(model, paths, transform, batch: int = 32) -> None:
    """The reference: open, transform, stack, forward; batch after batch in one thread of Python."""
    with torch.inference_mode():
        for start in range(0, len(paths), batch):
            tensors = []
            for path in paths[start:start + batch]:
                with Image.open(path) as image:
                    tensors.append(transform(image.convert("RGB")))
            model(torch.stack(tensors))


def stage(model, paths, layers, batch, feed: FeedOptions) -> dict:
    plan = prepare_plan(model, [str(p) for p in paths], layers, batch, "cpu", None, False, None, feed)
    for _ in run_plan(plan):
        pass
    return {"batch_size": plan.batch_size, "decode_workers": plan.workers, "channels_last": plan.channels_last}


def syrk_rate(n: int = 640, width: int = 32768, repeat: int = 3) -> tuple[float, float]:
    """Float64 flops per wall second and per CPU second of one syrk (C = A A^T, upper triangle) on an (n, width) block."""
    from scipy.linalg import blas

    a = np.asfortranarray(np.random.default_rng(0).standard_normal((n, width)))
    blas.dsyrk(1.0, a)
    runs = [clock(lambda: (blas.dsyrk(1.0, a), None)[1]) for _ in range(repeat)]
    return n * n * width / min(r["wall_s"] for r in runs), n * n * width / min(r["cpu_s"] for r in runs)


def image_sets(synthetic: int) -> dict[str, list[Path]]:
    from rsa_bridge.app.pipeline import stimuli_for
    from rsa_bridge.datasets import load_dataset

    sets = {"v4_640_jpeg112": list(stimuli_for(load_dataset("cowley2023_v4_210325"), None).paths)}
    if synthetic:
        import large_data

        folder = large_data.build(synthetic, size=64)
        sets[f"synthetic_{synthetic}_png64"] = sorted((folder / "stimuli").glob("*.png"))
    return sets


def main_job(timings: Path, extra: list[str] = (), root: Path = ROOT) -> dict:
    """The main job run from the checkout ``root`` (this one, or ``--baseline-root``) in a child process."""
    with tempfile.TemporaryDirectory() as out:
        env = {**os.environ, "RSA_BRIDGE_TIMINGS": str(timings), "PYTHONPATH": str(root)}
        t0, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.run([sys.executable, "-m", "rsa_bridge", *MAIN_JOB, *extra, "--out", str(Path(out) / "r")],
                              env=env, cwd=out, capture_output=True, text=True)
        wall, after = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if proc.returncode:
        raise SystemExit(f"main job failed: {proc.stderr[-500:]}")
    record = json.loads(timings.read_text())
    stages = {k: {m: round(v[m], 3) for m in ("wall_s", "cpu_s")} for k, v in record["stages"].items()}
    forward = record["stages"].get("decode_forward", {})
    return {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "stages": stages,
            "outside_stages_wall_s": round(wall - sum(v["wall_s"] for v in stages.values()), 3),
            "memory_budget_bytes": forward.get("memory_budget_bytes"), "spilled_layers": forward.get("spilled_layers")}


def import_seconds() -> float:
    """Wall seconds of a child ``python -c "import torch, torchvision"``: the fixed import cost of any torch job."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch, torchvision"], check=True)
    return round(time.perf_counter() - t0, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="alexnet")
    parser.add_argument("--synthetic", type=int, default=2000, help="synthetic 64-px images (0: none)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images of each set (a smoke run)")
    parser.add_argument("--no-main-job", action="store_true")
    parser.add_argument("--job-arg", action="append", default=[], metavar="ARG",
                        help="an extra argument of the main job, e.g. --job-arg=--memory-budget --job-arg=2147483648")
    parser.add_argument("--baseline-root", type=Path, default=None, metavar="DIR",
                        help="another checkout (e.g. the main branch): its main job runs right after this one's in "
                             "every repeat, for a paired before/after at the same load (recorded by git commit)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    model = load_model(args.model, "none").eval()
    transform = model_info(model).transform
    layers = [name for name, _ in resolve_layers(model, None)]
    sets = {name: paths[:args.limit] for name, paths in image_sets(args.synthetic).items()}
    rows: list[dict] = []
    job_rows: list[dict] = []
    rate, cpu_rate = syrk_rate()
    n_units = None
    for rep in range(args.repeat):
        for set_name, paths in sets.items():
            # a fresh model per variant, built outside the clock (the stage leaves its weights channels-last)
            m0, m1, m2 = (load_model(args.model, "none").eval() for _ in range(3))
            variants = {
                "plain loop (PIL -> transforms -> model, batch 32)": lambda: plain_loop(m0, paths, transform),
                "forward stage (threads, channels-last, auto batch)": lambda: stage(
                    m1, paths, layers, None, FeedOptions()),
                "forward stage serial (before: 0 threads, contiguous, batch 32)": lambda: stage(
                    m2, paths, layers, 32, FeedOptions(0, False)),
            }
            for name, fn in variants.items():
                row = {"repeat": rep, "images": set_name, "n": len(paths), "variant": name,
                       "load_avg_1min": round(os.getloadavg()[0], 2), **clock(fn)}
                rows.append(row)
                print(json.dumps(row), flush=True)
        if not args.no_main_job and args.model == "alexnet":
            with tempfile.TemporaryDirectory() as tmp:
                job = main_job(Path(tmp) / "t.json", args.job_arg)
            plain = next(r for r in reversed(rows) if r["images"] == "v4_640_jpeg112" and r["variant"].startswith("plain"))
            if n_units is None:
                probe = prepare_plan(model, sets["v4_640_jpeg112"][:1], layers, 1, "cpu", None, False, None)
                n_units = sum(math.prod(s) for s in probe.unit_shapes.values())
            rate, cpu_rate = syrk_rate()  # in this repeat, at this repeat's load
            gram_floor = len(sets["v4_640_jpeg112"]) ** 2 * n_units / rate
            floor = plain["wall_s"] + gram_floor
            cpu_floor = plain["cpu_s"] + len(sets["v4_640_jpeg112"]) ** 2 * n_units / cpu_rate
            stage_alone = next(r for r in reversed(rows) if r["images"] == "v4_640_jpeg112"
                               and r["variant"].startswith("forward stage ("))
            job.update(repeat=rep, syrk_gflop_per_s=round(rate / 1e9, 2), plain_loop_wall_s=plain["wall_s"],
                       forward_stage_alone_wall_s=stage_alone["wall_s"],
                       gram_floor_s=round(gram_floor, 3),
                       gram_ratio=round(job["stages"]["gram_rdm"]["wall_s"] / gram_floor, 3),
                       import_torch_torchvision_s=import_seconds(),
                       floor_s=round(floor, 3), ratio=round(job["wall_s"] / floor, 3),
                       cpu_floor_s=round(cpu_floor, 3), cpu_ratio=round(job["cpu_s"] / cpu_floor, 3),
                       load_avg_1min=round(os.getloadavg()[0], 2))
            if args.baseline_root is not None:
                with tempfile.TemporaryDirectory() as tmp:
                    before = main_job(Path(tmp) / "t.json", args.job_arg, args.baseline_root)
                commit = subprocess.run(["git", "-C", str(args.baseline_root), "rev-parse", "--short", "HEAD"],
                                        capture_output=True, text=True).stdout.strip() or "unknown"
                job["baseline"] = {**before, "commit": commit, "ratio": round(before["wall_s"] / floor, 3),
                                   "gram_ratio": round(before["stages"]["gram_rdm"]["wall_s"] / gram_floor, 3),
                                   "load_avg_1min": round(os.getloadavg()[0], 2)}
            job_rows.append(job)
            print(json.dumps(job), flush=True)
        save(args, sets, rows, job_rows, (rate, cpu_rate), n_units)


def save(args, sets, rows, job_rows, rates, n_units) -> None:
    """Print the paired ratios and write ``--json`` (after every repeat, so a long run leaves what it did)."""
    summary = {}
    for set_name in sets:
        for metric in ("cpu_s", "wall_s"):
            plain = [r[metric] for r in rows if r["images"] == set_name and r["variant"].startswith("plain")]
            for tag, prefix in (("stage", "forward stage ("), ("serial", "forward stage serial")):
                mine = [r[metric] for r in rows if r["images"] == set_name and r["variant"].startswith(prefix)]
                summary[f"{set_name} {tag}/plain {metric}"] = [round(a / b, 3) for a, b in zip(mine, plain)]
    if job_rows:
        summary["main job wall / floor"] = [r["ratio"] for r in job_rows]
        summary["main job cpu / cpu floor"] = [r["cpu_ratio"] for r in job_rows]
        summary["gram_rdm stage / its syrk floor"] = [r["gram_ratio"] for r in job_rows]
        if any("baseline" in r for r in job_rows):
            summary["baseline job wall / floor"] = [r["baseline"]["ratio"] for r in job_rows if "baseline" in r]
            summary["baseline gram_rdm / its syrk floor"] = [r["baseline"]["gram_ratio"] for r in job_rows
                                                             if "baseline" in r]
        summary["main job wall - torch/torchvision import / floor"] = [
            round((r["wall_s"] - r["import_torch_torchvision_s"]) / r["floor_s"], 3) for r in job_rows]
    print(json.dumps(summary, indent=1))
    if args.json:
        argv = [Path(a).name if os.path.isabs(a) else a for a in sys.argv[1:]]  # no machine paths in results
        omp = os.environ.get("OMP_NUM_THREADS")
        meta = {"command": (f"OMP_NUM_THREADS={omp} " if omp else "") + "PYTHONPATH=. python benchmarks/bench_forward.py "
                + " ".join(argv), "omp_num_threads": omp or "unset",
                "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                "model": args.model, "weights": "none", "syrk_flops_per_wall_s": round(rates[0]),
                "syrk_flops_per_cpu_s": round(rates[1]), "gram_units": n_units}
        args.json.write_text(json.dumps({"meta": meta, "summary": summary, "rows": rows, "main_job": job_rows},
                                        indent=1))


if __name__ == "__main__":
    main()
