"""The end-to-end benchmark still runs (a tiny smoke run; its timings are not asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bench(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`python benchmarks/<script> <args>`, its output captured; it must exit 0."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done


def test_bench_report_runs_end_to_end_on_a_tiny_clinic(tmp_path: Path) -> None:
    done = _bench(
        "bench_report.py", "--patients", "60", "--months", "2", "--data", str(tmp_path / "exports")
    )
    stages = [line.split()[0] for line in done.stdout.splitlines() if line.startswith("  ")]
    assert stages[:2] == ["load", "engines"] and done.stdout.splitlines()[-2].startswith("total ")


def test_bench_validate_times_validate_of_generated_workbooks() -> None:
    done = _bench("bench_validate.py", "--patients", "40", "--months", "1", "--runs", "1")
    lines = done.stdout.splitlines()
    assert lines[0].endswith(": Appointments-Cliniko-20260901.xlsx, Cases-Cliniko-20260901.xlsx")
    assert lines[-1].startswith("this     median of 1: ") and lines[-1].count("(exit [0])") == 1


def test_bench_memory_measures_both_ways_on_sample_data() -> None:
    done = _bench("bench_memory.py", str(ROOT / "sample_data"), "--runs", "1")
    lines = done.stdout.splitlines()
    assert re.fullmatch(
        r"this     exit 0: largest process [\d,]+ MB RSS; all processes together [\d,]+ MB PSS "
        r"at [\d.]+ s \([\d, MB]+\); by stretch: alone [\d,]+ MB.*",
        lines[1],
    )
    assert re.fullmatch(
        r"this     median of 1: largest process ([\d,]+) MB, all processes together ([\d,]+) MB "
        r"\(from \2 MB to \2 MB\)",
        lines[-1],
    )
