"""The planted block: one hand-built patient per finding, the same ids for every size and seed."""

from __future__ import annotations

from datetime import date

from pkgreport.demo.formats import INITIAL_PRICE, SESSION_PRICE
from pkgreport.demo.plant_builder import Plant, PlantBuilder

__all__ = ["Plant", "PlantBuilder", "build_plants"]


_P5, _P10 = "Physio 5-session package", "Physio 10-session package"


def build_plants(start: date, export_day: int) -> PlantBuilder:
    """Every planted scenario. Day 0 = `start`; `export_day` = the export date (>= day 28)."""
    b = PlantBuilder(start, export_day)
    _plant_package_date_findings(b)
    _plant_credit_findings(b)
    _plant_dormant_credit(b)
    _plant_mismatch_findings(b)
    _plant_quiet_records(b)
    _plant_quiet_payments(b)
    _plant_late_scenarios(b)
    return b


def _plant_package_date_findings(b: PlantBuilder) -> None:
    """Over-booked, expired with sessions left, outside the case's dates, booked after close."""
    # OVER_BOOKED: 3-session package, 4 appointments attached (4th is over the maximum).
    pid = b.patient("900001", "Grace Whitfield", 0)
    case = b.case("490001", pid, "Physio 3-session package", 3, 0, 365, price=27_000)
    b.package_b(pid, case, 0, 3, 27_000, "Physio 3-session package")
    appts = [
        b.appointment(pid, d, 12 * 60, case=case, kind="Package Session") for d in (1, 8, 15, 22)
    ]
    for d, aid in zip((1, 8, 15), appts, strict=False):
        b.invoice(pid, d, 0, "Paid", "Pre-paid package", appointment=aid, case=case)
    b.plant("OVER_BOOKED", "case", case, pid, (appts[3],), "4 counted on a 3-session case")

    # EXPIRED_WITH_SESSIONS_LEFT: bought 100 days before the period, 2 of 5 used, expired day 20.
    pid = b.patient("900002", "Liam Okafor", 0, practitioner=1)
    case = b.case("490002", pid, _P5, 5, -100, 20, price=42_500)
    b.package_b(pid, case, -100, 5, 42_500, _P5)
    for d in (-93, -86):
        b.appointment(pid, d, case=case, kind="Package Session")
    b.plant(
        "EXPIRED_WITH_SESSIONS_LEFT",
        "case",
        case,
        pid,
        note=f"3 of 5 left, expired {b.clock.date(20)}",
    )

    # OUTSIDE_CASE_DATES: first appointment on day 3, the case was issued on day 10.
    pid = b.patient("900003", "Sophie Tran", 0, practitioner=2)
    case = b.case("490003", pid, _P5, 5, 10, 375, price=42_500)
    early = b.appointment(pid, 3, case=case, kind="Package Session")
    b.package_b(pid, case, 10, 5, 42_500, _P5)
    for d in (12, 19):
        b.appointment(pid, d, case=case, kind="Package Session")
    b.plant(
        "OUTSIDE_CASE_DATES",
        "case",
        case,
        pid,
        (early,),
        f"seen {b.clock.date(3)}, case issued {b.clock.date(10)}",
    )

    # BOOKED_AFTER_CLOSE: case closed on day 16, an appointment on day 23 still attached.
    pid = b.patient("900004", "Noah Fitzgerald", 0, business=1)
    case = b.case("490004", pid, _P5, 5, 1, 366, closed=(16, 12 * 60), price=42_500)
    b.package_b(pid, case, 1, 5, 42_500, _P5)
    for d in (2, 9):
        b.appointment(pid, d, case=case, kind="Package Session")
    late = b.appointment(pid, 23, case=case, kind="Package Session")
    b.plant(
        "BOOKED_AFTER_CLOSE",
        "case",
        case,
        pid,
        (late,),
        f"closed {b.clock.date(16)}, seen {b.clock.date(23)}",
    )


