"""Benchmark: how long the command line takes to answer ``--help`` (fresh interpreter each time).

    python benchmarks/bench_cli_startup.py [--repeat 5]

Prints, per command line, the best wall time of ``repeat`` fresh runs of ``python -m rsa_bridge ARGS``
and, for reference, of a bare ``python -c pass`` and ``python -c "import torch"`` measured in the same run.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time


def best(args: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(args, capture_output=True, check=False)
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
    py = sys.executable
    rows = [("python -c pass", [py, "-c", "pass"]), ("python -c 'import torch'", [py, "-c", "import torch"])]
    for argv in (["--help"], ["compare", "--help"], ["neural", "--help"], ["depth-mask", "--help"],
                 ["missed-detections", "--help"], ["datasets"]):
        rows.append(("rsa-bridge " + " ".join(argv), [py, "-m", "rsa_bridge", *argv]))
    for label, args in rows:
        print(f"{label:38s} {best(args, repeat):6.3f} s")


if __name__ == "__main__":
    main()
