"""What the benchmarks share: generated exports, and the `pkgreport` installed beside them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

# The README's 1M-row month: 1.01M appointments, 0.84M invoices, 0.76M payments.
MONTH_1M = ("--patients", "125000", "--months", "12", "--seed", "1")


def write_sample_exports(folder: Path, *options: str) -> None:
    """`pkgreport sample-data FOLDER OPTIONS` by this Python's pkgreport, its output discarded."""
    command = [sys.executable, "-m", "pkgreport", "sample-data", str(folder), *options]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def installed_pkgreport() -> str:
    """The `pkgreport` command installed beside this Python (else the one on the PATH)."""
    return shutil.which("pkgreport", path=str(Path(sys.executable).parent)) or "pkgreport"
