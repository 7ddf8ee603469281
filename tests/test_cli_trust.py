"""Usage errors are exit 2 with the rule, hints name real options, and -q leaves only results."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from pkgreport.cli import cli

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def write(folder: Path, name: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")


@pytest.fixture
def many_bad_cases(tmp_path: Path) -> Path:
    """25 cases whose maximum is not a number: more errors than a command prints."""
    folder = tmp_path / "exports"
    write(
        folder,
        "appointments.csv",
        "ID,Patient ID,Appointment Start,Patient Case\na1,p1,01/10/2026 09:00,c1\n",
    )
    rows = "".join(f"c{n},p1,Pack,two\n" for n in range(1, 26))
    write(folder, "cases.csv", "ID,Patient ID,Name,Max Sessions\n" + rows)
    return folder


def _options_of(name: str) -> set[str]:
    command = cli.commands[name]
    return {
        opt for param in command.params if isinstance(param, click.Option) for opt in param.opts
    }


def _hinted_options(stderr: str, command: str) -> list[tuple[str, str]]:
    """(command, option) for every option a message names; `pkgreport X ...` switches command."""
    named = []
    for line in stderr.splitlines():
        owner = command
        for token in re.findall(r"pkgreport \w[\w-]*|--[a-z][a-z-]*", line):
            if token.startswith("pkgreport "):
                owner = token.split()[1]
            else:
                named.append((owner, token))
    return named


@pytest.mark.parametrize(
    "args",
    [
        ["cases", "{folder}"],
        ["credit", "{folder}"],
        ["rollforward", "{folder}", "--from", "2026-10-01", "--to", "2026-10-31"],
        ["report", "{folder}", "-o", "{out}"],
        ["run", "{folder}", "-o", "{out}"],
    ],
)
def test_every_hint_names_an_option_the_command_has(
    many_bad_cases: Path, tmp_path: Path, args: list[str]
) -> None:
    argv = [a.format(folder=many_bad_cases, out=tmp_path / "out") for a in args]
    result = invoke(*argv)
    assert result.exit_code == 1
    hints = _hinted_options(result.stderr, argv[0])
    assert hints, result.stderr
    for owner, option in hints:
        assert option in _options_of(owner), (owner, option, result.stderr)


def test_report_points_to_validate_for_every_issue(many_bad_cases: Path, tmp_path: Path) -> None:
    result = invoke("report", str(many_bad_cases), "-o", str(tmp_path / "out"))
    assert result.stderr.splitlines()[-1] == (
        "  ... and 6 more (see them all with: pkgreport validate INPUT_DIR --issues-out FILE)"
    )


def test_credit_refuses_two_views_at_once() -> None:
    result = invoke("credit", str(SAMPLE), "--ageing", "--invoices")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        "Error: --ageing and --invoices cannot go together: give one of them per run\n"
    )


@pytest.mark.parametrize(
    "args",
    [
        ["report", str(SAMPLE), "-o", "{out}", "--as-of", "2026-09-30", "--period", "2026-10"],
        [
            "run",
            str(SAMPLE),
            "-o",
            "{out}",
            "--as-of",
            "2026-09-30",
            "--from",
            "2026-10-01",
            "--to",
            "2026-10-31",
        ],
    ],
)
def test_as_of_before_the_period_is_a_usage_error(tmp_path: Path, args: list[str]) -> None:
    result = invoke(*[a.format(out=tmp_path / "out") for a in args])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "Error: the as-of date (2026-09-30) is before the period starts (2026-10-01): the figures "
        "are taken at the as-of date, so it must fall on or after the period's first day; give a "
        "later --as-of or an earlier period"
    )
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").glob("pkgreport-*"))


def test_as_of_before_all_activity_gives_zero_figures(tmp_path: Path) -> None:
    import json

    result = invoke("report", str(SAMPLE), "-o", str(tmp_path), "--as-of", "2019-01-31", "-q")
    assert result.exit_code == 0, result.stderr
    totals = json.loads((tmp_path / "pkgreport-2019-01-31.json").read_text())["totals"]
    assert totals["credit_liability"]["cents"] == 0
    assert totals["rollforward"]["closing"]["cents"] == 0


@pytest.mark.parametrize(
    "args",
    [
        ["cases", str(SAMPLE), "-q", "--out", "{out}/cases.csv"],
        ["credit", str(SAMPLE), "-q", "--ageing", "--out", "{out}/ageing.csv"],
        [
            "rollforward",
            str(SAMPLE),
            "-q",
            "--from",
            "2026-10-01",
            "--to",
            "2026-10-31",
            "--out",
            "{out}/roll.csv",
        ],
        ["report", str(SAMPLE), "-q", "-o", "{out}"],
    ],
)
def test_quiet_prints_nothing_on_success(tmp_path: Path, args: list[str]) -> None:
    result = invoke(*[a.format(out=tmp_path) for a in args])
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    assert any(tmp_path.iterdir())


def test_quiet_report_keeps_the_skipped_sections_in_the_files_only(tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    for path in SAMPLE.iterdir():
        if path.name.lower().startswith(("appointments", "cases")):
            (folder / path.name).write_bytes(path.read_bytes())
    result = invoke("report", str(folder), "-q", "-o", str(tmp_path / "out"))
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    loud = invoke("report", str(folder), "-o", str(tmp_path / "out"))
    assert "note: Credit left out: no invoices and payments export" in loud.stderr
