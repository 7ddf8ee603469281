"""`pkgreport run`: config precedence, exit codes (in-process and as real subprocesses), the lock,
history across two successive months, and byte-identical re-runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pkgreport.cli import cli
from pkgreport.schedule.runlock import output_lock

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
OCT = "pkgreport-2026-10-31"


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def config(tmp_path: Path, extra: str = "", output: str = "reports") -> Path:
    path = tmp_path / "pkgreport.toml"
    path.write_text(
        f'input = "{SAMPLE}"\noutput = "{output}"\ntimezone = "Australia/Sydney"\n'
        f'period = "previous-month"\ntitle = "From the file"\n{extra}',
        encoding="utf-8",
    )
    return path


def subprocess_run(*args: str, env: dict[str, str] | None = None, code: str | None = None):
    """The real installed CLI in a child process (`code` may patch internals first)."""
    prog = code or "from pkgreport.cli import main; main()"
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", prog, *args],
        capture_output=True,
        text=True,
        env=full_env,
        check=False,
        timeout=300,
    )


def test_run_writes_reports_log_and_history(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    result = invoke("run", "--config", str(cfg), "--today", "2026-11-01", "-q")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # quiet unless asked
    out = tmp_path / "reports"
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        ".pkgreport.lock",
        "history",
        f"{OCT}.html",
        f"{OCT}.json",
        f"{OCT}.log",
        f"{OCT}.sha256",
        f"{OCT}.xlsx",
    ]
    log = (out / f"{OCT}.log").read_text()
    assert "read Appointments-Cliniko-20261101.csv: appointments, 1149 rows, sha256 " in log
    assert f"wrote {OCT}.xlsx" in log and "timing load+validate" in log
    history = sorted((out / "history").iterdir())
    assert len(history) == 1 and history[0].name.startswith("0001-2026-10-31-")
    summary = json.loads((out / f"{OCT}.json").read_text())
    assert summary["title"] == "From the file"
    assert summary["settings"]["period_from"] == "2026-10-01"
    assert summary["changes_since_last_run"]["previous"] is None


def test_rerun_is_byte_identical_and_adds_no_history(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    out = tmp_path / "reports"
    assert invoke("run", "--config", str(cfg), "--today", "2026-11-01", "-q").exit_code == 0
    first = {p.name: p.read_bytes() for p in out.glob("pkgreport-*") if p.suffix != ".log"}
    assert invoke("run", "--config", str(cfg), "--today", "2026-11-01", "-q").exit_code == 0
    second = {p.name: p.read_bytes() for p in out.glob("pkgreport-*") if p.suffix != ".log"}
    assert first == second
    assert len(list((out / "history").iterdir())) == 1
    assert "nothing changed since the last run" in (out / f"{OCT}.log").read_text()


def test_history_over_two_successive_months(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    out = tmp_path / "reports"
    sep = invoke("run", "--config", str(cfg), "--today", "2026-10-01", "-q")
    assert sep.exit_code == 0, sep.output
    oct_ = invoke("run", "--config", str(cfg), "--today", "2026-11-01", "-q")
    assert oct_.exit_code == 0, oct_.output
    sep_summary = json.loads((out / "pkgreport-2026-09-30.json").read_text())
    oct_summary = json.loads((out / f"{OCT}.json").read_text())
    changes = oct_summary["changes_since_last_run"]
    assert changes["previous"] == {
        "as_of": "2026-09-30",
        "period_from": "2026-09-01",
        "period_to": "2026-09-30",
    }

    def key(f: dict[str, str]) -> tuple[str, str, str]:
        return (f["code"], f["subject_type"], f["subject_id"])

    before = {key(f) for f in sep_summary["findings"]}
    after = {key(f) for f in oct_summary["findings"]}
    assert {key(f) for f in changes["new_findings"]} == after - before
    assert {key(f) for f in changes["resolved_findings"]} == before - after
    assert changes["new_findings"] or changes["resolved_findings"]
    assert changes["moved_periods"] == []
    html = (out / f"{OCT}.html").read_text()
    assert "Changed since the last run" in html
    assert "Compared with the run as of 30 Sep 2026 (period 1 Sep 2026 to 30 Sep 2026)." in html
    assert len(list((out / "history").iterdir())) == 2


def _monthly(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the sample exports and a config reporting the previous month into reports/."""
    exports = tmp_path / "exports"
    shutil.copytree(SAMPLE, exports)
    cfg = tmp_path / "pkgreport.toml"
    cfg.write_text(f'input = "{exports}"\noutput = "reports"\nperiod = "previous-month"\n')
    return exports, cfg


