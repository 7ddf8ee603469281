"""The workbook's cell formats: each made once, and the one each column's cells take."""

from __future__ import annotations

from typing import Any

from xlsxwriter.workbook import Workbook

from pkgreport.reports.filters import excel_date_format, excel_money_format
from pkgreport.reports.model import Column, ReportContext


class Styles:
    """Every cell format the workbook uses, created once."""

    def __init__(self, workbook: Workbook, ctx: ReportContext) -> None:
        date_fmt = excel_date_format(ctx.date_order)
        money_fmt = excel_money_format(ctx.currency_symbol)
        self.title = workbook.add_format({"bold": True, "font_size": 14})
        self.heading = workbook.add_format({"bold": True, "font_size": 12})
        self.bold = workbook.add_format({"bold": True})
        self.note = workbook.add_format({"italic": True, "font_color": "#595959"})
        self.text = workbook.add_format({"num_format": "@"})
        self.wrap = workbook.add_format({"text_wrap": True, "valign": "top"})
        # The other cells of a row whose text wraps start at its top, beside the first line.
        self.top = workbook.add_format({"valign": "top"})
        self.top_int = workbook.add_format({"num_format": "#,##0", "valign": "top"})
        self.highlight = workbook.add_format({"bg_color": "#FFE699"})
        self.by_kind = {
            "text": self.text,
            "id": self.text,
            "money": workbook.add_format({"num_format": money_fmt}),
            "int": workbook.add_format({"num_format": "#,##0"}),
            "date": workbook.add_format({"num_format": date_fmt}),
            "datetime": workbook.add_format({"num_format": date_fmt + " hh:mm"}),
            "percent": workbook.add_format({"num_format": "0%"}),
            "bool": workbook.add_format({"align": "center"}),
        }
        # Row numbers are looked up, not added: no thousands separator.
        self.plain_int = workbook.add_format({"num_format": "0"})

    def format_for(self, column: Column) -> Any:
        if column.kind == "int" and not column.grouped:
            return self.plain_int
        return self.by_kind[column.kind]
