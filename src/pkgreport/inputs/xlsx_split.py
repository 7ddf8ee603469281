"""A big worksheet parsed on two cores: its rows cut in two at a row's start, each half given to
calamine as a workbook of its own (stored, not compressed: nothing to inflate), the two grids
joined where the rows were cut.

Only a plain sheet is split: the pre-flight kept its XML (it decompressed it to measure it), every
cell names its own reference (`<c r="..."`), the sheet has one `<sheetData>` written without a
namespace prefix, and no comment or CDATA section. Between `<sheetData>` and `</sheetData>` the
only elements are rows, and `<` cannot appear in text or attribute values, so every `<row` found
there starts a row. The halves share the workbook's other parts (shared strings, styles), so each
cell reads as it does in the whole sheet. Anything else, or a half calamine cannot read, or halves
whose rows overlap, gives None: the caller reads the sheet whole, as it always did.

Imports only the standard library, so the reader threads can run it before pandas loads.
"""

from __future__ import annotations

import gc
import io
import os
import struct
import threading
import zipfile
import zlib
from collections.abc import Iterable
from typing import Any

from pkgreport.errors import PASS_THROUGH

# Below this many bytes of sheet XML, a second thread and the copies cost more than they save.
SPLIT_MIN_BYTES = 16 << 20

# The first half is a little smaller (percent of the bytes): its cells become Python values
# (holding the GIL) while calamine still parses the second half beside it. A sheet of text read
# as Arrow text is not split (`xlsx_sheet._read_kept`).
_FIRST_SHARE = 42

_OPEN = b"<sheetData>"
_CLOSE = b"</sheetData>"
_ZIP_LIMIT = 0xFFFFFFFF  # a stored part past 4 GB would need ZIP64
_OWN_FILES = "/proc/self/fd"

Grid = list[list[Any]]


def read_split(
    archive: zipfile.ZipFile, sheet_part: str, sheet_name: str, sheet_xml: list[bytes]
) -> Grid | None:
    """The sheet's rows (as `CalamineSheet.to_python(skip_empty_area=False)` gives them) read in
    two halves at once, or None when the sheet is not plain enough to split. `sheet_xml` is the
    sheet's XML in pieces, each cut just after a tag (`xlsx_safety.xml_segments`)."""
    halves = _split_workbook(archive, sheet_part, sheet_xml)
    if halves is None:
        return None
    first, second = halves
    del halves
    found: list[Any] = [None]

    def read_first() -> None:
        found[0] = _parsed(first, sheet_name, skip_empty_area=False)

    thread = threading.Thread(target=read_first, daemon=True)
    thread.start()
    rest = _parsed(second, sheet_name, skip_empty_area=True)
    thread.join()
    if found[0] is None or rest is None:
        return None
    return joined(found[0], rest)


def _split_workbook(
    archive: zipfile.ZipFile, sheet_part: str, sheet_xml: list[bytes]
) -> tuple[list[Any], list[Any]] | None:
    """The workbook as two, in pieces: the sheet's rows before a row near the middle, and the
    rows from it, each with the workbook's other parts; stored, not compressed. None when the
    sheet is not plain enough to split (see the module's notes)."""
    halves = split_rows(sheet_xml)
    if halves is None or not _only_sheet(archive, sheet_part):
        return None
    try:
        others = [
            (m.filename, [archive.read(m)] if m.filename != sheet_part else [])
            for m in archive.infolist()
            if not m.is_dir()
        ]
    except Exception:  # noqa: BLE001 - a part that cannot be read again: the whole read reports it
        return None
    first, second = (
        _stored_zip([(n, d) if n != sheet_part else (n, half) for n, d in others])
        for half in halves
    )
    return first, second


def split_rows(pieces: list[bytes]) -> tuple[list[Any], list[Any]] | None:
    """The sheet's XML as two sheets, each a list of byte pieces: the rows before the first `<row`
    past `_FIRST_SHARE` percent of the bytes, and the rows from it, each with the sheet's other
    elements; or None.

    No tag is split between two pieces (each but the last ends with ">", else None), so each
    marker is searched for piece by piece.
    """
    if any(not piece.endswith(b">") for piece in pieces[:-1]):
        return None  # a piece cut where no tag ended for megabytes: not a sheet Excel writes
    opened = _only(pieces, b"<sheetData")
    closed = _only(pieces, _CLOSE)
    if opened is None or closed is None or opened >= closed:
        return None
    (oi, oat), (ci, cat) = opened, closed
    start = oat + len(_OPEN)
    if pieces[oi][oat:start] != _OPEN or any(b"!" in p and b"<!" in p for p in pieces):
        return None  # attributes on sheetData; a comment or a CDATA section could hold "<row"
    middle = sum(map(len, pieces)) * _FIRST_SHARE // 100
    mi = 0
    while mi < len(pieces) - 1 and middle >= len(pieces[mi]):
        middle -= len(pieces[mi])
        mi += 1
    if (mi, middle) < (oi, start):
        mi, middle = oi, start
    cut = None
    while cut is None and mi <= ci:
        end = cat if mi == ci else len(pieces[mi])
        found = [pieces[mi].find(row, middle, end) for row in (b"<row ", b"<row>")]
        cut = min((at for at in found if at >= 0), default=None)
        if cut is None:
            mi, middle = mi + 1, 0
    if cut is None:
        return None
    views = [memoryview(p) for p in pieces]
    first = [*views[:mi], views[mi][:cut], views[ci][cat:], *views[ci + 1 :]]
    second = [*views[:oi], views[oi][:start], views[mi][cut:], *views[mi + 1 :]]
    return first, second