def test_a_scheduled_run_names_where_its_as_of_date_came_from(tmp_path: Path) -> None:
    _, cfg = _monthly(tmp_path)
    assert invoke("run", "--config", str(cfg), "--today", "2026-11-01", "-q").exit_code == 0
    summary = json.loads((tmp_path / "reports" / f"{OCT}.json").read_text())
    # No --as-of was given: the date is the last day of the configured period.
    assert (summary["settings"]["as_of"], summary["settings"]["as_of_source"]) == (
        "2026-10-31",
        "the last day of the period",
    )


def test_edit_to_a_reported_month_is_flagged(tmp_path: Path) -> None:
    exports, cfg = _monthly(tmp_path)
    assert invoke("run", "--config", str(cfg), "--today", "2026-10-01", "-q").exit_code == 0
    # After September was reported, a September invoice's total is edited in the system.
    invoices = next(exports.glob("Invoices-*.csv"))
    lines = invoices.read_text(encoding="utf-8").splitlines()
    index = next(i for i, line in enumerate(lines) if ",15/9/2026," in line and ",Paid," in line)
    cells = lines[index].split(",")
    cells[6] = str(float(cells[6]) + 10)  # Invoice Amount
    lines[index] = ",".join(cells)
    invoices.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert invoke("run", "--config", str(cfg), "--today", "2026-11-01", "-q").exit_code == 0
    summary = json.loads((tmp_path / "reports" / f"{OCT}.json").read_text())
    moved = summary["changes_since_last_run"]["moved_periods"]
    assert [m["month"] for m in moved] == ["2026-09"]
    assert moved[0]["invoices_total_after"] - moved[0]["invoices_total_before"] == 1000
    assert moved[0]["changed"] == ["invoices"]  # payments of September did not move
    html = (tmp_path / "reports" / f"{OCT}.html").read_text()
    assert "invoices of Sep 2026 changed after that month was reported" in html
    assert "payments of Sep 2026" not in html


def test_precedence_config_then_environment_then_options(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    out = tmp_path / "reports"

    def title() -> str:
        return json.loads((out / f"{OCT}.json").read_text())["title"]

    assert invoke("run", "-c", str(cfg), "--today", "2026-11-01", "-q").exit_code == 0
    assert title() == "From the file"
    env = {"PKGREPORT_TITLE": "From the environment", "PKGREPORT_DORMANT_DAYS": "30"}
    assert invoke("run", "-c", str(cfg), "--today", "2026-11-01", "-q", env=env).exit_code == 0
    assert title() == "From the environment"
    summary = json.loads((out / f"{OCT}.json").read_text())
    assert summary["settings"]["dormant_days"] == 30
    assert (
        invoke(
            "run",
            "-c",
            str(cfg),
            "--today",
            "2026-11-01",
            "-q",
            "--title",
            "From the option",
            "--dormant-days",
            "90",
            env=env,
        ).exit_code
        == 0
    )
    summary = json.loads((out / f"{OCT}.json").read_text())
    assert (summary["title"], summary["settings"]["dormant_days"]) == ("From the option", 90)


def test_as_of_option_overrides_the_period_end(tmp_path: Path) -> None:
    result = invoke(
        "run", "-c", str(config(tmp_path)), "--today", "2026-11-01", "-q", "--as-of", "2026-10-15"
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "reports" / "pkgreport-2026-10-15.json").exists()


def test_exit_4_when_a_fail_on_finding_occurs(tmp_path: Path) -> None:
    cfg = config(tmp_path, 'fail_on = ["OVER_BOOKED", "NEGATIVE_CREDIT"]\n')
    result = invoke("run", "-c", str(cfg), "--today", "2026-11-01", "-q")
    assert result.exit_code == 4
    assert result.stderr.strip().splitlines()[-1] == "fail-on: OVER_BOOKED x1"
    assert (tmp_path / "reports" / f"{OCT}.xlsx").exists()  # the reports are still written


def test_exit_2_for_a_bad_config_naming_key_file_and_line(tmp_path: Path) -> None:
    cfg = config(tmp_path, "dormant_days = -5\n")
    result = invoke("run", "-c", str(cfg))
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"Error: {cfg}, line 6: dormant_days = -5 must be a whole number >= 1"
    )


