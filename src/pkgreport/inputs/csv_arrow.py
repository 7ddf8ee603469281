"""Well-formed UTF-8 CSV read by pyarrow's multi-threaded reader into columns of text."""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from pkgreport.inputs.tables import TextColumn

# A spread sample of this many values tells whether a column's values repeat.
_REPEAT_SAMPLE = 4096
# Fewer quotes than this are found one by one (a pass over every byte costs more).
_FEW_QUOTES = 10_000


@dataclass(frozen=True)
class TextColumns:
    """Every record of a file (header first), one column of `str` per field (`TextColumn`)."""

    columns: list[TextColumn]
    # The UTF-8 length of the longest cell: no cell holds more characters, so the check for
    # overlong cells can be skipped below it.
    longest_cell_bytes: int


def read_text_columns(data: bytes, delimiter: str, width: int) -> TextColumns | None:
    """The file as `width` columns of text, exactly as the pandas reader gives them, or None.

    None whenever pyarrow could read the file differently from pandas' C parser, so the caller
    reads it as before: quotes that are not RFC 4180 (a quote inside an unquoted field, text
    after a closing quote, a quote never closed), a record whose number of fields is not the
    header's (pyarrow refuses it; the pandas path names the row), or text that is not valid
    UTF-8 (the pandas path falls back to Windows-1252). A blank line is a record of blanks, as
    in pandas. Nothing is inferred: every cell stays the text written ("NA", "NULL", "007"
    and "" included). CRLF and CR end records like LF, and inside a quoted value become LF, as
    the exact path writes them. The caller has ruled out byte-order marks and NUL bytes.
    """
    quoted = quotes_are_unambiguous(data, delimiter)
    if quoted is None:
        return None
    names = [f"c{j}" for j in range(width)]
    try:
        table = pa_csv.read_csv(
            pa.py_buffer(data),
            read_options=pa_csv.ReadOptions(column_names=names, use_threads=True),
            parse_options=pa_csv.ParseOptions(
                delimiter=delimiter,
                quote_char='"' if quoted else False,
                double_quote=True,
                escape_char=False,
                newlines_in_values=quoted,
                ignore_empty_lines=False,
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                check_utf8=True,
            ),
        )
    except pa.ArrowException:
        return None
    texts = table.columns
    del table
    return _text_columns(texts, quoted and _cr_inside_quotes(data))


@dataclass(frozen=True)
class _Column:
    """One column as pyarrow leaves it: its text when its values do not repeat, else its codes
    (`indices`) into its distinct values (`dictionary`)."""

    text: pa.ChunkedArray | None
    indices: pa.Array | None
    dictionary: pa.Array | None
    longest: int


def _text_columns(texts: list[pa.ChunkedArray], cr_in_values: bool) -> TextColumns:
    """Each column's text (taken out of `texts`) as a `TextColumn`.

    pyarrow's work on a column (CR to LF, the longest cell, finding the distinct values) runs in
    two threads beside this one, which makes the Python strings (pyarrow releases the GIL; a
    Python string needs it). Each column's text is released once it is converted: the file's
    text never sits beside all of its Python strings.
    """
    columns: list[TextColumn] = []
    longest = 0
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending = deque(pool.submit(_examine, texts.pop(0), cr_in_values) for _ in list(texts))
        while pending:
            column = pending.popleft().result()
            longest = max(longest, column.longest)
            columns.append(_as_text_column(column))
            del column
    return TextColumns(columns, longest)


