"""Time reading one workbook's sheet as `validate`'s read-ahead thread does: the pre-flight, then
calamine's parse and the cells as Python values, read whole and as a big sheet is read: split in
two halves on two cores (`inputs/xlsx_split.py`), or, when every value is text, as Arrow text
columns (`inputs/xlsx_text.py`), alternately, medians.

Run: python benchmarks/bench_xlsx_read.py WORKBOOK [--runs 5]

CPU is user + system time of this process (every thread); wall is what a user waits for, and
needs a second core free to show the split's gain: quote the load average printed with it.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from pathlib import Path

from pkgreport.config import Settings
from pkgreport.inputs import xlsx_sheet


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def read_once(data: bytes, split: bool) -> tuple[float, float, str]:
    """(wall s, CPU s, how the sheet was read) of opening the sheet and taking its cells (the
    Arrow columns, for a sheet read as text)."""
    xlsx_sheet.SPLIT_MIN_BYTES = 0 if split else 1 << 62
    xlsx_sheet.TEXT_MIN_BYTES = 0 if split else 1 << 62
    wall, cpu = time.perf_counter(), cpu_seconds()
    opened = xlsx_sheet.open_sheet(data, Settings())
    if isinstance(opened, xlsx_sheet.SheetRefused):
        raise SystemExit(f"the workbook is refused: {opened.message}")
    if opened.text is None:
        cells = opened.cells()
        if isinstance(cells, xlsx_sheet.SheetRefused):
            raise SystemExit(f"the sheet cannot be read: {cells.message}")
    how = "as Arrow text" if opened.text else "split in two" if opened.grid else "read whole"
    return time.perf_counter() - wall, cpu_seconds() - cpu, how


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workbook", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    data = args.workbook.read_bytes()
    print(f"{args.workbook.name}: {len(data):,} bytes")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    runs: dict[str, list[tuple[float, float, str]]] = {"whole": [], "split": []}
    for _ in range(args.runs):
        for mode in runs:
            runs[mode].append(read_once(data, mode == "split"))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    for mode, results in runs.items():
        wall, cpu = (statistics.median(r[i] for r in results) for i in range(2))
        done = " / ".join(sorted({r[2] for r in results}))
        print(f"{mode:6} median of {len(results)}: {wall:.2f} s wall, {cpu:.2f} s CPU ({done})")


if __name__ == "__main__":
    main()
