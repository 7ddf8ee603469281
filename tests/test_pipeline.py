"""End to end on sample_data: every planted finding is found, and nothing else of the exclusive kinds."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pkgreport import pipeline
from pkgreport.config import Settings
from pkgreport.demo.generate import PLANTED, PLANTED_CREDIT, PLANTS
from pkgreport.errors import InputError
from pkgreport.pipeline import RunResult, compute, load_dataset, month_bounds, run
from pkgreport.schema_process import ChecksAfterTyping

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
# Codes that also occur naturally among the generated patients.
NATURAL = {"UNAPPLIED_CREDIT", "NEARLY_USED_UP"}


@pytest.fixture(scope="module")
def result() -> RunResult:
    return run(Settings(input_dir=SAMPLE))


def test_sample_validates_without_errors(result: RunResult) -> None:
    assert [i for i in result.dataset.issues if i.severity == "error"] == []


def test_default_as_of_is_the_last_activity_not_the_clock(result: RunResult) -> None:
    assert result.as_of == date(2026, 10, 31)
    assert (result.period_start, result.period_end) == (date(2026, 10, 1), date(2026, 10, 31))


@pytest.mark.parametrize("code", sorted(PLANTED))
def test_each_planted_finding_is_found_exactly_where_planted(result: RunResult, code: str) -> None:
    found = set(result.findings.loc[result.findings["code"] == code, "subject_id"])
    assert set(PLANTED[code]) <= found
    if code not in NATURAL:
        assert found == set(PLANTED[code])


def test_planted_appointments_are_named(result: RunResult) -> None:
    for plant in PLANTS:
        if not plant.appointment_ids:
            continue
        rows = result.findings[
            (result.findings["code"] == plant.code)
            & (result.findings["subject_id"] == plant.subject_id)
        ]
        named = {a for ids in rows["appointment_ids"] for a in ids.split(", ") if a}
        assert set(plant.appointment_ids) <= named, plant


def test_recomputed_credit_matches_the_planted_truth(result: RunResult) -> None:
    assert result.credit is not None
    credit = result.credit.patients.set_index("patient_id")["credit"]
    for patient, cents in PLANTED_CREDIT.items():
        assert int(credit.get(patient, 0)) == cents, patient


def test_credit_rolls_forward_from_month_to_month(result: RunResult) -> None:
    monthly = result.monthly
    assert monthly is not None and list(monthly["month"])[-3:] == ["2026-08", "2026-09", "2026-10"]
    closing = monthly["closing"].to_numpy()
    opening = monthly["opening"].to_numpy()
    assert (opening[1:] == closing[:-1]).all()
    assert (
        (monthly["opening"] + monthly["created"] - monthly["applied"] - monthly["refunded"])
        == monthly["closing"]
    ).all()
    # The October closing total is the credit liability on 31 October.
    assert result.credit is not None
    assert closing[-1] == int(result.credit.patients["credit"].sum())


def test_each_month_end_rolls_into_the_next_with_as_of_runs() -> None:
    dataset = load_dataset(Settings(input_dir=SAMPLE))
    closings = {}
    for month_end in (date(2026, 8, 31), date(2026, 9, 30), date(2026, 10, 31)):
        start, end = month_bounds(month_end)
        r = compute(
            dataset, Settings(input_dir=SAMPLE, as_of=month_end, period_start=start, period_end=end)
        )
        assert r.rollforward is not None and r.credit is not None
        total = r.rollforward.iloc[-1]
        assert total["patient_id"] == "TOTAL"
        assert int(total["closing"]) == int(r.credit.patients["credit"].sum())
        closings[month_end] = (int(total["opening"]), int(total["closing"]))
    assert closings[date(2026, 9, 30)][0] == closings[date(2026, 8, 31)][1]
    assert closings[date(2026, 10, 31)][0] == closings[date(2026, 9, 30)][1]


def test_same_inputs_same_results(result: RunResult) -> None:
    again = run(Settings(input_dir=SAMPLE))
    pd.testing.assert_frame_equal(again.findings, result.findings)
    assert again.credit is not None and result.credit is not None
    pd.testing.assert_frame_equal(again.credit.patients, result.credit.patients)


def test_every_row_left_out_of_the_figures_is_listed(result: RunResult) -> None:
    from pkgreport.reports.context import build_context

    table = next(t for t in build_context(result).tables if t.key == "validation")
    excluded = table.frame[table.frame["severity"] == "excluded"]
    listed = dict(zip(excluded["value"], excluded["message"], strict=True))
    # The planted archived appointment and deleted payment (sample_data/README.md).
    assert listed["190000040"] == "appointment archived: not counted toward case 490015"
    assert listed["390000031"].startswith("deleted payment")


# --- pandera's checks beside the engines (`run` on a small folder) ------------------------------


def _sample_with_payment_row(folder: Path, row: str) -> Path:
    """sample_data with one more row at the end of the payments export."""
    for path in SAMPLE.glob("*.csv"):
        text = path.read_text(encoding="utf-8")
        if path.name.startswith("Payments"):
            text += row + "\n"
        (folder / path.name).write_text(text, encoding="utf-8")
    return folder


def _run_three_ways(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[object], list[object], list[object]]:
    """`run` with the checks forked before reading, forked once the frames are typed (a folder
    above the limit), then checking first (no fork); each gives its result (or error) and the
    stage messages it showed."""
    outcomes: list[object] = []
    for most_rows, fork in ((pipeline.SCHEMA_BESIDE_MAX_ROWS, True), (0, True), (0, False)):
        monkeypatch.setattr(pipeline, "SCHEMA_BESIDE_MAX_ROWS", most_rows)
        if not fork:
            monkeypatch.setattr(os, "fork", _refuse)
        shown: list[str] = []
        try:
            outcome: object = run(Settings(input_dir=folder), progress=shown.append)
        except InputError as exc:
            outcome = (str(exc), [str(i) for i in exc.issues])
        outcomes.append((outcome, shown))
    monkeypatch.undo()
    return outcomes[0], outcomes[1], outcomes[2]  # type: ignore[return-value]


def _refuse() -> int:
    raise OSError("fork: Resource temporarily unavailable")


def _same_run(beside: RunResult, here: RunResult) -> None:
    assert [str(i) for i in beside.dataset.issues] == [str(i) for i in here.dataset.issues]
    pd.testing.assert_frame_equal(beside.dataset.excluded, here.dataset.excluded)
    pd.testing.assert_frame_equal(beside.findings, here.findings)
    assert beside.credit is not None and here.credit is not None
    pd.testing.assert_frame_equal(beside.credit.patients, here.credit.patients)


def test_a_copied_payment_row_pandera_flags_gives_the_same_run_as_checking_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The repeated id fails pandera's uniqueness check: validation is done again with its failures.
    row = "390000042,900022,29/07/2026 16:00,$950.00,Credit Card,Pre-payment: 10-session package,"
    folder = _sample_with_payment_row(tmp_path, row)
    early, late, (here, here_shown) = _run_three_ways(folder, monkeypatch)
    for beside, beside_shown in (early, late):
        assert isinstance(beside, RunResult) and isinstance(here, RunResult)
        _same_run(beside, here)
        assert beside_shown == here_shown
    assert isinstance(here, RunResult)
    assert str(here.dataset.issues[1]) == (
        "WARNING: Payments-Cliniko-20261101.csv, row 762: row 762 repeats row 761 exactly and is "
        "counted once: if it really happened twice, export the payments with their ids so the two "
        "can be told apart"
    )


def test_a_conflicting_payment_id_fails_with_the_same_errors_and_messages_as_checking_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    row = "390000042,900022,29/07/2026 16:00,$951.00,Credit Card,Pre-payment: 10-session package,"
    folder = _sample_with_payment_row(tmp_path, row)
    early, late, (here, here_shown) = _run_three_ways(folder, monkeypatch)
    for beside, beside_shown in (early, late):
        assert beside == here
        # Nothing the engines said while the checks were pending is shown.
        assert beside_shown == here_shown == [here_shown[0]]
    message, issues = here  # type: ignore[misc]
    assert message == "1 problem(s) in the inputs must be fixed before figures can be trusted"
    assert [i for i in issues if i.startswith("ERROR")] == [
        "ERROR: Payments-Cliniko-20261101.csv, row 761, column 'ID', value '390000042': ID "
        "390000042 is used by 2 different rows: Payments-Cliniko-20261101.csv row 761 and "
        "Payments-Cliniko-20261101.csv row 762 (they differ in amount). Keep one version: "
        "correct the id or remove the out-of-date row"
    ]
    assert here_shown[0].startswith("read 5 file(s): Appointments-Cliniko-20261101.csv")


def test_clean_exports_give_the_same_run_as_checking_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    early, late, (here, here_shown) = _run_three_ways(SAMPLE, monkeypatch)
    for beside, beside_shown in (early, late):
        assert isinstance(beside, RunResult) and isinstance(here, RunResult)
        _same_run(beside, here)
        assert beside_shown == here_shown
    assert len(here_shown) == 3


def test_when_the_system_refuses_a_fork_the_checks_run_here(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "fork", _refuse)
    beside = run(Settings(input_dir=SAMPLE))
    monkeypatch.undo()
    _same_run(beside, run(Settings(input_dir=SAMPLE)))


def test_a_small_clean_run_never_imports_pandera_in_its_own_process() -> None:
    # pandera's import and backend registration (~0.3 s) belong to the process checking beside.
    probe = (
        "import sys; from pathlib import Path; from pkgreport.config import Settings; "
        "from pkgreport.pipeline import run; "
        f"run(Settings(input_dir=Path({str(SAMPLE)!r}))); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pandera'))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout == "[]\n"


def test_when_the_process_forked_after_typing_fails_the_run_is_validated_again_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its frames are gone with it: the tables are validated again with pandera in this process.
    row = "390000042,900022,29/07/2026 16:00,$950.00,Credit Card,Pre-payment: 10-session package,"
    folder = _sample_with_payment_row(tmp_path, row)
    here = run(Settings(input_dir=folder))

    def dies(self: ChecksAfterTyping) -> bytes:
        os._exit(3)

    monkeypatch.setattr(pipeline, "SCHEMA_BESIDE_MAX_ROWS", 0)
    monkeypatch.setattr(ChecksAfterTyping, "_check_typed", dies)
    shown: list[str] = []
    beside = run(Settings(input_dir=folder), progress=shown.append)
    _same_run(beside, here)
    assert len(shown) == 3


@pytest.mark.parametrize("pandera_fails", [False, True])
def test_an_error_in_validation_itself_is_raised_the_same_whether_the_checks_run_beside_or_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pandera_fails: bool
) -> None:
    # A fault put after validation's own work: while pandera's verdict is pending it is held, then
    # raised as it is when checking first; when a check failed, validating again meets it again.
    folder = tmp_path if pandera_fails else SAMPLE
    if pandera_fails:
        row = (
            "390000042,900022,29/07/2026 16:00,$950.00,Credit Card,Pre-payment: 10-session package,"
        )
        folder = _sample_with_payment_row(tmp_path, row)
    validate_tables = pipeline.validate_tables
    calls: list[str] = []

    def then_fails(*args: object, **kwargs: object) -> object:
        validate_tables(*args, **kwargs)  # type: ignore[arg-type]
        calls.append("validated")
        raise RuntimeError("validation stopped")

    raised: list[str] = []
    for most_rows, fork in ((pipeline.SCHEMA_BESIDE_MAX_ROWS, True), (0, True), (0, False)):
        with monkeypatch.context() as patched:
            patched.setattr(pipeline, "validate_tables", then_fails)
            patched.setattr(pipeline, "SCHEMA_BESIDE_MAX_ROWS", most_rows)
            if not fork:
                patched.setattr(os, "fork", _refuse)
            shown: list[str] = []
            with pytest.raises(RuntimeError) as error:
                run(Settings(input_dir=folder), progress=shown.append)
            raised.append(str(error.value))
            assert shown == [shown[0]] and shown[0].startswith("read 5 file(s): ")
    assert raised == ["validation stopped"] * 3
    # Checking beside validates once, then (its checks failed) once more with their failures.
    assert len(calls) == (5 if pandera_fails else 3)


def test_a_large_folder_whose_checks_fail_computes_its_figures_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Forked once the frames are typed, the checks' verdict is joined before the engines run:
    # a copied row pandera flags is validated again with its failures, and computed only then.
    row = "390000042,900022,29/07/2026 16:00,$950.00,Credit Card,Pre-payment: 10-session package,"
    folder = _sample_with_payment_row(tmp_path, row)
    real_compute = pipeline.compute
    computed: list[int] = []

    def counted(dataset: object, *args: object, **kwargs: object) -> RunResult:
        computed.append(len(dataset.payments))  # type: ignore[attr-defined]
        return real_compute(dataset, *args, **kwargs)  # type: ignore[arg-type]

    here = run(Settings(input_dir=folder))
    monkeypatch.setattr(pipeline, "SCHEMA_BESIDE_MAX_ROWS", 0)
    monkeypatch.setattr(pipeline, "compute", counted)
    beside = run(Settings(input_dir=folder))
    _same_run(beside, here)
    assert computed == [len(here.dataset.payments)]


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_memory_freed_in_the_middle_of_the_heap_goes_back_to_the_system() -> None:
    # 64 KiB blocks come from the heap (not mappings of their own); the one kept at the end
    # holds the heap's top, so the others, freed, stay resident until the heap is trimmed.
    blocks = [np.ones(8192, dtype=np.int64) for _ in range(1600)]
    last = blocks[-1]
    del blocks
    before = _resident_bytes()
    assert pipeline.release_freed_memory() is True
    assert before - _resident_bytes() > 50 * 2**20
    assert int(last.sum()) == 8192


def _outputs_four_ways(folder: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, bytes]]:
    """Every file `report` writes, its month digests worked out by a thread beside the engines
    (pandera's checks forked before reading, then once the frames are typed, then refused a
    fork and run here), and by the summary (a folder below the limit)."""
    from pkgreport.reports import month_digest
    from pkgreport.reports.publish import render_outputs

    outputs = []
    ways = ("checks early", "checks after typing", "forks refused", "in the summary")
    for way in ways:
        with monkeypatch.context() as patched:
            if way != "in the summary":
                patched.setattr(month_digest, "BESIDE_MIN_ROWS", 0)
            if way != "checks early":
                patched.setattr(pipeline, "SCHEMA_BESIDE_MAX_ROWS", 0)
            if way == "forks refused":
                patched.setattr(os, "fork", _refuse)
            result = run(Settings(input_dir=folder))
        # From the limit a thread works the digests out beside the engines, joined once they
        # are done; below it the summary works them out.
        digests = result.month_digests
        if way == "in the summary":
            assert digests is None
        else:
            assert digests == month_digest.all_digests(
                {"invoices": result.dataset.invoices, "payments": result.dataset.payments}
            )
        outputs.append(render_outputs(result, generated_at="2026-11-29T00:00:00"))
        gc.unfreeze()  # whichever process was reaped last, the next way starts unfrozen
    return outputs


def _period_figures(outputs: dict[str, bytes]) -> dict[str, dict[str, object]]:
    (summary,) = (json.loads(v) for k, v in outputs.items() if k.endswith(".json"))
    figures: dict[str, dict[str, object]] = summary["period_figures"]
    return figures


def test_the_month_digests_are_the_same_whether_worked_out_beside_or_in_the_summary(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    early, late, refused, in_summary = _outputs_four_ways(SAMPLE, monkeypatch)
    assert early == late == refused == in_summary
    months = _period_figures(early).values()
    assert len(months) >= 3
    assert all(len(str(m.get("payments_digest"))) == 64 for m in months)


def test_when_pandera_fails_the_month_digests_are_of_the_frames_validated_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The copied payment row counts once when validated again: the digests are of those frames,
    # not of the frames validation first went ahead with (checks forked early: computed before
    # pandera's verdict, the digests' process started, then let go).
    row = "390000042,900022,29/07/2026 16:00,$950.00,Credit Card,Pre-payment: 10-session package,"
    folder = _sample_with_payment_row(tmp_path, row)
    early, late, refused, in_summary = _outputs_four_ways(folder, monkeypatch)
    assert early == late == refused == in_summary
    assert _period_figures(early) == _period_figures(_outputs_four_ways(SAMPLE, monkeypatch)[3])


def test_the_exports_text_is_let_go_before_the_checks_process_is_forked() -> None:
    settings = Settings(input_dir=SAMPLE)
    tables, load_issues = pipeline._read(settings, pipeline._quiet)
    tables_when_forked: list[tuple[int, bool]] = []

    class Watched(ChecksAfterTyping):
        def typed(self, frames: dict[str, pd.DataFrame]) -> None:
            super().typed(frames)
            tables_when_forked.append((len(tables), self.started))

    with Watched() as checks:
        outcome = pipeline._attempt(tables, load_issues, settings, checks, pipeline._quiet, 0.0)
        assert checks.failures() == {}
    assert tables_when_forked == [(0, True)]
    assert isinstance(outcome, RunResult)
    checked_first = run(settings)
    pd.testing.assert_frame_equal(outcome.findings, checked_first.findings)
    assert outcome.credit is not None and checked_first.credit is not None
    pd.testing.assert_frame_equal(outcome.credit.patients, checked_first.credit.patients)


def test_when_the_engines_fail_the_digests_thread_is_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pkgreport.reports import month_digest

    started: list[month_digest.DigestsBeside | None] = []

    def digests_kept(frames: dict[str, pd.DataFrame | None]) -> object:
        started.append(month_digest.digests_beside(frames))
        return started[-1]

    def engines_failing(*args: object, **kwargs: object) -> RunResult:
        assert started and started[0] is not None  # a thread was started
        raise RuntimeError("the engines failed")

    monkeypatch.setattr(month_digest, "BESIDE_MIN_ROWS", 0)
    monkeypatch.setattr(pipeline, "digests_beside", digests_kept)
    monkeypatch.setattr(pipeline, "compute", engines_failing)
    with pytest.raises(RuntimeError, match=r"^the engines failed$"):
        run(Settings(input_dir=SAMPLE))
    (digests,) = started
    assert digests is not None and digests._stop.is_set()  # told to stop, and waited for
    assert not digests._thread.is_alive()
