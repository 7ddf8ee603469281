"""Write a deterministic demo set of Cliniko-style exports: bulk plus planted rows per kind."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np

from pkgreport.atomic import write_atomic
from pkgreport.demo.bulk import bulk_tables
from pkgreport.demo.formats import FILE_STEMS, HEADERS, ExportTable, period_end, xlsx_bytes
from pkgreport.demo.plants import Plant, build_plants
from pkgreport.errors import UsageError

_DEFAULT_START = date(2026, 8, 1)


def _planted_index(plants: list[Plant]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in plants:
        out.setdefault(p.code, []).append(p.subject_id)
    return out


_DEFAULT_BLOCK = build_plants(_DEFAULT_START, (period_end(_DEFAULT_START, 3) - _DEFAULT_START).days)
PLANTS: tuple[Plant, ...] = tuple(_DEFAULT_BLOCK.plants)
# Finding code -> subject ids (case, patient or invoice ids, as `Plant.subject_type` says) that
# every sample made by `generate` contains, whatever its size, seed, start or number of months.
PLANTED: dict[str, list[str]] = _planted_index(list(PLANTS))
# The true account credit (cents) of each planted patient at the export date, worked by hand.
PLANTED_CREDIT: dict[str, int] = dict(_DEFAULT_BLOCK.expected_credit)


def export_files(
    out_dir: Path, start: date = _DEFAULT_START, months: int = 3, fmt: str = "csv"
) -> dict[str, Path]:
    """The file each kind goes to, named like Cliniko's exports with the export date."""
    stamp = period_end(start, months).strftime("%Y%m%d")
    return {kind: Path(out_dir) / f"{FILE_STEMS[kind]}-Cliniko-{stamp}.{fmt}" for kind in HEADERS}


def build_tables(
    *, patients: int = 300, months: int = 3, seed: int = 7, start: date = _DEFAULT_START
) -> dict[str, ExportTable]:
    """Bulk plus planted rows per kind, in memory (what `generate` writes)."""
    if patients < 0:
        raise UsageError(f"--patients must be 0 or more, not {patients}.")
    if months < 1:
        raise UsageError(f"--months must be 1 or more, not {months}.")
    export_day = (period_end(start, months) - start).days
    rng = np.random.default_rng(seed)
    bulk = bulk_tables(rng, patients, start, export_day, months)
    block = build_plants(start, export_day)
    return {kind: ExportTable(HEADERS[kind], bulk[kind], block.rows[kind]) for kind in HEADERS}


def generate(
    out_dir: Path,
    *,
    patients: int = 300,
    months: int = 3,
    seed: int = 7,
    start: date = _DEFAULT_START,
    fmt: str = "csv",
) -> list[Path]:
    """Write one export file per kind into `out_dir` and return their paths.

    The same arguments give byte-identical files. `patients` bulk patients are generated with
    `numpy.random.default_rng(seed)` over `months` months from `start`; the planted patients of
    `PLANTS` are added to every run. Only the six files named by `export_files` are written, each
    atomically; nothing else in `out_dir` is touched.
    """
    if fmt not in ("csv", "xlsx"):
        raise UsageError(f"--format must be csv or xlsx, not {fmt!r}.")
    out_dir = Path(out_dir)
    tables = build_tables(patients=patients, months=months, seed=seed, start=start)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = export_files(out_dir, start, months, fmt)
    written = []
    for kind, table in tables.items():
        if fmt == "csv":
            write_atomic(paths[kind], table.csv_chunks())
        else:
            write_atomic(paths[kind], [xlsx_bytes(table, FILE_STEMS[kind])])
        written.append(paths[kind])
    return written
