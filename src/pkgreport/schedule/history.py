"""Run history in OUT_DIR/history/ and what changed since the last different run."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pkgreport.result import HISTORY_FOLDER, InputFile

HISTORY_DIR = HISTORY_FOLDER
VOLATILE_KEYS = ("generated_at", "changes_since_last_run")


def fingerprint(summary: dict[str, Any]) -> str:
    """Hash of what a run computed (its inputs, settings and figures), ignoring volatile keys."""
    stable = {k: v for k, v in summary.items() if k not in VOLATILE_KEYS}
    return hashlib.sha256(json.dumps(stable, sort_keys=True).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class HistoryEntry:
    path: Path
    sequence: int
    fingerprint: str

    def load(self) -> dict[str, Any]:
        return json.loads(self.path.read_text(encoding="utf-8"))


def list_history(out_dir: Path) -> list[HistoryEntry]:
    """Entries oldest first. Names are `<sequence>-<as_of>-<fingerprint12>.json`."""
    folder = out_dir / HISTORY_DIR
    entries = []
    if folder.is_dir():
        for path in folder.glob("*.json"):
            parts = path.stem.split("-")
            if len(parts) < 3 or not parts[0].isdigit():
                continue
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # an unreadable entry is ignored rather than stopping a scheduled run
            entries.append(HistoryEntry(path, int(parts[0]), fingerprint(data)))
    return sorted(entries, key=lambda e: e.sequence)


def baseline(entries: list[HistoryEntry], current: str) -> dict[str, Any] | None:
    """The most recent run that computed something different from this one.

    Skipping identical runs keeps a re-run's report byte-identical to the first run's.
    """
    for entry in reversed(entries):
        if entry.fingerprint != current:
            return entry.load()
    return None


def _finding_keys(summary: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {
        (f["code"], f["subject_type"], str(f["subject_id"])): f for f in summary.get("findings", [])
    }


def _month_figures(figures: dict[str, Any]) -> dict[str, Any]:
    """A month's invoice and payment figures; a part with no records counts 0 at $0."""
    return {
        f"{part}_{key}": figures.get(f"{part}_{key}", default)
        for part in ("invoices", "payments")
        for key, default in (("count", 0), ("total_cents", 0), ("digest", None))
    }


def digests_comparable(previous: dict[str, Any], current: dict[str, Any]) -> bool:
    """Whether the months' digests of two summaries were made the same way: summaries written
    before format 2 digested rows with pandas' hashes, which SHA-256 digests never equal."""
    return previous.get("format") == current.get("format")


def older_history_note(previous: dict[str, Any] | None, current: dict[str, Any]) -> str | None:
    """What a scheduled run's log says when the last run's history entry is from another version
    of pkgreport, whose month digests cannot be compared with this run's."""
    if previous is None or digests_comparable(previous, current):
        return None
    before, now = previous.get("format") or 1, current.get("format") or 1
    which = "an older" if before < now else "another"
    return (
        f"the last run (as of {previous['settings']['as_of']}) was recorded by {which} version "
        f"of pkgreport (summary format {before}, this one writes {now}): closed months are "
        "compared by their count and total this time, not by their records' digest; from the "
        "next run on, digests are compared again (nothing to do)"
    )


def diff_summaries(previous: dict[str, Any] | None, current: dict[str, Any]) -> dict[str, Any]:
    """What changed: new and resolved findings, new over-booking and dormancy, moved closed months."""
    if previous is None:
        return {
            "previous": None,
            "new_findings": [],
            "resolved_findings": [],
            "became_over_booked": [],
            "became_dormant": [],
            "moved_periods": [],
        }
    before, after = _finding_keys(previous), _finding_keys(current)
    new = [after[k] for k in sorted(set(after) - set(before))]
    resolved = [before[k] for k in sorted(set(before) - set(after))]
    moved = []
    closed_through = previous["settings"]["period_to"][:7]
    old_months = previous.get("period_figures", {})
    new_months = current.get("period_figures", {})
    compared: tuple[str, ...] = ("count", "total_cents", "digest")
    if not digests_comparable(previous, current):
        compared = ("count", "total_cents")
    for month in sorted(old_months):
        if month > closed_through:
            continue
        was, now = old_months[month], new_months.get(month, {})
        was, now = _month_figures(was), _month_figures(now)
        changed = [
            part
            for part in ("invoices", "payments")
            if any(was[f"{part}_{k}"] != now[f"{part}_{k}"] for k in compared)
        ]
        if changed:
            moved.append(
                {
                    "month": month,
                    "changed": changed,
                    **{
                        f"{part}_{figure}_{when}": figures[f"{part}_{key}"]
                        for part in ("invoices", "payments")
                        for figure, key in (("total", "total_cents"), ("count", "count"))
                        for when, figures in (("before", was), ("after", now))
                    },
                }
            )
    return {
        "previous": {
            "as_of": previous["settings"]["as_of"],
            "period_from": previous["settings"]["period_from"],
            "period_to": previous["settings"]["period_to"],
        },
        "new_findings": new,
        "resolved_findings": resolved,
        "became_over_booked": [f["subject_id"] for f in new if f["code"] == "OVER_BOOKED"],
        "became_dormant": [f["subject_id"] for f in new if f["code"] == "DORMANT_CREDIT"],
        "moved_periods": moved,
    }


def record(
    out_dir: Path, summary: dict[str, Any], text: str, entries: list[HistoryEntry]
) -> Path | None:
    """Add this run's summary to the history unless the newest entry computed the same thing."""
    from pkgreport.atomic import make_folder, remove_stale_temporaries, write_atomic

    current = fingerprint(summary)
    if entries and entries[-1].fingerprint == current:
        return None
    sequence = (entries[-1].sequence + 1) if entries else 1
    path = (
        out_dir / HISTORY_DIR / f"{sequence:04d}-{summary['settings']['as_of']}-{current[:12]}.json"
    )
    make_folder(path.parent)
    remove_stale_temporaries(path.parent)
    write_atomic(path, text)
    return path


def rows_per_kind(inputs: list[dict[str, Any]]) -> dict[str, tuple[int, list[str]]]:
    """kind -> (rows read, file names), from a summary's `inputs` list."""
    per_kind: dict[str, tuple[int, list[str]]] = {}
    for item in inputs:
        rows, names = per_kind.get(item["kind"], (0, []))
        per_kind[item["kind"]] = (rows + int(item["rows"]), [*names, item["file"]])
    return per_kind


def shrunk_inputs(
    previous: dict[str, Any], files: list[InputFile], threshold: float
) -> list[tuple[str, str, str]]:
    """(kind, files, what shrank) for each kind the previous run read that is now missing or
    has fewer than `threshold` x its rows.

    Kinds are compared, not file names: an export's name carries its date, so this month's
    payments file is not named like last month's.
    """
    before = rows_per_kind(previous.get("inputs", []))
    now = rows_per_kind([{"kind": f.kind, "rows": f.rows, "file": f.name} for f in files])
    last = f"the last run (as of {previous['settings']['as_of']})"
    shrunk: list[tuple[str, str, str]] = []
    for kind, (old_rows, old_names) in sorted(before.items()):
        rows, names = now.get(kind, (0, []))
        read = f"{old_rows:,} rows from {', '.join(old_names)}"
        if kind not in now:
            shrunk.append((kind, kind, f"no {kind} export this time, but {last} read {read}"))
        elif rows < old_rows * threshold:
            what = f"{kind} has {rows:,} rows, under {threshold:.0%} of the {read} read by {last}"
            shrunk.append((kind, ", ".join(names), what))
    return shrunk
