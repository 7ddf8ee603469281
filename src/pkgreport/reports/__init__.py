"""Report writers: the engine-agnostic model, the Excel workbook and the HTML report."""

from __future__ import annotations

from pkgreport.reports.model import (
    ChartData,
    Column,
    FindingKind,
    Headline,
    ReportContext,
    RollRow,
    Table,
)

__all__ = [
    "ChartData",
    "Column",
    "FindingKind",
    "Headline",
    "ReportContext",
    "RollRow",
    "Table",
]