def _plant_credit_findings(b: PlantBuilder) -> None:
    """Nearly used up, several open packages, unapplied credit and credit with open invoices."""
    end = b.end
    # NEARLY_USED_UP (method A, paid from credit): $475 pre-paid, 4 of 5 used.
    pid = b.patient("900005", "Chloe Baker", SESSION_PRICE, practitioner=1, business=1)
    case = b.case("490005", pid, _P5, 5, 0, end + 180)
    b.payment(pid, 0, 11 * 60, 5 * SESSION_PRICE, "Credit Card", "Pre-payment: 5-session package")
    for d in (1, 8, 15, 22):
        aid = b.appointment(pid, d, 13 * 60, case=case, kind="Package Session")
        b.invoice(
            pid,
            d,
            SESSION_PRICE,
            "Paid",
            "Standard Consultation",
            appointment=aid,
            credit=SESSION_PRICE,
        )
    b.plant("NEARLY_USED_UP", "case", case, pid, note="1 of 5 left, $95.00 credit")

    # SEVERAL_OPEN_PACKAGES: a second package bought while the first still has sessions left.
    pid = b.patient("900006", "Ethan Russo", 0, practitioner=2, business=1)
    first = b.case("490006", pid, _P5, 5, 0, 365, price=42_500)
    second = b.case("490007", pid, "Pilates 10-class pack", 10, 14, 379, price=80_000)
    b.package_b(pid, first, 0, 5, 42_500, _P5)
    for d in (2, 9):
        b.appointment(pid, d, case=first, kind="Package Session")
    b.package_b(pid, second, 14, 10, 80_000, "Pilates 10-class pack")
    b.appointment(pid, 16, 17 * 60, case=second, kind="Pilates Class")
    b.plant("SEVERAL_OPEN_PACKAGES", "patient", pid, pid, note=f"cases {first} and {second}")

    # UNAPPLIED_CREDIT: $300 paid on account, nothing booked or invoiced to use it.
    pid = b.patient("900007", "Mia Kowalski", 30_000)
    b.visit_paid(pid, 5)
    b.payment(pid, 6, 14 * 60, 30_000, "Credit Card", "Payment on account")
    b.plant("UNAPPLIED_CREDIT", "patient", pid, pid, note="$300.00 credit, nothing to apply it to")

    # CREDIT_WITH_OPEN_INVOICES: $190 credit held while the day-9 invoice stays open.
    pid = b.patient("900008", "Jack Henderson", 19_000, practitioner=1)
    b.payment(pid, 1, 9 * 60, 19_000, "Credit Card", "Pre-payment: 2 sessions")
    aid = b.appointment(pid, 9)
    open_invoice = b.invoice(
        pid, 9, SESSION_PRICE, "Open", "Standard Consultation", appointment=aid
    )
    b.plant(
        "CREDIT_WITH_OPEN_INVOICES",
        "patient",
        pid,
        pid,
        note=f"$190.00 credit, invoice {open_invoice} open for $95.00",
    )


def _plant_dormant_credit(b: PlantBuilder) -> None:
    """Credit untouched since well over a year before the export date: on account, and left
    over on a closed method A case."""
    # DORMANT_CREDIT: credit untouched since well over a year before the export date.
    pid = b.patient("900009", "Isla Moreno", 15_000, practitioner=2)
    b.visit_paid(pid, -430)
    b.payment(pid, -420, 15 * 60, 15_000, "Cash", "Payment on account")
    b.plant(
        "DORMANT_CREDIT", "patient", pid, pid, note=f"$150.00 paid on account {b.clock.date(-420)}"
    )

    pid = b.patient("900010", "Oscar Lindqvist", 19_000, business=1)
    case = b.case("490010", pid, _P5, 5, -450, None, closed=(-420, 12 * 60))
    b.payment(
        pid, -450, 11 * 60, 5 * SESSION_PRICE, "Credit Card", "Pre-payment: 5-session package"
    )
    for d in (-446, -439, -432):
        aid = b.appointment(pid, d, case=case, kind="Package Session")
        b.invoice(
            pid,
            d,
            SESSION_PRICE,
            "Paid",
            "Standard Consultation",
            appointment=aid,
            credit=SESSION_PRICE,
        )
        b.payment(pid, d, 13 * 60 + 35, 0, "Account credit", "Paid from account credit")
    b.plant(
        "DORMANT_CREDIT",
        "patient",
        pid,
        pid,
        note=f"$190.00 left since {b.clock.date(-432)}, case closed",
    )


