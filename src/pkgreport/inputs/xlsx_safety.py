"""XLSX pre-flight: refuse non-zips, encrypted and legacy files, zip and XML bombs."""

from __future__ import annotations

import io
import queue
import re
import threading
import zipfile
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np

from pkgreport.config import Settings
from pkgreport.inputs import xlsx_strings
from pkgreport.inputs.xlsx_split import worksheet_parts

NS_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_NS_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_NS_PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"

_OLE_MAGIC = b"\xd0\xcf\x11\xe0"
_ZIP_MAGIC = b"PK\x03\x04"
_CHUNK = 1 << 20
# Ratio checks on tiny members only produce false alarms (a few KB of spaces compress 500:1).
_RATIO_MIN_BYTES = 1 << 20
RESAVE_ADVICE = "open it in Excel and save it again as an Excel Workbook (.xlsx)"


class SheetExtent(NamedTuple):
    """What the pre-flight measured of a worksheet part."""

    rows: int  # the largest row a cell names (a bound, `_ExtentScan`)
    columns: int  # the largest column
    error_cells: bool  # some cell holds an Excel error
    # Bytes of the workbook's longest shared text entry (`xlsx_strings.entry_sizes`), a bound on
    # any of this sheet's cells of shared text; None unless the workbook has one such table.
    longest_text: int | None