def _examine(text: pa.ChunkedArray, cr_in_values: bool) -> _Column:
    """A column's pyarrow work (no Python string is made): CR to LF, the longest cell's length,
    and its distinct values when they repeat.

    Exports are sorted by date, so a spread sample of times may hold each once; a run of
    neighbouring rows does not: a column repeats when either sample does.
    """
    if cr_in_values:
        text = _as_lf(text)
    longest = pc.max(pc.binary_length(text)).as_py() or 0
    n = len(text)
    spread = text.take(pa.array(np.arange(0, n, max(1, n // _REPEAT_SAMPLE))))
    run = text.slice(n // 2, _REPEAT_SAMPLE)
    if all(len(pc.unique(sample)) == len(sample) for sample in (spread, run)):
        return _Column(text, None, None, longest)
    encoded = pc.dictionary_encode(text).combine_chunks()
    return _Column(None, encoded.indices, encoded.dictionary, longest)


def _as_text_column(column: _Column) -> TextColumn:
    """The column as an object array of `str`, or as a `pd.Categorical` when values repeat.

    Dates, amounts, names and flags repeat: each distinct value becomes one Python string and
    each row a small integer code (a byte for a flag, two for a date), a fraction of an object
    pointer per cell, and the parsers read the distinct values straight from it
    (`parsing.distinct_values`). A column whose samples hold no repeat (ids) is converted cell
    by cell, and one of mostly distinct values is spread from them.
    """
    if column.text is not None:
        return np.asarray(column.text.to_numpy(zero_copy_only=False), dtype=object)
    assert column.indices is not None and column.dictionary is not None
    distinct = np.asarray(column.dictionary.to_numpy(zero_copy_only=False), dtype=object)
    if 2 * len(distinct) > len(column.indices):
        # Mostly distinct (ids beside blanks): codes would save little, and pandas would check
        # that so many categories differ.
        return distinct[column.indices.to_numpy()]
    return pd.Categorical.from_codes(
        column.indices.to_numpy(),
        dtype=pd.CategoricalDtype(pd.Index(distinct, dtype=object)),
        validate=False,
    )


def quotes_are_unambiguous(data: bytes, delimiter: str) -> bool | None:
    """False when the text holds no '"', True when every '"' is RFC 4180 quoting, else None.

    RFC 4180: a quoted field opens with '"' at the start of a field and closes with '"' at its
    end, and a '"' inside it is doubled. Counting the quotes in order, an even-numbered one
    (0, 2, ...) opens a field or is the second of a doubled pair, and an odd-numbered one closes
    a field or is the first of a pair; the count is even. Only such text is read alike by every
    CSV parser, which is what lets pyarrow stand in for pandas here.
    """
    count = data.count(b'"')
    if count == 0:
        return False
    if count % 2:
        return None
    buf = np.frombuffer(data, dtype=np.uint8)
    at = _quote_positions(data, buf, count)
    # A field ends at a delimiter or a line end (LF or the CR of a CRLF).
    ends = np.array([ord(delimiter), ord("\n"), ord("\r")], dtype=np.uint8)
    before = np.where(at > 0, buf[np.maximum(at - 1, 0)], ord("\n"))
    after = np.where(at < len(buf) - 1, buf[np.minimum(at + 1, len(buf) - 1)], ord("\n"))
    opening, closing = at[0::2], at[1::2]
    opens_field = np.isin(before[0::2], ends)
    # The second of a doubled pair follows its first directly.
    reopens = np.concatenate([[False], opening[1:] == closing[:-1] + 1])
    closes_field = np.isin(after[1::2], ends)
    doubled = np.concatenate([closing[:-1] + 1 == opening[1:], [False]])
    ok = bool((opens_field | reopens).all() and (closes_field | doubled).all())
    return True if ok else None


def _cr_inside_quotes(data: bytes) -> bool:
    """Whether a CR may sit inside a quoted value (only there can a value hold one).

    The quotes, RFC 4180 as the caller has checked, pair up in order: every quoted value's text
    lies between the first and second quote of a pair. A file of many quotes is not searched so:
    its columns are searched instead.
    """
    if b"\r" not in data:
        return False
    count = data.count(b'"')
    if count > _FEW_QUOTES:
        return True
    at = _quote_positions(data, np.frombuffer(data, dtype=np.uint8), count).tolist()
    return any(b"\r" in data[start:end] for start, end in zip(at[0::2], at[1::2], strict=True))


def _quote_positions(data: bytes, buf: np.ndarray, count: int) -> np.ndarray:
    """Where the '"' bytes are: found one by one when few (a pass over every byte costs more)."""
    if count > _FEW_QUOTES:
        return np.flatnonzero(buf == ord('"'))
    at = np.empty(count, dtype=np.int64)
    pos = -1
    for k in range(count):
        pos = data.find(b'"', pos + 1)
        at[k] = pos
    return at


def _as_lf(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """CRLF, then CR -> LF within the values, as the exact path replaces them in the text."""
    if not pc.any(pc.match_substring(column, "\r")).as_py():
        return column
    return pc.replace_substring(pc.replace_substring(column, "\r\n", "\n"), "\r", "\n")
