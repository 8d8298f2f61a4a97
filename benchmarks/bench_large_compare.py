"""Benchmark: the whole ``rsa-bridge compare`` job end to end at 5,000 / 10,000 / 22,000 stimuli.

Unlike ``bench_scaling.py`` (which substitutes random features for the forward pass at generated sizes),
every stage runs: PNG decoding, preprocessing to 224 px, the AlexNet forward pass (untrained, 8 default
layers), the streamed Gram/RDM, the comparison with the area RDM, the 1,000-sample bootstrap and the
writing of ``results.nc`` / ``model_rdms.nc``. The data are seeded generated images and a synthetic V4 RDM
dataset sharing their structure (``benchmarks/large_data.py``; built once into a cache folder outside
the repository, default ``/tmp/rsa_bridge_large``).

Each run is one subprocess::

    python -m rsa_bridge compare --model alexnet --weights none --dataset FILE.nc --stimuli DIR
        --bootstrap 1000 --out OUT --overwrite --no-cache --quiet [--precision P] [extra args]

measured from outside (wall seconds; user + system CPU seconds and peak RSS of the child from
``os.wait4``) and from inside with ``RSA_BRIDGE_TIMINGS`` (:mod:`rsa_bridge.timing`: wall, CPU and peak
RSS per stage: ``decode_forward``, ``gram_rdm``, ``comparison``, ``statistics`` (stacking + ceilings +
``bootstrap`` + ``permutations``), ``write``). ``--job model-rdms`` times the model RDMs only
(decode + forward + Gram; :func:`rsa_bridge.app.pipeline.network_rdms`, no comparison or statistics).

The GEMM rate is measured in the same run (:func:`bench_gram.gemm_rate`: syrk in each ``--precision``) and
each row records ``gram_over_floor``: the ``gram_rdm`` stage's wall seconds over its floor, the syrk flops
the stage did (``gram_flops`` in its timings, N^2 P summed over layers) at that rate, with the bytes the
out-of-core Gram planned and read. Rows carry no machine paths (data ``D``, output ``OUT``, ``python``).

One JSON line per run is appended to ``--results`` (default ``benchmarks/results/large_compare.jsonl``).
``--plot`` draws CPU seconds per stage against N (log-log) from that file, measured points filled;
``--estimate`` adds the extrapolations of ``estimate()`` hollow, dashed.

    python benchmarks/bench_large_compare.py --sizes 5000 [--precision float64,float32]
        [--variant dense|store] [--extra-args "--reduce-units 4096"] [--job compare|model-rdms]
    python benchmarks/bench_large_compare.py --plot-only --estimate 10000,22000
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from large_data import build  # noqa: E402
from bench_gram import gemm_rate  # noqa: E402

#: extra compare arguments of each --variant (store: the on-disk float32 RDM store of issue 19 item 3)
VARIANTS = {"dense": [], "store": ["--rdm-store", "disk", "--rdm-storage", "float32"]}
STAGES = ("decode_forward", "gram_rdm", "comparison", "bootstrap", "permutations", "write")
#: growth model of each stage's cost in N (what the estimate assumes when only one size is measured)
GROWTH = {"decode_forward": 1.0, "gram_rdm": 2.0, "comparison": 2.0, "bootstrap": 0.0, "permutations": 0.0,
          "write": 2.0}
MODEL_JOB = ("import sys; from stimuli import load_stimulus_set; from extractors import load_model; "
             "from rsa_bridge.app.pipeline import network_rdms; import torch; torch.manual_seed(0); "
             "r = network_rdms(load_model('alexnet', 'none'), load_stimulus_set(sys.argv[1]), None, "
             "precision=sys.argv[2], progress=False); print(r.shape)")


def scrub(text: str, folder: Path | None = None, tmp: Path | None = None) -> str:
    """``text`` without machine paths: the data folder is ``D``, the output folder ``OUT``, the temporary
    folder ``TMP``, the interpreter ``python`` (also the paths of runs recorded before this rule)."""
    for path, name in ((tmp / "out" if tmp else None, "OUT"), (tmp, "TMP"), (folder, "D")):
        if path is not None:
            text = text.replace(str(path), name)
    text = text.replace(sys.executable, "python")
    text = re.sub(r"/[^\s\"']*?/bin/python[0-9.]*", "python", text)
    text = re.sub(r"/tmp/rsa-bridge-bench-[^/\s\"']*/out", "OUT", text)
    text = re.sub(r"/tmp/rsa-bridge-bench-[^/\s\"']*", "TMP", text)
    return re.sub(r"/[^\s\"']*/n\d+_seed\d+_[^/\s\"']*", "D", text)


def gram_floor(row: dict, rates: dict[str, float]) -> dict:
    """The Gram stage over its GEMM floor: syrk flops the stage did (``gram_flops`` in its timings) over the
    GEMM rate measured in the same run, against the stage's wall seconds."""
    stage = row.get("stages", {}).get("gram_rdm", {})
    if not stage.get("gram_flops") or row["precision"] not in rates:
        return {}
    floor = stage["gram_flops"] / rates[row["precision"]]
    return {"gemm_rate_flops": rates[row["precision"]], "gram_floor_s": floor,
            "gram_over_floor": stage["wall_s"] / floor,
            "gram_io_read_bytes": stage.get("io_read_bytes", 0), "gram_io_planned_bytes": stage.get("io_planned_bytes", 0)}


