"""What the commands print and write besides reports: messages, tables, issue lists, validation."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pkgreport.errors import ISSUE_COLUMNS, Issue

if TYPE_CHECKING:
    from pkgreport.result import Dataset

SHOWN_ISSUES = 20


def echo_err(message: str) -> None:
    click.echo(message, err=True)


def note(quiet: bool, message: str) -> None:
    """A message for a person on stderr; `-q` leaves only results and errors."""
    if not quiet:
        echo_err(message)


def all_issues_hint(ctx: click.Context) -> str:
    """How to see every issue, naming only an option this command really has."""
    command = ctx.command
    if isinstance(command, click.Group) and ctx.invoked_subcommand:
        command = command.commands.get(ctx.invoked_subcommand, command)
    if any("--issues-out" in p.opts for p in command.params):
        return "write them all with --issues-out FILE"
    return "see them all with: pkgreport validate INPUT_DIR --issues-out FILE"


def print_issues(issues: list[Issue], hint: str, limit: int = SHOWN_ISSUES) -> None:
    for issue in issues[:limit]:
        echo_err(f"  {issue}")
    if len(issues) > limit:
        echo_err(f"  ... and {len(issues) - limit} more ({hint})")


def write_issues_csv(path: Path, issues: list[Issue]) -> None:
    import csv
    import io

    from pkgreport.atomic import write_atomic
    from pkgreport.tabular import csv_safe_text

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=ISSUE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for issue in issues:
        writer.writerow(
            {k: ("" if v is None else csv_safe_text(str(v))) for k, v in issue.as_dict().items()}
        )
    write_atomic(path, buf.getvalue())


def emit(text: str, out: Path | None, quiet: bool) -> None:
    """Text on stdout, or written atomically to `out`."""
    if out is None:
        click.echo(text, nl=False)
    else:
        from pkgreport.atomic import write_atomic

        write_atomic(out, text)
        note(quiet, f"wrote {out}")


def emit_frame(frame: Any, fmt: str, out: Path | None, quiet: bool) -> None:
    """A table on stdout or in `--out`; which columns are money is known to `tabular` alone."""
    from pkgreport.tabular import to_csv_text, to_json_text

    text = to_json_text(frame) if fmt == "json" else to_csv_text(frame)
    emit(text, out, quiet)


@dataclass(frozen=True)
class ValidationReport:
    """What `validate` found, printed for a person or as JSON for a program."""

    dataset: Dataset
    inconsistent: Any  # the engine's inconsistent-records frame
    left_out: dict[str, str]

    def rows_per_kind(self) -> dict[str, int]:
        rows = {f.kind: 0 for f in self.dataset.files}
        for f in self.dataset.files:
            rows[f.kind] += f.rows
        return rows

    def verdict(self) -> str:
        return validate_verdict(self.dataset.errors, self.dataset.warnings, self.left_out)

    def as_json(self) -> str:
        summary = {
            "files": [
                {"file": f.name, "kind": f.kind, "rows": f.rows, "sha256": f.sha256}
                for f in self.dataset.files
            ],
            "rows_per_kind": self.rows_per_kind(),
            "errors": len(self.dataset.errors),
            "warnings": len(self.dataset.warnings),
            "left_out": self.left_out,
            "verdict": self.verdict(),
            "issues": [i.as_dict() for i in self.dataset.issues],
            "inconsistent_records": [
                {
                    "code": r.code,
                    "file": r.source_file,
                    "row": int(r.source_row),
                    "message": r.message,
                }
                for r in self.inconsistent.itertuples(index=False)
            ],
        }
        return json.dumps(summary, indent=2) + "\n"

    def as_text(self, issues_written: bool) -> str:
        rows = self.rows_per_kind()
        lines = [f"Files read: {len(self.dataset.files)}"]
        lines += [f"  {f.name}: {f.kind}, {f.rows:,} rows" for f in self.dataset.files]
        lines.append("Rows per kind: " + ", ".join(f"{k} {n:,}" for k, n in sorted(rows.items())))
        lines.append(
            f"Errors: {len(self.dataset.errors)}   Warnings: {len(self.dataset.warnings)}   "
            f"Inconsistent records: {len(self.inconsistent)}"
        )
        lines += self._first_issues(issues_written)
        if len(self.inconsistent):
            lines.append(
                "Inconsistent records (reported as findings; the figures are still computed):"
            )
            lines += [
                f"  INCONSISTENT: {r.source_file}, row {r.source_row}: {r.message}"
                for r in self.inconsistent.itertuples(index=False)
            ]
        lines += [f"Left out: {section}: {reason}" for section, reason in self.left_out.items()]
        lines.append("Result: " + self.verdict())
        return "".join(line + "\n" for line in lines)

    def _first_issues(self, issues_written: bool) -> list[str]:
        shown = self.dataset.errors + self.dataset.warnings
        if not shown:
            return []
        lines = ["First issues:"] + [f"  {issue}" for issue in shown[:SHOWN_ISSUES]]
        if len(shown) > SHOWN_ISSUES and not issues_written:
            more = len(shown) - SHOWN_ISSUES
            lines.append(f"  ... and {more} more: write them all with --issues-out FILE")
        return lines


def validate_verdict(errors: list[Issue], warnings: list[Issue], left_out: dict[str, str]) -> str:
    """The last line of `validate`: never an unqualified "can be used" beside unread files, or
    when the exports make no figure at all."""
    from pkgreport.inputs.discovery import IGNORED

    if errors:
        return "the exports need fixing before the figures can be trusted"
    if {"Cases", "Credit"} <= left_out.keys():
        return (
            "the exports can be read, but no figures can be computed from them: add the "
            "exports named above (appointments with cases, or invoices with payments)"
        )
    ignored = sorted({i.file for i in warnings if i.message.startswith(IGNORED)})
    if not ignored:
        return "the exports can be used"
    return (
        f"the exports read can be used, but {len(ignored)} file(s) were ignored "
        f"({', '.join(ignored)}): see the warnings, and rename any that should be read"
    )
