"""Clinic groups on a real dask.distributed LocalCluster of two worker processes (no mocks):
every output byte-identical to the serial, unpartitioned run, and a run that survives the loss
of a worker. One cluster serves the module; the clinics are small generated ones."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from pkgreport.cli import cli
from pkgreport.config import Settings
from pkgreport.demo.generate import generate
from pkgreport.group.clinics import clinics_from_folder
from pkgreport.group.cluster import run_on_dask
from pkgreport.group.runner import run_serially

distributed = pytest.importorskip("distributed")  # the [test] extra installs it: CI runs these

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


def _quiet(_: str) -> None:
    return None


@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
    ) as local:
        yield local


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("exports")
    for number, seed in enumerate((3, 5, 8, 13)):
        generate(root / f"clinic-{number}", patients=150 + 40 * number, months=2, seed=seed)
    return root


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stderr


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def serial(exports: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("serial")
    assert _invoke("report", "--group", str(exports), "-o", str(out), "-q") == (0, "")
    return _files(out)


def test_clinics_on_the_cluster_write_the_serial_runs_bytes(
    cluster: object, exports: Path, serial: dict[str, bytes], tmp_path: Path
) -> None:
    address = cluster.scheduler_address  # type: ignore[attr-defined]
    code = _invoke("report", "--group", str(exports), "-o", str(tmp_path), "--scheduler", address)
    assert code == (0, "")
    assert _files(tmp_path) == serial


def test_a_clinic_split_by_patient_writes_the_unpartitioned_bytes(
    cluster: object, tmp_path: Path
) -> None:
    address = cluster.scheduler_address  # type: ignore[attr-defined]
    whole, parted = tmp_path / "whole", tmp_path / "parted"
    assert _invoke("report", str(SAMPLE), "-o", str(whole), "-q") == (0, "")
    for partitions in ("2", "3"):
        args = ["--scheduler", address, "--partitions", partitions, "-q"]
        assert _invoke("report", str(SAMPLE), "-o", str(parted), *args) == (0, "")
        assert _files(parted) == _files(whole)


def test_a_group_of_partitioned_clinics_writes_the_serial_runs_bytes(
    cluster: object, exports: Path, serial: dict[str, bytes], tmp_path: Path
) -> None:
    address = cluster.scheduler_address  # type: ignore[attr-defined]
    args = ["--scheduler", address, "--partitions", "2", "-q"]
    assert _invoke("report", "--group", str(exports), "-o", str(tmp_path), *args) == (0, "")
    assert _files(tmp_path) == serial


def test_a_worker_killed_mid_run_is_replaced_and_the_run_completes(
    cluster: object, exports: Path, tmp_path: Path
) -> None:
    clinics = clinics_from_folder(exports, Settings(), tmp_path)
    expected = run_serially(clinics, None, _quiet)
    with distributed.Client(cluster) as client:
        pids = client.run(os.getpid)
        results: list[object] = []
        runner = threading.Thread(
            target=lambda: results.append(run_on_dask(client, clinics, None, _quiet))
        )
        runner.start()
        victim = _busy_worker(client)
        os.kill(pids[victim], signal.SIGKILL)
        runner.join(timeout=300)
        assert not runner.is_alive()
        # The nanny starts a new worker process in place of the one killed.
        assert client.run(os.getpid).get(victim) != pids[victim]
    assert results == [expected]


def _busy_worker(client: object) -> str:
    """The address of a worker with a clinic task in hand (waits until there is one)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        busy = [w for w, keys in client.processing().items() if keys]  # type: ignore[attr-defined]
        if busy:
            return busy[0]
        time.sleep(0.01)
    raise AssertionError("no worker took a clinic within two minutes")


def test_workers_option_starts_its_own_local_cluster(
    exports: Path, serial: dict[str, bytes], tmp_path: Path
) -> None:
    assert _invoke(
        "report", "--group", str(exports), "-o", str(tmp_path), "--workers", "2", "-q"
    ) == (0, "")
    assert _files(tmp_path) == serial


def test_bench_group_runs_on_two_tiny_clinics(tmp_path: Path) -> None:
    """The benchmark still runs end to end (its timings are not asserted)."""
    import subprocess
    import sys

    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_group.py"
    args = ["--clinics", "2", "--patients", "40", "--months", "2", "--runs", "1"]
    done = subprocess.run(
        [sys.executable, str(bench), *args, "--data", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "outputs identical: yes"
