"""Time `pkgreport validate` as a whole process (start-up, imports, reading, checks), medians.

Run: python benchmarks/bench_validate.py [FOLDER] [--runs 3] [--against OTHER_PKGREPORT]

Without FOLDER, Cliniko-shaped XLSX exports are generated with `pkgreport sample-data --format
xlsx` (`--patients`, `--months`; the default, 12,500 patients over 12 months, is about 100,000
appointments) and only the appointments and cases are kept, the workbooks `validate` reads in
the README's figure.
`--against` names another installation's `pkgreport` (say, a checkout of main): the two run
alternately on the same folder, so a busy machine slows both alike. Wall time on a busy machine
overstates; CPU time (user + system, this process and its threads) is the steadier figure. The
load average is printed before and after: quote it with the figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from _sample import installed_pkgreport, write_sample_exports

KEPT_KINDS = ("appointments", "cases")


def generate(folder: Path, patients: int, months: int) -> None:
    """Cliniko-shaped XLSX exports in `folder`, the appointments and cases only."""
    options = ["--format", "xlsx", "--patients", str(patients), "--months", str(months)]
    write_sample_exports(folder, *options, "--seed", "1", "--force")
    for path in folder.iterdir():
        if not path.name.lower().startswith(KEPT_KINDS):
            path.unlink()


def timed(command: list[str]) -> tuple[float, float, float, int]:
    """(wall s, CPU s, peak MB, exit code) of one run of `command`, its output discarded."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, help="exports to validate")
    parser.add_argument("--runs", type=int, default=3, help="runs of each (default 3)")
    parser.add_argument("--against", help="another pkgreport executable, run alternately")
    parser.add_argument("--patients", type=int, default=12_500)
    parser.add_argument("--months", type=int, default=12)
    args = parser.parse_args()

    made = None
    folder = args.folder
    if folder is None:
        made = Path(tempfile.mkdtemp(prefix="bench-validate-"))
        folder = made / "exports"
        generate(folder, args.patients, args.months)
    this = installed_pkgreport()
    commands = {"this": [this, "validate", str(folder)]}
    if args.against:
        commands["against"] = [args.against, "validate", str(folder)]
    print(f"validate {folder}: {', '.join(p.name for p in sorted(folder.iterdir()))}")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    runs: dict[str, list[tuple[float, float, float, int]]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, command in commands.items():
            runs[name].append(timed(command))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    for name, results in runs.items():
        wall, cpu, peak = (statistics.median(r[i] for r in results) for i in range(3))
        codes = sorted({r[3] for r in results})
        print(
            f"{name:8} median of {len(results)}: {wall:.2f} s wall, {cpu:.2f} s CPU, "
            f"{peak:.0f} MB peak (exit {codes}); walls {[round(r[0], 2) for r in results]}"
        )
    if made is not None:
        shutil.rmtree(made)


if __name__ == "__main__":
    main()
