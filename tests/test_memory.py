"""Arrow's allocator in the command line's process (`memory.use_returning_allocator`): one that
gives back what it frees, unless whoever runs pkgreport named one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa

from pkgreport.memory import ARROW_POOL_VARIABLE

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"

# Prints Arrow's allocator before and after a command, each on a line of its own; the one
# before is mimalloc when asked for (argv[2]), else Arrow's default.
AROUND_A_COMMAND = """
import sys
import pyarrow as pa
from pkgreport.cli import cli

if sys.argv[2] == "mimalloc":  # Arrow's default in recent wheels, which keeps what it frees
    pa.set_memory_pool(pa.mimalloc_memory_pool())
print("allocator:", pa.default_memory_pool().backend_name)
cli(["validate", sys.argv[1]], prog_name="pkgreport", standalone_mode=False)
print("allocator:", pa.default_memory_pool().backend_name)
"""


def _allocators(named: str | None, before: str = "mimalloc") -> list[str]:
    """Arrow's allocator before and after `pkgreport validate sample_data`, with `named` in
    `ARROW_DEFAULT_MEMORY_POOL` (not set when None), from mimalloc or Arrow's default
    (`before`: "default")."""
    env = {k: v for k, v in os.environ.items() if k != ARROW_POOL_VARIABLE}
    if named is not None:
        env[ARROW_POOL_VARIABLE] = named
    done = subprocess.run(
        [sys.executable, "-c", AROUND_A_COMMAND, str(SAMPLE), before],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
        env=env,
    )
    # validate's own report comes between the two lines.
    return [
        line.removeprefix("allocator: ")
        for line in done.stdout.splitlines()
        if line.startswith("allocator: ")
    ]


def _has_jemalloc() -> bool:
    try:
        pa.jemalloc_memory_pool()
    except NotImplementedError:
        return False
    return True


def test_a_command_has_arrow_allocate_from_jemalloc_not_mimalloc() -> None:
    assert _allocators(None) == ["mimalloc", "jemalloc" if _has_jemalloc() else "system"]


def test_an_allocator_named_by_whoever_runs_pkgreport_is_kept() -> None:
    assert _allocators("system", before="default") == ["system", "system"]
    assert _allocators("mimalloc", before="default") == ["mimalloc", "mimalloc"]