def short_message(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def preflight_xlsx(
    data: bytes,
    settings: Settings,
    kept: dict[str, list[bytes]] | None = None,
    keep_min_bytes: int = 0,
    sheet_begins: Callable[[bytes], None] | None = None,
) -> tuple[zipfile.ZipFile | None, dict[str, SheetExtent], str | None]:
    """Refuse what a parser should never see: non-zips, encrypted, legacy, zip and XML bombs.

    Returns the open archive and, per worksheet part, the largest (row, column) a cell names, so
    a sparse sheet cannot make the reader allocate a huge dense grid, whether it has error cells,
    and the longest shared text (`SheetExtent`).
    Cells that would unpack to more text than the limit, by repeating long shared texts, are
    refused too (`xlsx_strings`).
    Given `kept`, the decompressed XML of the workbook's worksheet, when it is the only one, has
    `keep_min_bytes` or more and every cell written `<c r="..."`, is put there, in pieces cut
    after a tag, once the whole workbook passed (`xlsx_split`). The worksheets are scanned
    last, so every part a reader opens a workbook by (its list of sheets, shared texts, styles)
    has passed before; `sheet_begins` is then given the first piece of the worksheet kept, once:
    the caller may start opening the workbook (`xlsx_text.ReaderAhead`) while it is scanned.
    """
    problem = _not_a_zipped_workbook(data)
    if problem is not None:
        return None, {}, problem
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except Exception as exc:  # noqa: BLE001 - zipfile raises several types for damaged archives
        return (
            None,
            {},
            f"not a valid xlsx: the zip archive is damaged ({short_message(exc)}); {RESAVE_ADVICE}",
        )
    names = {m.filename for m in members}
    if "xl/workbook.xml" not in names:
        return (
            None,
            {},
            f"not a valid xlsx: there is no workbook inside the zip (is it another kind of document?); {RESAVE_ADVICE}",
        )

    problem = _declared_size_problem(members, settings)
    if problem is not None:
        return None, {}, problem

    actual = _ActualSize(settings.max_xlsx_uncompressed_bytes)
    if len(worksheet_parts(members)) != 1:
        kept = None  # only a workbook's one worksheet is split: keep no other
    try:
        problem, extents, sheets_xml = _scan_parts(
            archive,
            members,
            settings,
            actual,
            keep_min_bytes if kept is not None else None,
            sheet_begins,
        )
        if problem is not None:
            return None, {}, problem
        problem, longest_text = _shared_text_problem(archive, members, extents, actual.limit)
        if problem is not None:
            return None, {}, problem
    except Exception as exc:  # noqa: BLE001 - CRC errors, truncated streams, unsupported methods
        return (
            None,
            {},
            f"not a valid xlsx: the zip archive is damaged ({short_message(exc)}); {RESAVE_ADVICE}",
        )
    if kept is not None:
        kept.update(sheets_xml)
    return archive, {p: SheetExtent(*e, longest_text) for p, e in extents.items()}, None


def _scan_parts(
    archive: zipfile.ZipFile,
    members: list[zipfile.ZipInfo],
    settings: Settings,
    actual: _ActualSize,
    keep_min_bytes: int | None,
    sheet_begins: Callable[[bytes], None] | None,
) -> tuple[str | None, dict[str, tuple[int, int, bool]], dict[str, list[bytes]]]:
    """Every part decompressed and checked, the worksheets last (`preflight_xlsx`): why one is
    refused, or None; each worksheet's extent; the XML of those kept (`keep_min_bytes` or more,
    unless None), in pieces."""
    extents: dict[str, tuple[int, int, bool]] = {}
    sheets_xml: dict[str, list[bytes]] = {}
    for m in sorted(members, key=_is_worksheet):  # stable: the zip's order otherwise
        if m.is_dir():
            continue
        is_xml = m.filename.lower().endswith((".xml", ".rels", ".vml"))
        scan = _ExtentScan() if _is_worksheet(m) else None
        keep = keep_min_bytes is not None and scan is not None and m.file_size >= keep_min_bytes
        pieces: list[bytes] | None = [] if keep else None
        with archive.open(m) as stream:
            problem = _scan_member(
                m, stream, actual, scan, is_xml, pieces, sheet_begins if keep else None
            )
        if problem is not None:
            return problem, {}, {}
        if pieces is not None and scan is not None and not scan.precise:
            sheets_xml[m.filename] = pieces
        del pieces
        if scan is not None:
            extents[m.filename] = (*_sheet_bound(archive, m, scan, settings), scan.error_cells)
    return None, extents, sheets_xml


def _is_worksheet(member: zipfile.ZipInfo) -> bool:
    """Whether the part is a worksheet's XML (scanned for its extent)."""
    name = member.filename
    return name.startswith("xl/worksheets/") and name.lower().endswith((".xml", ".rels", ".vml"))


def _sheet_bound(
    archive: zipfile.ZipFile, sheet: zipfile.ZipInfo, scan: _ExtentScan, settings: Settings
) -> tuple[int, int]:
    """The largest (row, column) the sheet's cells name: the scan's cheap bound, or, when that
    is over the cap on cells, the exact one, measured before refusing."""
    bound = scan.bound()
    if bound[0] * bound[1] > settings.max_xlsx_cells:
        exact = _ExtentScan(precise=True)
        with archive.open(sheet) as stream:
            for segment in xml_segments(stream):
                exact.feed(segment)
        bound = exact.bound()
    return bound


def _shared_text_problem(
    archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], extents: dict[str, Any], limit: int
) -> tuple[str | None, int | None]:
    """Why the shared text the worksheets' cells would unpack to is refused, or None
    (`xlsx_strings`: each cell of shared text gets its own copy of the entry it names); and the
    longest entry's bytes when the workbook has one table of shared texts."""
    tables = [m for m in members if xlsx_strings.is_shared_texts(m.filename)]
    if not tables:
        return None, None
    with archive.open(tables[0]) as stream:
        sizes = xlsx_strings.entry_sizes(xml_segments(stream))
    longest = int(sizes.max(initial=0)) if len(tables) == 1 else None
    for sheet in (m for m in members if m.filename in extents):
        if xlsx_strings.cheap_bound(sheet.file_size, sizes) <= limit:
            continue
        with archive.open(sheet) as stream:
            total = xlsx_strings.exact_total(xml_segments(stream), sizes)
        if total > limit:
            named = {part: name for name, part in sheet_parts(archive).items()}
            where = (
                f"sheet {named[sheet.filename]!r}" if sheet.filename in named else sheet.filename
            )
            return xlsx_strings.too_much_text(where, total, limit), longest
    return None, longest


def sheet_parts(archive: zipfile.ZipFile) -> dict[str, str]:
    """Each sheet's name -> the zip member holding it (via workbook.xml and its relationships);
    empty when those parts are missing or odd (only the extra checks and names are lost)."""
    from defusedxml import ElementTree as SafeET

    try:
        workbook = SafeET.fromstring(archive.read("xl/workbook.xml"))
        rels = SafeET.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    except Exception:  # noqa: BLE001 - a missing or odd part only loses the extra checks
        return {}
    targets = {
        rel.get("Id"): rel.get("Target") or "" for rel in rels.iter(f"{_NS_PKG_REL}Relationship")
    }
    parts: dict[str, str] = {}
    for sheet in workbook.iter(f"{NS_MAIN}sheet"):
        name, target = sheet.get("name"), targets.get(sheet.get(f"{_NS_REL}id"))
        if name is not None and name not in parts and target is not None:
            parts[name] = (
                target.lstrip("/") if target.startswith("/") else "xl/" + target.removeprefix("./")
            )
    return parts


