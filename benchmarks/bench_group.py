"""A bureau's month end: many clinics, one after another versus on a Dask LocalCluster.

    python benchmarks/bench_group.py                      # 20 clinics of ~50k appointments
    python benchmarks/bench_group.py --clinics 2 --patients 60 --months 2   # a smoke run

Each clinic is `pkgreport sample-data` with its own seed (made first, in child processes, and
kept in --data for the next run). Then `pkgreport report --group DATA -o OUT` runs as a whole
process, serially and with `--workers N`, alternating, `--runs` times; the process tree is
sampled every 0.1 s for each process's peak resident memory (the driver, and for Dask the
scheduler's and each worker's). Prints the medians of wall time, CPU time (this process's
children, the Dask workers included) and peak memory per process, the machine load, and
whether the two runs wrote the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil  # installed with dask.distributed (the [dask] extra)
from _sample import write_sample_exports

MB = 1024 * 1024


def make_clinics(data: Path, clinics: int, patients: int, months: int) -> None:
    for number in range(clinics):
        folder = data / f"clinic-{number + 1:02d}"
        if any(folder.glob("*.csv")):
            continue
        write_sample_exports(
            folder,
            "--patients",
            str(patients),
            "--months",
            str(months),
            "--seed",
            str(1000 + number),
        )


def _sample_tree(
    root: psutil.Process, peaks: dict[int, tuple[str, int]], stop: threading.Event
) -> None:
    while not stop.is_set():
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for proc in tree:
            try:
                rss = proc.memory_info().rss
                name = _role(proc)
            except psutil.Error:
                continue
            if rss > peaks.get(proc.pid, ("", 0))[1]:
                peaks[proc.pid] = (name, rss)
        stop.wait(0.1)


def _role(proc: psutil.Process) -> str:
    line = " ".join(proc.cmdline())
    if "--group" in line:
        return "driver"
    if "spawn_main" in line:
        return "worker"
    return "other"  # multiprocessing's resource tracker


def run_once(data: Path, out: Path, extra: list[str]) -> dict[str, object]:
    shutil.rmtree(out, ignore_errors=True)
    before = os.times()
    t0 = time.perf_counter()
    command = [sys.executable, "-m", "pkgreport", "report", "--group", str(data), "-o", str(out)]
    proc = psutil.Popen([*command, "-q", *extra], stdout=subprocess.DEVNULL)
    peaks: dict[int, tuple[str, int]] = {}
    stop = threading.Event()
    sampler = threading.Thread(target=_sample_tree, args=(proc, peaks, stop))
    sampler.start()
    code = proc.wait()
    wall = time.perf_counter() - t0
    stop.set()
    sampler.join()
    after = os.times()
    if code != 0:
        raise SystemExit(f"pkgreport exited {code} on {extra or 'the serial run'}")
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    roles = sorted(peaks.values(), key=lambda p: ("driver", "worker", "other").index(p[0]))
    return {
        "wall": wall,
        "cpu": cpu,
        "peaks": [(role, rss) for role, rss in roles if role != "other"],
    }


def digest(out: Path) -> str:
    sha = hashlib.sha256()
    for path in sorted(out.rglob("*")):
        if path.is_file():
            sha.update(str(path.relative_to(out)).encode() + path.read_bytes())
    return sha.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clinics", type=int, default=20)
    parser.add_argument("--patients", type=int, default=9200, help="per clinic (~50k appointments)")
    parser.add_argument("--months", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--data", type=Path, default=None, help="reuse (or create) the clinics here"
    )
    args = parser.parse_args()
    data = args.data or Path(tempfile.mkdtemp(prefix="pkgreport-bench-group-"))
    t0 = time.perf_counter()
    make_clinics(data, args.clinics, args.patients, args.months)
    rows = sum(
        sum(1 for _ in path.open(encoding="utf-8")) - 1
        for path in data.glob("*/Appointments-*.csv")
    )
    print(
        f"{args.clinics} clinics, {rows:,} appointments in all ({time.perf_counter() - t0:.0f} s to make)"
    )
    out = Path(tempfile.mkdtemp(prefix="pkgreport-bench-group-out-"))
    modes = {"serial": [], f"--workers {args.workers}": ["--workers", str(args.workers)]}
    results: dict[str, list[dict[str, object]]] = {mode: [] for mode in modes}
    digests: dict[str, str] = {}
    print(f"load average at start: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for _ in range(args.runs):
        for mode, extra in modes.items():
            results[mode].append(run_once(data, out / mode.replace(" ", ""), extra))
            digests[mode] = digest(out / mode.replace(" ", ""))
    print(f"load average at end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for mode, runs in results.items():
        wall = statistics.median(float(r["wall"]) for r in runs)  # type: ignore[arg-type]
        cpu = statistics.median(float(r["cpu"]) for r in runs)  # type: ignore[arg-type]
        peaks = runs[len(runs) // 2]["peaks"]
        shown = ", ".join(f"{role} {rss / MB:,.0f} MB" for role, rss in peaks)  # type: ignore[attr-defined]
        print(f"{mode:>12}: wall {wall:6.1f} s, CPU {cpu:6.1f} s; peak memory: {shown}")
    same = len(set(digests.values())) == 1
    print(f"outputs identical: {'yes' if same else 'NO'}")
    shutil.rmtree(out, ignore_errors=True)
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
