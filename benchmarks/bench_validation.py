"""Time `validate_tables` on 1,000,000 appointments, invoices and payments (text, as loaded)."""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pkgreport.config import Settings
from pkgreport.inputs.tables import RawTable
from pkgreport.inputs.validation import validate_tables
from pkgreport.result import InputFile

_SD = np.dtypes.StringDType()


def _text(values: np.ndarray) -> pd.Series:
    # The loader hands over object columns of str; build them the same way.
    return pd.Series(np.asarray(values).astype(_SD).astype(object), dtype=object)


def _cat(*parts: np.ndarray | str) -> np.ndarray:
    out = np.asarray(parts[0]).astype(_SD)
    for part in parts[1:]:
        out = np.strings.add(out, np.asarray(part).astype(_SD))
    return out


def _dates(
    epoch_seconds: np.ndarray,
    order: str,
    time: bool = True,
    zulu: bool = False,
) -> pd.Series:
    """Vectorised formatting: numpy's ISO strings, sliced and re-joined in C."""
    iso = np.datetime_as_string(epoch_seconds.astype("datetime64[s]")).astype(_SD)
    y, m, d = (np.strings.slice(iso, a, b) for a, b in ((0, 4), (5, 7), (8, 10)))
    hm = np.strings.slice(iso, 11, 16)
    if order == "iso":
        out = _cat(np.strings.slice(iso, 0, 19), "Z") if zulu else np.strings.slice(iso, 0, 19)
    else:
        out = _cat(d, "/", m, "/", y)
        if time:
            out = _cat(out, " ", hm)
    return _text(out)


def _money(cents: np.ndarray) -> pd.Series:
    magnitude = np.abs(cents)
    rest = np.strings.zfill((magnitude % 100).astype(_SD), 2)
    sign = np.where(cents < 0, "-", "")
    return _text(_cat(sign, (magnitude // 100).astype(_SD), ".", rest))


def _table(kind: str, columns: dict[str, pd.Series]) -> RawTable:
    n = len(next(iter(columns.values())))
    frame = pd.DataFrame(columns, dtype=object)
    frame["source_file"] = pd.Series(np.full(n, f"{kind}.csv", dtype=object), dtype=object)
    frame["source_row"] = np.arange(2, n + 2, dtype=np.int64)
    name = f"{kind}.csv"
    return RawTable(InputFile(Path(name), name, kind, "0" * 64, 0, n), frame)


def build_tables(n: int, seed: int = 20260721) -> list[RawTable]:
    """Realistic Cliniko-like exports: day-first local times, ISO UTC payments, plain amounts."""
    rng = np.random.default_rng(seed)
    patients = _cat("P", rng.integers(1, n // 10 + 2, size=n).astype(_SD))
    starts = rng.integers(1_700_000_000, 1_800_000_000, size=n)
    cancelled = np.where(rng.random(n) < 0.1, _dates(starts - 86_400, "dmy").to_numpy(), "")
    appointments = _table(
        "appointments",
        {
            "ID": _text(np.arange(1, n + 1)),
            "Patient ID": _text(patients),
            "Appointment Start": _dates(starts, "dmy"),
            "Cancelled At": _text(cancelled),
            "Did Not Arrive": _text(np.where(rng.random(n) < 0.05, "Yes", "No")),
            "Practitioner": _text(_cat("Dr ", rng.integers(1, 20, n).astype(_SD))),
        },
    )
    totals = rng.integers(0, 50_000, size=n)
    invoices = _table(
        "invoices",
        {
            "ID": _text(_cat("I", np.arange(1, n + 1).astype(_SD))),
            "Patient ID": _text(patients),
            "Invoice Date": _dates(starts, "dmy", time=False),
            "Total": _money(totals),
            "Status": _text(np.where(rng.random(n) < 0.8, "Paid", "Open")),
        },
    )
    payments = _table(
        "payments",
        {
            "ID": _text(_cat("Y", np.arange(1, n + 1).astype(_SD))),
            "Patient ID": _text(patients),
            "Payment Date": _dates(starts, "iso", zulu=True),
            "Amount": _money(rng.integers(-5_000, 100_000, size=n)),
            "Payment Method": _text(np.where(rng.random(n) < 0.5, "EFTPOS", "Cash")),
        },
    )
    return [appointments, invoices, payments]


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    started = time.perf_counter()
    tables = build_tables(args.rows)
    built = time.perf_counter() - started
    print(
        f"built 3 x {args.rows:,} rows of text in {built:.2f} s; peak RSS {_peak_rss_mb():.0f} MB"
    )
    settings = Settings(timezone="Australia/Sydney")
    times, cpu = [], []
    for _ in range(args.repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        dataset = validate_tables(tables, settings)
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    rows = {k: len(dataset.frame(k)) for k in ("appointments", "invoices", "payments")}
    shown = ", ".join(f"{t:.2f}" for t in times)
    # The first run also pays pandera's one-off lazy imports (~0.5 s).
    # CPU time is the steadier figure on a machine shared with other work.
    print(
        f"validate_tables: {min(times):.2f} s wall best ({shown}), {min(cpu):.2f} s CPU; "
        f"rows kept {rows}; "
        f"issues {len(dataset.issues)}; peak RSS {_peak_rss_mb():.0f} MB"
    )


if __name__ == "__main__":
    main()
