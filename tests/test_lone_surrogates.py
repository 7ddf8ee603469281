"""Lone surrogates (U+D800..U+DFFF alone in a `str`): no file carries one past the loader, a
file's name that would is refused, and a table built by hand holding one is refused by row."""

from __future__ import annotations

import codecs
import dataclasses
import io
import os
import re
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import xlsxwriter
from hypothesis import given
from hypothesis import strategies as st
from tests.test_cli import SAMPLE, invoke
from tests.test_loading_fuzz import FUZZ, check
from tests.test_validation import raw

from pkgreport.config import Settings
from pkgreport.inputs import xlsx_sheet
from pkgreport.inputs.loading import load_file
from pkgreport.inputs.surrogates import holds_lone_surrogate, lone_surrogate_cells, shown_name
from pkgreport.inputs.tables import RawTable
from pkgreport.inputs.validation import validate_tables

SETTINGS = Settings(timezone="Australia/Sydney")
HEADER = "ID,Patient ID,Payment Date,Amount\n"
ROW = "pay1,10{}76,02/10/2026,$300.00\n"
UNREADABLE_AS = "export it again as 'CSV UTF-8 (Comma delimited)'"
RESAVE = "open it in Excel and save it again as an Excel Workbook (.xlsx)"
REEXPORT = "export the file again as 'CSV UTF-8 (Comma delimited)' or .xlsx and use that file"


def no_lone_surrogate_in(table: RawTable) -> bool:
    frame = table.frame
    return not table.may_hold_lone_surrogates and not any(
        holds_lone_surrogate(str(c)) or lone_surrogate_cells(frame[c]).any() for c in frame.columns
    )


# --- CSV: every decoder is strict, so a surrogate's bytes never decode to one -----------------


def encoded(bom: bytes, codec: str) -> bytes:
    """The payments export with a lone surrogate in a patient id, as `codec` would write it."""
    return bom + (HEADER + ROW.format("\ud800")).encode(codec, "surrogatepass")


@pytest.mark.parametrize(
    ("content", "value", "issue"),
    [
        # UTF-8's bytes for U+D800 are not UTF-8: the file is read as Windows-1252, as any
        # file that is not UTF-8 is.
        (
            encoded(b"", "utf-8"),
            "10í\xa0€76",
            "WARNING: payments.csv, row 2: the file is not UTF-8, so it was read as Windows-1252 "
            "(Excel's 'CSV (Comma delimited)'); check accented characters, and export it again "
            "as 'CSV UTF-8 (Comma delimited)' next time",
        ),
        (
            encoded(codecs.BOM_UTF8, "utf-8"),
            None,
            "ERROR: payments.csv, row 2: the file starts with a utf-8-sig byte-order mark but is "
            f"not valid utf-8-sig (byte 41); {UNREADABLE_AS}",
        ),
        (
            encoded(codecs.BOM_UTF16_LE, "utf-16-le"),
            None,
            "ERROR: payments.csv, row 2: the file starts with a utf-16 byte-order mark but is "
            f"not valid utf-16 (byte 84); {UNREADABLE_AS}",
        ),
        (
            encoded(codecs.BOM_UTF16_BE, "utf-16-be"),
            None,
            "ERROR: payments.csv, row 2: the file starts with a utf-16 byte-order mark but is "
            f"not valid utf-16 (byte 84); {UNREADABLE_AS}",
        ),
        (
            encoded(codecs.BOM_UTF32_LE, "utf-32-le"),
            None,
            "ERROR: payments.csv, row 2: the file starts with a utf-32 byte-order mark but is "
            f"not valid utf-32 (byte 168); {UNREADABLE_AS}",
        ),
    ],
    ids=["utf-8", "utf-8 with BOM", "utf-16-le", "utf-16-be", "utf-32"],
)
def test_a_surrogate_written_in_a_csv_never_reads_as_one(
    tmp_path: Path, content: bytes, value: str | None, issue: str
) -> None:
    path = tmp_path / "payments.csv"
    path.write_bytes(content)
    table, issues = load_file(path, "payments", SETTINGS)
    assert [str(i) for i in issues] == [issue]
    if value is None:
        assert table is None
    else:
        assert table is not None and no_lone_surrogate_in(table)
        assert table.frame["Patient ID"].tolist() == [value]


