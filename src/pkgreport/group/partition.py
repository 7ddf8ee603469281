"""One clinic split by patient: every calculation is per patient (or per case, and a case is one
patient's), so the engines run on each part alone and the parts are put back together.

Patients whose records point at each other (an allocation of one patient's payment to
another's invoice, an appointment on another patient's case, an invoice for another patient's
appointment or credit note of another's invoice, appointments sharing an invoice number) are
kept in one part, so no part sees half of a link.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pkgreport.config import Settings
from pkgreport.engine.cases import CaseTally
from pkgreport.engine.credit import CreditResult
from pkgreport.engine.links import InvoiceLinks
from pkgreport.result import Dataset, RunResult

if TYPE_CHECKING:
    from pkgreport.pipeline import PatientEngines, PatientFigures

# The frames split by the patient on each row; allocations follow their invoice.
PATIENT_KINDS = ("appointments", "cases", "invoices", "payments", "patients")


def _patient_codes(dataset: Dataset) -> pd.Index:
    ids = [
        frame["patient_id"].dropna().astype(object)
        for kind in PATIENT_KINDS
        if (frame := dataset.frame(kind)) is not None
    ]
    if dataset.allocations is not None:
        ids.append(dataset.allocations["patient_id"].dropna().astype(object))
    if not ids:
        return pd.Index([], dtype=object)
    return pd.Index(pd.unique(pd.concat(ids, ignore_index=True)))


def _find(parent: np.ndarray, i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _join(parent: np.ndarray, left: np.ndarray, right: np.ndarray) -> None:
    """Union the patients coded `left[k]` and `right[k]` (-1: no patient) for every k."""
    keep = (left >= 0) & (right >= 0) & (left != right)
    for a, b in zip(left[keep].tolist(), right[keep].tolist(), strict=True):
        root_a, root_b = _find(parent, a), _find(parent, b)
        if root_a != root_b:
            parent[max(root_a, root_b)] = min(root_a, root_b)


def _owner_of(codes: pd.Index, frame: pd.DataFrame, key: str) -> pd.Series:
    """Record id -> its patient's code (first row wins: ids are unique after validation)."""
    owners = frame[[key, "patient_id"]].dropna().drop_duplicates(key)
    return pd.Series(codes.get_indexer(owners["patient_id"]), index=owners[key].to_numpy())


def _linked_pairs(dataset: Dataset, codes: pd.Index) -> list[tuple[np.ndarray, np.ndarray]]:
    """(patient, patient) code pairs that must share a part."""

    def code(frame: pd.DataFrame) -> np.ndarray:
        return codes.get_indexer(frame["patient_id"])

    def through(frame: pd.DataFrame, column: str, owners: pd.Series) -> np.ndarray:
        return frame[column].map(owners).fillna(-1).to_numpy(dtype=np.int64)

    pairs = []
    appts, cases, invoices = dataset.appointments, dataset.cases, dataset.invoices
    case_owner = _owner_of(codes, cases, "case_id") if cases is not None else None
    invoice_owner = _owner_of(codes, invoices, "invoice_id") if invoices is not None else None
    if appts is not None and case_owner is not None and "case_id" in appts:
        pairs.append((code(appts), through(appts, "case_id", case_owner)))
    if appts is not None and "invoice_number" in appts:
        first = appts.dropna(subset=["invoice_number"]).drop_duplicates("invoice_number")
        pairs.append(
            (
                code(appts),
                through(appts, "invoice_number", _owner_of(codes, first, "invoice_number")),
            )
        )
    if invoices is not None and invoice_owner is not None:
        if case_owner is not None and "case_id" in invoices:
            pairs.append((code(invoices), through(invoices, "case_id", case_owner)))
        if "original_invoice_id" in invoices:
            pairs.append((code(invoices), through(invoices, "original_invoice_id", invoice_owner)))
        if appts is not None and "appointment_id" in invoices:
            appt_owner = _owner_of(codes, appts, "appointment_id")
            pairs.append((code(invoices), through(invoices, "appointment_id", appt_owner)))
            if "number" in invoices and "invoice_number" in appts:
                numbered = _owner_of(
                    codes, appts.dropna(subset=["invoice_number"]), "invoice_number"
                )
                pairs.append((code(invoices), through(invoices, "number", numbered)))
    allocations, payments = dataset.allocations, dataset.payments
    if allocations is not None:
        if invoice_owner is not None:
            pairs.append((code(allocations), through(allocations, "invoice_id", invoice_owner)))
        if payments is not None:
            payment_owner = _owner_of(codes, payments, "payment_id")
            pairs.append((code(allocations), through(allocations, "payment_id", payment_owner)))
    return pairs


def patient_parts(dataset: Dataset, partitions: int) -> tuple[pd.Index, np.ndarray]:
    """Each patient's part (0..partitions-1): linked patients share one; parts about equal."""
    codes = _patient_codes(dataset)
    parent = np.arange(len(codes))
    for left, right in _linked_pairs(dataset, codes):
        _join(parent, left, right)
    roots = np.array([_find(parent, i) for i in range(len(codes))], dtype=np.int64)
    # Groups of linked patients dealt out in turn (by their first patient's code).
    _, group = np.unique(roots, return_inverse=True)
    return codes, (group % partitions).astype(np.int64)


