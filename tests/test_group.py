"""Clinic groups run one after another in-process: the group file, each clinic's reports as its
own run writes them, group totals that tie to the clinics' own JSON, a clinic that fails."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from pkgreport import pipeline
from pkgreport.cli import cli
from pkgreport.config import Settings
from pkgreport.demo.generate import generate
from pkgreport.engine.registry import FINDINGS
from pkgreport.errors import Issue
from pkgreport.group.clinics import read_group
from pkgreport.group.partition import merge_credit, merge_tallies, patient_parts, split_dataset
from pkgreport.reports.publish import render_outputs
from pkgreport.result import Dataset

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
TITLE = "Packages and account credit"


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _copy_sample(folder: Path) -> Path:
    shutil.copytree(SAMPLE, folder, ignore=shutil.ignore_patterns("README.md"))
    return folder


def _break_an_invoice(folder: Path) -> None:
    """The first invoice's amount becomes text no one can read as money."""
    path = next(folder.glob("Invoices-*.csv"))
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[1] = lines[1].replace(",425.00,0.00,0.00,425.00,", ",425.00,0.00,0.00,four hundred,", 1)
    path.write_text("".join(lines), encoding="utf-8")


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of three clinics: the sample data and two small generated ones."""
    root = tmp_path_factory.mktemp("exports")
    _copy_sample(root / "harbour")
    generate(root / "north", patients=120, months=2, seed=3)
    generate(root / "south", patients=150, months=2, seed=5)
    return root


@pytest.fixture(scope="module")
def group_run(exports: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("group") / "reports"
    code, stdout, stderr = _invoke("report", "--group", str(exports), "-o", str(out))
    assert (code, stderr) == (0, "")
    return out, stdout


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_each_clinic_is_written_as_its_own_report_run_writes_it(
    exports: Path, group_run: tuple[Path, str], tmp_path: Path
) -> None:
    out, stdout = group_run
    for clinic in ("harbour", "north", "south"):
        alone = tmp_path / clinic
        code, _, _ = _invoke(
            "report", str(exports / clinic), "-o", str(alone), "--title", f"{clinic}: {TITLE}", "-q"
        )
        assert code == 0
        assert _files(out / clinic) == _files(alone)
    written = sorted(str(Path(line).relative_to(out)) for line in stdout.splitlines())
    assert written == sorted(_files(out))


def test_group_totals_tie_to_the_clinics_own_json_to_the_cent(group_run: tuple[Path, str]) -> None:
    out, _ = group_run
    group = json.loads(next(out.glob("pkgreport-group-*.json")).read_text(encoding="utf-8"))
    own = {
        clinic: json.loads(next((out / clinic).glob("pkgreport-*.json")).read_text("utf-8"))
        for clinic in ("harbour", "north", "south")
    }
    for key in ("credit_liability", "open_invoices_outstanding", "package_value_undelivered"):
        cents = sum(summary["totals"][key]["cents"] for summary in own.values())
        assert group["totals"][key]["cents"] == cents
        assert [c[key] for c in group["clinics"]] == [s["totals"][key] for s in own.values()]
    assert group["totals"]["cases_over_booked"] == sum(
        s["counts"]["cases_over_booked"] for s in own.values()
    )
    every = [f["severity"] for s in own.values() for f in s["findings"]]
    assert group["totals"]["findings_by_severity"] == {
        severity: every.count(severity) for severity in ("high", "medium", "low")
    }
    assert len(group["findings"]) == len(every)
    ranks = [("high", "medium", "low").index(f["severity"]) for f in group["findings"]]
    assert ranks == sorted(ranks)
    # Each clinic's findings keep their own order within a severity, the clinic named.
    harbour = [f for f in group["findings"] if f["clinic"] == "harbour"]
    assert harbour == [
        {"clinic": "harbour", "title": FINDINGS[f["code"]].title, **f}
        for f in own["harbour"]["findings"]
    ]
    assert group["clinics_not_computed"] == []
    assert group["as_of"] == max(s["settings"]["as_of"] for s in own.values())


def test_a_failing_clinic_is_listed_with_its_issues_and_the_others_are_written(
    exports: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "exports"
    shutil.copytree(exports, folder)
    _break_an_invoice(folder / "north")
    dataset = pipeline.load_dataset(Settings(input_dir=folder / "north"))
    errors = [i for i in dataset.issues if i.severity == "error"]
    assert len(errors) == 1
    out = tmp_path / "reports"
    code, _, stderr = _invoke("report", "--group", str(folder), "-o", str(out), "-q")
    assert code == 1
    problem = "1 problem(s) in the inputs must be fixed before figures can be trusted"
    assert stderr.splitlines() == [
        f"clinic north not computed: {problem}",
        f"  {errors[0]}",
        "1 of 3 clinic(s) not computed; the reports of the other 2 were written",
    ]
    assert not (out / "north").exists()
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["harbour", "south"]
    group = json.loads(next(out.glob("pkgreport-group-*.json")).read_text(encoding="utf-8"))
    assert group["clinics_not_computed"] == ["north"]
    north = next(c for c in group["clinics"] if c["name"] == "north")
    assert north == {
        "name": "north",
        "computed": False,
        "problem": problem,
        "issues": [i.as_dict() for i in errors],
    }
    page = next(out.glob("pkgreport-group-*.html")).read_text(encoding="utf-8")
    assert '<h2 id="not-computed-h">Not computed</h2>' in page
    assert f"<li>{Issue(**north['issues'][0])}</li>".replace("'", "&#39;") in page


def test_a_group_file_gives_each_clinic_its_own_settings(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    group = tmp_path / "group.toml"
    group.write_text(
        'timezone = "Australia/Sydney"\nallocation = "newest-first"\n\n'
        '[[clinic]]\nname = "Bondi"\ninput = "a"\n\n'
        '[[clinic]]\nname = "Seattle"\ninput = "b"\ntimezone = "America/Los_Angeles"\n'
        'date_order = "mdy"\ntitle = "Seattle pack"\n',
        encoding="utf-8",
    )
    given = Settings(dormant_days=200)  # as the command line gives it: over the file's keys
    shared, clinics = read_group(group, given, tmp_path / "out")
    assert [c.name for c in clinics] == ["Bondi", "Seattle"]
    assert clinics[0].settings == shared.replace(
        input_dir=tmp_path / "a", output_dir=tmp_path / "out" / "Bondi", title=f"Bondi: {TITLE}"
    )
    assert clinics[1].settings == Settings(
        input_dir=tmp_path / "b",
        output_dir=tmp_path / "out" / "Seattle",
        timezone="America/Los_Angeles",
        date_order="mdy",
        allocation="newest-first",
        dormant_days=200,
        title="Seattle pack",
    )


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[[clinic]]\nname = "Bondi"\n',
            "{path}, [[clinic]] table 1: add input (every clinic needs both)",
        ),
        (
            '[[clinic]]\nname = "../up"\ninput = "a"\n',
            "{path}, [[clinic]] table 1: name = '../up' must start with a letter or digit and "
            "hold only letters, digits, spaces, dots, hyphens and underscores (it names the "
            "clinic's report folder)",
        ),
        (
            '[[clinic]]\nname = "Bondi"\ninput = "a"\n[[clinic]]\nname = "bondi"\ninput = "b"\n',
            "{path}, [[clinic]] table 2: a clinic named 'bondi' is already listed: rename one",
        ),
        (
            '[[clinic]]\nname = "Bondi"\ninput = "a"\noutput = "x"\n',
            "{path}, [[clinic]] table 1 (Bondi): 'output' cannot differ per clinic; a clinic "
            "may set name, input, timezone, date_order, columns, source, allocation, "
            "credit_applies, dormant_days, nearly_used_up, ageing_buckets, max_amount, "
            "max_file_bytes, max_cell_chars, title",
        ),
        (
            '[[clinic]]\nname = "Bondi"\ninput = "a"\ndate_order = "dym"\n',
            "{path}, [[clinic]] table 1 (Bondi): date_order = 'dym' must be one of dmy, mdy, ymd",
        ),
        (
            'timezone = "UTC"\n',
            "{path}: the group file lists no clinic: add a [[clinic]] table (name and input) "
            "for each clinic",
        ),
    ],
)
def test_a_bad_group_file_is_refused_naming_the_table(
    tmp_path: Path, toml: str, message: str
) -> None:
    path = tmp_path / "group.toml"
    path.write_text(toml, encoding="utf-8")
    code, stdout, stderr = _invoke("report", "--group", str(path), "-o", str(tmp_path / "out"))
    assert (code, stdout) == (2, "")
    assert stderr == f"Error: {message.format(path=path)}\n"


def test_run_config_with_clinic_tables_writes_the_group(exports: Path, tmp_path: Path) -> None:
    config = tmp_path / "pkgreport.toml"
    config.write_text(
        f'output = "reports"\ntimezone = "Australia/Sydney"\n\n'
        f'[[clinic]]\nname = "north"\ninput = "{exports / "north"}"\n\n'
        f'[[clinic]]\nname = "south"\ninput = "{exports / "south"}"\ndate_order = "dmy"\n',
        encoding="utf-8",
    )
    code, stdout, stderr = _invoke("run", "--config", str(config), "--period", "2026-09", "-q")
    assert (code, stdout, stderr) == (0, "", "")
    out = tmp_path / "reports"
    assert sorted(_files(out)) == [
        ".pkgreport.lock",  # the scheduled run's lock on the output folder
        "north/pkgreport-2026-09-30.html",
        "north/pkgreport-2026-09-30.json",
        "north/pkgreport-2026-09-30.sha256",
        "north/pkgreport-2026-09-30.xlsx",
        "pkgreport-group-2026-09-30.html",
        "pkgreport-group-2026-09-30.json",
        "pkgreport-group-2026-09-30.sha256",
        "pkgreport-group-2026-09-30.xlsx",
        "south/pkgreport-2026-09-30.html",
        "south/pkgreport-2026-09-30.json",
        "south/pkgreport-2026-09-30.sha256",
        "south/pkgreport-2026-09-30.xlsx",
    ]


def test_run_config_group_exits_4_on_a_fail_on_finding_in_any_clinic(
    exports: Path, tmp_path: Path
) -> None:
    config = tmp_path / "pkgreport.toml"
    config.write_text(
        f'output = "reports"\nfail_on = ["OVER_BOOKED"]\n\n'
        f'[[clinic]]\nname = "north"\ninput = "{exports / "north"}"\n\n'
        f'[[clinic]]\nname = "south"\ninput = "{exports / "south"}"\n',
        encoding="utf-8",
    )
    code, _, stderr = _invoke("run", "--config", str(config), "--period", "2026-09", "-q")
    over_booked = [
        f
        for clinic in ("north", "south")
        for f in json.loads(
            (tmp_path / "reports" / clinic / "pkgreport-2026-09-30.json").read_text("utf-8")
        )["findings"]
        if f["code"] == "OVER_BOOKED"
    ]
    assert over_booked
    assert (code, stderr) == (4, f"fail-on: OVER_BOOKED x{len(over_booked)}\n")


def test_dask_options_without_dask_say_how_to_install_it(
    exports: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `import distributed` fails as it does where the extra is not installed.
    monkeypatch.setitem(sys.modules, "distributed", None)
    code, stdout, stderr = _invoke(
        "report", "--group", str(exports), "-o", str(tmp_path), "--workers", "2"
    )
    assert (code, stdout) == (2, "")
    assert stderr == (
        "Error: --workers runs the clinics on Dask, which is not installed: install Dask with: "
        "pip install 'pkgreport[dask]', or leave out --workers, --scheduler and --partitions to "
        "run the clinics one after another\n"
    )
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"],
            "--workers and --scheduler cannot go together: --workers starts a cluster on this "
            "machine, --scheduler uses one already running; give one of them",
        ),
    ],
)
def test_conflicting_fanout_options_are_refused(
    exports: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    code, _, stderr = _invoke("report", "--group", str(exports), "-o", str(tmp_path), *args)
    assert (code, stderr) == (2, f"Error: {message}\n")


def test_workers_for_one_clinic_without_partitions_is_refused(tmp_path: Path) -> None:
    code, _, stderr = _invoke("report", str(SAMPLE), "-o", str(tmp_path), "--workers", "2")
    assert (code, stderr) == (
        2,
        "Error: --workers and --scheduler run the clinics of a group: give --group (or "
        "[[clinic]] tables in the config file), or --partitions K to split this one clinic by "
        "patient\n",
    )


def test_a_sub_folder_that_cannot_name_a_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "exports" / "-bad").mkdir(parents=True)
    code, _, stderr = _invoke("report", "--group", str(tmp_path / "exports"), "-o", str(tmp_path))
    assert code == 2
    assert stderr == (
        f"Error: {tmp_path / 'exports' / '-bad'}: the folder's name '-bad' must start with a "
        "letter or digit and hold only letters, digits, spaces, dots, hyphens and underscores "
        "(it names the clinic's report folder); rename the folder\n"
    )


def _with_allocations(folder: Path) -> Path:
    """The sample clinic plus an allocations export: each of 60 payments to an invoice of its
    patient's."""
    dataset = pipeline.load_dataset(Settings(input_dir=folder))
    invoices, payments = dataset.invoices, dataset.payments
    assert invoices is not None and payments is not None
    last_invoice = invoices.drop_duplicates("patient_id", keep="last").set_index("patient_id")
    paid = payments.loc[payments["patient_id"].isin(last_invoice.index) & (payments["amount"] > 0)]
    lines = ["Invoice ID,Payment ID,Amount"] + [
        f"{last_invoice.at[row.patient_id, 'invoice_id']},{row.payment_id},"
        f"{min(row.amount, 1000) // 100}.{min(row.amount, 1000) % 100:02d}"
        for row in paid.head(60).itertuples()
    ]
    (folder / "Allocations.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.mark.parametrize("partitions", [2, 5])
def test_engines_on_patient_parts_give_the_same_bytes(
    exports: Path, tmp_path: Path, partitions: int
) -> None:
    """The partitioned run without Dask: each part through the same engines, then merged."""
    allocated = _with_allocations(_copy_sample(tmp_path / "allocated"))
    for folder, policy in [
        (exports / "harbour", "oldest-first"),
        (exports / "south", "oldest-first"),
        (allocated, "newest-first"),
    ]:
        settings = Settings(input_dir=folder, allocation=policy)  # type: ignore[arg-type]
        dataset = pipeline.load_dataset(settings)
        assert dataset.errors == []
        assert (dataset.allocations is None) == (folder != allocated)
        whole = pipeline.compute(dataset, settings)

        def engines(ds, s, as_of, links):  # type: ignore[no-untyped-def]
            parts = split_dataset(ds, partitions)
            figures = [pipeline.patient_engines(p, s, as_of, links) for p in parts]
            return (
                merge_tallies([t for t, _ in figures]),
                merge_credit([c for _, c in figures], ds),
            )

        parted = pipeline.compute(dataset, settings, engines=engines)
        assert render_outputs(parted) == render_outputs(whole)


def test_patients_whose_records_point_at_each_other_share_a_part() -> None:
    """p1's payment allocated to p2's invoice; p4's appointment on p3's case; p5 alone."""
    dataset = Dataset(
        invoices=pd.DataFrame({"invoice_id": ["i1", "i2", "i3"], "patient_id": ["p1", "p2", "p3"]}),
        payments=pd.DataFrame({"payment_id": ["y1", "y2", "y5"], "patient_id": ["p1", "p2", "p5"]}),
        allocations=pd.DataFrame(
            {"invoice_id": ["i2"], "payment_id": ["y1"], "patient_id": ["p2"]}
        ),
        cases=pd.DataFrame({"case_id": ["c1"], "patient_id": ["p3"]}),
        appointments=pd.DataFrame(
            {"appointment_id": ["a1"], "patient_id": ["p4"], "case_id": ["c1"]}
        ),
    )
    for partitions in (2, 3, 4):
        codes, part_of = patient_parts(dataset, partitions)
        part = dict(zip(codes, part_of.tolist(), strict=True))
        assert sorted(part) == ["p1", "p2", "p3", "p4", "p5"]
        assert part["p1"] == part["p2"]
        assert part["p3"] == part["p4"]
        assert len(set(part.values())) == min(partitions, 3)
        parts = split_dataset(dataset, partitions)
        assert sorted(p for d in parts for p in d.payments["patient_id"]) == ["p1", "p2", "p5"]  # type: ignore[index]


def test_input_dir_and_group_together_are_refused(exports: Path, tmp_path: Path) -> None:
    code, _, stderr = _invoke("report", str(SAMPLE), "--group", str(exports), "-o", str(tmp_path))
    assert (code, stderr) == (
        2,
        "Error: give INPUT_DIR for one clinic or --group for a group of clinics, not both\n",
    )


def test_report_without_input_dir_or_group_says_what_to_give(tmp_path: Path) -> None:
    code, _, stderr = _invoke("report", "-o", str(tmp_path))
    assert (code, stderr) == (
        2,
        "Error: give INPUT_DIR (the folder of exports), or --group for a clinic group\n",
    )


def test_run_with_dask_options_but_no_clinic_tables_is_refused(tmp_path: Path) -> None:
    code, _, stderr = _invoke("run", str(SAMPLE), "-o", str(tmp_path), "--partitions", "2")
    assert (code, stderr) == (
        2,
        "Error: --workers, --scheduler and --partitions run the clinics of a config file's "
        "[[clinic]] tables, and none were given: add them to the file given with --config, or "
        "use `pkgreport report INPUT_DIR --partitions K` to split one clinic\n",
    )


def test_finding_sentences_read_as_on_the_clinic_s_own_page_and_workbook(
    group_run: tuple[Path, str],
) -> None:
    import html

    import openpyxl

    out, _ = group_run
    group = json.loads(next(out.glob("pkgreport-group-*.json")).read_text(encoding="utf-8"))
    closed = next(
        f
        for f in group["findings"]
        if f["code"] == "BOOKED_AFTER_CLOSE" and f["clinic"] == "harbour"
    )
    # The JSON keeps the engine's ISO text; pages and workbooks say the date in prose.
    assert closed["message"] == (
        "Case 490004 (Physio 5-session package) was closed on 2026-08-17 12:00 but 1 counted "
        "appointment starts after that: reopen the case, or move that appointment to an open "
        "package."
    )
    prose = closed["message"].replace("2026-08-17 12:00", "17 Aug 2026 12:00")
    own_page = next((out / closed["clinic"]).glob("pkgreport-*.html")).read_text(encoding="utf-8")
    group_page = next(out.glob("pkgreport-group-*.html")).read_text(encoding="utf-8")
    assert html.escape(prose) in own_page
    assert html.escape(prose) in group_page
    assert "2026-08-17 12:00" not in group_page
    sheet = openpyxl.load_workbook(next(out.glob("pkgreport-group-*.xlsx")))["Findings"]
    rows = list(sheet.iter_rows(values_only=True))
    at = rows[0].index("What it is and what to do")
    messages = [row[at] for row in rows[1:]]
    assert prose in messages
    assert not any("2026-08-17 12:00" in (m or "") for m in messages)


def test_the_group_workbook_prints_one_page_wide_with_dates_as_dates(
    group_run: tuple[Path, str],
) -> None:
    import datetime

    import openpyxl

    out, _ = group_run
    book = openpyxl.load_workbook(next(out.glob("pkgreport-group-*.xlsx")))
    for sheet, header_row in (("Clinics", 3), ("Findings", 1)):
        ws = book[sheet]
        assert ws.page_setup.orientation == "landscape", sheet
        # One page wide, as many tall as needed (an absent fitToWidth is 1 in OOXML).
        setup = ws.page_setup
        assert ws.sheet_properties.pageSetUpPr.fitToPage, sheet
        assert (setup.fitToWidth or 1, setup.fitToHeight) == (1, 0), sheet
        assert ws.print_title_rows == f"${header_row}:${header_row}", sheet
        assert ws.oddFooter.center.text == "&A, as of 31 Oct 2026", sheet
    group = json.loads(next(out.glob("pkgreport-group-*.json")).read_text(encoding="utf-8"))
    clinics = book["Clinics"]
    assert [clinics.cell(row, 2).value for row in (4, 5, 6)] == [
        datetime.datetime.fromisoformat(c["as_of"]) for c in group["clinics"]
    ]
