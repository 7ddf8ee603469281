"""The error family and the `Issue` record every user-facing problem becomes."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Severity = Literal["error", "warning", "info"]

ISSUE_COLUMNS = ["severity", "file", "row", "column", "value", "message"]


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem found in the inputs.

    `row` is the row as the user's spreadsheet numbers it (header = row 1), or None when the
    problem concerns the whole file. `column` is the header as written in the file when known.
    `message` says what is wrong *and* what to do about it.
    """

    severity: Severity
    file: str
    row: int | None
    column: str | None
    value: str | None
    message: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def sort_key(self) -> tuple[int, str, int, str]:
        rank = {"error": 0, "warning": 1, "info": 2}[self.severity]
        return (rank, self.file, self.row or 0, self.column or "")

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", row {self.row}"
        if self.column:
            where += f", column {self.column!r}"
        if self.value is not None:
            shown = self.value if len(self.value) <= 60 else self.value[:57] + "..."
            where += f", value {shown!r}"
        return f"{self.severity.upper()}: {where}: {self.message}"


class PkgReportError(Exception):
    """Base of every error pkgreport raises on purpose; `exit_code` is what the CLI returns."""

    exit_code = 3


class InputError(PkgReportError):
    """The inputs need fixing; carries every issue found, so the user fixes them all at once."""

    exit_code = 1

    def __init__(self, message: str, issues: list[Issue] | None = None) -> None:
        super().__init__(message)
        self.issues = list(issues or [])


class UsageError(PkgReportError):
    """A bad option, setting or configuration file."""

    exit_code = 2


class OutputError(UsageError):
    """An output cannot be written (read-only folder, a file in the path, disk full): exit 2."""


class LockError(PkgReportError):
    """Another run holds the output folder (a documented scheduled-run condition)."""

    exit_code = 5
