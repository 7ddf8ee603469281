"""Folder discovery: which files are exports, of which kind (by name, else by header)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from pathlib import Path

from pkgreport.errors import Issue
from pkgreport.inputs.surrogates import name_is_text, name_not_text, shown_name
from pkgreport.inputs.tables import file_error, file_warning
from pkgreport.result import HISTORY_FOLDER, LOCK_NAME, OWN_OUTPUT_PREFIX, OWN_OUTPUT_SUFFIXES

# --------------------------------------------------------------------------------------------
# Kinds and discovery
# --------------------------------------------------------------------------------------------

KIND_WORDS: dict[str, str] = {
    "appointments": "appointments",
    "appointment": "appointments",
    "cases": "cases",
    "case": "cases",
    "invoices": "invoices",
    "invoice": "invoices",
    "payments": "payments",
    "payment": "payments",
    "allocations": "allocations",
    "allocation": "allocations",
    "patients": "patients",
    "patient": "patients",
}

CSV_SUFFIXES = frozenset({".csv", ".tsv", ".txt"})

_KIND_LIST = "appointments, cases, invoices, payments, allocations, patients"
# The words of a file name: runs of letters, split where a capital starts a word (PatientCases).
_NAME_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")


def kinds_named(path: Path) -> tuple[str, ...]:
    """The kinds a file's name names, by any word of it (case-insensitive), sorted.

    A plural word names the kind; a singular one (`Patient` in `Patient_Cases`, `Payment` in
    `Payment_Allocations`) counts only when no plural word names a kind.
    """
    words = [word.casefold() for word in _NAME_WORD.findall(Path(path).stem)]
    plural = {KIND_WORDS[word] for word in words if word in KIND_WORDS and KIND_WORDS[word] == word}
    singular = {KIND_WORDS[word] for word in words if word in KIND_WORDS}
    return tuple(sorted(plural or singular))


def kind_of(path: Path) -> str | None:
    """The one kind a file's name names (see `kinds_named`), or None for none or several."""
    kinds = kinds_named(path)
    return kinds[0] if len(kinds) == 1 else None


NOTE_SUFFIXES = frozenset(
    {".md", ".toml", ".pdf", ".docx", ".json", ".log", ".ini", ".yaml", ".yml"}
)


def discover_inputs(
    input_dir: Path,
    output_dir: Path | None = None,
    judge: Callable[[Path], tuple[str, ...]] | None = None,
) -> tuple[list[tuple[str, Path]], list[Issue]]:
    """The (kind, path) of each input file in the folder (not its sub-folders), sorted by name.

    pkgreport's own outputs (`output_dir`, when it is the input folder or a folder inside it) are
    never read or mentioned: a report must not change because the previous one sits beside it.
    `judge` tells the kinds whose columns a file's header fits best (`kinds_from_header`): a file
    whose name names no kind is read as the one kind its header shows.
    """
    folder = str(input_dir)
    try:
        if not input_dir.exists():
            return [], [file_error(folder, "input folder not found: check the path you gave")]
        if not input_dir.is_dir():
            return [], [
                file_error(
                    folder,
                    "the input path is a file, not a folder: give the folder that holds the exports",
                )
            ]
        entries = sorted(input_dir.iterdir(), key=lambda p: p.name)
    except OSError as exc:
        return [], [
            file_error(
                folder,
                f"cannot read the input folder ({exc.strerror or exc}): check it exists and you may read it",
            )
        ]

    found: list[tuple[str, Path]] = []
    issues: list[Issue] = []
    own_output = _own_output(input_dir, output_dir)
    for path in entries:
        if own_output(path):
            continue
        if not name_is_text(path.name):  # every message and report would name it
            issues.append(file_error(shown_name(path.name), name_not_text(path.name)))
            continue
        skipped = _skipped_entry(path)
        if skipped is not None:
            issues.append(skipped)
            continue
        kind, issue = _kind_for(path, judge)
        if issue is not None:
            issues.append(issue)
        if kind is not None:
            found.append((kind, path))
    return found, issues