def _not_a_zipped_workbook(data: bytes) -> str | None:
    """Why the bytes cannot be an xlsx archive (empty, legacy or encrypted, not a zip), or None."""
    if not data:
        return "not a valid xlsx (empty file): export it again from the source system"
    if data.startswith(_OLE_MAGIC):
        if "EncryptionInfo".encode("utf-16-le") in data:
            return "the workbook is password protected: open it in Excel, remove the password (File > Info > Protect Workbook) and save it again"
        return "this is a legacy .xls workbook (Excel 97-2003): re-save it as .xlsx (File > Save As > Excel Workbook)"
    if not data.startswith(_ZIP_MAGIC):
        return f"not a valid xlsx: the file is not a zip archive (a CSV renamed to .xlsx, or damaged); {RESAVE_ADVICE}"
    return None


def _declared_size_problem(members: list[zipfile.ZipInfo], settings: Settings) -> str | None:
    """Why the sizes the archive declares are refused (a possible zip bomb), or None."""
    declared = sum(m.file_size for m in members)
    if declared > settings.max_xlsx_uncompressed_bytes:
        return f"refused: the workbook unpacks to {declared:,} bytes, over the limit of {settings.max_xlsx_uncompressed_bytes:,} (possible zip bomb); remove unused sheets or split the data"
    for m in members:
        ratio = m.file_size / max(m.compress_size, 1)
        if m.file_size >= _RATIO_MIN_BYTES and ratio > settings.max_xlsx_compression_ratio:
            return f"refused: part {m.filename} compresses {ratio:,.0f}:1, over the limit of {settings.max_xlsx_compression_ratio}:1 (possible zip bomb); save the workbook again from Excel"
    return None


