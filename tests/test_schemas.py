"""The column spec and the pandera schema of every typed frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pkgreport.inputs import schemas
from pkgreport.inputs.schemas import (
    ARROW_IDS,
    CHECK_MESSAGES,
    COLUMNS,
    FRAME_CHECK_COLUMNS,
    INVOICE_STATUS_CODES,
    KINDS,
    KNOWN_UNUSED,
    arrow_id_columns,
    empty_frame,
    id_column,
    normalise_header,
    repeated_values,
    schema_for,
    spec_for,
    typed_columns,
)


def test_no_header_means_two_columns_of_one_kind() -> None:
    for kind in KINDS:
        seen: dict[str, str] = {}
        for spec in COLUMNS[kind]:
            for name in (spec.name, *spec.aliases):
                key = normalise_header(name)
                assert seen.setdefault(key, spec.name) == spec.name, (kind, name)


def test_known_unused_headers_are_never_aliases() -> None:
    for kind, headers in KNOWN_UNUSED.items():
        names = {normalise_header(n) for spec in COLUMNS[kind] for n in (spec.name, *spec.aliases)}
        assert not names & {normalise_header(h) for h in headers}, kind
    total = spec_for("invoices")["total"]
    assert "subtotal" not in "".join(normalise_header(a) for a in total.aliases)


def test_normalise_header() -> None:
    assert normalise_header("Appointment ID") == "appointmentid"
    assert normalise_header(" appointment_id ") == "appointmentid"
    assert normalise_header("Unapplied Account-Credit ($)") == "unappliedaccountcredit"


def test_cliniko_names_are_aliases() -> None:
    assert "patient_case" in spec_for("appointments")["case_id"].aliases
    assert "include_cancelled_attendees" in spec_for("cases")["include_cancelled"].aliases
    assert "include_dna_attendees" in spec_for("cases")["include_dna"].aliases
    assert "unapplied_account_credit" in spec_for("patients")["reported_credit"].aliases
    assert INVOICE_STATUS_CODES["40"] == "open_credit"
    assert id_column("allocations") is None and id_column("cases") == "case_id"


def test_typed_dtypes_follow_the_architecture() -> None:
    assert typed_columns("invoices") == {
        "invoice_id": "object",
        "patient_id": "object",
        "issue_date": "datetime64[ns]",
        "total": "int64",
        "number": "object",
        "status": "object",
        "appointment_id": "object",
        "case_id": "object",
        "original_invoice_id": "object",
        "archived_at": "datetime64[ns]",
        "deleted_at": "datetime64[ns]",
        "practitioner": "object",
        "business": "object",
        "item": "object",
        "closed_at": "datetime64[ns]",
        "outstanding_reported": "Int64",
        "paid_reported": "Int64",
        "credit_applied": "Int64",
        "other_allocations": "Int64",
        "appointment_time": "datetime64[ns]",
        "source_file": "object",
        "source_row": "int64",
    }
    assert typed_columns("cases")["max_sessions"] == "Int64"
    assert typed_columns("cases")["package_price"] == "Int64"
    assert typed_columns("cases")["include_dna"] == "bool"
    assert list(typed_columns("allocations")) == [
        "invoice_id",
        "payment_id",
        "source",
        "amount",
        "allocated_at",
        "allocation_id",
        "patient_id",
        "source_file",
        "source_row",
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_empty_frames_pass_their_schema(kind: str) -> None:
    frame = empty_frame(kind)
    assert {c: str(t) for c, t in frame.dtypes.items()} == typed_columns(kind)
    schema_for(kind).validate(frame)


def typed(kind: str, n: int, **values: object) -> pd.DataFrame:
    """A typed frame of `kind` with n rows: the given columns, the rest missing or False."""
    columns = {}
    for name, dtype in typed_columns(kind).items():
        if name in values:
            given = values[name]
            columns[name] = pd.Series(
                given if isinstance(given, list) else [given] * n, dtype=dtype
            )
        elif name == "source_file":
            columns[name] = pd.Series([f"{kind}.csv"] * n, dtype=object)
        elif name == "source_row":
            columns[name] = pd.Series(np.arange(2, n + 2), dtype="int64")
        elif dtype == "bool":
            columns[name] = pd.Series([False] * n, dtype=bool)
        elif dtype == "Int64":
            columns[name] = pd.Series([pd.NA] * n, dtype="Int64")
        elif dtype.startswith("datetime64"):
            columns[name] = pd.Series([pd.NaT] * n, dtype=dtype)
        else:
            columns[name] = pd.Series([np.nan] * n, dtype=object)
    return pd.DataFrame(columns)


def _patients(ids: list[object], credit: list[object] | None = None) -> pd.DataFrame:
    return typed("patients", len(ids), patient_id=ids, reported_credit=credit or [None] * len(ids))


def _failures(kind: str, frame: pd.DataFrame) -> set[tuple[str, str, int | None]]:
    with pytest.raises(pa.errors.SchemaErrors) as caught:
        schema_for(kind).validate(frame, lazy=True)
    cases = caught.value.failure_cases
    return {
        (str(c), str(col), None if pd.isna(i) else int(i))
        for c, col, i in zip(cases["check"], cases["column"], cases["index"], strict=True)
    }


def test_ids_must_be_present_and_unique() -> None:
    frame = _patients(["p1", "p2", "p1", np.nan])
    assert _failures("patients", frame) == {
        ("field_uniqueness", "patient_id", 0),
        ("field_uniqueness", "patient_id", 2),
        ("not_nullable", "patient_id", 3),
    }


def test_exact_dtypes_are_checked() -> None:
    frame = _patients(["p1"])
    frame["reported_credit"] = frame["reported_credit"].astype("float64")
    assert ("dtype_is_Int64", "reported_credit", None) in _failures("patients", frame)


def test_datetime_unit_is_checked() -> None:
    frame = empty_frame("payments")
    frame["paid_at"] = frame["paid_at"].astype("datetime64[us]")
    assert ("dtype_is_datetime64[ns]", "paid_at", None) in _failures("payments", frame)


def test_extra_columns_are_refused() -> None:
    frame = _patients(["p1"]).assign(extra=1)
    assert any(check == "column_in_schema" for check, _, _ in _failures("patients", frame))


def test_source_row_is_a_row_number() -> None:
    frame = _patients(["p1", "p2"])
    frame.loc[1, "source_row"] = 0
    assert _failures("patients", frame) == {("row_number", "source_row", 1)}


def test_max_sessions_at_least_one() -> None:
    frame = typed(
        "cases", 4, case_id=["c1", "c2", "c3", "c4"], patient_id="p1", max_sessions=[4, None, 0, 1]
    )
    assert _failures("cases", frame) == {("at_least_one", "max_sessions", 2)}


def test_invoice_status_vocabulary() -> None:
    frame = typed(
        "invoices",
        2,
        invoice_id=["i0", "i1"],
        patient_id="p1",
        issue_date=pd.Timestamp(2026, 7, 1),
        total=[1, 2],
        status=["paid", "Paid"],
    )
    assert _failures("invoices", frame) == {("known_status", "status", 1)}


def _allocations(rows: list[tuple[object, str, int]]) -> pd.DataFrame:
    return typed(
        "allocations",
        len(rows),
        invoice_id="i1",
        payment_id=[r[0] for r in rows],
        source=[r[1] for r in rows],
        amount=[r[2] for r in rows],
        patient_id="p1",
    )


def test_allocation_amount_positive_and_source_matches_payment() -> None:
    frame = _allocations(
        [
            ("y1", "payment", 100),
            (np.nan, "credit", 0),
            ("y2", "credit", 5),
            (np.nan, "payment", 5),
            ("y3", "cash", 5),
        ]
    )
    failures = _failures("allocations", frame)
    assert ("positive", "amount", 1) in failures
    assert {i for c, _, i in failures if c == "source_matches_payment"} == {2, 3, 4}
    assert ("known_source", "source", 4) in failures
    assert {i for _, _, i in failures} == {1, 2, 3, 4}


def test_a_valid_frame_passes() -> None:
    frame = typed(
        "appointments",
        2,
        appointment_id=["a1", "a2"],
        patient_id="p1",
        starts_at=pd.Timestamp(2026, 7, 1, 9),
        case_id=["c1", np.nan],
    )
    pd.testing.assert_frame_equal(schema_for("appointments").validate(frame), frame)


def test_every_named_check_has_a_message() -> None:
    names = {"not_nullable", "field_uniqueness"}
    for kind in KINDS:
        schema = schema_for(kind)
        names |= {c.name for c in schema.checks}
        for column in schema.columns.values():
            names |= {c.name for c in column.checks if not c.name.startswith("dtype_is_")}
    assert names <= set(CHECK_MESSAGES)
    assert set(FRAME_CHECK_COLUMNS) == {c.name for k in KINDS for c in schema_for(k).checks}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), st.sampled_from(["a", "b", "c", "00", "0", "d", "é"])), max_size=30
    )
)
def test_repeated_values_matches_pandas(values: list[object]) -> None:
    series = pd.Series(values, dtype=object)
    expected = (series.duplicated(keep=False) & series.notna()).tolist()
    assert repeated_values(series).tolist() == expected
    # The same ids read into Arrow text, as the schema checks' own process holds them.
    text = pd.Series(pd.array(values, dtype=pd.ArrowDtype(pyarrow.large_string())))
    assert str(text.dtype) == ARROW_IDS
    assert repeated_values(text).tolist() == expected


def test_repeats_in_arrow_text_are_found_across_the_slices_compared(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(schemas, "_SORTED_SLICE", 2)
    values = ["e", "a", None, "c", "b", "a", "d", "e", None, "f", "c"]
    text = pd.Series(pd.array(values, dtype=pd.ArrowDtype(pyarrow.large_string())))
    assert repeated_values(text).tolist() == [
        True, True, False, True, False, True, False, True, False, False, True
    ]  # fmt: skip


def test_only_the_checks_own_process_takes_ids_as_arrow_text() -> None:
    ids = pd.Series(["p1", "p2"], dtype=pd.ArrowDtype(pyarrow.large_string()))
    frame = _patients(["p1", "p2"])
    frame["patient_id"] = ids
    assert _failures("patients", frame) == {("dtype_is_object", "patient_id", None)}
    schema_for("patients", arrow_ids=True).validate(frame)
    # Any other text column stays object (or "str") there too.
    frame["patient_name"] = ids
    with pytest.raises(pa.errors.SchemaErrors) as caught:
        schema_for("patients", arrow_ids=True).validate(frame, lazy=True)
    assert caught.value.failure_cases[["check", "column"]].values.tolist() == [
        ["dtype_is_object", "patient_name"]
    ]
    assert arrow_id_columns("appointments") == ("appointment_id", "patient_id")
    assert arrow_id_columns("allocations") == ("invoice_id",)
