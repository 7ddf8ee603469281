"""The README stays true: its commands are the ones CI runs, and every command, finding code,
config key and exit code is documented."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from pkgreport.cli import cli
from pkgreport.config import CONFIG_KEYS, FINDING_CODES
from pkgreport.engine.registry import FINDINGS
from pkgreport.errors import EXIT_MEANINGS, ExitCode

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
TEST_COMMAND = (
    "python3 -m venv .venv && .venv/bin/pip install -q '.[test]' && .venv/bin/python -m pytest"
)
MAIN_COMMAND = (
    "python3 -m venv .venv && .venv/bin/pip install . && "
    ".venv/bin/pkgreport report sample_data -o reports"
)


def code_blocks(text: str) -> list[str]:
    return re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.DOTALL)


def test_readme_gives_the_two_fresh_machine_commands() -> None:
    blocks = [b.strip() for b in code_blocks(README)]
    assert MAIN_COMMAND in blocks
    assert TEST_COMMAND in blocks


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    commands = [
        line.strip()
        for line in ci.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    assert commands[-1] == TEST_COMMAND


def test_every_command_is_documented_with_help() -> None:
    commands = sorted(cli.commands)
    assert commands == [
        "cases",
        "credit",
        "init-config",
        "mapping",
        "report",
        "rollforward",
        "run",
        "sample-data",
        "validate",
    ]
    for name in commands:
        assert f"pkgreport {name}" in README, name
        help_text = CliRunner().invoke(cli, [name, "--help"]).output
        assert "Example" in help_text and "\\b" not in help_text, name


def test_every_finding_code_config_key_and_exit_code_is_documented() -> None:
    table = re.findall(r"^\| `([A-Z_]+)` \| (high|medium|low) \|", README, flags=re.MULTILINE)
    assert table == [(kind.code, kind.severity) for kind in FINDINGS.values()]
    assert list(FINDING_CODES) == list(FINDINGS)
    for key in CONFIG_KEYS:
        assert f"`{key}`" in README, key


def test_the_readme_exit_code_table_is_the_registry() -> None:
    start = README.index("| exit code | meaning |\n|---|---|\n")
    table = README[start : README.index("\n\n", start)].splitlines()[2:]
    rows = [re.fullmatch(r"\| (\d+) \| (.+) \|", line) for line in table]
    assert all(rows), table
    assert [(int(row[1]), row[2]) for row in rows if row] == [
        (int(code), EXIT_MEANINGS[code]) for code in ExitCode
    ]


def test_the_help_names_every_exit_code() -> None:
    help_text = " ".join(CliRunner().invoke(cli, ["--help"]).output.split())
    assert (
        "Exit codes: 0 done, 1 the data needs fixing, 2 usage or configuration error, "
        "3 internal error, 4 a finding listed under fail-on occurred, 5 another run holds "
        "the lock."
    ) in help_text
    assert [int(code) for code in ExitCode] == [0, 1, 2, 3, 4, 5]


def test_readme_screenshots_exist() -> None:
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README):
        assert (ROOT / image).is_file(), image


def test_ci_waits_for_the_apt_lock() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    calls = [line.strip() for line in ci.splitlines() if line.strip().startswith("apt-get")]
    assert len(calls) == 2
    assert re.search(r"^\s*apt_wait=\(-o DPkg::Lock::Timeout=300\)$", ci, flags=re.MULTILINE)
    assert all(call.startswith('apt-get "${apt_wait[@]}" ') for call in calls), calls


def test_floor_constraints_pin_exactly_the_pyproject_floors() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    # A floor may carry extras (`dask[distributed]>=...`): the pin names the package alone.
    floors = dict(
        re.findall(
            r"^([A-Za-z0-9_.-]+)(?:\[[a-z,]+\])?>=([0-9.]+)$", "\n".join(declared), re.MULTILINE
        )
    )
    lines = (ROOT / "constraints-floor.txt").read_text(encoding="utf-8").splitlines()
    pins = dict(line.split("==") for line in lines if line and not line.startswith("#"))
    assert pins == {name: floors[name] for name in pins}
    runtime = {re.split(r"[><=;]", d)[0].strip() for d in project["dependencies"]}
    assert runtime - {"tzdata"} <= set(pins), "every runtime dependency has its floor pinned"
    assert "openpyxl" in pins and "openpyxl" not in runtime  # used by the tests only
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert (
        "python3 -m venv .venv-floor && .venv-floor/bin/pip install -q -c constraints-floor.txt "
        "'.[test]' \\\n  && .venv-floor/bin/python -m pytest -q -p no:cacheprovider"
    ) in ci