class _ActualSize:
    """Bytes actually decompressed so far, against the cap (declared sizes can lie)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0
        self.over = False


def xml_segments(stream: Any, carry_limit: int = 4 * _CHUNK, end: bytes = b">") -> Iterator[bytes]:
    """Decompressed XML in pieces cut just after `end`: no tag (no cell, with "c>") is split."""
    carry = b""
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            if carry:
                yield carry
            return
        buffer = carry + chunk
        found = buffer.rfind(end)
        cut = found + len(end) if found >= 0 else 0
        if cut == 0 and len(buffer) < carry_limit:
            carry = buffer
            continue
        if cut == 0:
            cut = len(buffer)  # no tag end in megabytes: not XML a spreadsheet program writes
        carry = buffer[cut:]
        yield buffer[:cut]


def _scan_member(
    member: zipfile.ZipInfo,
    stream: Any,
    actual: _ActualSize,
    scan: _ExtentScan | None,
    is_xml: bool,
    pieces: list[bytes] | None = None,
    first_piece: Callable[[bytes], None] | None = None,
) -> str | None:
    """Decompress one part, counting real bytes; refuse DTDs; feed worksheets to the extent scan
    (and its pieces to `pieces`, when given; its first piece to `first_piece`)."""
    too_big = (
        f"refused: the workbook unpacks to more than its declared or allowed size (limit "
        f"{actual.limit:,} bytes; possible zip bomb); save it again from Excel"
    )
    size = 0
    if not is_xml:
        while chunk := stream.read(_CHUNK):
            size += len(chunk)
            actual.total += len(chunk)
            if actual.total > actual.limit or size > member.file_size:
                return too_big
        return None
    counted = _Counted(stream, member, actual)
    with _InflatedAhead(counted) if member.file_size >= _AHEAD_MIN_BYTES else counted as source:
        problem = _scan_xml(member, source, scan, pieces, first_piece)
    if problem is not None:
        return problem
    if actual.total > actual.limit or actual.over:
        return too_big
    return None


def _scan_xml(
    member: zipfile.ZipInfo,
    source: Any,
    scan: _ExtentScan | None,
    pieces: list[bytes] | None,
    first_piece: Callable[[bytes], None] | None,
) -> str | None:
    """Why an XML part is refused (UTF-16 worksheet, DTD), or None; feeds the extent scan."""
    size = 0
    previous = b""
    utf16 = False
    for segment in xml_segments(source):
        first = size == 0
        if first:
            # A NUL in the first bytes means UTF-16 (with or without a BOM).
            utf16 = b"\x00" in segment[:4]
            if utf16 and scan is not None:
                return (
                    f"refused: worksheet {member.filename} is written in UTF-16, which Excel never "
                    f"does; {RESAVE_ADVICE}"
                )
        size += len(segment)
        # A little overlap, in case a forced cut split a declaration.
        if _declares_dtd(previous + segment, utf16):
            return (
                f"refused: part {member.filename} declares a DOCTYPE or ENTITY, which Excel never "
                "writes (possible XML entity bomb); do not use this file, export the data again"
            )
        if first and first_piece is not None:
            first_piece(segment)
        if scan is not None:
            scan.feed(segment)
        if pieces is not None:
            pieces.append(segment)
        previous = segment[-16:]
    return None


class _Counted:
    """A stream wrapper that stops reading once the real bytes pass the declared or allowed size."""

    def __init__(self, stream: Any, member: zipfile.ZipInfo, actual: _ActualSize) -> None:
        self.stream = stream
        self.member = member
        self.actual = actual
        self.size = 0

    def read(self, n: int) -> bytes:
        chunk = self.stream.read(n)
        self.size += len(chunk)
        self.actual.total += len(chunk)
        if self.actual.total > self.actual.limit or self.size > self.member.file_size:
            self.actual.over = True
            return b""
        return chunk

    def __enter__(self) -> _Counted:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


# A part this big is decompressed by a thread ahead of its scan (`_InflatedAhead`).
_AHEAD_MIN_BYTES = 4 * _CHUNK
# Pieces decompressed ahead of the scan, at most.
_AHEAD_PIECES = 4


class _InflatedAhead:
    """A part's stream read by a thread of its own, a few pieces ahead of the scan.

    zlib releases the GIL while it decompresses (and while it checks the CRC), so the second
    core decompresses the next pieces while this one scans the last: the scans hold the GIL.
    What the stream raises is raised here, after the pieces read before it, as it would be.
    Where no thread can be started, the stream is read here.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._pieces: queue.Queue[bytes | BaseException] = queue.Queue(_AHEAD_PIECES)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = threading.Thread(target=self._fill, daemon=True)

    def __enter__(self) -> _InflatedAhead:
        assert self._thread is not None
        try:
            self._thread.start()
        except RuntimeError:  # no thread to be had: read in turn
            self._thread = None
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def read(self, n: int) -> bytes:
        if self._thread is None:
            chunk: bytes = self._stream.read(n)
            return chunk
        item = self._pieces.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def _fill(self) -> None:
        try:
            while True:
                chunk = self._stream.read(_CHUNK)
                if not self._put(chunk) or not chunk:
                    return
        except BaseException as exc:  # noqa: BLE001 - raised where the scan reads it
            self._put(exc)

    def _put(self, item: bytes | BaseException) -> bool:
        """Queue the item, unless the scan stopped first (a part refused before its end);
        whether it was queued."""
        while not self._stop.is_set():
            try:
                self._pieces.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False