def _only(pieces: list[bytes], marker: bytes) -> tuple[int, int] | None:
    """(piece, offset) of the marker when the pieces hold it exactly once, else None."""
    found = None
    for i, piece in enumerate(pieces):
        count = piece.count(marker)
        if count and (found is not None or count > 1):
            return None
        if count:
            found = (i, piece.find(marker))
    return found


def worksheet_parts(members: Iterable[zipfile.ZipInfo]) -> list[str]:
    """The zip members holding worksheets: only a workbook's one worksheet is split (the
    pre-flight keeps no sheet's XML otherwise)."""
    return [
        m.filename
        for m in members
        if m.filename.startswith("xl/worksheets/") and m.filename.lower().endswith(".xml")
    ]


def _only_sheet(archive: zipfile.ZipFile, sheet_part: str) -> bool:
    """Whether the sheet is the workbook's only worksheet and every part fits a plain zip."""
    members = archive.infolist()
    return (
        worksheet_parts(members) == [sheet_part] and sum(m.file_size for m in members) < _ZIP_LIMIT
    )


def _parsed(
    workbook: list[Any], sheet_name: str, skip_empty_area: bool
) -> tuple[Any, Any, Grid] | None:
    """(start, end, rows) of the sheet in a workbook (its bytes in pieces), or None."""
    try:
        sheet = _opened(workbook).get_sheet_by_name(sheet_name)
        # A list per row, none in a cycle: the cycle collector would walk them again and again
        # (as `xlsx_reading.load_xlsx` pauses it for the whole sheet's rows).
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return sheet.start, sheet.end, sheet.to_python(skip_empty_area=skip_empty_area)
        finally:
            if was_enabled:
                gc.enable()
    except PASS_THROUGH:
        raise
    except BaseException:  # noqa: BLE001 - calamine's errors, and Rust panics: read it whole
        return None


def _opened(workbook: list[Any]) -> Any:
    """A python_calamine workbook of these bytes.

    On Linux the bytes go to an anonymous in-memory file (`memfd_create`, never on disk) that
    calamine opens by its path: it then reads them as it reads a file, where `from_filelike`
    would copy them three more times. Elsewhere, from the joined bytes.
    """
    from python_calamine import CalamineWorkbook

    if not hasattr(os, "memfd_create") or not os.path.isdir(_OWN_FILES):
        return CalamineWorkbook.from_filelike(io.BytesIO(b"".join(workbook)))
    fd = os.memfd_create("pkgreport-sheet-half", os.MFD_CLOEXEC)
    try:
        for piece in workbook:
            view = memoryview(piece)
            while view:
                written = os.write(fd, view)
                if written <= 0:
                    raise OSError("could not write the sheet's half to memory")
                view = view[written:]
        # calamine opens the file again by its path: its own descriptor keeps it alive.
        return CalamineWorkbook.from_path(f"{_OWN_FILES}/{fd}")
    finally:
        os.close(fd)


def joined(first: tuple[Any, Any, Grid], rest: tuple[Any, Any, Grid]) -> Grid | None:
    """The two halves' rows as the whole sheet's: the first half's from A1, then blank rows up to
    where the second half's cells start, its rows shifted to their columns, every row as wide as
    the widest; None when the halves' rows overlap (rows written out of order)."""
    _, first_end, grid = first
    rest_start, rest_end, rest_rows = rest
    if rest_end is None:
        return grid
    if first_end is not None and first_end[0] >= rest_start[0]:
        return None
    width = max(first_end[1] if first_end is not None else -1, rest_end[1]) + 1
    for row in grid:
        if len(row) < width:
            row.extend([""] * (width - len(row)))
    grid.extend([""] * width for _ in range(len(grid), rest_start[0]))
    before, after = [""] * rest_start[1], [""] * (width - 1 - rest_end[1])
    if before or after:
        rest_rows = [before + row + after for row in rest_rows]
    grid.extend(rest_rows)
    return grid


def _stored_zip(members: list[tuple[str, list[Any]]]) -> list[Any]:
    """A zip archive (in pieces) holding each (name, pieces) stored, uncompressed, in order."""
    pieces: list[Any] = []
    central: list[bytes] = []
    offset = 0
    for name, parts in members:
        encoded = name.encode()
        crc = 0
        size = 0
        for part in parts:
            crc = zlib.crc32(part, crc)
            size += len(part)
        # version 2.0, the name's encoding (bit 11: UTF-8), stored, 1980-01-01 00:00
        flags = 0 if name.isascii() else 0x800
        fields = (20, flags, 0, 0, 33, crc, size, size, len(encoded), 0)
        header = struct.pack("<4s5H3L2H", b"PK\x03\x04", *fields) + encoded
        central.append(
            struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, *fields, 0, 0, 0, 0, offset) + encoded
        )
        pieces += [header, *parts]
        offset += len(header) + size
    directory = b"".join(central)
    end = struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, len(central), len(central), len(directory), offset, 0
    )
    return [*pieces, directory, end]
