"""The command line's process (`cli_process`): the data libraries loaded with the cyclic collector
paused, and the end: what a user and a program see is what Python's ordinary exit gives (exit
code, stdout, stderr, exit handlers run), less the teardown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"

# The same command ended two ways: by `main()`, and by click's own `sys.exit` (the ordinary exit).
SKIPPING_TEARDOWN = "from pkgreport.cli import main; main()"
ORDINARY = "from pkgreport.cli import cli; cli(prog_name='pkgreport')"

# An object torn down at the ordinary exit says so; an exit handler writes to stdout unflushed.
# Its class is made so that nothing in it refers back to this module (a class statement's
# method would, through its globals): the module's names then free it at the ordinary exit even
# when the collector has frozen them (`gc.freeze`), where a reference cycle would keep it alive.
WATCHED = """
import atexit, sys, threading, time

Teardown = type(
    "Teardown", (), {"__del__": eval("lambda self: write('torn down\\\\n')", {"write": sys.stderr.write})}
)
kept = Teardown()
atexit.register(lambda: print("exit handler ran", end=""))
if "--with-thread" in sys.argv:
    sys.argv.remove("--with-thread")
    threading.Thread(target=time.sleep, args=(0.3,)).start()
"""


def run(code: str, *args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of `code` with `args`, stdout and stderr both pipes."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        cwd=cwd,
    )
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize(
    ("args", "expected_code"),
    [
        (["credit", str(SAMPLE), "--as-of", "2026-10-31", "-q"], 0),
        (["report", str(SAMPLE), "-o", "reports"], 0),
        (["report", "empty", "-o", "reports"], 1),
        (["report", str(SAMPLE), "--workers", "2"], 2),
        (["credit", str(SAMPLE), "--ageing", "--invoices"], 2),
    ],
)
def test_the_exit_code_stdout_and_stderr_are_those_of_the_ordinary_exit(
    tmp_path: Path, args: list[str], expected_code: int
) -> None:
    ours, ordinary = tmp_path / "ours", tmp_path / "ordinary"
    for folder in (ours, ordinary):
        (folder / "empty").mkdir(parents=True)
    ended = run(SKIPPING_TEARDOWN, *args, cwd=ours)
    assert ended[0] == expected_code, ended[2]
    assert ended == run(ORDINARY, *args, cwd=ordinary)
    written = sorted(p.name for p in (ours / "reports").glob("*")) if expected_code == 0 else []
    assert written == sorted(p.name for p in (ordinary / "reports").glob("*"))


@pytest.mark.parametrize(
    ("args", "expected_code"),
    [
        (["--version"], 0),
        (["credit", str(SAMPLE), "--as-of", "2026-10-31", "-q", "--format", "json"], 0),
        (["validate", "no-such-folder"], 1),
        (["credit", str(SAMPLE), "--ageing", "--invoices"], 2),
    ],
)
def test_exit_handlers_run_and_what_they_print_is_flushed_but_nothing_is_torn_down(
    args: list[str], expected_code: int
) -> None:
    code, stdout, stderr = run(WATCHED + SKIPPING_TEARDOWN, *args)
    ordinary_code, ordinary_stdout, ordinary_stderr = run(WATCHED + ORDINARY, *args)
    assert (code, stdout) == (ordinary_code, ordinary_stdout)
    assert code == expected_code
    assert stdout.endswith("exit handler ran")  # written after the command's output, unflushed
    assert ordinary_stderr == stderr + "torn down\n"


def test_a_report_ends_without_teardown_once_its_files_are_written(tmp_path: Path) -> None:
    """Every process the run forked is joined by then: nothing holds the ordinary exit."""
    code, stdout, stderr = run(
        WATCHED + SKIPPING_TEARDOWN, "report", str(SAMPLE), "-o", "out", cwd=tmp_path
    )
    assert (code, stderr.endswith("torn down\n")) == (0, False), stderr
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert (
        stdout == "".join(f"out/{name}\n" for name in _in_print_order(written)) + "exit handler ran"
    )


def _in_print_order(names: list[str]) -> list[str]:
    order = (".xlsx", ".html", ".json", ".sha256")
    return sorted(names, key=lambda name: order.index(name[name.rindex(".") :]))


def test_a_thread_still_running_gets_the_ordinary_exit() -> None:
    assert run(WATCHED + SKIPPING_TEARDOWN, "--with-thread", "--version") == (
        0,
        f"pkgreport, version {_version()}\nexit handler ran",
        "torn down\n",
    )


def test_a_temporary_folder_left_to_the_end_is_removed_by_its_exit_handler(tmp_path: Path) -> None:
    left = "import tempfile, sys; left = tempfile.TemporaryDirectory(dir=sys.argv.pop()); "
    assert run(left + SKIPPING_TEARDOWN, "--version", str(tmp_path))[0] == 0
    assert list(tmp_path.iterdir()) == []


def test_python_dash_m_ends_the_same_way() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            WATCHED + "import runpy; runpy.run_module('pkgreport')",
            "--version",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        f"pkgreport, version {_version()}\nexit handler ran",
        "",
    )


def _version() -> str:
    from pkgreport import __version__

    return __version__


PASSES_WHILE_LOADING = """
import gc, sys
passes = []
gc.callbacks.append(lambda phase, info: phase == "start" and passes.append(info["generation"]))
from pkgreport.cli_process import libraries_loaded_first
def command():
    loaded = "pandas" in sys.modules and "pkgreport.pipeline" in sys.modules
    print(len(passes), gc.isenabled(), gc.get_freeze_count() > 50_000, loaded)
passes.clear()  # those of importing pkgreport.cli_process itself
libraries_loaded_first(command)()
"""


def test_pandas_and_the_pipeline_load_with_no_pass_of_the_collector_and_stay_out_of_later_ones() -> (
    None
):
    assert run(PASSES_WHILE_LOADING) == (0, "0 True True True\n", "")


def test_a_collector_paused_before_stays_paused() -> None:
    code = (
        "import gc; gc.disable()\n"
        "from pkgreport.cli_process import collector_paused\n"
        "with collector_paused(): pass\n"
        "print(gc.isenabled())"
    )
    assert run(code) == (0, "False\n", "")
