"""Python strings read into Arrow text without a reference count written.

pyarrow reads each `str` of an object array in C through a borrowed pointer, so a process that
shares the strings' pages copy-on-write with another (a forked child, or the parent beside one)
copies none of them; pandas and numpy code reading the same values writes each one's count, and
the page holding it is then held twice. Used where a frame's text is read beside a forked process:
the month digests (`reports.month_digest`) and pandera's checks in their own process
(`schema_process`).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

# Values read at a time by `arrow_text_in_slices`: about 2 ms holding the GIL.
TEXT_ROWS = 1 << 16


def arrow_text(objects: np.ndarray) -> pa.LargeStringArray | None:
    """The values as Arrow text when each is a `str` or missing (None, NaN, NA, NaT), else None:
    a lone surrogate, which UTF-8 cannot hold, or a value that is not text."""
    try:
        text = pa.array(objects, from_pandas=True)
    except (pa.ArrowException, UnicodeError, TypeError, ValueError):
        return None
    if text.type not in (pa.string(), pa.large_string(), pa.null()):
        return None
    if isinstance(text, pa.ChunkedArray):  # more than 2 GB of text
        text = text.combine_chunks() if text.num_chunks else pa.array([], pa.large_string())
    return text.cast(pa.large_string())


def arrow_text_in_slices(objects: np.ndarray) -> pa.LargeStringArray | None:
    """`arrow_text`, read TEXT_ROWS values at a time: each read holds the GIL, so a thread
    reading a column beside another waits a few milliseconds at most, not the whole column's."""
    pieces = []
    for start in range(0, len(objects), TEXT_ROWS):
        piece = arrow_text(objects[start : start + TEXT_ROWS])
        if piece is None:
            return None
        pieces.append(piece)
    if len(pieces) == 1:
        return pieces[0]
    return pa.concat_arrays(pieces) if pieces else pa.array([], pa.large_string())
