"""The error family and the `Issue` record every user-facing problem becomes."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import IntEnum
from typing import Literal

Severity = Literal["error", "warning", "info"]

# A reader turns everything else it throws (even a Rust panic, which pyo3 raises as a
# BaseException) into an issue; these still stop the program.
PASS_THROUGH = (KeyboardInterrupt, SystemExit, GeneratorExit)


class ExitCode(IntEnum):
    """Every exit code pkgreport returns; further codes only for documented scheduled-run cases."""

    DONE = 0
    DATA_NEEDS_FIXING = 1
    USAGE = 2
    INTERNAL = 3
    FAIL_ON = 4
    LOCKED = 5


# What each exit code means, as the README's table says it (tests/test_docs.py checks the table).
EXIT_MEANINGS: dict[ExitCode, str] = {
    ExitCode.DONE: "done",
    ExitCode.DATA_NEEDS_FIXING: (
        "the inputs need fixing (every issue is listed; nothing is written but the log)"
    ),
    ExitCode.USAGE: (
        "usage or configuration error, or an output that cannot be written (read-only folder, a "
        "file in the path, disk full; the message names the path and the reason)"
    ),
    ExitCode.INTERNAL: "internal error (one line; `--debug` shows the traceback)",
    ExitCode.FAIL_ON: "done, but a finding listed in `fail_on` occurred (for monitoring)",
    ExitCode.LOCKED: "another run holds the output folder's lock",
}

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

    exit_code: ExitCode = ExitCode.INTERNAL


class InputError(PkgReportError):
    """The inputs need fixing; carries every issue found, so the user fixes them all at once."""

    exit_code = ExitCode.DATA_NEEDS_FIXING

    def __init__(self, message: str, issues: list[Issue] | None = None) -> None:
        super().__init__(message)
        self.issues = list(issues or [])


class UsageError(PkgReportError):
    """A bad option, setting or configuration file."""

    exit_code = ExitCode.USAGE


class OutputError(UsageError):
    """An output cannot be written (read-only folder, a file in the path, disk full): exit 2."""


class LockError(PkgReportError):
    """Another run holds the output folder (a documented scheduled-run condition)."""

    exit_code = ExitCode.LOCKED
