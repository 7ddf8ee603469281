"""Invoices tied to appointments: by the invoice's appointment id when intact, else by number."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from pkgreport.config import Settings
from pkgreport.engine.links import _numbered_appointments, link_invoices
from pkgreport.pipeline import run


def _frame(**columns: list) -> pd.DataFrame:
    return pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in columns.items()})


APPOINTMENTS = _frame(
    appointment_id=["a1", "a2", "a3", "a3", "a4", "a5"],
    invoice_number=["101", "102", "103", "103", "104", "104"],
)


def test_own_id_when_an_appointment_has_it_else_the_single_appointment_with_the_number() -> None:
    invoices = _frame(
        invoice_id=["i1", "i2", "i3", "i4", "i5", "i6"],
        number=["101", "102", "103", "104", "999", "102"],
        appointment_id=["a1", None, "gone", None, None, "a5"],
    )
    links = link_invoices(invoices, APPOINTMENTS)
    # i1 and i6 keep their own (intact) ids; i2 by its number; i3's id names no
    # appointment, its number names one group appointment; 104 names two appointments: no link.
    assert (links.by_id, links.by_number) == (2, {"i2": "a2", "i3": "a3"})
    linked = links.appointment_ids(
        invoices["invoice_id"].to_numpy(), invoices["appointment_id"].to_numpy(dtype=object)
    )
    assert linked.tolist() == ["a1", "a2", "a3", None, None, "a5"]
    assert links.describe() == (
        "by appointment id (2 invoices), by invoice number (2 invoices whose appointment id is "
        "blank or not in the appointments export)"
    )


def test_without_invoice_numbers_in_the_appointments_the_own_id_is_used() -> None:
    invoices = _frame(invoice_id=["i1", "i2"], number=["101", "102"], appointment_id=["a1", None])
    links = link_invoices(invoices, APPOINTMENTS.drop(columns="invoice_number"))
    assert (links.by_id, links.by_number, links.describe()) == (
        1,
        {},
        "by appointment id (1 invoices)",
    )
    own = np.array(["a1", None], dtype=object)
    assert links.appointment_ids(invoices["invoice_id"].to_numpy(), own) is own


def _clinic(folder: Path, appointment_ids: tuple[str, str]) -> Path:
    """A paid $400 package of 4 sessions and a $90 invoice for one of its sessions."""
    folder.mkdir()
    (folder / "appointments.csv").write_text(
        "ID,Patient ID,Appointment Start,Patient Case,Invoice Number,Arrived\n"
        "a1,p1,01/10/2026 09:00,c1,,Yes\n"
        "a2,p1,08/10/2026 09:00,c1,1002,Yes\n",
        encoding="utf-8",
    )
    (folder / "cases.csv").write_text(
        "ID,Patient ID,Name,Max Sessions\nc1,p1,Physio 4-pack,4\n", encoding="utf-8"
    )
    (folder / "invoices.csv").write_text(
        "ID,Number,Patient ID,Issue Date,Total Amount,Appointment,Patient Case\n"
        f"i1,1001,p1,01/10/2026,$400.00,{appointment_ids[0]},c1\n"
        f"i2,1002,p1,08/10/2026,$90.00,{appointment_ids[1]},c1\n",
        encoding="utf-8",
    )
    (folder / "payments.csv").write_text(
        "ID,Patient ID,Payment Date,Amount\ny1,p1,01/10/2026,$400.00\ny2,p1,08/10/2026,$90.00\n",
        encoding="utf-8",
    )
    return folder


def test_a_session_invoice_found_by_number_is_charged_again_and_is_no_package_price(
    tmp_path: Path,
) -> None:
    by_id = run(Settings(input_dir=_clinic(tmp_path / "by_id", ("", "a2"))))
    by_number = run(Settings(input_dir=_clinic(tmp_path / "by_number", ("", ""))))
    for result in (by_id, by_number):
        charged = result.findings.loc[result.findings["code"] == "PACKAGE_SESSION_CHARGED"]
        assert charged[["subject_id", "appointment_ids", "amount"]].values.tolist() == [
            ["i2", "a2", 9000]
        ]
        package = result.packages.set_index("case_id").loc["c1"]
        # $400 price (the session invoice is not part of it) x 2 unused / 4 sessions.
        assert (package["package_price"], package["undelivered"]) == (40000, 20000)
    assert (by_id.links.by_id, by_id.links.by_number) == (1, {})
    assert (by_number.links.by_id, by_number.links.by_number) == (0, {"i2": "a2"})


def _numbers_naming_one_appointment(appointments: pd.DataFrame) -> dict[str, str]:
    """Plain reference: each number carried by rows of one appointment id only."""
    ids_by_number: dict[str, set[str]] = {}
    for number, appointment in zip(
        appointments["invoice_number"], appointments["appointment_id"], strict=True
    ):
        if not pd.isna(number):
            ids_by_number.setdefault(number, set()).add(appointment)
    return {n: next(iter(ids)) for n, ids in ids_by_number.items() if len(ids) == 1}


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a1", "a2", "a3", "a4"]), st.sampled_from(["7", "8", "9", None])
        ),
        max_size=25,
    )
)
def test_numbers_naming_one_appointment_match_the_plain_reference(
    rows: list[tuple[str, str | None]],
) -> None:
    appointments = _frame(appointment_id=[a for a, _ in rows], invoice_number=[n for _, n in rows])
    numbered = _numbered_appointments(appointments)
    assert numbered.to_dict() == _numbers_naming_one_appointment(appointments)
    if len(numbered):
        assert numbered.dtype == object and numbered.index.dtype == object


NUMBERS = st.sampled_from(["7", "8", "9", "9\x00", "\ud800", None])


@settings(max_examples=120, deadline=None)
@given(
    appointment_rows=st.lists(
        st.tuples(st.sampled_from(["a1", "a2", "a3", "a4"]), NUMBERS), min_size=1, max_size=20
    ),
    invoice_rows=st.lists(
        st.tuples(st.sampled_from(["a1", "a4", "gone", None]), NUMBERS), max_size=12
    ),
)
def test_invoices_linked_by_number_match_the_plain_reference(
    appointment_rows: list[tuple[str, str | None]],
    invoice_rows: list[tuple[str | None, str | None]],
) -> None:
    appointments = _frame(
        appointment_id=[a for a, _ in appointment_rows],
        invoice_number=[n for _, n in appointment_rows],
    )
    invoices = _frame(
        invoice_id=[f"i{k}" for k in range(len(invoice_rows))],
        appointment_id=[a for a, _ in invoice_rows],
        number=[n for _, n in invoice_rows],
    )
    links = link_invoices(invoices, appointments)
    # Plain reference: an invoice whose own id names no appointment takes the one appointment
    # carrying its number, when exactly one does.
    present = set(appointments["appointment_id"])
    single = _numbers_naming_one_appointment(appointments)
    expected = {
        invoice: single[number]
        for invoice, own, number in zip(
            invoices["invoice_id"], invoices["appointment_id"], invoices["number"], strict=True
        )
        if own not in present and number is not None and number in single
    }
    assert links.by_number == expected
    # Own ids are counted as intact ones once some number names one appointment alone.
    intact = sum(own in present for own in invoices["appointment_id"])
    with_own_id = sum(own is not None for own in invoices["appointment_id"])
    assert links.by_id == (intact if single else with_own_id)
