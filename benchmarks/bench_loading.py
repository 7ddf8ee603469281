"""Time `load_file` on a 1,000,000-row CSV and a 100,000-row XLSX and report peak RSS.

Run: python benchmarks/bench_loading.py [--rows 1000000] [--xlsx-rows 100000] [--keep DIR]
(with --keep, files already in DIR are reused). Wall time on a busy machine overstates; CPU is shown too.
The XLSX is written twice: every cell as text (as an export tool writes it), and as Excel saves
it ("excel": ids as numbers, times as date cells), which makes the reader tell dates from ids.
Targets: the CSV well under 3 s, the XLSX under 3 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pkgreport.config import Settings
from pkgreport.inputs.loading import load_file

HEADERS = [
    "ID",
    "Patient ID",
    "Patient",
    "Appointment start",
    "Appointment end",
    "Patient case",
    "Cancelled at",
    "Did not arrive",
    "Practitioner",
    "Business",
    "Appointment type",
    "Deleted at",
]


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal digits of non-negative ints as an (n, width) uint8 matrix of ASCII."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((values[:, None] // powers) % 10 + ord("0")).astype(np.uint8)


def _text(values: np.ndarray) -> np.ndarray:
    """A fixed-width bytes array as an (n, width) uint8 matrix; NUL padding is removed later."""
    return values.view(np.uint8).reshape(len(values), -1)


def _pick(rng: np.random.Generator, pool: list[str], rows: int, blank: float = 0.0) -> np.ndarray:
    picked = np.array(pool, dtype="S")[rng.integers(0, len(pool), rows)]
    if blank:
        picked[rng.random(rows) < blank] = b""
    return picked


def _columns(rows: int, seed: int = 20261101) -> list[np.ndarray]:
    """Appointment-like columns as uint8 matrices, built with vectorised numpy ops (no Python loop)."""
    rng = np.random.default_rng(seed)
    month = _digits(rng.integers(1, 13, rows), 2)
    day = _digits(rng.integers(1, 29, rows), 2)
    hour = _digits(rng.integers(7, 19, rows), 2)

    def stamp(minute: bytes) -> np.ndarray:
        def const(text: bytes) -> np.ndarray:
            return np.broadcast_to(np.frombuffer(text, dtype=np.uint8), (rows, len(text)))

        return np.hstack(
            [const(b"2026-"), month, const(b"-"), day, const(b"T"), hour, const(minute + b":00Z")]
        )

    starts = stamp(b":00")
    cancelled = starts.copy()
    cancelled[rng.random(rows) >= 0.05] = 0  # 5% cancelled, the rest blank
    case = _digits(rng.integers(1, 90_000, rows), 5)
    case[rng.random(rows) >= 0.6] = 0  # 40% not attached to a case
    return [
        _digits(np.arange(1, rows + 1) + 10_000_000, 8),
        _digits(rng.integers(1, 40_000, rows), 6),
        _text(
            _pick(
                rng,
                ["Alex Nguyen", "Sam Smith", "Jo O'Brien", "Kim Garcia", "Lee Brown", "Pat Wilson"],
                rows,
            )
        ),
        starts,
        stamp(b":45"),
        case,
        cancelled,
        _text(np.where(rng.random(rows) < 0.03, b"true", b"false").astype("S5")),
        _text(_pick(rng, ["Dr Ana Silva", "Ben Carter", "Chloe Wu", "Dev Patel"], rows)),
        _text(_pick(rng, ["Fitzroy Physio", "Richmond Clinic"], rows)),
        _text(_pick(rng, ["Initial consult", "Follow-up", "Package session"], rows)),
        np.zeros((rows, 1), dtype=np.uint8),  # deleted_at: always blank
    ]


def write_csv(path: Path, rows: int) -> None:
    columns = _columns(rows)
    separators = [np.full((rows, 1), ord(","), dtype=np.uint8)] * (len(columns) - 1)
    newline = np.full((rows, 1), ord("\n"), dtype=np.uint8)
    pieces = [p for pair in zip(columns, [*separators, newline], strict=True) for p in pair]
    matrix = np.hstack(pieces)
    # Dropping the NUL padding turns fixed-width rows into the variable-width CSV text.
    body = matrix.tobytes().replace(b"\x00", b"")
    path.write_bytes(",".join(HEADERS).encode() + b"\n" + body)


NUMBER_COLUMNS = (0, 1, 5)  # ID, Patient ID, Patient case
TIME_COLUMNS = (3, 4, 6)  # Appointment start and end, Cancelled at


def write_xlsx(path: Path, rows: int, as_excel: bool = False) -> None:
    import xlsxwriter

    columns = [m.copy().view(f"S{m.shape[1]}").ravel().astype(str).tolist() for m in _columns(rows)]
    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    stamp = workbook.add_format({"num_format": "dd/mm/yyyy hh:mm"})
    sheet = workbook.add_worksheet("Appointments")
    sheet.write_row(0, 0, HEADERS)
    # constant_memory streams rows, so they must be written in order.
    for i, row in enumerate(zip(*columns, strict=True), start=1):
        sheet.write_row(i, 0, row)
        if as_excel:
            for j in NUMBER_COLUMNS:
                if row[j]:
                    sheet.write_number(i, j, int(row[j]))
            for j in TIME_COLUMNS:
                if row[j]:
                    sheet.write_datetime(i, j, dt.datetime.fromisoformat(row[j][:-1]), stamp)
    workbook.close()


def _peak_rss_mb() -> float:
    # ru_maxrss is kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _time_load(path: Path, kind: str) -> tuple[float, float, int, int]:
    start, cpu = time.perf_counter(), time.process_time()
    table, issues = load_file(path, kind, Settings())
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    errors = [i for i in issues if i.severity == "error"]
    if table is None or errors:
        sys.exit(f"load failed: {errors[:3]}")
    return elapsed, cpu, len(table.frame), table.frame.shape[1]


def _time_bare(path: Path) -> tuple[float, float]:
    import io

    import pandas as pd
    from python_calamine import CalamineWorkbook

    start, cpu = time.perf_counter(), time.process_time()
    if path.suffix == ".csv":
        options = {"keep_default_na": False, "na_filter": False, "skip_blank_lines": False}
        pd.read_csv(io.BytesIO(path.read_bytes()), header=None, dtype=object, **options)
    else:
        CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python(skip_empty_area=False)
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--xlsx-rows", type=int, default=100_000)
    parser.add_argument(
        "--keep", type=Path, default=None, help="write the files here and keep them"
    )
    parser.add_argument("--write-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--load",
        choices=["csv", "xlsx", "excel", "csv-bare", "xlsx-bare", "excel-bare"],
        help=argparse.SUPPRESS,
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {
            "csv": folder / "appointments-bench.csv",
            "xlsx": folder / "appointments-bench.xlsx",
            "excel": folder / "appointments-bench-excel.xlsx",
        }
        if args.load in ("csv-bare", "xlsx-bare", "excel-bare"):
            elapsed, cpu = _time_bare(paths[args.load[:-5]])
            print(
                f"  bare {'pandas.read_csv' if args.load == 'csv-bare' else 'calamine to_python'}"
                f" (reference, same file): {elapsed:.2f} s wall, {cpu:.2f} s CPU; peak RSS {_peak_rss_mb():.0f} MB"
            )
            return
        if args.load:
            elapsed, cpu, rows, cols = _time_load(paths[args.load], "appointments")
            print(
                f"load_file {args.load.upper():4}: {rows:,} rows x {cols} columns in {elapsed:.2f} s wall, "
                f"{cpu:.2f} s CPU (target < 3 s); peak RSS {_peak_rss_mb():.0f} MB"
            )
            return
        if args.write_only or not all(p.exists() for p in paths.values()) or args.keep is None:
            start = time.perf_counter()
            write_csv(paths["csv"], args.rows)
            size = paths["csv"].stat().st_size / 1e6
            print(
                f"wrote {paths['csv'].name}: {args.rows:,} rows, {size:.1f} MB in {time.perf_counter() - start:.2f} s"
            )
            for name in ("xlsx", "excel"):
                start = time.perf_counter()
                write_xlsx(paths[name], args.xlsx_rows, as_excel=name == "excel")
                size = paths[name].stat().st_size / 1e6
                print(
                    f"wrote {paths[name].name}: {args.xlsx_rows:,} rows, {size:.1f} MB in {time.perf_counter() - start:.2f} s"
                )
        if args.write_only:
            return
        # Each load runs in a fresh interpreter so its peak RSS is the loader's own.
        # The bare reader on the same file shows what the machine gives right now: on a busy
        # machine both numbers grow together.
        for kind in ("csv", "csv-bare", "xlsx", "xlsx-bare", "excel", "excel-bare"):
            subprocess.run(
                [sys.executable, __file__, "--load", kind, "--keep", str(folder)], check=True
            )


if __name__ == "__main__":
    main()
