"""The findings registry: every finding code with its severity, stage, title and remedy (stdlib only)."""

from __future__ import annotations

from dataclasses import dataclass

SEVERITY_RANK: dict[str, int] = {"high": 0, "medium": 1, "low": 2}


@dataclass(frozen=True)
class FindingKind:
    """Everything known about one finding code: the one place it is spelled."""

    code: str
    severity: str  # "high", "medium" or "low"
    stage: str  # the engine that emits it: "cases" or "credit"
    title: str  # plain-language heading shown to people instead of the code
    explanation: str
    todo: str


def _kind(
    code: str, severity: str, stage: str, title: str, explanation: str, todo: str
) -> FindingKind:
    return FindingKind(code, severity, stage, title, explanation, todo)


# The findings registry: engines, config (`fail_on`), reports, the JSON summary and the README
# table (checked by tests/test_docs.py) all read it. Order: the order reports list kinds in.
FINDINGS: dict[str, FindingKind] = {
    kind.code: kind
    for kind in (
        _kind(
            "OVER_BOOKED",
            "high",
            "cases",
            "Over-booked packages",
            "More appointments count toward the package than it has sessions. The booking screen normally blocks this; toggled settings, un-cancellations and imports get past it.",
            "Move the extra appointments to a new package or case, or invoice them; the listed appointments are the ones numbered above the maximum.",
        ),
        _kind(
            "EXPIRED_WITH_SESSIONS_LEFT",
            "medium",
            "cases",
            "Expired packages with sessions left",
            "The package passed its expiry date with sessions unused: the clinic still holds money for sessions it may never deliver (candidate breakage).",
            "Contact the patient to book or extend, or follow your policy on expired packages and tell your accountant.",
        ),
        _kind(
            "OUTSIDE_CASE_DATES",
            "medium",
            "cases",
            "Appointments outside the package dates",
            "Appointments count toward a package but fall before its issue date or after its expiry.",
            "Check the case dates and move the appointments to the right case if needed.",
        ),
        _kind(
            "BOOKED_AFTER_CLOSE",
            "medium",
            "cases",
            "Appointments after the package was closed",
            "Appointments count toward a case that had already been closed.",
            "Re-open the case or attach the appointments to the patient's current package.",
        ),
        _kind(
            "REPORTED_REMAINING_MISMATCH",
            "medium",
            "cases",
            "Sessions remaining differ from the system",
            "The practice system's own sessions-remaining figure (named in the mapping file's [cases.check]) differs from the one recomputed from the appointments.",
            "Check for appointments missing from the export, attached to another package, or cancelled in one place but not the other.",
        ),
        _kind(
            "NEARLY_USED_UP",
            "low",
            "cases",
            "Packages nearly used up",
            "The package has only a few sessions left (1 to the nearly-used-up setting), whatever other packages the patient holds.",
            "Offer the patient the next package at their next visit.",
        ),
        _kind(
            "USED_UP_STILL_BOOKED",
            "low",
            "cases",
            "Packages used up with sessions still booked",
            "Every session of the package is used or booked, and the patient is still coming in.",
            "Offer the patient the next package at their next visit.",
        ),
        _kind(
            "SEVERAL_OPEN_PACKAGES",
            "low",
            "cases",
            "Patients with several open packages",
            "The patient has more than one open package, so sessions may be booked to the wrong one.",
            "Check which package each appointment belongs to and close any finished package.",
        ),
        _kind(
            "UNAPPLIED_CREDIT",
            "medium",
            "credit",
            "Unapplied account credit",
            "Money the patient paid in advance that has not been used: the clinic owes it to them.",
            "Apply it to the patient's next invoices, or refund it if the patient has finished.",
        ),
        _kind(
            "CREDIT_WITH_OPEN_INVOICES",
            "high",
            "credit",
            "Credit held while invoices are open",
            "The patient has account credit and an unpaid invoice at the same time.",
            "Apply the credit to the open invoice (the amount shown is what can be applied).",
        ),
        _kind(
            "DORMANT_CREDIT",
            "medium",
            "credit",
            "Dormant credit",
            "Account credit that has not moved for a long time.",
            "Contact the patient; follow your policy for unclaimed money.",
        ),
        _kind(
            "NEGATIVE_CREDIT",
            "high",
            "credit",
            "Negative credit",
            "More credit was applied or refunded than the patient ever paid: the data is inconsistent.",
            "Check the patient's payments, refunds and allocations in the practice system.",
        ),
        _kind(
            "REPORTED_CREDIT_MISMATCH",
            "high",
            "credit",
            "Reported credit disagrees",
            "The credit the practice system reports for the patient differs from the recomputed figure.",
            "Compare the patient's payments and allocations with the system; one of them is wrong.",
        ),
        _kind(
            "INVOICE_STATUS_MISMATCH",
            "medium",
            "credit",
            "Invoice status disagrees",
            "The exported invoice status (Paid, Open) does not match the payments recorded against it.",
            "Check the invoice's payments in the practice system and correct the status or allocation.",
        ),
        _kind(
            "INVOICE_BALANCE_MISMATCH",
            "medium",
            "credit",
            "Invoice balance disagrees with Cliniko's",
            "The invoice's outstanding balance, or what payments (or, with an allocations export, credit) paid on it, differs from the figures the invoices export itself shows.",
            "Compare the payments and credit of the invoice in the practice system with the exports: a payment, refund or allocation is missing or was changed after the export.",
        ),
        _kind(
            "OVER_ALLOCATED_INVOICE",
            "high",
            "credit",
            "Over-allocated invoices",
            "Payments allocated to the invoice exceed its total.",
            "Move the excess allocation to another invoice or back to account credit.",
        ),
        _kind(
            "ALLOCATION_OTHER_PATIENT",
            "high",
            "credit",
            "Allocations to another patient's invoice",
            "A payment is allocated to an invoice of a different patient. The allocation is not applied: the money stays with the patient who paid.",
            "Move the allocation to one of the paying patient's invoices or to their account credit.",
        ),
        _kind(
            "ALLOCATION_TO_DELETED_INVOICE",
            "medium",
            "credit",
            "Allocations to deleted invoices",
            "An allocation pays an invoice that was deleted or archived. The allocation is not applied: the money stays with the patient who paid.",
            "Remove the allocation, or restore the invoice if it was deleted by mistake.",
        ),
        _kind(
            "PACKAGE_SESSION_CHARGED",
            "high",
            "credit",
            "Package sessions charged again",
            "A session of a package paid in full was invoiced at a non-zero price: a likely double charge.",
            "Set the session invoice to $0 (a 'Pre-paid package' item) or refund the charge.",
        ),
    )
}


