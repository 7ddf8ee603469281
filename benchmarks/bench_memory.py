"""Peak memory of `pkgreport report` as a whole process, counted two ways (Linux only).

Run: python benchmarks/bench_memory.py [FOLDER] [--runs 3] [--against OTHER_PKGREPORT]

`pkgreport report` forks processes beside itself (pandera's checks, the workbook; the month
digests are a thread), which share most of their pages with it copy-on-write. So its memory is
counted two ways, and both are printed for each run:

- the largest single process's peak resident set (what `/usr/bin/time -f %M` reports): shared
  pages count in full in every process that maps them;
- the peak over the run of the sum of the proportional set sizes (PSS) of all its processes,
  sampled every 20 ms from `/proc/PID/smaps_rollup`: a page shared by two processes counts half
  in each, so the sum is what the run takes from the machine. With it, the sum at its peak is
  split by process, and the peak of the sum is given for each stretch of the run in which one
  of the forked processes lived ("beside #2: 1,350 MB" is the peak while the second process
  forked lived).

Sampling a process's PSS walks its page tables, which slows the run; the wall time printed is
therefore not a timing to quote (`bench_report.py` and `/usr/bin/time` are), and the largest
process's peak can come out lower than in a run left alone: take that one from `/usr/bin/time`
too.
Without FOLDER, the 1M-row month of the README is generated with `pkgreport sample-data
--patients 125000 --months 12 --seed 1`. `--against` names another installation's
`pkgreport`, run alternately with this one on the same folder. The load average is printed
before and after each run: quote it with the figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from _sample import MONTH_1M, installed_pkgreport, write_sample_exports

SAMPLE_SECONDS = 0.02
# A forked process counts toward a stretch of the run once it maps this much (the charts'
# process, forked before the exports are read, stays far below it).
LARGE_KB = 100 * 1024


@dataclass
class Run:
    """What one run of `pkgreport report` peaked at, in KB."""

    code: int = 0
    wall: float = 0.0
    largest_rss: int = 0
    peak_pss: int = 0
    at_peak: list[tuple[int, int]] = field(default_factory=list)  # (pid, PSS) at the peak
    peak_at: float = 0.0
    by_stretch: dict[str, int] = field(default_factory=dict)


def _process_tree(root: int) -> list[int]:
    """`root` and every process descended from it, parents first."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        children.setdefault(parent, []).append(int(entry))
    tree = [root]
    for pid in tree:
        tree.extend(children.get(pid, []))
    return tree


def _pss_rss(pid: int) -> tuple[int, int]:
    """The process's PSS and RSS in KB; (0, 0) once it is gone."""
    wanted = {"Pss": 0, "Rss": 0}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                name = line.split(":", 1)[0]
                if name in wanted:
                    wanted[name] = int(line.split()[1])
    except (OSError, ValueError):
        return 0, 0
    return wanted["Pss"], wanted["Rss"]


def measure(command: list[str]) -> Run:
    """Run `command`, its output discarded, sampling its processes' memory until it exits."""
    run = Run()
    forked: list[int] = []  # the large forked processes, in order of appearance
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        # wait4's usage covers the process and every descendant it reaped, as /usr/bin/time's.
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        sizes = {pid: _pss_rss(pid) for pid in _process_tree(child.pid)}
        total = sum(pss for pss, _ in sizes.values())
        living = [pid for pid, (_, rss) in sizes.items() if pid != child.pid and rss > LARGE_KB]
        forked.extend(pid for pid in living if pid not in forked)
        stretch = ", ".join(f"beside #{forked.index(pid) + 1}" for pid in living) or "alone"
        run.by_stretch[stretch] = max(run.by_stretch.get(stretch, 0), total)
        if total > run.peak_pss:
            run.peak_pss, run.peak_at = total, time.perf_counter() - start
            run.at_peak = [(pid, pss) for pid, (pss, _) in sizes.items() if pss]
        time.sleep(SAMPLE_SECONDS)
    child.returncode = run.code = os.waitstatus_to_exitcode(status)
    run.wall = time.perf_counter() - start
    run.largest_rss = usage.ru_maxrss
    return run


def _mb(kb: int) -> str:
    return f"{kb / 1024:,.0f} MB"


def report(name: str, run: Run) -> None:
    processes = ", ".join(_mb(pss) for _, pss in run.at_peak)
    stretches = "; ".join(f"{key} {_mb(kb)}" for key, kb in run.by_stretch.items())
    print(
        f"{name:8} exit {run.code}: largest process {_mb(run.largest_rss)} RSS; all processes "
        f"together {_mb(run.peak_pss)} PSS at {run.peak_at:.1f} s ({processes}); by stretch: "
        f"{stretches}"
    )


def main() -> None:
    if not os.path.exists("/proc/self/smaps_rollup"):
        sys.exit("bench_memory.py reads /proc/PID/smaps_rollup: Linux 4.14 or later only")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, help="exports to report on")
    parser.add_argument("--runs", type=int, default=3, help="runs of each (default 3)")
    parser.add_argument("--against", help="another pkgreport executable, run alternately")
    args = parser.parse_args()

    made = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    folder = args.folder
    if folder is None:
        folder = made / "exports"
        write_sample_exports(folder, *MONTH_1M)
    this = installed_pkgreport()
    executables = {"this": this}
    if args.against:
        executables["against"] = args.against
    results: dict[str, list[Run]] = {name: [] for name in executables}
    for number in range(args.runs):
        for name, executable in executables.items():
            out = made / f"{name}-{number}"
            print(f"load average {os.getloadavg()[0]:.2f}")
            results[name].append(measure([executable, "report", str(folder), "-o", str(out)]))
            report(name, results[name][-1])
            shutil.rmtree(out, ignore_errors=True)
    print(f"load average {os.getloadavg()[0]:.2f}")
    for name, runs in results.items():
        largest = statistics.median(r.largest_rss for r in runs)
        together = statistics.median(r.peak_pss for r in runs)
        print(
            f"{name:8} median of {len(runs)}: largest process {_mb(int(largest))}, all processes "
            f"together {_mb(int(together))} (from {_mb(min(r.peak_pss for r in runs))} to "
            f"{_mb(max(r.peak_pss for r in runs))})"
        )
    shutil.rmtree(made, ignore_errors=True)


if __name__ == "__main__":
    main()
