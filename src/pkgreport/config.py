"""One frozen `Settings` object: every knob a run has, with its default, built from options."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal

DateOrder = Literal["dmy", "mdy", "ymd"]
AllocationPolicy = Literal["oldest-first", "newest-first", "source-only", "none"]

DATE_ORDERS: tuple[str, ...] = ("dmy", "mdy", "ymd")
ALLOCATION_POLICIES: tuple[str, ...] = ("oldest-first", "newest-first", "source-only", "none")
DEFAULT_AGEING_BUCKETS: tuple[int, ...] = (30, 60, 90, 180, 365)


@dataclass(frozen=True)
class Settings:
    """Everything that decides a run's output. Same settings + same inputs = same bytes out."""

    input_dir: Path | None = None
    output_dir: Path | None = None
    timezone: str = "UTC"
    date_order: DateOrder = "dmy"
    columns_file: Path | None = None
    sheet: str | None = None
    allocation: AllocationPolicy = "oldest-first"
    as_of: date | None = None
    period_start: date | None = None
    period_end: date | None = None
    dormant_days: int = 365
    nearly_used_up: int = 1
    ageing_buckets: tuple[int, ...] = DEFAULT_AGEING_BUCKETS
    min_date: date = date(1990, 1, 1)
    max_date: date = date(2100, 12, 31)
    title: str = "Packages and account credit"
    fail_on: tuple[str, ...] = ()
    generated_at: str | None = None
    # Limits that keep a hostile or broken workbook from exhausting the machine.
    max_xlsx_uncompressed_bytes: int = 1024 * 1024 * 1024
    max_xlsx_compression_ratio: int = 200
    max_xlsx_cells: int = 50_000_000
    # The HTML report caps long tables; the workbook always has every row.
    html_max_rows: int = 1000
    quiet: bool = False
    column_map: dict[str, dict[str, str]] = field(default_factory=dict)

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
