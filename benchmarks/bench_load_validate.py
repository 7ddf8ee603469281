"""Time `pipeline.load_dataset` (read + validate) on ~1,000,000 rows per kind; wall, CPU, peak RSS.

Run: python benchmarks/bench_load_validate.py [--keep DIR] [--repeat 3]
The exports come from `python -m pkgreport sample-data DIR --patients 125000 --months 12 --seed 1`
(about 1.2M appointments, 1.0M invoices, 0.9M payments); with --keep, a folder that already holds
them is reused. Each timed run is a fresh interpreter that did not write the data, so its peak RSS
is the loader's and validator's own. A bare `pandas.read_csv` of the same files runs first as a
reference: on a busy machine both numbers grow together. Target (issue 2): under 10 s, under 3 GB.
"""

from __future__ import annotations

import argparse
import io
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _sample import MONTH_1M, write_sample_exports

KINDS = ("appointments", "cases", "invoices", "payments", "allocations", "patients")


def _peak_rss_mb() -> float:
    # ru_maxrss is kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _time_bare(folder: Path) -> None:
    import pandas as pd

    start, cpu = time.perf_counter(), time.process_time()
    rows = 0
    for path in sorted(folder.glob("*.csv")):
        options = {"keep_default_na": False, "na_filter": False, "skip_blank_lines": False}
        rows += len(
            pd.read_csv(io.BytesIO(path.read_bytes()), header=None, dtype=object, **options)
        )
    print(
        f"  bare pandas.read_csv of the same files (reference): {rows:,} records in "
        f"{time.perf_counter() - start:.2f} s wall, {time.process_time() - cpu:.2f} s CPU; "
        f"peak RSS {_peak_rss_mb():.0f} MB"
    )


def _time_load_dataset(folder: Path) -> None:
    from pkgreport.config import Settings
    from pkgreport.pipeline import load_dataset

    marks: list[float] = []

    def progress(_: str) -> None:
        # load_dataset reports once, when every file is read and before validation starts.
        marks.append(time.perf_counter())

    start, cpu = time.perf_counter(), time.process_time()
    dataset = load_dataset(Settings(input_dir=folder), progress=progress)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    errors = dataset.errors
    if errors:
        sys.exit(f"the sample data should load cleanly, but: {errors[:3]}")
    split = ""
    if marks:
        read_wall = marks[0] - start
        split = f" (read {read_wall:.2f} s, validate {wall - read_wall:.2f} s wall)"
    counts = ", ".join(
        f"{len(frame):,} {kind}" for kind in KINDS if (frame := dataset.frame(kind)) is not None
    )
    verdict = "meets" if wall < 10 and _peak_rss_mb() < 3 * 1024 else "misses"
    print(
        f"  load_dataset: {wall:.2f} s wall{split}, {cpu:.2f} s CPU; peak RSS "
        f"{_peak_rss_mb():.0f} MB ({verdict} < 10 s, < 3 GB)\n    {counts}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--keep", type=Path, default=None, help="write the exports here and keep them"
    )
    parser.add_argument("--repeat", type=int, default=1, help="timed runs (each a fresh process)")
    parser.add_argument("--run", choices=["load", "bare"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.run is not None:
        assert args.keep is not None
        (_time_bare if args.run == "bare" else _time_load_dataset)(args.keep)
        return

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        if not any(folder.glob("Appointments-*.csv")):
            start = time.perf_counter()
            write_sample_exports(folder, *MONTH_1M)
            print(f"wrote the sample exports to {folder} in {time.perf_counter() - start:.1f} s")
        size = sum(p.stat().st_size for p in folder.glob("*.csv")) / 1e6
        print(f"{folder}: {size:.0f} MB of CSV")
        subprocess.run(
            [sys.executable, __file__, "--run", "bare", "--keep", str(folder)], check=True
        )
        for _ in range(args.repeat):
            subprocess.run(
                [sys.executable, __file__, "--run", "load", "--keep", str(folder)], check=True
            )


if __name__ == "__main__":
    main()