def _plant_mismatch_findings(b: PlantBuilder) -> None:
    """What Cliniko reports against what the exports show, and a charged package session."""
    end = b.end
    # REPORTED_CREDIT_MISMATCH: the patients export shows a different figure from the ledger.
    pid = b.patient("900011", "Ava Sullivan", 38_000, reported=47_500, practitioner=1, business=1)
    case = b.case("490011", pid, _P10, 10, 0, end + 180)
    b.payment(pid, 0, 11 * 60, 10 * SESSION_PRICE, "Credit Card", "Pre-payment: 10-session package")
    for d in (1, 4, 8, 11, 15, 18):
        aid = b.appointment(pid, d, 12 * 60, case=case, kind="Package Session")
        b.invoice(
            pid,
            d,
            SESSION_PRICE,
            "Paid",
            "Standard Consultation",
            appointment=aid,
            credit=SESSION_PRICE,
        )
        b.payment(pid, d, 12 * 60 + 35, 0, "Account credit", "Paid from account credit")
    b.plant("REPORTED_CREDIT_MISMATCH", "patient", pid, pid, note="true $380.00, reported $475.00")

    pid = b.patient("900012", "Lucas Pereira", 0, reported=4_500, practitioner=2, business=1)
    b.visit_paid(pid, 3, INITIAL_PRICE)
    b.visit_paid(pid, 10)
    b.plant("REPORTED_CREDIT_MISMATCH", "patient", pid, pid, note="true $0.00, reported $45.00")

    # INVOICE_STATUS_MISMATCH: a paid invoice exported as Open, an unpaid one exported as Paid.
    pid = b.patient("900013", "Harper Collins", 0)
    _, paid_but_open = b.visit_paid(pid, 4, status="Open")
    aid = b.appointment(pid, 11)
    unpaid_but_paid = b.invoice(
        pid, 11, SESSION_PRICE, "Paid", "Standard Consultation", appointment=aid
    )
    b.plant("INVOICE_STATUS_MISMATCH", "invoice", paid_but_open, pid, note="fully paid, says Open")
    b.plant("INVOICE_STATUS_MISMATCH", "invoice", unpaid_but_paid, pid, note="unpaid, says Paid")

    # PACKAGE_SESSION_CHARGED: a method B session invoiced at the full price as well.
    pid = b.patient("900014", "Zoe Anderson", 0, practitioner=1)
    case = b.case("490014", pid, _P5, 5, 0, 365, price=42_500)
    b.package_b(pid, case, 0, 5, 42_500, _P5)
    for d in (1, 8, 15):
        aid = b.appointment(pid, d, case=case, kind="Package Session")
        if d == 8:
            charged = b.invoice(
                pid,
                d,
                SESSION_PRICE,
                "Paid",
                "Standard Consultation",
                appointment=aid,
                case=case,
                paid=SESSION_PRICE,
            )
            b.payment(pid, d, 13 * 60 + 40, SESSION_PRICE)
            b.plant(
                "PACKAGE_SESSION_CHARGED",
                "invoice",
                charged,
                pid,
                (aid,),
                "$95.00 on a paid package",
            )
        else:
            b.invoice(pid, d, 0, "Paid", "Pre-paid package", appointment=aid, case=case)


def _plant_quiet_records(b: PlantBuilder) -> None:
    """Realistic records that should raise nothing: archived, deleted, credit notes."""
    end = b.end
    # An archived appointment (not counted) and a cancellation the case counts.
    pid = b.patient("900015", "Henry Walsh", 0, practitioner=2)
    case = b.case("490015", pid, _P5, 5, 2, 367, include_cancelled=True, price=42_500)
    b.package_b(pid, case, 2, 5, 42_500, _P5)
    b.appointment(pid, 3, case=case, kind="Package Session")
    b.appointment(pid, 10, case=case, kind="Package Session", archived=(9, 16 * 60))
    b.appointment(pid, 17, case=case, kind="Package Session")
    b.appointment(pid, 24, case=case, kind="Package Session", state="cancelled")

    # A duplicate payment that was deleted; a visit on the period's last day, so the latest
    # activity (the report's default as-of date) is always the day before the export date.
    pid = b.patient("900016", "Ruby Thompson", 0, business=1)
    b.visit_paid(pid, 7)
    b.payment(pid, 7, 11 * 60, SESSION_PRICE, "EFTPOS", "Duplicate entry", deleted=(7, 17 * 60))
    b.visit_paid(pid, end - 1, minute=16 * 60)

    # A credit note left as credit ("Create credit"), later used to pay part of a visit.
    pid = b.patient("900017", "William Chen", 2_500, practitioner=1, business=1)
    _, billed = b.visit_paid(pid, 2, INITIAL_PRICE)
    b.invoice(pid, 3, -INITIAL_PRICE, "", "Initial Consultation", original=billed)
    aid = b.appointment(pid, 10)
    b.invoice(
        pid,
        10,
        SESSION_PRICE,
        "Paid",
        "Standard Consultation",
        appointment=aid,
        credit=SESSION_PRICE,
    )

    # A credit note paid out as a refund.
    pid = b.patient("900018", "Ella Robinson", 0, practitioner=2, business=1)
    _, billed = b.visit_paid(pid, 4)
    b.invoice(pid, 5, -SESSION_PRICE, "", "Standard Consultation", original=billed)
    b.payment(pid, 5, 11 * 60, -SESSION_PRICE, "EFTPOS", "Refund of credit note")


