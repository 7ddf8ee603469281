"""Writing outputs: an unwritable place is exit 2 naming it; the reports are published as one set."""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pkgreport.cli import cli

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
OCT = "pkgreport-2026-10-31"
REPORT_SET = [f"{OCT}.html", f"{OCT}.json", f"{OCT}.sha256", f"{OCT}.xlsx"]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def cannot_write(path: Path, reason: str) -> str:
    return (
        f"Error: cannot write {path} ({reason}): choose a location you may write to, whose "
        "folders are folders and whose disk has space (anything already there is unchanged)\n"
    )


def writing_commands(target: Path) -> dict[str, list[str]]:
    """Every command that writes, each told to write at `target`."""
    return {
        "report": ["report", str(SAMPLE), "-o", str(target), "-q"],
        "run": ["run", str(SAMPLE), "-o", str(target), "--period", "2026-10", "-q"],
        "--out": ["credit", str(SAMPLE), "--out", str(target / "credit.csv"), "-q"],
        "--issues-out": ["validate", str(SAMPLE), "--issues-out", str(target / "issues.csv")],
        "init-config": ["init-config", str(target / "pkgreport.toml")],
        "sample-data": ["sample-data", str(target), "--patients", "5", "--months", "1"],
    }


def _written_first(command: str, target: Path) -> Path:
    """The path the OS refuses first: the folder for commands that create one, else the file."""
    if command in ("report", "run", "sample-data"):
        return target
    return {
        "--out": target / "credit.csv",
        "--issues-out": target / "issues.csv",
        "init-config": target / "pkgreport.toml",
    }[command]


@pytest.mark.parametrize("command", list(writing_commands(Path("x"))))
def test_a_file_in_the_output_path_is_exit_2_naming_the_path(tmp_path: Path, command: str) -> None:
    # A regular file where a folder should be refuses every user, root included.
    (tmp_path / "taken").write_text("a file")
    target = tmp_path / "taken" / "reports"
    result = invoke(*writing_commands(target)[command])
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[-1] + "\n" == cannot_write(
        _written_first(command, target), "Not a directory"
    )


def _make_read_only(folder: Path) -> str:
    """Make `folder` refuse new files for this user; returns the reason the OS will give.

    Permission bits do not stop root, so as root the folder is made immutable instead
    (`chattr +i`, which binds root too).
    """
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return "Permission denied"
    if shutil.which("chattr") is None:
        pytest.fail("running as root without chattr: no way to make a folder read-only for root")
    done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.fail(f"chattr +i failed here: {done.stderr.decode().strip()}")
    return "Operation not permitted"


def _make_writable(folder: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    else:
        folder.chmod(0o755)


@pytest.mark.parametrize("command", ["report", "run", "--out", "--issues-out", "init-config"])
def test_a_read_only_output_folder_is_exit_2_and_nothing_changes(
    tmp_path: Path, command: str
) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep.txt").write_text("previous")
    reason = _make_read_only(target)
    try:
        result = invoke(*writing_commands(target)[command])
    finally:
        _make_writable(target)
    assert result.exit_code == 2, result.output
    first = {"report": target / f"{OCT}.xlsx", "run": target / ".pkgreport.lock"}
    path = first.get(command) or _written_first(command, target)
    assert result.stderr.splitlines()[-1] + "\n" == cannot_write(path, reason)
    assert sorted(p.name for p in target.iterdir()) == ["keep.txt"]


def _limit_file_size() -> None:
    # A write past RLIMIT_FSIZE fails with EFBIG, as a full disk fails with ENOSPC: the write
    # itself fails part way. SIGXFSZ is ignored so the failure is an error, not a kill.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))


def test_a_write_failing_part_way_is_exit_2_and_the_previous_set_stays(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    assert invoke("report", str(SAMPLE), "-o", str(out), "-q").exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from pkgreport.cli import main; main()",
            "report",
            str(SAMPLE),
            "-o",
            str(out),
            "-q",
            "--title",
            "Changed",
        ],
        capture_output=True,
        text=True,
        preexec_fn=_limit_file_size,
        timeout=300,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-1] + "\n" == cannot_write(
        out / f"{OCT}.xlsx", "File too large"
    )
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


# --- the set is published as a unit (item 22) -----------------------------------------------


def _sha256sum_check(folder: Path, manifest: str) -> bool:
    """What `sha256sum -c` decides: every listed file exists with that digest."""
    lines = (folder / manifest).read_text().splitlines()
    for line in lines:
        digest, name = line.split("  ", 1)
        path = folder / name
        if not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            return False
    return bool(lines)


def test_the_manifest_lists_every_report_with_its_digest(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    result = invoke("report", str(SAMPLE), "-o", str(out))  # -q would print nothing
    assert result.stdout.splitlines() == [
        str(out / n) for n in (f"{OCT}.xlsx", f"{OCT}.html", f"{OCT}.json", f"{OCT}.sha256")
    ]
    assert sorted(p.name for p in out.iterdir()) == REPORT_SET
    lines = (out / f"{OCT}.sha256").read_text().splitlines()
    assert [line.split("  ")[1] for line in lines] == [f"{OCT}.html", f"{OCT}.json", f"{OCT}.xlsx"]
    assert _sha256sum_check(out, f"{OCT}.sha256")
    if shutil.which("sha256sum"):
        check = subprocess.run(
            ["sha256sum", "-c", f"{OCT}.sha256"],
            cwd=out,
            capture_output=True,
            text=True,
            check=False,
        )
        assert check.returncode == 0, check.stdout + check.stderr


KILL_AFTER_FIRST_RENAME = """
import os, signal, sys
real_replace = os.replace
def replace_then_die(src, dst):
    real_replace(src, dst)
    os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace_then_die
from pkgreport.cli import main
sys.argv = ["pkgreport", "report", sys.argv[1], "-o", sys.argv[2], "-q", "--title", "New"]
main()
"""


def test_a_run_killed_between_renames_leaves_no_manifest_and_the_next_run_cleans_up(
    tmp_path: Path,
) -> None:
    out = tmp_path / "reports"
    assert invoke("report", str(SAMPLE), "-o", str(out), "-q").exit_code == 0
    old_workbook = (out / f"{OCT}.xlsx").read_bytes()
    killed = subprocess.run(
        [sys.executable, "-c", KILL_AFTER_FIRST_RENAME, str(SAMPLE), str(out)],
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL
    names = sorted(p.name for p in out.iterdir())
    # The new workbook sits beside the old page and summary, and no manifest vouches for them.
    assert (out / f"{OCT}.xlsx").read_bytes() != old_workbook
    assert f"{OCT}.sha256" not in names
    leftovers = [n for n in names if n.endswith(".tmp")]
    assert len(leftovers) == 3 and all(n.startswith(".pkgreport-") for n in leftovers)

    assert invoke("report", str(SAMPLE), "-o", str(out), "-q").exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == REPORT_SET
    assert _sha256sum_check(out, f"{OCT}.sha256")


def test_a_temporary_file_of_a_run_still_writing_is_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    out.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        busy = out / f".{OCT}.xlsx.{sleeper.pid}-abc123.tmp"
        busy.write_bytes(b"being written")
        assert invoke("report", str(SAMPLE), "-o", str(out), "-q").exit_code == 0
        assert busy.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
