"""The one atomic writer: reports, run logs, history and the demo exports all go through it."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from pkgreport.atomic import write_atomic
from pkgreport.demo.generate import generate


def test_chunks_are_written_in_order(tmp_path: Path) -> None:
    target = tmp_path / "export.csv"
    write_atomic(target, iter([b"id,name\n", b"1,Ann\n", b"2,Bo\n"]))
    assert target.read_bytes() == b"id,name\n1,Ann\n2,Bo\n"


def test_a_failed_stream_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "export.csv"
    target.write_bytes(b"previous\n")

    def broken() -> Iterator[bytes]:
        yield b"id,name\n"
        raise RuntimeError("generator failed")

    with pytest.raises(RuntimeError, match=r"^generator failed$"):
        write_atomic(target, broken())
    assert target.read_bytes() == b"previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.csv"]


def test_demo_exports_use_the_atomic_writer_and_leave_the_umask_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The demo generator once had a second writer that set the process umask to read it back
    # (a race for other threads) and never fsynced; now every file goes through write_atomic.
    calls: list[int] = []
    real_umask = os.umask
    monkeypatch.setattr(os, "umask", lambda mask: calls.append(mask) or real_umask(mask))
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    paths = generate(tmp_path, patients=5, months=1)
    assert calls == []
    assert len(synced) >= len(paths)
    expected_mode = 0o666 & ~_umask_from_proc()
    assert {stat.S_IMODE(p.stat().st_mode) for p in paths} == {expected_mode}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)


def _umask_from_proc() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("Umask:"):
            return int(line.split()[1], 8)
    raise AssertionError("no Umask line in /proc/self/status")
