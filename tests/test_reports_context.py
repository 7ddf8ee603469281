"""Report context: patient names come from the patients export, else the appointments."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from pkgreport.config import Settings
from pkgreport.pipeline import run
from pkgreport.reports.context import _Names, _with_names, build_context
from pkgreport.reports.model import ReportContext


def _result(patients: pd.DataFrame | None, appointments: pd.DataFrame | None) -> SimpleNamespace:
    return SimpleNamespace(dataset=SimpleNamespace(patients=patients, appointments=appointments))


PATIENTS = pd.DataFrame({
    "patient_id": pd.Series(["p1", "p2", "p1"], dtype=object),
    "patient_name": pd.Series([None, "Bo", "Al"], dtype=object),
})
APPOINTMENTS = pd.DataFrame({
    "patient_id": pd.Series(["p3", "p1", "p3", "p4"], dtype=object),
    "patient_name": pd.Series([None, "Other", "Cy", None], dtype=object),
})


def test_names_prefer_the_patients_export_then_the_first_named_appointment() -> None:
    names = _Names(_result(PATIENTS, APPOINTMENTS))  # type: ignore[arg-type]
    ids = pd.Series(["p1", "p2", "p3", "p4", "p9"], dtype=object)
    assert names.lookup(ids).tolist()[:3] == ["Al", "Bo", "Cy"]
    assert names.lookup(ids).isna().tolist() == [False, False, False, True, True]


def test_names_from_appointments_alone_and_from_nothing() -> None:
    only_appts = _Names(_result(None, APPOINTMENTS))  # type: ignore[arg-type]
    assert only_appts.lookup(pd.Series(["p1", "p3"], dtype=object)).tolist() == ["Other", "Cy"]
    nothing = _Names(_result(None, None))  # type: ignore[arg-type]
    assert nothing.lookup(pd.Series(["p1"], dtype=object)).isna().all()


def test_with_names_keeps_a_frame_s_own_name_and_skips_unwanted_rows() -> None:
    names = _Names(_result(PATIENTS, APPOINTMENTS))  # type: ignore[arg-type]
    frame = pd.DataFrame({
        "patient_id": pd.Series(["p1", "p2", "TOTAL"], dtype=object),
        "patient_name": pd.Series(["Own", None, None], dtype=object),
        "credit": np.array([1, 2, 3]),
    })
    out = _with_names(frame, names, rows=frame["patient_id"] != "TOTAL")
    assert out["patient_name"].tolist()[:2] == ["Own", "Bo"]
    assert pd.isna(out["patient_name"].iloc[2])
    assert frame["patient_name"].tolist()[1] is None  # the input is not modified


def _nameless_clinic(folder: Path) -> Path:
    """Real exports carry no name in appointments, and the patients file may be absent."""
    folder.mkdir()
    (folder / "appointments.csv").write_text(
        "ID,Patient ID,Appointment Start,Patient Case\n"
        "a1,p1,01/10/2026 09:00,c1\n"
        "a2,p1,08/10/2026 09:00,c1\n", encoding="utf-8")
    (folder / "cases.csv").write_text("ID,Patient ID,Name,Max Sessions\nc1,p1,Physio 2-pack,2\n",
                                      encoding="utf-8")
    (folder / "invoices.csv").write_text(
        "ID,Patient ID,Issue Date,Total Amount\ni1,p2,10/10/2026,$95.00\n", encoding="utf-8")
    (folder / "payments.csv").write_text(
        "ID,Patient ID,Payment Date,Amount\npay1,p2,02/10/2026,$300.00\n", encoding="utf-8")
    return folder


def _table(context: ReportContext, key: str) -> pd.DataFrame:
    return next(t for t in context.tables if t.key == key).frame


def test_no_name_anywhere_still_builds_every_table_showing_the_id(tmp_path: Path) -> None:
    result = run(Settings(input_dir=_nameless_clinic(tmp_path / "exports")))
    context = build_context(result)
    credit = _table(context, "credit")
    assert credit[["patient_id", "credit"]].values.tolist() == [["p2", 30000]]
    assert credit["patient_name"].isna().all()
    roll = _table(context, "rollforward")
    assert roll[["patient_id", "patient_name", "closing"]].values.tolist()[-1] == [
        "TOTAL", "All patients", 30000]


def test_a_period_without_credit_movement_rolls_forward_to_a_total_row_alone(tmp_path: Path) -> None:
    folder = _nameless_clinic(tmp_path / "exports")
    settings = Settings(input_dir=folder, period_start=date(2025, 1, 1), period_end=date(2025, 1, 31))
    roll = _table(build_context(run(settings)), "rollforward")
    assert roll[["patient_id", "patient_name", "opening", "created", "applied", "refunded",
                 "closing"]].values.tolist() == [["TOTAL", "All patients", 0, 0, 0, 0, 0]]