def _plant_quiet_payments(b: PlantBuilder) -> None:
    """Realistic payments that should raise nothing: a refund of unused credit, oldest-first
    payment of open invoices, one payment for two invoices."""
    end = b.end
    # Method A with $0 payments, then the unused credit refunded and the case closed.
    pid = b.patient("900019", "Jacob Martin", 0)
    case = b.case("490019", pid, _P5, 5, 0, end + 180, closed=(20, 12 * 60))
    b.payment(pid, 0, 11 * 60, 5 * SESSION_PRICE, "Credit Card", "Pre-payment: 5-session package")
    for d in (1, 8):
        aid = b.appointment(pid, d, case=case, kind="Package Session")
        b.invoice(
            pid,
            d,
            SESSION_PRICE,
            "Paid",
            "Standard Consultation",
            appointment=aid,
            credit=SESSION_PRICE,
        )
        b.payment(pid, d, 13 * 60 + 35, 0, "Account credit", "Paid from account credit")
    b.payment(
        pid, 20, 11 * 60, -3 * SESSION_PRICE, "Credit Card", "Refund of unused package credit"
    )

    # One payment pays the older of two open invoices (oldest first); the newer stays open.
    pid = b.patient("900020", "Charlotte Dubois", 0, practitioner=1)
    older = b.appointment(pid, 2)
    b.invoice(
        pid,
        2,
        SESSION_PRICE,
        "Paid",
        "Standard Consultation",
        appointment=older,
        paid=SESSION_PRICE,
        closed=12,
    )
    newer = b.appointment(pid, 9)
    b.invoice(pid, 9, SESSION_PRICE, "Open", "Standard Consultation", appointment=newer)
    b.payment(pid, 12, 9 * 60, SESSION_PRICE, "Credit Card", "Paid at the desk")

    # One payment pays two invoices.
    pid = b.patient("900021", "Thomas Keane", 0, practitioner=2)
    first_visit = b.appointment(pid, 2, kind="Initial Consultation")
    b.invoice(
        pid,
        2,
        INITIAL_PRICE,
        "Paid",
        "Initial Consultation",
        appointment=first_visit,
        paid=INITIAL_PRICE,
        closed=12,
    )
    second_visit = b.appointment(pid, 9)
    b.invoice(
        pid,
        9,
        SESSION_PRICE,
        "Paid",
        "Standard Consultation",
        appointment=second_visit,
        paid=SESSION_PRICE,
        closed=12,
    )
    b.payment(pid, 12, 9 * 60, INITIAL_PRICE + SESSION_PRICE, "Credit Card")


def _plant_late_scenarios(b: PlantBuilder) -> None:
    """DNA and future bookings, a part payment missing from the exports, a group class."""
    end = b.end
    # Method A with DNA counted by the case, and two appointments booked after the export date.
    pid = b.patient("900022", "Amelia Nguyen", 66_500, business=1)
    case = b.case("490022", pid, _P10, 10, -3, end + 180, include_dna=True)
    b.payment(
        pid, -3, 16 * 60, 10 * SESSION_PRICE, "Credit Card", "Pre-payment: 10-session package"
    )
    for d, state in ((1, "attended"), (8, "dna"), (15, "attended")):
        aid = b.appointment(pid, d, 11 * 60 + 30, case=case, kind="Package Session", state=state)
        item = "Did not arrive (package session)" if state == "dna" else "Standard Consultation"
        b.invoice(pid, d, SESSION_PRICE, "Paid", item, appointment=aid, credit=SESSION_PRICE)
    for d in (end + 3, end + 10):
        b.appointment(pid, d, 11 * 60 + 30, case=case, kind="Package Session", state="booked")

    # INVOICE_BALANCE_MISMATCH: Cliniko shows a $50.00 part payment the payments export lacks.
    pid = b.patient("900023", "Maya Haddad", 0, practitioner=2, business=1)
    aid = b.appointment(pid, 6)
    part_paid = b.invoice(
        pid,
        6,
        SESSION_PRICE,
        "Open",
        "Standard Consultation",
        appointment=aid,
        paid=5_000,
        cliniko_outstanding=4_500,
    )
    b.plant(
        "INVOICE_BALANCE_MISMATCH",
        "invoice",
        part_paid,
        pid,
        note="Cliniko: $45.00 owing, $50.00 paid; the exports hold no payment",
    )

    # A group class (two patients in one appointment) and a practitioner's "Unavailable" block,
    # as Cliniko's appointments export holds them: neither changes any figure.
    b.appointment("900016", 5, 18 * 60, kind="Pilates Class", attendees="900016, 900021")
    b.unavailable("900001", 13, 12 * 60, 240)
