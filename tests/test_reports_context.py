"""Report context: patient names come from the patients export, else the appointments."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from pkgreport.reports.context import _Names, _with_names


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
