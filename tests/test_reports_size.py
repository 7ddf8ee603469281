"""The report modules stay readable at once: no function over 80 lines, no module over 600."""

from __future__ import annotations

import ast
from pathlib import Path

import pkgreport.reports

REPORTS = Path(pkgreport.reports.__file__).parent


def test_report_functions_and_modules_are_short() -> None:
    too_long = []
    for path in sorted(REPORTS.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > 600:
            too_long.append(f"{path.name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 80:
                    too_long.append(f"{path.name}: {node.name}() {length} lines")
    assert too_long == []