class _ExtentScan:
    """The largest row and column a worksheet's cells name, bounded cheaply.

    calamine allocates a dense grid from the smallest to the largest cell reference, so two cells at
    A1 and XFD1048576 would abort the process; this bounds the grid before calamine sees the sheet.
    The cheap scan only looks for the rare references (row >= 100000, column >= AA) written the way
    every spreadsheet program writes them (`<c r="A1" ...>`); anything unusual (other attribute
    order, quotes or spacing, a namespace prefix, a cell without a reference) switches to the
    precise scan. It also notes error cells (t="e", e.g. #DIV/0!), which the reader turns into "".
    """

    # In one C-level pass over the piece: the rare references' letters and digits, and any cell
    # written another way (`<c` without ` r="` after it), which matches with no digits.
    _RARE_OR_ODD = re.compile(
        rb'<c(?: r="(?=[A-Z]{2,3}[0-9]|[A-Z][0-9]{6})([A-Z]{1,3})([0-9]{1,7})|(?! r=")[\s>/])'
    )
    _ANY_REF = re.compile(rb"""\br\s*=\s*["']\s*([A-Za-z]{0,3})([0-9]{1,7})\s*["']""")
    _CELL = re.compile(rb"<c[\s>/]")
    _CELL_NO_REF = re.compile(rb"<c(?=[\s>/])(?![^>]*\br\s*=)")
    _ROW_NO_REF = re.compile(rb"<row(?=[\s>/])(?![^>]*\br\s*=)")

    def __init__(self, precise: bool = False) -> None:
        self.precise = precise
        self.skimmed = False
        self.max_row = 0
        self.max_col = 0
        # Cells and rows without a reference take the next position, so count them.
        self.cells_without_ref = False
        self.cells_in_row = 0
        self.rows_without_ref = 0
        self.error_cells = False

    def feed(self, segment: bytes) -> None:
        """One piece of the sheet's XML, cut between tags."""
        # A one-byte search (memchr) first: a sheet of shared strings has no "e" past its header.
        if (
            not self.error_cells
            and b"e" in segment
            and (segment.find(b't="e"') >= 0 or segment.find(b"t='e'") >= 0)
        ):
            self.error_cells = True
        if not self.precise and _holds_colon_c(segment):
            self.precise = True
        if not self.precise:
            refs = self._RARE_OR_ODD.findall(segment)
            # Each distinct column and row once: a tall sheet repeats them in every cell.
            letters = {letters for letters, _ in refs}
            digits = {digits for _, digits in refs}
            if b"" in digits:  # an odd cell: this piece and the rest are scanned precisely
                self.precise = True
            else:
                self.skimmed = True
                if refs:
                    self.max_col = max(self.max_col, *map(column_number, letters))
                    self.max_row = max(self.max_row, *map(int, digits))
                return
        refs = self._ANY_REF.findall(segment)
        if refs:
            self.max_row = max(self.max_row, *map(int, {digits for _, digits in refs}))
            named = {letters.upper() for letters, _ in refs if letters}
            self.max_col = max(self.max_col, *map(column_number, named), 0)
        self.rows_without_ref += len(self._ROW_NO_REF.findall(segment))
        if self.cells_without_ref or self._CELL_NO_REF.search(segment):
            self.cells_without_ref = True
            for k, part in enumerate(segment.split(b"<row")):
                if k:
                    self.cells_in_row = 0
                self.cells_in_row += len(self._CELL.findall(part))
                self.max_col = max(self.max_col, self.cells_in_row)

    def bound(self) -> tuple[int, int]:
        rows = self.max_row + self.rows_without_ref
        if self.skimmed:
            # Skimmed pieces only report references beyond these, so they may hold any below.
            return max(rows, 99_999), max(self.max_col, 26)
        return max(rows, 1), max(self.max_col, 1)


def _holds_colon_c(segment: bytes) -> bool:
    """Whether the bytes hold ":c" (a namespace prefix on a cell), found with numpy.

    Every row's spans="1:27" holds a ":", but a byte search would stop at every "c" instead.
    """
    text = np.frombuffer(segment, dtype=np.uint8)
    colons = np.flatnonzero(text[:-1] == ord(":"))
    return bool((text[colons + 1] == ord("c")).any())


def _declares_dtd(window: bytes, utf16: bool) -> bool:
    """Whether XML text holds <!DOCTYPE or <!ENTITY (UTF-8 or UTF-16); comments and CDATA pass."""
    if b"!" not in window:
        return False  # every marker holds a "!": one memchr clears the usual piece
    markers = ((b"<!", 1), (b"<\x00!\x00", 2), (b"\x00<\x00!", 2)) if utf16 else ((b"<!", 1),)
    for marker, step in markers:
        start = window.find(marker)
        while start >= 0:
            after = window[start + len(marker) : start + len(marker) + 6 * step]
            word = after[::step] if step == 1 or marker.startswith(b"<") else after[1::step]
            if word[:1].upper() in (b"D", b"E"):
                return True
            start = window.find(marker, start + 1)
    return False


def column_number(letters: bytes) -> int:
    number = 0
    for byte in letters:
        number = number * 26 + (byte - 64)
    return number