def _skipped_entry(path: Path) -> Issue | None:
    """Why an entry of the input folder is not an export (hidden, lock file, folder), or None."""
    name = path.name
    if name.startswith("."):
        return file_warning(name, "ignored: hidden file")
    if name.startswith("~$"):
        return file_warning(
            name,
            "ignored: Excel lock file (the workbook is open in Excel); close Excel if the real file is missing",
        )
    try:
        is_dir = path.is_dir()
    except OSError:
        is_dir = False
    if is_dir:
        return file_warning(
            name,
            "ignored: sub-folder (only files directly in the input folder are read); move its files up if they are needed",
        )
    return None


def _kind_for(
    path: Path, judge: Callable[[Path], tuple[str, ...]] | None
) -> tuple[str | None, Issue | None]:
    """The kind to read a file as (from its name, else its header), and what to tell the user."""
    name = path.name
    named = kinds_named(path)
    if len(named) == 1:
        return named[0], None
    if not named and path.suffix.casefold() in NOTE_SUFFIXES:
        # A README or notes beside the exports is normal; say so without raising a warning.
        return None, Issue(
            "info", name, None, None, None, "ignored: not an export (notes or settings file)"
        )
    judged = judge(path) if judge else ()
    if named:
        return None, file_error(name, _two_kinds_named(name, named, judged))
    if len(judged) == 1:
        return judged[0], Issue(
            "info",
            name,
            None,
            None,
            None,
            f"read as {judged[0]}: the file name names no kind, and its columns are those of "
            f"{judged[0]} (name it e.g. '{judged[0]}-{name}' to say so)",
        )
    if judged:
        return None, file_error(name, _two_kinds_in_header(name, judged))
    return None, file_warning(name, _rename_advice(name))


# Every message about a file left unread starts so (`validate` counts the warnings among them).
IGNORED = "ignored: "


def _rename_advice(name: str) -> str:
    return (
        f"{IGNORED}the file name names no kind ({_KIND_LIST}), and its header does not show "
        f"which it holds; if it is an export, put its kind in the name, e.g. "
        f"'payments-{name}'"
    )


_NOT_AN_EXPORT = " (or move it out of the folder if it is not an export)"


def _two_kinds_named(name: str, named: tuple[str, ...], judged: tuple[str, ...]) -> str:
    shown = [kind for kind in judged if kind in named] or list(named)
    header = f"; its columns are those of {shown[0]}" if len(shown) == 1 and judged else ""
    others = [
        w
        for w in re.split(r"[^A-Za-z0-9]+", Path(name).stem)
        if w and w.casefold() not in KIND_WORDS
    ]
    example = "-".join([shown[0], *others]) + Path(name).suffix
    return (
        f"the file name names more than one kind ({', '.join(named)}), so pkgreport cannot tell "
        f"which it holds{header}: rename it so that one kind word appears, e.g. '{example}'"
        f"{_NOT_AN_EXPORT}"
    )


def _two_kinds_in_header(name: str, judged: tuple[str, ...]) -> str:
    return (
        f"the file name names no kind, and its columns fit {' and '.join(judged)} equally, so "
        f"pkgreport cannot tell which it holds: rename it to start with its kind, e.g. "
        f"'{judged[0]}-{name}' or '{judged[1]}-{name}'{_NOT_AN_EXPORT}"
    )


def _own_output(input_dir: Path, output_dir: Path | None) -> Callable[[Path], bool]:
    """Whether an entry of the input folder is one of pkgreport's outputs (known by its name, as
    when the input folder is also the output folder), or the output folder or one holding it."""
    output = None
    if output_dir is not None:
        with contextlib.suppress(OSError):
            output = output_dir.resolve()

    def is_own(path: Path) -> bool:
        name = path.name
        if name in (HISTORY_FOLDER, LOCK_NAME) or (
            name.startswith(OWN_OUTPUT_PREFIX) and path.suffix.casefold() in OWN_OUTPUT_SUFFIXES
        ):
            return True
        if output is None:
            return False
        try:
            resolved = path.resolve()
        except OSError:
            return False
        return resolved == output or resolved in output.parents

    return is_own


def no_exports_message(input_dir: Path) -> str:
    """What to put in a folder that holds no exports (one wording for every command)."""
    return (
        f"no exports found in {input_dir}: put this month's exports in that folder, one file per "
        "kind, each named starting with its kind (appointments, cases, invoices, payments, and "
        "optionally allocations and patients), e.g. Appointments-Cliniko-20261101.csv or "
        "invoices.xlsx (CSV or XLSX); appointments with cases, or invoices with payments, make "
        "a report"
    )
