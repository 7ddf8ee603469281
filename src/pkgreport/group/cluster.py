"""Clinics as tasks on dask.distributed: a LocalCluster of N worker processes, or a scheduler.

Dask is an optional extra (`pip install 'pkgreport[dask]'`); without it these options stop with
exit 2 and say how to install it. A worker that dies is replaced and its task re-run by Dask
(up to `distributed.scheduler.allowed-failures` times); a clinic whose task kept killing its
worker is listed as not computed, named, and the other clinics are still reported.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from pkgreport.errors import UsageError
from pkgreport.group.clinics import Clinic
from pkgreport.group.runner import ClinicOutcome, Progress, compute_clinic, not_computed

if TYPE_CHECKING:
    from distributed import Client

INSTALL_HINT = "install Dask with: pip install 'pkgreport[dask]'"


def require_dask(option: str) -> None:
    """Stop (exit 2) when dask.distributed is not installed, saying how to install it."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise UsageError(
            f"{option} runs the clinics on Dask, which is not installed: {INSTALL_HINT}, or "
            "leave out --workers, --scheduler and --partitions to run the clinics one after "
            "another"
        ) from None


@contextmanager
def dask_client(workers: int | None, scheduler: str | None) -> Iterator[Client]:
    """A client of a new LocalCluster of `workers` processes, or of the scheduler at an address."""
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="10s")
        except OSError as exc:
            raise UsageError(
                f"cannot reach the Dask scheduler at {scheduler} ({exc}): check the address and "
                "that `dask scheduler` is running there, or use --workers N for a cluster on "
                "this machine"
            ) from None
        with client:
            yield client
        return
    # One thread per process: the engines hold the GIL in pandas, so processes give the speed.
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def run_on_dask(
    client: Client,
    clinics: Sequence[Clinic],
    generated_at: str | None,
    progress: Progress,
    partitions: int = 1,
) -> list[ClinicOutcome]:
    """Each clinic as one task (a partitioned clinic fans out further); outcomes in clinic order."""
    from distributed import as_completed

    futures = [
        client.submit(
            compute_clinic,
            clinic,
            generated_at,
            partitions,
            key=f"pkgreport-clinic-{number}",
            pure=False,
        )
        for number, clinic in enumerate(clinics)
    ]
    outcomes: dict[str, ClinicOutcome] = {}
    by_key = {future.key: clinic for future, clinic in zip(futures, clinics, strict=True)}
    for future in as_completed(futures):
        clinic = by_key[future.key]
        outcomes[clinic.name] = _outcome(future, clinic)
        progress(f"clinic {clinic.name}: done ({len(outcomes)} of {len(clinics)})")
    return [outcomes[clinic.name] for clinic in clinics]


def _outcome(future: Any, clinic: Clinic) -> ClinicOutcome:
    from distributed.scheduler import KilledWorker

    try:
        return future.result()  # type: ignore[no-any-return]
    except KilledWorker:
        return not_computed(
            clinic.name,
            "the Dask worker computing this clinic stopped each time it was tried (often for "
            "want of memory): give the workers more memory, run fewer at once (--workers), or "
            "split the clinic with --partitions",
        )
