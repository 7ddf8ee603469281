"""Benchmark: tally_cases on 1,000,000 appointments and 200,000 cases (seeded, built with numpy)."""

from __future__ import annotations

import argparse
import resource
import time
from datetime import date

import numpy as np
import pandas as pd

from pkgreport.engine.cases import tally_cases

AS_OF = date(2026, 6, 30)


def _ids(prefix: str, numbers: np.ndarray) -> pd.Series:
    return pd.Series(np.char.add(prefix, numbers.astype(str)), dtype="str")


def _maybe_time(rng: np.random.Generator, base: np.ndarray, share: float) -> np.ndarray:
    """`base` where a `share` of rows are marked, NaT elsewhere."""
    return np.where(rng.random(len(base)) < share, base, np.datetime64("NaT", "ns"))


def build_frames(
    n_appointments: int, n_cases: int, seed: int = 20261125
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Typed appointments and cases frames shaped like a large clinic's export."""
    rng = np.random.default_rng(seed)
    n_patients = max(n_cases // 2, 1)
    as_of = np.datetime64(AS_OF, "ns")

    case_patient = rng.integers(0, n_patients, n_cases)
    issue = as_of - rng.integers(0, 720, n_cases).astype("timedelta64[D]")
    expiry = issue + np.timedelta64(365, "D")
    max_sessions = pd.array(rng.choice([4, 5, 6, 10], n_cases), dtype="Int64")
    max_sessions[rng.random(n_cases) < 0.1] = pd.NA
    price = pd.array(rng.choice([40000, 50000, 90000], n_cases), dtype="Int64")
    cases = pd.DataFrame(
        {
            "case_id": _ids("C", rng.permutation(n_cases)),
            "patient_id": _ids("P", case_patient),
            "case_name": pd.Series(rng.choice(["Physio 5-pack", "Massage 10-pack"], n_cases)),
            "max_sessions": max_sessions,
            "include_cancelled": rng.random(n_cases) < 0.2,
            "include_dna": rng.random(n_cases) < 0.3,
            "issue_date": _maybe_time(rng, issue, 0.9),
            "expiry_date": _maybe_time(rng, expiry, 0.5),
            "closed_at": _maybe_time(rng, issue + np.timedelta64(380, "D"), 0.2),
            "archived_at": _maybe_time(rng, issue + np.timedelta64(300, "D"), 0.01),
            "package_price": price,
            "source_file": "cases.csv",
            "source_row": np.arange(2, n_cases + 2, dtype=np.int64),
        }
    )

    # Each case gets about its maximum in appointments (a few one over, unlimited ones up to 11),
    # spread over the year after issue; the rest of the rows are unattached or orphaned.
    per_case = np.where(
        max_sessions.isna(),
        rng.integers(0, 12, n_cases),
        rng.integers(0, max_sessions.fillna(0).to_numpy(dtype=np.int64) + 2),
    )
    case_of = np.repeat(np.arange(n_cases), per_case)[:n_appointments]
    spare = n_appointments - len(case_of)
    case_of = np.concatenate([case_of, rng.integers(0, n_cases, spare)])
    patient = case_patient[case_of]
    case_id = cases["case_id"].to_numpy(dtype=object)[case_of]
    case_id[len(case_of) - spare :] = np.nan
    case_id[rng.random(n_appointments) < 0.005] = "C-missing"
    quarter_hours = rng.integers(0, 4 * 24 * 390, n_appointments)
    starts = issue[case_of] + (quarter_hours * 15).astype("timedelta64[m]").astype(
        "timedelta64[ns]"
    )
    shuffle = rng.permutation(n_appointments)
    case_id, patient, starts = case_id[shuffle], patient[shuffle], starts[shuffle]
    appointments = pd.DataFrame(
        {
            "appointment_id": _ids("A", rng.permutation(n_appointments)),
            "patient_id": _ids("P", patient),
            "starts_at": starts,
            "ends_at": starts + np.timedelta64(45, "m"),
            "case_id": pd.Series(case_id, dtype="str"),
            "cancelled_at": _maybe_time(rng, starts - np.timedelta64(1, "D"), 0.06),
            "did_not_arrive": rng.random(n_appointments) < 0.03,
            "arrived": rng.random(n_appointments) < 0.8,
            "archived_at": _maybe_time(rng, starts, 0.01),
            "deleted_at": _maybe_time(rng, starts, 0.005),
            "patient_name": _ids("Patient ", patient),
            "practitioner": pd.Series(rng.choice(["Dr A", "Dr B", "Dr C"], n_appointments)),
            "business": "Main St",
            "appointment_type": "Standard",
            "source_file": "appointments.csv",
            "source_row": np.arange(2, n_appointments + 2, dtype=np.int64),
        }
    )
    return appointments, cases


def _peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--appointments", type=int, default=1_000_000)
    parser.add_argument("--cases", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    started = time.perf_counter()
    appointments, cases = build_frames(args.appointments, args.cases)
    print(
        f"built {len(appointments):,} appointments and {len(cases):,} cases "
        f"in {time.perf_counter() - started:.2f} s; peak RSS {_peak_rss_mb():.0f} MB"
    )

    timings = []
    cpu = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        cpu_started = time.process_time()
        tally = tally_cases(appointments, cases, AS_OF)
        timings.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    print(
        f"tally_cases: best {min(timings):.2f} s, runs "
        + ", ".join(f"{t:.2f}" for t in timings)
        + f" (CPU best {min(cpu):.2f} s); peak RSS {_peak_rss_mb():.0f} MB"
    )
    print(
        f"  {len(tally.appointments):,} attached appointments; status: "
        + ", ".join(
            f"{k} {v:,}" for k, v in tally.cases["status"].value_counts().sort_index().items()
        )
    )
    print(
        f"  {len(tally.findings):,} findings: "
        + ", ".join(
            f"{k} {v:,}" for k, v in tally.findings["code"].value_counts().sort_index().items()
        )
    )


if __name__ == "__main__":
    main()
