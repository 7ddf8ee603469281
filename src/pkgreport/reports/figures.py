"""The Summary's figures: headline cards, finding kinds, the checks not run, the charts' series."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from pkgreport.engine.findings import FINDINGS
from pkgreport.engine.liability import credit_liability
from pkgreport.reports.filters import format_money, format_prose_date, plural
from pkgreport.reports.model import FindingKind, Headline, RollRow
from pkgreport.result import RunResult, checks_not_run

# Plain-language title, explanation and remedy for each finding code (from the registry).
FINDING_TEXT: dict[str, tuple[str, str, str]] = {
    code: (kind.title, kind.explanation, kind.todo) for code, kind in FINDINGS.items()
}


def unlimited_cases(result: RunResult) -> int:
    return 0 if result.cases is None else int(result.cases.cases["max_sessions"].isna().sum())


def utilisation(result: RunResult) -> tuple[tuple[str, int], ...]:
    if result.cases is None:
        return ()
    cases = result.cases.cases
    # The two columns of the limited cases alone: selecting the rows of the whole frame would
    # take every id of it, which in the workbook's forked process copies each page holding one.
    limited = cases["max_sessions"].notna().to_numpy(dtype=bool)
    if not limited.any():
        return ()
    used = cases["counted"][limited].to_numpy(dtype=np.int64)
    cap = cases["max_sessions"][limited].to_numpy(dtype=np.int64)
    # Integer comparisons (used * 4 vs cap) place each case in a band without floats.
    bands = [
        ("none used", used == 0),
        ("up to 25%", (used > 0) & (used * 4 <= cap)),
        ("26-50%", (used * 4 > cap) & (used * 2 <= cap)),
        ("51-75%", (used * 2 > cap) & (used * 4 <= cap * 3)),
        ("76-99%", (used * 4 > cap * 3) & (used < cap)),
        ("used up", used == cap),
        ("over-booked", used > cap),
    ]
    return tuple((label, int(mask.sum())) for label, mask in bands)


def roll_series(monthly: pd.DataFrame | None) -> tuple[RollRow, ...]:
    """The monthly roll-forward from the first month with any credit movement (the months before
    it only repeat its opening balance), each month labelled like `Oct 2026`."""
    if monthly is None or monthly.empty:
        return ()
    moved = (monthly[["created", "applied", "refunded"]] != 0).any(axis=1).to_numpy()
    first = int(moved.argmax()) if moved.any() else len(monthly) - 1
    return tuple(
        RollRow(
            pd.Period(r.month, "M").strftime("%b %Y"),
            int(r.opening),
            int(r.created),
            int(r.applied),
            int(r.refunded),
            int(r.closing),
        )
        for r in monthly.iloc[first:].itertuples(index=False)
    )


def _liability_headline(result: RunResult) -> Headline:
    """The liability as the engine defines it, saying how negative balances are counted."""
    assert result.credit is not None
    owed = credit_liability(result.credit.patients["credit"])
    as_of = format_prose_date(result.as_of, result.settings.date_order)
    detail = f"owed to {plural(owed.patients_owed, 'patient')} as at {as_of}"
    if owed.patients_negative:
        detail += (
            f" ({format_money(owed.owed)}), less {format_money(-owed.negative)} of negative "
            f"balances of {plural(owed.patients_negative, 'patient')} (Negative credit)"
        )
    tone: Literal["ok", "warn", "bad"] = (
        "bad" if owed.patients_negative else ("warn" if owed.total else "ok")
    )
    return Headline("Credit liability", owed.total, "money", tone, detail)


def headlines(result: RunResult) -> tuple[Headline, ...]:
    heads: list[Headline] = []
    if result.credit is not None:
        heads.append(_liability_headline(result))
        outstanding = int(result.credit.patients["open_outstanding"].sum())
        heads.append(
            Headline(
                "Open invoices outstanding",
                outstanding,
                "money",
                "warn" if outstanding else "ok",
                "still owed to the clinic",
            )
        )
    if result.packages is not None:
        value = int(result.packages["undelivered"].sum())
        heads.append(
            Headline(
                "Package value not yet delivered",
                value,
                "money",
                "warn" if value else "ok",
                "sessions paid for in full, not yet used",
            )
        )
    if result.cases is not None:
        over = int((result.cases.cases["over_booked_by"] > 0).sum())
        heads.append(
            Headline(
                "Cases over-booked",
                over,
                "int",
                "bad" if over else "ok",
                f"of {plural(len(result.cases.cases), 'case')}",
            )
        )
    high = int((result.findings["severity"] == "high").sum()) if len(result.findings) else 0
    missing = len(checks_not_run(result))
    detail = f"{high:,} of them serious"
    if missing:
        detail += f"; {missing} of {len(FINDINGS)} checks could not run (see Findings)"
    heads.append(
        Headline(
            "Findings",
            len(result.findings),
            "int",
            "bad" if high else ("warn" if len(result.findings) or missing else "ok"),
            detail,
        )
    )
    return tuple(heads)


def unchecked(result: RunResult) -> str | None:
    """Which checks could not run and why, in one plain sentence (None when all ran)."""
    missing = checks_not_run(result)
    if not missing:
        return None
    parts = []
    for reason in dict.fromkeys(missing.values()):
        # Titles start lower case inside the sentence; names within them (Cliniko) keep theirs.
        titles = [
            FINDINGS[code].title[:1].lower() + FINDINGS[code].title[1:]
            for code, why in missing.items()
            if why == reason
        ]
        parts.append(f"{', '.join(titles)} ({reason})")
    return (
        f"{len(missing)} of {len(FINDINGS)} checks could not run: "
        + "; ".join(parts)
        + ". Add the missing exports to the input folder to run them."
    )


def finding_kinds(result: RunResult) -> tuple[FindingKind, ...]:
    findings = result.findings
    if findings.empty:
        return ()
    kinds = []
    grouped = findings.groupby("code", sort=False)
    for code, part in grouped:
        title, explanation, todo = FINDING_TEXT.get(str(code), (str(code), "", ""))
        kinds.append(
            FindingKind(
                str(code), title, len(part), str(part["severity"].iloc[0]), explanation, todo
            )
        )
    return tuple(kinds)