def command(job: str, folder: Path, out: Path, precision: str, bootstrap: int, extra: list[str]) -> list[str]:
    if job == "model-rdms":
        return [sys.executable, "-c", MODEL_JOB, str(folder / "stimuli"), precision]
    return [sys.executable, "-m", "rsa_bridge", "compare", "--model", "alexnet", "--weights", "none",
            "--dataset", str(folder / "neural.nc"), "--stimuli", str(folder / "stimuli"),
            "--bootstrap", str(bootstrap), "--out", str(out), "--overwrite", "--no-cache", "--quiet",
            "--precision", precision, *extra]


def run_one(cmd: list[str], timings: Path, log: Path) -> dict:
    """Run ``cmd`` as a child; its wall/CPU/peak RSS (os.wait4) and the stage JSON it wrote."""
    env = {**os.environ, "RSA_BRIDGE_TIMINGS": str(timings), "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    with open(log, "w") as handle:
        proc = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    stages = json.loads(timings.read_text()) if timings.is_file() else {}
    return {"rc": proc.returncode, "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "user_s": usage.ru_utime, "sys_s": usage.ru_stime, "peak_rss_mib": usage.ru_maxrss / 1024,
            "stages": stages.get("stages", {}), "log_tail": log.read_text()[-1500:]}


def estimate(rows: list[dict], targets: list[int]) -> list[dict]:
    """Per stage, CPU seconds at ``targets`` from the measured runs of the same job/precision/variant.

    With two measured sizes the per-stage exponent is the measured one, log(t2/t1)/log(N2/N1); with one
    it is :data:`GROWTH` (forward ~ N, Gram ~ N^2 x units, comparison ~ N^2 log N taken as N^2,
    subset bootstrap/permutations ~ constant above 2,000 stimuli, write ~ N^2).
    """
    out = []
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r.get("rc") == 0 and not r.get("estimated"):
            groups.setdefault((r["job"], r["precision"], r["variant"], r["extra"]), []).append(r)
    for key, runs in groups.items():
        by_n = {r["n"]: r for r in runs}  # the latest run of each size
        sizes = sorted(by_n)
        for target in targets:
            if target in by_n:
                continue
            est = {"job": key[0], "precision": key[1], "variant": key[2], "extra": key[3], "n": target,
                   "estimated": True, "stages": {}, "exponents": {}}
            for stage in [s for s in STAGES if any(s in by_n[n]["stages"] for n in sizes)]:
                pts = [(n, by_n[n]["stages"][stage]["cpu_s"]) for n in sizes if stage in by_n[n]["stages"]]
                if len(pts) >= 2 and min(p[1] for p in pts[-2:]) > 0:
                    (n1, t1), (n2, t2) = pts[-2:]
                    k = float(np.log(t2 / t1) / np.log(n2 / n1))
                else:
                    (n2, t2), k = pts[-1], (2.0 if GROWTH.get(stage) is None else GROWTH[stage])
                est["exponents"][stage] = round(k, 2)
                est["stages"][stage] = {"cpu_s": t2 * (target / n2) ** k}
            est["cpu_s"] = sum(v["cpu_s"] for s, v in est["stages"].items() if s in STAGES)
            out.append(est)
    return out


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    colours = dict(zip(STAGES, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    # circles: the dense path in float64; squares: the RDM store on disk in float32 (--variant store)
    for precision, variant, marker in (("float64", "dense", "o"), ("float32", "store", "s")):
        for stage in STAGES:
            measured: list = []
            for estimated in (False, True):
                pts = sorted((r["n"], r["stages"][stage]["cpu_s"]) for r in rows
                             if r["job"] == "compare" and r["precision"] == precision and r["variant"] == variant
                             and not r.get("extra") and bool(r.get("estimated")) == estimated
                             and stage in r["stages"] and r["stages"][stage]["cpu_s"] > 0)
                if estimated and pts and measured:
                    pts = [measured[-1], *pts]              # the dashed line starts at the largest measured N
                measured = measured or pts
                if pts:
                    ax.plot(*zip(*pts), marker=marker, linestyle="--" if estimated else "-", color=colours[stage],
                            markerfacecolor="none" if estimated else colours[stage],
                            label=None if estimated or marker != "o" else stage)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("stimuli N")
    ax.set_ylabel("CPU seconds")
    ax.set_title("compare end to end, AlexNet untrained, 8 layers, 1 RDM; circles: dense float64,\n"
                 "squares: RDM store on disk, float32 (filled: measured; hollow, dashed: estimated)", fontsize=8)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"plot: {path}")


def print_row(r: dict) -> None:
    tag = "ESTIMATED" if r.get("estimated") else f"rc={r['rc']} wall {r['wall_s']:.0f} s, peak RSS {r['peak_rss_mib']:.0f} MiB"
    print(f"N={r['n']} job={r['job']} precision={r['precision']} variant={r['variant']} extra={r['extra']!r}: "
          f"CPU {r['cpu_s']:.0f} s, {tag}")
    if "gram_over_floor" in r:
        print(f"    Gram stage / GEMM floor: {r['gram_over_floor']:.2f} (floor {r['gram_floor_s']:.1f} s at "
              f"{r['gemm_rate_flops'] / 1e9:.1f} Gflop/s measured in this run; read {r['gram_io_read_bytes']} "
              f"bytes of {r['gram_io_planned_bytes']} planned)")
    for stage, v in r["stages"].items():
        more = (f" wall {v['wall_s']:8.1f} s  peak RSS {v['peak_rss_mib']:7.0f} MiB" if "wall_s" in v
                else f"  (exponent {r['exponents'][stage]})")
        print(f"    {stage:<15} CPU {v['cpu_s']:9.1f} s{more}")


def markdown(rows: list[dict]) -> str:
    """One table row per (run, stage): what the docs page shows (measured and estimated alike labelled)."""
    lines = ["| N | precision | run | stage | wall s | CPU s | peak RSS MiB |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        label = "**estimated**" if r.get("estimated") else f"measured ({r['date'][:16]})"
        run = f"{r['job']} {r['variant']} {r['extra']}".strip()
        for stage in (*STAGES, "statistics"):
            v = r["stages"].get(stage)
            if v:
                wall = f"{v['wall_s']:.0f}" if "wall_s" in v else "—"
                peak = f"{v['peak_rss_mib']:.0f}" if "peak_rss_mib" in v else "—"
                lines.append(f"| {r['n']:,} | {r['precision']} | {run}, {label} | {stage} | {wall} | {v['cpu_s']:.0f} | {peak} |")
        if not r.get("estimated"):
            lines.append(f"| {r['n']:,} | {r['precision']} | {run}, {label} | **whole process** (wait4) | "
                         f"{r['wall_s']:.0f} | {r['cpu_s']:.0f} | {r['peak_rss_mib']:.0f} |")
        else:
            lines.append(f"| {r['n']:,} | {r['precision']} | {run}, {label} | **sum of stages** | — | {r['cpu_s']:.0f} | — |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5000", help="comma-separated N (default 5000)")
    parser.add_argument("--precision", default="float64", help="comma-separated: float64,float32")
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="dense")
    parser.add_argument("--extra-args", default="", help="more compare arguments, one string")
    parser.add_argument("--job", choices=("compare", "model-rdms"), default="compare")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated data")
    parser.add_argument("--size", type=int, default=64, help="generated image side in pixels")
    parser.add_argument("--data", type=Path, default=None, help="cache folder of the generated data")
    parser.add_argument("--results", type=Path, default=HERE / "results" / "large_compare.jsonl")
    parser.add_argument("--estimate", default="", help="comma-separated N to extrapolate to")
    parser.add_argument("--plot", type=lambda s: Path(s) if s else None,
                        default=ROOT / "docs" / "figures" / "scaling_large.png", help="figure ('' = none)")
    parser.add_argument("--plot-only", action="store_true", help="no runs: estimate and plot from --results")
    parser.add_argument("--markdown", action="store_true", help="print the runs and estimates as a table")
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.results.read_text().splitlines() if line.strip()] \
        if args.results.is_file() else []
    if not args.plot_only:
        rates = {p: gemm_rate(p) for p in args.precision.split(",")}  # the floor of the Gram stage, this run
        print("GEMM rate (syrk, Gflop/s):", {p: round(r / 1e9, 1) for p, r in rates.items()}, flush=True)
        extra = [*VARIANTS[args.variant], *shlex.split(args.extra_args)]
        for n in [int(s) for s in args.sizes.split(",")]:
            t0 = time.perf_counter()
            folder = build(n, args.seed, args.size, root=args.data)
            print(f"N={n}: data in {folder} ({time.perf_counter() - t0:.1f} s to build or find)", flush=True)
            for precision in args.precision.split(","):
                with tempfile.TemporaryDirectory(prefix="rsa-bridge-bench-") as tmp:
                    cmd = command(args.job, folder, Path(tmp) / "out", precision, args.bootstrap, extra)
                    print("running:", shlex.join(cmd), flush=True)
                    row = {"n": n, "job": args.job, "precision": precision, "variant": args.variant,
                           "extra": args.extra_args, "bootstrap": args.bootstrap, "command": shlex.join(cmd),
                           "data": f"D = python benchmarks/large_data.py --n {n} --seed {args.seed} --size {args.size}",
                           "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "loadavg_before": os.getloadavg(), "cores": os.cpu_count(),
                           "threads_env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")},
                           **run_one(cmd, Path(tmp) / "timings.json", Path(tmp) / "log.txt")}
                    row["loadavg_after"] = os.getloadavg()
                    row.update(gram_floor(row, rates))
                    row = json.loads(scrub(json.dumps(row), folder, Path(tmp)))
                print_row(row)
                if row["rc"] != 0:
                    print(row["log_tail"])
                rows.append(row)
                args.results.parent.mkdir(parents=True, exist_ok=True)
                with open(args.results, "a") as handle:
                    handle.write(json.dumps(row) + "\n")
    estimates = estimate(rows, [int(s) for s in args.estimate.split(",") if s])
    for e in estimates:
        print_row(e)
    if args.markdown:
        print(markdown([r for r in rows if r.get("rc") == 0] + estimates))
    if args.plot and rows:
        plot(rows + estimates, args.plot)


if __name__ == "__main__":
    main()
