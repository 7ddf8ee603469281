"""End-to-end benchmark of `pkgreport report` on generated exports, with the time of each stage.

    python benchmarks/bench_report.py                 # ~1M appointments, invoices and payments
    python benchmarks/bench_report.py --patients 2000 --months 3   # a quick smoke run
    python benchmarks/bench_report.py --data DIR --serial    # workbook and page one after the other

By default the outputs are rendered as `pkgreport report` renders them: the workbook in a second
process beside the page and the summary, when the report is large enough (see
`reports/publish.py`); `--serial` renders each in this process to time them apart. The inputs are made first, in a child process, by `pkgreport sample-data` (so generating them
does not count toward this process's peak memory). Targets for issue 5, on a 2-core machine:
under 30 s and 4 GB peak memory.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _sample import write_sample_exports

from pkgreport import pipeline
from pkgreport.config import Settings
from pkgreport.reports.context import build_context
from pkgreport.reports.excel import render_workbook
from pkgreport.reports.html import render_html
from pkgreport.reports.publish import output_names, render_outputs, write_all
from pkgreport.reports.summary import build_summary, summary_json
from pkgreport.result import RunResult


def peak_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=150_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data", type=Path, default=None, help="reuse (or create) inputs here")
    parser.add_argument(
        "--serial", action="store_true", help="render workbook, page and summary one by one here"
    )
    args = parser.parse_args()

    data = args.data or Path(tempfile.mkdtemp(prefix="pkgreport-bench-"))
    generated = not any(data.glob("*.csv"))
    if generated:
        t0 = time.perf_counter()
        write_sample_exports(
            data,
            "--patients",
            str(args.patients),
            "--months",
            str(args.months),
            "--seed",
            str(args.seed),
        )
        print(f"generated inputs in {time.perf_counter() - t0:.1f} s -> {data}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    generator_cpu = usage.ru_utime + usage.ru_stime
    out = Path(tempfile.mkdtemp(prefix="pkgreport-bench-out-"))
    # Per stage: wall seconds and this process's CPU seconds (the machine may be shared; CPU time
    # is the steadier figure to compare runs with).
    stages: dict[str, tuple[float, float]] = {}
    start, cpu_start = time.perf_counter(), time.process_time()
    cpu = cpu_start

    def stage(name: str, began: float) -> float:
        nonlocal cpu
        now, cpu_now = time.perf_counter(), time.process_time()
        stages[name] = (now - began, cpu_now - cpu)
        cpu = cpu_now
        return now

    settings = Settings(input_dir=data, output_dir=out)
    t = time.perf_counter()
    dataset = pipeline.load_dataset(settings)
    t = stage("load + validate", t)
    pipeline.require_clean(dataset)
    result = pipeline.compute(dataset, settings)
    t = stage("engines", t)
    if args.serial:
        files = _render_serially(result, settings, stage, t)
    else:
        files = render_outputs(result)
        t = stage("render (workbook beside page + summary)", t)
    t = time.perf_counter()
    names = output_names(result)
    write_all(out, files, names["manifest"])
    stage("write", t)
    total = time.perf_counter() - start
    total_cpu = time.process_time() - cpu_start

    rows = {f.kind: 0 for f in dataset.files}
    for f in dataset.files:
        rows[f.kind] += f.rows
    print("rows: " + ", ".join(f"{k} {n:,}" for k, n in sorted(rows.items())))
    for name, (seconds, cpu_seconds) in stages.items():
        print(f"  {name:<18} {seconds:6.2f} s  (cpu {cpu_seconds:6.2f} s)")
    for name, seconds in result.timings.items():
        print(f"    engine {name:<11} {seconds:6.2f} s")
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    # The second process's CPU is not in this process's; its peak is its own (it shares this
    # one's pages until either writes them). The generator, when it ran, is a child too.
    child_cpu = children.ru_utime + children.ru_stime - generator_cpu
    beside = ""
    if child_cpu > 0:
        beside = f" + {child_cpu:.2f} s in the second process"
        if not generated:
            beside += f" (its peak RSS {peak_mb(resource.RUSAGE_CHILDREN):,.0f} MB)"
    print(f"total {total:.2f} s (cpu {total_cpu:.2f} s here{beside}), peak RSS {peak_mb():,.0f} MB")
    xlsx, html = (files[names[kind]] for kind in ("xlsx", "html"))
    print(
        f"outputs: xlsx {len(xlsx) / 1e6:.1f} MB, html {len(html) / 1e6:.1f} MB "
        f"({len(result.findings):,} findings) in {out}"
    )


def _render_serially(
    result: RunResult,
    settings: Settings,
    stage: Callable[[str, float], float],
    t: float,
) -> dict[str, bytes]:
    summary = build_summary(result, title=settings.title, generated_at=None)
    ctx = build_context(result)
    t = stage("summary + context", t)
    xlsx = render_workbook(ctx)
    t = stage("workbook", t)
    html = render_html(ctx)
    t = stage("html", t)
    names = output_names(result)
    return {
        names["xlsx"]: xlsx,
        names["html"]: html.encode(),
        names["json"]: summary_json(summary).encode(),
    }


if __name__ == "__main__":
    main()