@FUZZ
@given(
    st.text(
        alphabet=st.sampled_from(list("ab1,\n\ud800\udbff\udc00\udfff\U0001f600é")), max_size=80
    ),
    st.sampled_from(
        [
            (b"", "utf-8"),
            (codecs.BOM_UTF8, "utf-8"),
            (codecs.BOM_UTF16_LE, "utf-16-le"),
            (codecs.BOM_UTF16_BE, "utf-16-be"),
            (codecs.BOM_UTF32_LE, "utf-32-le"),
        ]
    ),
)
def test_no_csv_of_surrogates_loads_one(
    tmp_path_factory: pytest.TempPathFactory, text: str, encoding: tuple[bytes, str]
) -> None:
    # `check` asserts that no loaded cell or header holds a lone surrogate.
    bom, codec = encoding
    content = bom + ("id,patient_id\n" + text).encode(codec, "surrogatepass")
    check(tmp_path_factory.mktemp("csv"), content, ".csv")


# --- XLSX: calamine and fastexcel parse the XML as UTF-8 and refuse a surrogate's reference -----


def workbook(patient_id_xml: bytes, *, inline: bool) -> bytes:
    """A payments workbook whose one patient id is `patient_id_xml`, written into the shared
    strings or (`inline`) into the sheet's cell."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet()
    for row, values in enumerate([HEADER.strip().split(","), ["pay1", "XXXX", "02/10/2026"]]):
        for column, value in enumerate(values):
            sheet.write_string(row, column, value)
    book.close()
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    parts = {name: source.read(name) for name in source.namelist()}
    if inline:
        sheet_xml = parts["xl/worksheets/sheet1.xml"]
        parts["xl/worksheets/sheet1.xml"] = re.sub(
            rb'<c r="B2" t="s"><v>\d+</v></c>',
            b'<c r="B2" t="inlineStr"><is><t>' + patient_id_xml + b"</t></is></c>",
            sheet_xml,
        )
        assert parts["xl/worksheets/sheet1.xml"] != sheet_xml
    else:
        parts["xl/sharedStrings.xml"] = parts["xl/sharedStrings.xml"].replace(
            b"XXXX", patient_id_xml
        )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in parts.items():
            target.writestr(name, data)
    return out.getvalue()


CANNOT_DETECT = (
    f"ERROR: payments.xlsx: could not read the workbook (Cannot detect file format); {RESAVE}"
)


@pytest.mark.parametrize(
    ("content", "value", "issue"),
    [
        (workbook(b"10&#xD800;76", inline=False), None, CANNOT_DETECT),
        (workbook(b"10&#55296;76", inline=False), None, CANNOT_DETECT),
        (workbook(b"10\xed\xa0\x8076", inline=False), None, CANNOT_DETECT),
        (
            workbook(b"10&#xD800;76", inline=True),
            None,
            "ERROR: payments.xlsx: could not read sheet 'Sheet1' (invalid character reference: "
            f"`55296` is not a valid codepoint); {RESAVE}",
        ),
        (
            workbook(b"10\xed\xa0\x8076", inline=True),
            None,
            # calamine's own words, which differ between the versions tested (the floor's first).
            re.compile(
                re.escape("ERROR: payments.xlsx: could not read sheet 'Sheet1' (")
                + r"(?:XML encoding error: cannot decode input using UTF-8|cannot decode input "
                r"using UTF-8: invalid utf-8 sequence of 1 bytes from index 2)"
                + re.escape(f"); {RESAVE}")
            ),
        ),
        # Excel's escape of a character XML cannot hold is left as written.
        (workbook(b"10_xD800_76", inline=False), "10_xD800_76", None),
    ],
    ids=[
        "shared &#xD800;",
        "shared &#55296;",
        "shared UTF-8 bytes",
        "inline &#xD800;",
        "inline UTF-8 bytes",
        "shared _xD800_",
    ],
)
@pytest.mark.parametrize("big", [False, True], ids=["cell by cell", "as a big sheet"])
def test_a_surrogate_written_in_a_workbook_never_reads_as_one(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    content: bytes,
    value: str | None,
    issue: str | re.Pattern[str] | None,
    big: bool,
) -> None:
    path = tmp_path / "payments.xlsx"
    path.write_bytes(content)
    if big:  # read as Arrow text (a sheet of shared strings) or in two halves, as a big one is
        monkeypatch.setattr(xlsx_sheet, "SPLIT_MIN_BYTES", 0)
        monkeypatch.setattr(xlsx_sheet, "TEXT_MIN_BYTES", 0)
    table, issues = load_file(path, "payments", SETTINGS)
    if isinstance(issue, re.Pattern):  # the whole message, with the library's words in it
        assert len(issues) == 1 and issue.fullmatch(str(issues[0])), issues
    else:
        assert [str(i) for i in issues] == ([] if issue is None else [issue])
    if value is None:
        assert table is None
    else:
        assert table is not None and no_lone_surrogate_in(table)
        assert table.frame["Patient ID"].tolist() == [value]


# --- the mapping file: TOML refuses a surrogate's escape, and the file is read as UTF-8 ---------


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            b'[payments]\n"Patient \\uD800" = "patient_id"\n',
            "is not valid TOML: Escaped character is not a Unicode scalar value (at line 2, "
            "column 16)",
        ),
        (
            b'[payments]\n"Patient \xed\xa0\x80" = "patient_id"\n',
            "is not UTF-8 text: save it as UTF-8",
        ),
    ],
    ids=["escape", "UTF-8 bytes"],
)
def test_a_mapping_file_cannot_name_a_surrogate(tmp_path: Path, toml: bytes, message: str) -> None:
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "payments.csv").write_text(HEADER + ROW.format(""), encoding="utf-8")
    columns = tmp_path / "columns.toml"
    columns.write_bytes(toml)
    result = invoke("validate", str(tmp_path / "exports"), "--columns", str(columns))
    assert result.exit_code == 2
    assert result.stderr == f"Error: the column map {columns} {message}\n"


# --- a file's name: bytes that are not UTF-8 are read as lone surrogates, so it is refused ------

BAD_NAME = os.fsdecode(b"Payments-Cliniko-\xff.csv")


def name_refused(shown: str, byte: str) -> str:
    return (
        f"ERROR: {shown}: the file's name holds a byte that is not UTF-8 text ({byte}), so no "
        "message or report could name the file: rename it, e.g. to its kind and date "
        "(payments-20261101.csv), or move it out of the folder if it is not an export, and run "
        "again"
    )


NAMES_REFUSED = [
    name_refused("Notes-\\xfe.txt", "\\xfe"),
    name_refused("Payments-Cliniko-\\xff.csv", "\\xff"),
]


@pytest.fixture
def badly_named(tmp_path: Path) -> Path:
    """sample_data with its payments export named with a byte that is not UTF-8, and a note
    beside it named so too (an ignored file is named in the messages as well)."""
    folder = tmp_path / "exports"
    shutil.copytree(SAMPLE, folder)
    (folder / "Payments-Cliniko-20261101.csv").rename(folder / BAD_NAME)
    (folder / os.fsdecode(b"Notes-\xfe.txt")).write_text("a note", encoding="utf-8")
    return folder


def test_validate_refuses_a_file_whose_name_is_not_text(badly_named: Path) -> None:
    result = invoke("validate", str(badly_named))
    assert result.exit_code == 1
    errors = [line.strip() for line in result.stdout.splitlines() if "ERROR" in line]
    assert errors == NAMES_REFUSED


def test_report_refuses_a_file_whose_name_is_not_text(badly_named: Path, tmp_path: Path) -> None:
    result = invoke("report", str(badly_named), "-o", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "Error: 2 problem(s) in the inputs must be fixed before figures can be trusted",
        *(f"  {message}" for message in NAMES_REFUSED),
    ]
    assert not (tmp_path / "out").exists()


def test_load_file_refuses_a_path_whose_name_is_not_text(badly_named: Path) -> None:
    table, issues = load_file(badly_named / BAD_NAME, "payments", SETTINGS)
    assert table is None
    assert [str(i) for i in issues] == [NAMES_REFUSED[1]]


def test_a_name_is_shown_with_its_bytes_or_its_code_points() -> None:
    assert shown_name(BAD_NAME) == "Payments-Cliniko-\\xff.csv"
    assert shown_name("payments-\ud800.csv") == "payments-[U+D800].csv"
    assert shown_name("Paiements-Février.csv") == "Paiements-Février.csv"


# --- a table built by hand (the Python API): refused by row before validation reads it ----------


def payments_with(patient_ids: list[str], payment_ids: list[str] | None = None) -> RawTable:
    n = len(patient_ids)
    return raw(
        "payments",
        "payments.csv",
        {
            "payment_id": payment_ids or [f"pay{k}" for k in range(1, n + 1)],
            "patient_id": patient_ids,
            "paid_at": ["02/10/2026"] * n,
            "amount": ["100.00"] * n,
        },
    )


PATIENTS = raw("patients", "patients.csv", {"patient_id": ["p1", "p2"]})


def left_out(excluded: pd.DataFrame) -> list[tuple[object, ...]]:
    """The rows left out: (kind, file, row, reason); none of them names an id (not yet read)."""
    assert excluded["id"].isna().all()
    columns = ["kind", "source_file", "source_row", "reason"]
    return list(excluded[columns].itertuples(index=False, name=None))


def test_a_patient_id_holding_a_lone_surrogate_is_an_error_on_its_row() -> None:
    # It crashed the check that payments name known patients (pandas 3 cannot hold it as text).
    dataset = validate_tables([payments_with(["p1", "10\ud80076", "p2"]), PATIENTS], SETTINGS)
    message = (
        "patient_id 10[U+D800]76 holds a broken character (U+D800) that no export can hold: the "
        f"file's text was read with the wrong encoding, so the row is left out; {REEXPORT}"
    )
    assert [str(i) for i in dataset.issues] == [
        f"ERROR: payments.csv, row 3, column 'patient_id', value '10[U+D800]76': {message}"
    ]
    assert left_out(dataset.excluded) == [("payments", "payments.csv", 3, message)]
    assert dataset.payments is not None
    assert dataset.payments["patient_id"].tolist() == ["p1", "p2"]


def test_a_repeated_id_holding_a_lone_surrogate_is_an_error_on_each_row() -> None:
    # pandera's message for the repeat could not be made, so it said "internal check
    # field_uniqueness failed": a bug report, not what to do.
    table = payments_with(["p1", "p2", "p1"], ["pay\udcff", "pay\udcff", "pay3"])
    dataset = validate_tables([table, PATIENTS], SETTINGS)
    message = (
        "payment_id pay[U+DCFF] holds a broken character (U+DCFF) that no export can hold: the "
        f"file's text was read with the wrong encoding, so the row is left out; {REEXPORT}"
    )
    assert [str(i) for i in dataset.issues] == [
        f"ERROR: payments.csv, row {row}, column 'payment_id', value 'pay[U+DCFF]': {message}"
        for row in (2, 3)
    ]
    assert left_out(dataset.excluded) == [
        ("payments", "payments.csv", 2, message),
        ("payments", "payments.csv", 3, message),
    ]
    assert dataset.payments is not None and dataset.payments["payment_id"].tolist() == ["pay3"]


def test_every_cell_holding_one_is_named_and_a_column_held_as_codes_is_read_too() -> None:
    table = payments_with(["p1", "p2", "p1"])
    frame = table.frame.assign(
        amount=pd.Categorical.from_codes(  # as the loader holds values that repeat
            [0, 1, 1],
            dtype=pd.CategoricalDtype(pd.Index(["100.00", "1\udc80\ud800"], dtype=object)),
        ),
        payment_id=pd.Series(["pay1", "pay\udc80", "pay3"], dtype=object),
    )
    dataset = validate_tables([dataclasses.replace(table, frame=frame), PATIENTS], SETTINGS)
    amount = (
        "amount 1[U+DC80][U+D800] holds a broken character (U+DC80, U+D800) that no export can "
        f"hold: the file's text was read with the wrong encoding, so the row is left out; {REEXPORT}"
    )
    payment_id = (
        "payment_id pay[U+DC80] holds a broken character (U+DC80) that no export can hold: the "
        f"file's text was read with the wrong encoding, so the row is left out; {REEXPORT}"
    )
    assert [str(i) for i in dataset.issues] == [
        f"ERROR: payments.csv, row 3, column 'amount', value '1[U+DC80][U+D800]': {amount}",
        f"ERROR: payments.csv, row 3, column 'payment_id', value 'pay[U+DC80]': {payment_id}",
        f"ERROR: payments.csv, row 4, column 'amount', value '1[U+DC80][U+D800]': {amount}",
    ]
    # The first problem in the row's columns is the reason it is left out.
    assert dataset.excluded["reason"].tolist() == [payment_id, amount]


def test_a_header_holding_a_lone_surrogate_refuses_the_file() -> None:
    table = payments_with(["p1", "p2"])
    frame = table.frame.copy()
    frame.columns = pd.Index(
        ["Amount\udfff" if c == "amount" else c for c in frame.columns], dtype=object
    )
    dataset = validate_tables([dataclasses.replace(table, frame=frame), PATIENTS], SETTINGS)
    message = (
        "the header 'Amount[U+DFFF]' holds a broken character (U+DFFF) that no export can hold: "
        f"the file's text was read with the wrong encoding; {REEXPORT}"
    )
    assert [str(i) for i in dataset.issues] == [
        f"ERROR: payments.csv, column 'Amount[U+DFFF]': {message}"
    ]
    assert left_out(dataset.excluded) == [
        ("payments", "payments.csv", 2, message),
        ("payments", "payments.csv", 3, message),
    ]
    assert dataset.payments is None


def test_text_that_holds_a_character_outside_the_first_plane_is_not_broken() -> None:
    # A character beyond U+FFFF is one code point in Python: only a half of a pair alone is broken.
    dataset = validate_tables([payments_with(["p1", "p2"]), PATIENTS], SETTINGS)
    emoji = validate_tables([payments_with(["p1", "p2\U0001f600"]), PATIENTS], SETTINGS)
    assert dataset.issues == []
    assert [i.message for i in emoji.issues] == [
        "patient_id p2\U0001f600 is not in the patients export (patients.csv): check the id, or "
        "export that patient too"
    ]