def test_exit_1_when_inputs_need_fixing(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    shutil.copytree(SAMPLE, exports)
    (exports / "payments-extra.csv").write_text(
        "ID,Patient ID,Payment Date,Amount\nx1,1000001,31/02/2026,$5.00\n"
    )
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'input = "{exports}"\noutput = "reports"\nperiod = "2026-10"\n')
    result = invoke("run", "-c", str(cfg))
    assert result.exit_code == 1
    assert "payments-extra.csv, row 2, column 'Payment Date', value '31/02/2026'" in result.stderr
    log = (tmp_path / "reports" / f"{OCT}.log").read_text()
    assert "stopped: 1 problem(s) in the inputs must be fixed" in log
    assert not (tmp_path / "reports" / f"{OCT}.xlsx").exists()


def test_exit_5_while_another_run_holds_the_lock(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    with output_lock(out):
        # flock locks are per open file description, so a second process is needed to contend.
        done = subprocess_run(
            "run", "-c", str(config(tmp_path)), "--today", "2026-11-01", "--lock-wait", "0.5"
        )
    assert done.returncode == 5
    assert f"Error: another pkgreport run is writing {out}" in done.stderr
    assert "waited 0.5 s" in done.stderr


@pytest.mark.parametrize(
    ("extra", "expected"),
    [("", 0), ('fail_on = ["OVER_BOOKED"]\n', 4), ("dormant_days = 0\n", 2)],
)
def test_exit_codes_as_a_real_subprocess(tmp_path: Path, extra: str, expected: int) -> None:
    done = subprocess_run("run", "-c", str(config(tmp_path, extra)), "--today", "2026-11-01")
    assert done.returncode == expected, done.stderr


def test_exit_1_and_3_as_a_real_subprocess(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "appointments.csv").write_text("ID,Patient ID\n1,2\n")
    done = subprocess_run("run", str(bad), "-o", str(tmp_path / "r"), "--period", "2026-10")
    assert done.returncode == 1
    assert (
        "missing the required column" in done.stderr
        or "Appointment Start" in done.stderr
        or "starts_at" in done.stderr
    )
    boom = (
        "import pkgreport.pipeline as p\n"
        "def compute(*a, **k): raise RuntimeError('simulated bug')\n"
        "p.compute = compute\n"
        "from pkgreport.cli import main; main()"
    )
    done = subprocess_run(
        "run", str(SAMPLE), "-o", str(tmp_path / "r"), "--period", "2026-10", code=boom
    )
    assert done.returncode == 3
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith("Internal error: RuntimeError: simulated bug.")
    )


def test_a_history_entry_of_the_previous_format_is_read_and_the_log_says_what_happens(
    tmp_path: Path,
) -> None:
    cfg = config(tmp_path)
    out = tmp_path / "reports"
    assert invoke("run", "--config", str(cfg), "--today", "2026-10-01", "-q").exit_code == 0
    # Make September's entry what an earlier pkgreport wrote: format 1, pandas' row hashes.
    [entry] = (out / "history").iterdir()
    old = json.loads(entry.read_text())
    old["format"] = 1
    for figures in old["period_figures"].values():
        for key in [k for k in figures if k.endswith("_digest")]:
            figures[key] = "0" * 64
    entry.write_text(json.dumps(old), encoding="utf-8")
    done = invoke("run", "--config", str(cfg), "--today", "2026-11-01", "-q")
    assert done.exit_code == 0, done.output
    changes = json.loads((out / f"{OCT}.json").read_text())["changes_since_last_run"]
    assert changes["previous"]["as_of"] == "2026-09-30"
    assert changes["moved_periods"] == []
    note = (
        "the last run (as of 2026-09-30) was recorded by an older version of pkgreport (summary "
        "format 1, this one writes 2): closed months are compared by their count and total this "
        "time, not by their records' digest; from the next run on, digests are compared again "
        "(nothing to do)"
    )
    assert note in [
        line.split("] ", 1)[1] for line in (out / f"{OCT}.log").read_text().splitlines()
    ]
    assert len(list((out / "history").iterdir())) == 2
