"""The output-folder lock: a second run waits, then fails clearly; a dead holder never blocks."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from pkgreport.errors import LockError
from pkgreport.schedule.runlock import LOCK_NAME, output_lock

HOLDER = """
import sys, time
from pathlib import Path
from pkgreport.schedule.runlock import output_lock
with output_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def hold(folder: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_run_fails_after_waiting(tmp_path: Path) -> None:
    proc = hold(tmp_path, 5)
    try:
        started = time.monotonic()
        with (
            pytest.raises(LockError) as err,
            output_lock(tmp_path, wait_seconds=0.5, poll_seconds=0.05),
        ):
            pass
        assert time.monotonic() - started >= 0.5
        assert f"another pkgreport run is writing {tmp_path} (pid {proc.pid})" in str(err.value)
        assert err.value.exit_code == 5
    finally:
        proc.kill()
        proc.wait()


def test_waiting_run_proceeds_when_holder_finishes(tmp_path: Path) -> None:
    proc = hold(tmp_path, 0.3)
    with output_lock(tmp_path, wait_seconds=10, poll_seconds=0.05) as path:
        assert path == tmp_path / LOCK_NAME
    proc.wait()


def test_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    proc = hold(tmp_path, 30)
    proc.kill()
    proc.wait()
    assert (tmp_path / LOCK_NAME).exists()
    with output_lock(tmp_path, wait_seconds=0.2):
        pass
