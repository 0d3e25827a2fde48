"""Start-up time of the command line: how long ``mmlesson --version``, ``--help`` and the commands
that read but do not train take before they answer (a command that trains imports torch first).

    python benchmarks/startup.py            # median of 10 runs of each command, in seconds
    python benchmarks/startup.py --runs 20
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = (["--version"], ["--help"], ["report", "--help"], ["train", "--help"], ["data", "list"])


def seconds(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    baseline = statistics.median(seconds([sys.executable, "-c", "pass"]) for _ in range(args.runs))
    print(f"python -c pass: {baseline:.3f} s (the interpreter alone)")
    for arguments in COMMANDS:
        times = [seconds([sys.executable, "-m", "mmlesson", *arguments]) for _ in range(args.runs)]
        print(f"mmlesson {' '.join(arguments)}: median {statistics.median(times):.3f} s "
              f"(min {min(times):.3f}, max {max(times):.3f}, {args.runs} runs)")


if __name__ == "__main__":
    main()