def split_dataset(dataset: Dataset, partitions: int) -> list[Dataset]:
    """The dataset as `partitions` datasets of whole patients (rows keep their order)."""
    codes, part_of = patient_parts(dataset, partitions)
    part_of = np.append(part_of, 0)  # rows without a known patient go to the first part

    def parts_of(frame: pd.DataFrame) -> np.ndarray:
        return part_of[codes.get_indexer(frame["patient_id"])]

    frames: dict[str, np.ndarray | None] = {}
    for kind in (*PATIENT_KINDS, "allocations"):
        frame = dataset.frame(kind)
        frames[kind] = None if frame is None else parts_of(frame)
    out = []
    for part in range(partitions):
        chosen: dict[str, Any] = {
            kind: None
            if (frame := dataset.frame(kind)) is None
            else frame.loc[frames[kind] == part].reset_index(drop=True)  # type: ignore[operator]
            for kind in frames
        }
        # Only the rows: the files, issues and rows left out stay with the whole dataset.
        out.append(Dataset(**chosen))
    return out


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The parts one after another; empty parts left out so no column's dtype is widened."""
    full = [f for f in frames if len(f)]
    if not full:
        return frames[0]
    return full[0] if len(full) == 1 else pd.concat(full, ignore_index=True)


def _by_patient(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Frames sorted by patient_id (then within the patient): a patient is in one part only, so
    a stable sort by patient_id restores the order of the whole."""
    out = _concat(frames)
    return out.sort_values("patient_id", kind="stable").reset_index(drop=True)


def _in_order_of(frame: pd.DataFrame, column: str, order: pd.Series) -> pd.DataFrame:
    """`frame` by the position of its `column` values in `order` (stable; unknown ones last)."""
    position = pd.Index(order.to_numpy(dtype=object)).get_indexer(frame[column])
    position = np.where(position < 0, len(order), position)
    return frame.take(np.argsort(position, kind="stable")).reset_index(drop=True)


def merge_tallies(tallies: list[CaseTally | None]) -> CaseTally | None:
    from pkgreport.engine.findings import combine_findings

    parts = [t for t in tallies if t is not None]
    if not parts:
        return None
    cases = _by_patient([t.cases for t in parts])
    # A case's appointments are in its part, in their order: the parts' cases give the order.
    appointments = _in_order_of(
        _concat([t.appointments for t in parts]), "case_id", cases["case_id"]
    )
    return CaseTally(cases, appointments, combine_findings(*(t.findings for t in parts)))


def _excluded_in_input_order(excluded: pd.DataFrame, dataset: Dataset) -> pd.DataFrame:
    """Excluded invoices, then payments, then allocations (as the engine lists them), each kind
    in the order of its rows in the inputs."""
    kinds = np.full(len(excluded), 3, dtype=np.int64)
    rank = np.zeros(len(excluded), dtype=np.int64)
    for number, kind in enumerate(("invoice", "payment", "allocation")):
        frame = dataset.frame(f"{kind}s")
        rows = (excluded["kind"] == kind).to_numpy()
        if frame is None or not rows.any():
            continue
        where = pd.MultiIndex.from_frame(frame[["source_file", "source_row"]].astype(object))
        asked = pd.MultiIndex.from_frame(
            excluded.loc[rows, ["source_file", "source_row"]].astype(object)
        )
        position = where.get_indexer(asked)
        kinds[rows] = number
        rank[rows] = np.where(position < 0, len(frame), position)
    return excluded.take(np.lexsort((rank, kinds))).reset_index(drop=True)


def merge_credit(results: list[CreditResult | None], dataset: Dataset) -> CreditResult | None:
    from pkgreport.engine.findings import combine_findings

    parts = [r for r in results if r is not None]
    if not parts or dataset.invoices is None:
        return None
    first = parts[0]
    return replace(
        first,
        patients=_by_patient([r.patients for r in parts]),
        invoices=_in_order_of(
            _concat([r.invoices for r in parts]), "invoice_id", dataset.invoices["invoice_id"]
        ),
        ledger=_by_patient([r.ledger for r in parts]),
        excluded=_excluded_in_input_order(_concat([r.excluded for r in parts]), dataset),
        findings=combine_findings(*(r.findings for r in parts)),
    )


# ------------------------------------------------------------------ the parts as Dask tasks


def _engine_part(part: Dataset, settings: Settings, as_of: date, links: InvoiceLinks) -> Any:
    """One part's per-patient figures (runs on a worker: it gets that part's input rows)."""
    from pkgreport.pipeline import patient_engines

    return patient_engines(part, settings, as_of, links)


def partitioned_engines(partitions: int) -> PatientEngines:
    """`pipeline.compute`'s per-patient engines, run on `partitions` parts as Dask tasks of the
    current client (the driver's, or the worker's when a whole clinic is itself a task)."""

    def engines(
        dataset: Dataset, settings: Settings, as_of: date, links: InvoiceLinks
    ) -> PatientFigures:
        parts = split_dataset(dataset, partitions)
        with _client() as client:
            futures = client.map(
                _engine_part,
                parts,
                settings=settings,
                as_of=as_of,
                links=links,
                pure=False,
            )
            figures = client.gather(futures)
        return (
            merge_tallies([tally for tally, _ in figures]),
            merge_credit([credit for _, credit in figures], dataset),
        )

    return engines


def _client() -> Any:
    """The client to submit to: inside a task, one that lets the task wait without holding its
    worker's thread (so the parts can run on that worker too)."""
    from contextlib import nullcontext

    from distributed import get_client, get_worker, worker_client

    try:
        get_worker()
    except ValueError:
        return nullcontext(get_client())
    return worker_client()


def run_partitioned(settings: Settings, partitions: int) -> RunResult:
    """`pipeline.run` with the per-patient engines on `partitions` parts: the same result."""
    from pkgreport import pipeline

    dataset = pipeline.load_dataset(settings)
    pipeline.require_clean(dataset)
    pipeline.require_totals_fit(dataset)
    return pipeline.compute(dataset, settings, engines=partitioned_engines(partitions))
