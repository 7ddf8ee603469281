"""`pkgreport report` beside a plain pandas + openpyxl script of the same job, on the same data.

    nice python benchmarks/compare_plain.py                      # 300:3 (sample_data's size) and 125000:12 (~1M rows)
    nice python benchmarks/compare_plain.py --size 300:3 --size 20000:6 --runs 3 --data /tmp/cmp

Each size is PATIENTS:MONTHS for `pkgreport sample-data` (made once per size, kept under --data
and reused when the folder already holds CSVs). Both jobs run as whole processes, import time
included, alternating, --runs times each; the medians of wall time, CPU time (user + system)
and peak memory (the child's own peak RSS, from os.wait4) are printed with the ratios plain /
pkgreport. The machine's load average is printed too: on a shared machine wall time grows with
it, CPU time much less.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _sample import write_sample_exports

PLAIN_JOB = Path(__file__).with_name("plain_job.py")


Figures = tuple[float, float, float]  # wall seconds, CPU seconds, peak RSS in MB


def measure(command: list[str]) -> Figures:
    """Wall time, CPU time and peak memory of one child process run to the end."""
    # stderr goes to a file: a pipe nobody reads while waiting would fill and stall the child.
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        if child.returncode != 0:
            text = errors.read().decode(errors="replace")
            sys.exit(f"{' '.join(command)} exited {child.returncode}:\n{text[-2000:]}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024  # KB on Linux


def inputs(data: Path, patients: int, months: int) -> Path:
    folder = data / f"p{patients}-m{months}"
    if not any(folder.glob("*.csv")):
        folder.mkdir(parents=True, exist_ok=True)
        write_sample_exports(folder, "--patients", str(patients), "--months", str(months))
    return folder


def rows(folder: Path) -> str:
    def count(kind: str) -> int:
        path = next(p for p in folder.glob("*.csv") if p.name.lower().startswith(kind))
        with path.open("rb") as lines:
            return sum(1 for _ in lines) - 1

    kinds = ("appointments", "invoices", "payments")
    return ", ".join(f"{count(kind):,} {kind}" for kind in kinds)


def compare(folder: Path, runs: int, out: Path) -> dict[str, Figures]:
    commands = {
        "pkgreport": [sys.executable, "-m", "pkgreport", "report", str(folder), "-o", str(out)],
        "plain": [sys.executable, str(PLAIN_JOB), str(folder), str(out / "plain.xlsx")],
    }
    runs_of: dict[str, list[Figures]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():  # alternating, so a load spike hits both
            runs_of[name].append(measure(command))
    return {name: medians(got) for name, got in runs_of.items()}


def medians(runs: list[Figures]) -> Figures:
    walls, cpus, peaks = zip(*runs, strict=True)
    return statistics.median(walls), statistics.median(cpus), statistics.median(peaks)


def size(text: str) -> tuple[int, int]:
    patients, _, months = text.partition(":")
    return int(patients), int(months)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=size, action="append", help="PATIENTS:MONTHS, repeatable")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data", type=Path, default=None, help="keep (and reuse) inputs here")
    args = parser.parse_args()
    sizes = args.size or [(300, 3), (125_000, 12)]
    data = args.data or Path(tempfile.mkdtemp(prefix="pkgreport-compare-"))
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; medians of {args.runs}")
    print("size: job wall / CPU / peak memory (plain / pkgreport)")
    for patients, months in sizes:
        folder = inputs(data, patients, months)
        with tempfile.TemporaryDirectory() as out:
            result = compare(folder, args.runs, Path(out))
        print(f"{patients}:{months} ({rows(folder)})")
        for name, (wall, cpu, mb) in result.items():
            print(f"  {name:<10} {wall:8.2f} s {cpu:8.2f} s CPU {mb:7.0f} MB")
        ratios = [
            plain / ours for plain, ours in zip(result["plain"], result["pkgreport"], strict=True)
        ]
        print("  ratio      {:7.2f}x {:7.2f}x     {:7.2f}x".format(*ratios))
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
