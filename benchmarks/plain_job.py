"""The month-end job written the plain way, with pandas and openpyxl: the yardstick for pkgreport.

    python benchmarks/plain_job.py EXPORTS_DIR OUT.xlsx

What a careful analyst would write without pkgreport, on the exports `pkgreport sample-data`
makes (Cliniko-style CSVs): read each file with `pd.read_csv`, parse `$1,234.50` money into
cents and day-first dates, tally every patient case, allocate each patient's payments to their
invoices oldest first (FIFO, `groupby().apply`), age the credit left over, and write an openpyxl
workbook. It does no validation, reports no issues and writes no HTML or JSON, so it does less
than `pkgreport report`; benchmarks/compare_plain.py times the two side by side.
"""

from __future__ import annotations

import sys
from pathlib import Path

import openpyxl
import pandas as pd

AGEING_DAYS = (30, 60, 90, 180, 365)
TIMESTAMP = "%d/%m/%Y %H:%M"
DATE = "%d/%m/%Y"
EXCEL_SAFE = r'^="?|"$'  # Cliniko writes long ids as ="1558354464010667075"


def read(folder: Path, kind: str) -> pd.DataFrame:
    """The export whose file name starts with the kind (Appointments-Cliniko-20261101.csv)."""
    path = next(p for p in sorted(folder.glob("*.csv")) if p.name.lower().startswith(kind))
    return pd.read_csv(path, dtype={"Patient Case": "Int64", "ID": str})


def cents(money: pd.Series) -> pd.Series:
    """`$1,234.50`, `-$50.00` and `($50.00)` as integer cents; blank is 0."""
    text = money.fillna("0").astype(str).str.strip()
    negative = text.str.startswith("(") | text.str.startswith("-")
    digits = text.str.replace(r"[()$,\-\s]", "", regex=True)
    amount = (pd.to_numeric(digits) * 100).round().astype("int64")
    return amount.where(~negative, -amount)


def yes(flags: pd.Series) -> pd.Series:
    return flags.fillna("").astype(str).str.strip().str.lower().isin(["yes", "true", "y", "1"])


def tally_cases(cases: pd.DataFrame, appointments: pd.DataFrame) -> pd.DataFrame:
    """Sessions counted per case, remaining and over-booked, by the case's own rules."""
    cases = cases.assign(ID=cases["ID"].astype("int64"))
    booked = appointments.merge(
        cases, left_on="Patient Case", right_on="ID", suffixes=("", "_case")
    )
    cancelled = booked["Cancellation Time"].notna()
    counts = (
        booked["Archived At"].isna()
        & (~cancelled | yes(booked["Include Cancelled Attendees"]))
        & (~yes(booked["Did Not Arrive"]) | yes(booked["Include DNA Attendees"]))
    )
    counted = booked[counts].groupby("Patient Case").size()
    tally = cases[["ID", "Patient ID", "Name", "Max Sessions"]].copy()
    tally["Counted"] = tally["ID"].map(counted).fillna(0).astype("int64")
    tally["Remaining"] = tally["Max Sessions"] - tally["Counted"]
    tally["Over-booked"] = tally["Remaining"] < 0
    return tally


def fifo(patient: pd.DataFrame, as_of: pd.Timestamp) -> pd.Series:
    """One patient's payments spent on their invoices oldest first; what is left is credit."""
    lots = patient[patient["kind"] == "payment"].sort_values("date")
    owed = patient[patient["kind"] == "invoice"].sort_values("date")["amount"].tolist()
    left = []
    for date, amount in zip(lots["date"], lots["amount"], strict=True):
        while amount > 0 and owed:
            spent = min(amount, owed[0])
            amount -= spent
            owed[0] -= spent
            if owed[0] == 0:
                owed.pop(0)
        if amount > 0:
            left.append(((as_of - date).days, amount))
    ages = pd.Series({f"<= {d} days": 0 for d in AGEING_DAYS} | {"older": 0}, dtype="int64")
    for days, amount in left:
        bucket = next((f"<= {d} days" for d in AGEING_DAYS if days <= d), "older")
        ages[bucket] += amount
    return pd.concat([pd.Series({"credit": sum(a for _, a in left), "owed": sum(owed)}), ages])


def credit(invoices: pd.DataFrame, payments: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    paid = payments[payments["Deleted At"].isna()]
    ledger = pd.concat(
        [
            pd.DataFrame(
                {
                    "patient": invoices["Patient ID"],
                    "kind": "invoice",
                    "date": pd.to_datetime(invoices["Issue Date"], format=DATE),
                    "amount": cents(invoices["Invoice Amount"]),
                }
            ),
            pd.DataFrame(
                {
                    "patient": paid["Patient ID"],
                    "kind": "payment",
                    "date": pd.to_datetime(paid["Payment Date"], format=TIMESTAMP),
                    "amount": cents(paid["Amount"]),
                }
            ),
        ]
    )
    return ledger.groupby("patient").apply(fifo, as_of, include_groups=False)


def write(path: Path, sheets: dict[str, pd.DataFrame]) -> None:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, frame in sheets.items():
        sheet = book.create_sheet(title)
        sheet.append([str(c) for c in frame.columns])
        for row in frame.itertuples(index=False):
            sheet.append([v.item() if hasattr(v, "item") else v for v in row])
    book.save(path)


def main(folder: Path, out: Path) -> None:
    appointments = read(folder, "appointments")
    cases = read(folder, "cases")
    invoices = read(folder, "invoices")
    payments = read(folder, "payments")
    patients = read(folder, "patients")
    as_of = pd.to_datetime(payments["Payment Date"], format=TIMESTAMP).max().normalize()
    balances = credit(invoices, payments, as_of).reset_index()
    patient_ids = patients["ID"].str.replace(EXCEL_SAFE, "", regex=True).astype("int64")
    reported = patients.set_index(patient_ids)["Unapplied Account Credit"]
    balances["reported"] = balances["patient"].map(cents(reported)).fillna(0).astype("int64")
    balances["difference"] = balances["credit"] - balances["reported"]
    tally = tally_cases(cases, appointments)
    summary = pd.DataFrame(
        {
            "figure": ["as of", "credit held (cents)", "over-booked cases", "patients"],
            "value": [
                str(as_of.date()),
                int(balances["credit"].sum()),
                int(tally["Over-booked"].sum()),
                len(balances),
            ],
        }
    )
    write(out, {"Summary": summary, "Cases": tally, "Credit": balances})


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]))
