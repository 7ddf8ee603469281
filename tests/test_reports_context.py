"""Report context: patient names come from the patients export, else the appointments."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from pkgreport.config import Settings
from pkgreport.engine.registry import FINDINGS
from pkgreport.pipeline import RunResult, run
from pkgreport.reports.context import _changes_table, build_context
from pkgreport.reports.figures import roll_series
from pkgreport.reports.model import ReportContext, RollRow
from pkgreport.reports.table_parts import PatientNames, with_names


def _result(patients: pd.DataFrame | None, appointments: pd.DataFrame | None) -> SimpleNamespace:
    return SimpleNamespace(dataset=SimpleNamespace(patients=patients, appointments=appointments))


PATIENTS = pd.DataFrame(
    {
        "patient_id": pd.Series(["p1", "p2", "p1"], dtype=object),
        "patient_name": pd.Series([None, "Bo", "Al"], dtype=object),
    }
)
APPOINTMENTS = pd.DataFrame(
    {
        "patient_id": pd.Series(["p3", "p1", "p3", "p4"], dtype=object),
        "patient_name": pd.Series([None, "Other", "Cy", None], dtype=object),
    }
)


def test_names_prefer_the_patients_export_then_the_first_named_appointment() -> None:
    names = PatientNames(_result(PATIENTS, APPOINTMENTS))  # type: ignore[arg-type]
    ids = pd.Series(["p1", "p2", "p3", "p4", "p9"], dtype=object)
    assert names.lookup(ids).tolist()[:3] == ["Al", "Bo", "Cy"]
    assert names.lookup(ids).isna().tolist() == [False, False, False, True, True]


def test_names_from_appointments_alone_and_from_nothing() -> None:
    only_appts = PatientNames(_result(None, APPOINTMENTS))  # type: ignore[arg-type]
    assert only_appts.lookup(pd.Series(["p1", "p3"], dtype=object)).tolist() == ["Other", "Cy"]
    nothing = PatientNames(_result(None, None))  # type: ignore[arg-type]
    assert nothing.lookup(pd.Series(["p1"], dtype=object)).isna().all()


def test_names_read_by_arrow_are_those_pandas_hashing_finds() -> None:
    # A patient id that is not text keeps Arrow out: the names are then found by hashing.
    odd = pd.concat([PATIENTS, pd.DataFrame({"patient_id": [7], "patient_name": ["Num"]})])
    ids = pd.Series(["p3", "p1", None, "p2", "p9", "p3"], dtype=object)
    wanted = np.array([True, True, True, False, True, True])
    by_arrow = PatientNames(_result(PATIENTS, APPOINTMENTS))  # type: ignore[arg-type]
    by_hash = PatientNames(_result(odd, APPOINTMENTS))  # type: ignore[arg-type]
    assert by_arrow._arrow is not None and by_hash._arrow is None
    for rows in (None, wanted):
        expected = by_hash.lookup(ids, rows)
        pd.testing.assert_series_equal(by_arrow.lookup(ids, rows), expected)
    assert by_arrow.lookup(ids, wanted).tolist()[:2] == ["Cy", "Al"]
    assert pd.isna(by_arrow.lookup(ids, wanted).iloc[3])


def test_with_names_keeps_a_frame_s_own_name_and_skips_unwanted_rows() -> None:
    names = PatientNames(_result(PATIENTS, APPOINTMENTS))  # type: ignore[arg-type]
    frame = pd.DataFrame(
        {
            "patient_id": pd.Series(["p1", "p2", "TOTAL"], dtype=object),
            "patient_name": pd.Series(["Own", None, None], dtype=object),
            "credit": np.array([1, 2, 3]),
        }
    )
    out = with_names(frame, names, rows=frame["patient_id"] != "TOTAL")
    assert out["patient_name"].tolist()[:2] == ["Own", "Bo"]
    assert pd.isna(out["patient_name"].iloc[2])
    assert frame["patient_name"].tolist()[1] is None  # the input is not modified


def _nameless_clinic(folder: Path) -> Path:
    """Real exports carry no name in appointments, and the patients file may be absent."""
    folder.mkdir()
    (folder / "appointments.csv").write_text(
        "ID,Patient ID,Appointment Start,Patient Case\n"
        "a1,p1,01/10/2026 09:00,c1\n"
        "a2,p1,08/10/2026 09:00,c1\n",
        encoding="utf-8",
    )
    (folder / "cases.csv").write_text(
        "ID,Patient ID,Name,Max Sessions\nc1,p1,Physio 2-pack,2\n", encoding="utf-8"
    )
    (folder / "invoices.csv").write_text(
        "ID,Patient ID,Issue Date,Total Amount\ni1,p2,10/10/2026,$95.00\n", encoding="utf-8"
    )
    (folder / "payments.csv").write_text(
        "ID,Patient ID,Payment Date,Amount\npay1,p2,02/10/2026,$300.00\n", encoding="utf-8"
    )
    return folder


def _table(context: ReportContext, key: str) -> pd.DataFrame:
    return next(t for t in context.tables if t.key == key).frame


def test_no_name_anywhere_still_builds_every_table_showing_the_id(tmp_path: Path) -> None:
    result = run(Settings(input_dir=_nameless_clinic(tmp_path / "exports")))
    context = build_context(result)
    credit = _table(context, "credit")
    assert credit[["patient_id", "credit"]].values.tolist() == [["p2", 30000]]
    assert credit["patient_name"].isna().all()
    roll = next(t for t in context.tables if t.key == "rollforward")
    assert roll.total_row
    assert roll.frame[["patient_id", "closing"]].values.tolist() == [["p2", 30000]]
    assert roll.frame["patient_name"].isna().all()


def test_a_period_without_credit_movement_rolls_forward_to_an_empty_table_with_its_total_row(
    tmp_path: Path,
) -> None:
    folder = _nameless_clinic(tmp_path / "exports")
    settings = Settings(
        input_dir=folder, period_start=date(2025, 1, 1), period_end=date(2025, 1, 31)
    )
    roll = next(t for t in build_context(run(settings)).tables if t.key == "rollforward")
    assert roll.total_row and roll.frame.empty


# ------------------------------------------------------------ the sample clinic, as people read it

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


@pytest.fixture(scope="module")
def sample() -> tuple[RunResult, ReportContext]:
    result = run(Settings(input_dir=SAMPLE))
    return result, build_context(result)


def test_people_read_finding_titles_and_the_code_stays_a_workbook_column(sample) -> None:
    result, ctx = sample
    codes = set(FINDINGS)
    for table in (ctx.findings, *ctx.tables):
        for column in table.columns:
            if column.kind != "text" or column.key == "code":
                continue
            words = set(
                " ".join(table.frame[column.key].dropna().astype(str))
                .replace(";", " ")
                .replace(",", " ")
                .split()
            )
            assert not words & codes, (table.key, column.key, words & codes)
    findings = ctx.findings.frame
    assert findings["finding"].tolist() == [FINDINGS[c].title for c in result.findings["code"]]
    code = next(c for c in ctx.findings.columns if c.key == "code")
    assert code.html is False and code.title == "Code"


def test_roll_forward_total_is_the_table_s_own_total_row(sample) -> None:
    result, ctx = sample
    roll = next(t for t in ctx.tables if t.key == "rollforward")
    engine_total = result.rollforward[result.rollforward["patient_id"] == "TOTAL"].iloc[0]
    assert roll.total_row and "TOTAL" not in set(roll.frame["patient_id"])
    for key in ("opening", "created", "applied", "refunded", "closing"):
        assert int(roll.frame[key].sum()) == int(engine_total[key])


def test_package_value_caption_is_true_to_its_rows(sample) -> None:
    result, ctx = sample
    packages = next(t for t in ctx.tables if t.key == "packages")
    priced = int(result.packages["package_price"].notna().sum())
    others = len(result.packages) - priced
    assert len(packages.frame) == priced
    assert packages.description == (
        f"The {priced} packages paid in full: price x unused sessions / maximum, rounded half-up "
        f"to the cent. The other {others} packages have no price (none on the case and no invoice "
        "names it) and are not listed here."
    )
    assert int(packages.frame["undelivered"].sum()) == int(result.packages["undelivered"].sum())


def test_headlines_use_plurals_and_prose_dates(sample) -> None:
    result, ctx = sample
    credit = next(h for h in ctx.headlines if h.label == "Credit liability")
    holders = int((result.credit.patients["credit"] > 0).sum())
    assert credit.detail == f"owed to {holders} patients as at 31 Oct 2026"
    cases = next(h for h in ctx.headlines if h.label == "Cases over-booked")
    assert cases.detail == f"of {len(result.cases.cases)} cases"
    assert dict(ctx.settings)["Period"] == "1 Oct 2026 to 31 Oct 2026"


def test_roll_forward_chart_starts_at_the_first_month_with_movement() -> None:
    monthly = pd.DataFrame(
        {
            "month": ["2026-07", "2026-08", "2026-09", "2026-10"],
            "opening": [500, 500, 500, 700],
            "created": [0, 0, 300, 0],
            "applied": [0, 0, 100, 0],
            "refunded": [0, 0, 0, 0],
            "closing": [500, 500, 700, 700],
        }
    )
    assert roll_series(monthly) == (
        RollRow("Sep 2026", 500, 300, 100, 0, 700),
        RollRow("Oct 2026", 700, 0, 0, 0, 700),
    )
    still = monthly.assign(created=0, applied=0, closing=500, opening=500)
    assert roll_series(still) == (RollRow("Oct 2026", 500, 0, 0, 0, 500),)
    assert roll_series(None) == ()


def test_utilisation_counts_unlimited_cases_apart(sample) -> None:
    result, ctx = sample
    cases = result.cases.cases
    assert ctx.charts.unlimited == int(cases["max_sessions"].isna().sum()) > 0
    assert sum(n for _, n in ctx.charts.utilisation) == int(cases["max_sessions"].notna().sum())


def test_changes_read_in_words_with_articles_plurals_and_prose_dates() -> None:
    finding = {"code": "OVER_BOOKED", "subject_type": "case", "subject_id": "C1", "message": "m"}
    moved = {
        "month": "2026-09",
        "changed": ["payments"],
        "payments_total_before": 100,
        "payments_total_after": 150,
        "payments_count_before": 2,
        "payments_count_after": 3,
    }
    changes = {
        "previous": {"as_of": "2026-09-30", "period_from": "2026-09-01", "period_to": "2026-09-30"},
        "new_findings": [finding],
        "resolved_findings": [],
        "moved_periods": [moved],
        "became_over_booked": ["C1"],
        "became_dormant": ["P1", "P2"],
    }
    [table] = _changes_table(changes, "dmy")
    assert table.frame["code"].tolist() == [FINDINGS["OVER_BOOKED"].title, ""]
    assert table.frame["detail"].iloc[1] == (
        "payments of Sep 2026 changed after that month was reported (2 -> 3 records): "
        "a payment was edited, added or deleted"
    )
    assert table.note == (
        "Compared with the run as of 30 Sep 2026 (period 1 Sep 2026 to "
        "30 Sep 2026). 1 case became over-booked; the credit of 2 patients "
        "became dormant."
    )


def test_by_location_leaves_out_the_figures_it_could_not_compute(tmp_path: Path) -> None:
    for name in ("Appointments", "Cases"):
        source = next(SAMPLE.glob(f"{name}-*.csv"))
        (tmp_path / source.name).write_bytes(source.read_bytes())
    ctx = build_context(run(Settings(input_dir=tmp_path)))  # no invoices, payments or patients
    by_location = next(t for t in ctx.tables if t.key == "by_location")
    assert [c.title for c in by_location.columns] == [
        "Business",
        "Package value undelivered",
        "Over-booked packages",
        "Expiring within 30 days",
    ]
    assert any(t.key == "by_practitioner" for t in ctx.tables)


def test_finding_messages_read_in_prose_dates_and_the_json_keeps_the_engine_s(sample) -> None:
    import re

    result, ctx = sample
    iso = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
    engine_messages = result.findings["message"].tolist()
    assert any(iso.search(m) for m in engine_messages)  # the engines write ISO dates
    shown = ctx.findings.frame["message"].tolist()
    assert [m for m in shown if iso.search(m)] == []
    assert "31 Oct 2026" in " ".join(shown)
