"""Every output is byte for byte what it was when the digests were recorded.

Speed and structure work must not change a figure, a word or a byte of what users receive. The
digests in tests/golden/outputs.sha256 were recorded from main at 7cc7a06 (where this round of speed and
structure work on issues 11 and 12 began). A change that is meant to change an output records
them again with `python -m pytest tests/test_golden_outputs.py --update-golden`, and its commit
says why.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pygal
import pytest
from click.testing import CliRunner

from pkgreport.cli import cli

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
DIGESTS = Path(__file__).parent / "golden" / "outputs.sha256"
AS_OF = "2026-10-31"
COMMON = ["--as-of", AS_OF, "-q"]


def _invoke(*args: str) -> None:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code in (0, 1), result.output


def _outputs_of(data: Path, name: str, out: Path) -> dict[str, bytes]:
    """Run every command that writes a file on `data`; return each file's bytes by a stable name."""
    files: dict[str, Path] = {}
    _invoke("report", str(data), "-o", str(out / "report"), *COMMON)
    for path in sorted((out / "report").iterdir()):
        files[f"report/{path.name}"] = path
    for command, extra in [
        ("cases", []),
        ("cases", ["--findings"]),
        ("credit", []),
        ("credit", ["--ageing"]),
        ("credit", ["--invoices"]),
        ("credit", ["--findings"]),
    ]:
        for fmt in ("csv", "json"):
            label = "-".join([command, *[e.lstrip("-") for e in extra]]) + f".{fmt}"
            target = out / label
            _invoke(command, str(data), *extra, "--format", fmt, "--out", str(target), *COMMON)
            files[label] = target
    for fmt in ("csv", "json"):
        target = out / f"rollforward.{fmt}"
        _invoke(
            "rollforward", str(data), "--from", "2026-10-01", "--to", AS_OF,
            "--format", fmt, "--out", str(target), "-q",
        )  # fmt: skip
        files[target.name] = target
    target = out / "issues.csv"
    _invoke("validate", str(data), "--issues-out", str(target))
    files[target.name] = target
    return {f"{name}/{label}": path.read_bytes() for label, path in files.items()}


@pytest.fixture(scope="module")
def digests(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    work = tmp_path_factory.mktemp("golden")
    month = work / "month"
    _invoke("sample-data", str(month), "--patients", "1500", "--months", "3", "--seed", "11")
    outputs = _outputs_of(SAMPLE, "sample_data", work / "a")
    outputs |= _outputs_of(month, "generated-month", work / "b")
    outputs |= {
        f"{label} without charts": _without_charts(data)
        for label, data in outputs.items()
        if label.endswith(".html")
    }
    return {label: hashlib.sha256(data).hexdigest() for label, data in sorted(outputs.items())}


def _without_charts(page: bytes) -> bytes:
    """The page with each chart's drawing left out: what other pygal releases must match."""
    return re.sub(rb"<svg .*?</svg>", b"<svg/>", page, flags=re.DOTALL)


def _read_digests() -> tuple[str, dict[str, str]]:
    """The pygal release the digests were recorded with, and each output's digest."""
    first, *lines = DIGESTS.read_text(encoding="utf-8").splitlines()
    return first.removeprefix("# pygal "), dict(
        (label, digest) for digest, label in (line.split("  ", 1) for line in lines)
    )


def _drawn_by_another_release(label: str) -> bool:
    """Outputs holding chart drawings, whose bytes belong to the pygal release."""
    return label.endswith((".html", ".sha256"))


def test_every_output_is_byte_identical_to_the_recorded_digests(
    digests: dict[str, str], request: pytest.FixtureRequest
) -> None:
    if request.config.getoption("--update-golden"):
        lines = [f"# pygal {pygal.__version__}\n"]
        DIGESTS.write_text("".join(lines + [f"{d}  {label}\n" for label, d in digests.items()]))
    recorded_with, recorded = _read_digests()
    if pygal.__version__ != recorded_with:
        # Another release draws the same chart with other bytes; everything else must still match.
        recorded = {k: v for k, v in recorded.items() if not _drawn_by_another_release(k)}
        digests = {k: v for k, v in digests.items() if not _drawn_by_another_release(k)}
    assert digests == recorded


def test_the_recorded_set_covers_every_command_that_writes() -> None:
    labels = _read_digests()[1]
    assert len(labels) == 2 * (4 + 12 + 2 + 1 + 1)
    assert {label.split("/")[0] for label in labels} == {"sample_data", "generated-month"}