@dataclass(frozen=True)
class AllocationPolicy:
    """How unallocated payments and credit are applied to open invoices."""

    code: str
    automatic: bool  # unallocated money pays open invoices by itself
    open_demand: str  # how open invoices wait for money: "queue" (oldest first) or "stack"
    summary: str


# The allocation policies: `--allocation`, config validation and the credit engine read them.
ALLOCATION_POLICIES: dict[str, AllocationPolicy] = {
    policy.code: policy
    for policy in (
        AllocationPolicy(
            "oldest-first", True, "queue", "open invoices are paid oldest first (Cliniko's default)"
        ),
        AllocationPolicy("newest-first", True, "stack", "open invoices are paid newest first"),
        AllocationPolicy(
            "source-only", False, "queue", "a payment pays only the invoices it is allocated to"
        ),
        AllocationPolicy("none", False, "queue", "only the exported allocations are applied"),
    )
}

# When waiting account credit pays an open invoice (`--credit-applies`; automatic policies only).
CREDIT_TIMINGS: dict[str, str] = {
    "on-payment": "when a payment, $0 included, is recorded (as Cliniko does)",
    "on-issue": "as soon as the invoice is issued",
}


# The practice system the findings' advice names when the run names none ("apply it in Cliniko").
DEFAULT_SYSTEM = "Cliniko"
