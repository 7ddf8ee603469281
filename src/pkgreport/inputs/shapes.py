"""Money and date text grouped by shape (digits as 9, letters lower case), exactly; digits read by numpy."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# A longer value cannot be a date or an amount; capping the width bounds the char matrix memory.
_MAX_SHAPE_CHARS = 40

_SHAPE_TABLE = np.arange(0x10000, dtype=np.uint32)
_SHAPE_TABLE[ord("0") : ord("9") + 1] = ord("9")
_SHAPE_TABLE[ord("A") : ord("Z") + 1] += ord("a") - ord("A")


@dataclass
class ShapeGroups:
    """Rows grouped by shape: `chars` holds code points (n x width), `group` each row's shape."""

    chars: np.ndarray
    group: np.ndarray
    shapes: list[str]
    too_long: np.ndarray
    _order: np.ndarray | None = field(default=None, repr=False)
    _starts: np.ndarray | None = field(default=None, repr=False)

    def rows(self, g: int) -> np.ndarray | slice:
        """Row positions of shape `g` (a slice over everything when there is one shape)."""
        if len(self.shapes) == 1:
            return slice(None)
        if self._order is None:
            self._order = np.argsort(self.group, kind="stable")
            counts = np.bincount(self.group, minlength=len(self.shapes))
            self._starts = np.concatenate([[0], np.cumsum(counts)])
        assert self._starts is not None
        return self._order[self._starts[g] : self._starts[g + 1]]

    def spread(self, codes: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Per-shape message codes -> (code per row, blank per row), without a loop over shapes.

        A column of free text mistaken for money has as many shapes as rows; only the few valid
        shapes are then visited one by one.
        """
        blank_shape = np.array([not s.strip() for s in self.shapes], dtype=bool)
        code_shape = np.where(blank_shape, 0, np.array(codes, dtype=np.int8)).astype(np.int8)
        return code_shape[self.group], blank_shape[self.group]

    def numbers(
        self, rows: np.ndarray | slice, parts: dict[str, list[tuple[int, int]]]
    ) -> dict[str, np.ndarray]:
        """Each part's value: the sum of digit x multiplier over its (position, multiplier)s."""
        used = [pos for positions in parts.values() for pos, _ in positions]
        if not used:
            return {}
        lo, hi = min(used), max(used) + 1
        # One pass turns the code points of the digit span into small digit values; the
        # per-digit arithmetic then runs over compact uint8 columns.
        digits = (self.chars[rows, lo:hi] - 48).astype(np.uint8)
        out = {}
        for name, positions in parts.items():
            if not positions:
                continue
            # int32 halves the work where the largest possible value fits (every date part);
            # larger amounts of money need int64.
            largest = sum(9 * mult for _, mult in positions)
            kind: type[np.signedinteger] = np.int32 if largest < 2**31 else np.int64
            total = np.zeros(len(digits), dtype=kind)
            for pos, mult in positions:
                total += digits[:, pos - lo].astype(kind) * mult
            out[name] = total.astype(np.int64)
        return out


def group_by_shape(raw: np.ndarray, lengths: np.ndarray) -> ShapeGroups:
    n = len(raw)
    too_long = lengths > _MAX_SHAPE_CHARS
    if too_long.any():
        raw = raw.copy()
        raw[too_long] = ""
    width = int(min(lengths.max(initial=0), _MAX_SHAPE_CHARS)) or 1
    chars = raw.astype(f"<U{width}").view(np.uint32).reshape(n, width)
    # One table lookup maps digits to "9" and A-Z to a-z; characters beyond the BMP (never part
    # of a valid date or amount) all become U+FFFF.
    if n and chars.max() > 0xFFFF:
        chars = np.minimum(chars, 0xFFFF)
    shape = _SHAPE_TABLE[chars]
    group, shape_count = group_equal_rows(shape)
    first = np.empty(shape_count, dtype=np.int64)
    first[group[::-1]] = np.arange(n - 1, -1, -1)
    texts = shape[first].view(f"<U{width}").ravel().tolist() if n else []
    return ShapeGroups(chars, np.asarray(group, dtype=np.int64), texts, too_long)


def group_equal_rows(shape: np.ndarray) -> tuple[np.ndarray, int]:
    """(group per row, number of groups) of a matrix of code points: equal rows, equal group.

    Exact: no row is reduced to a hash that two shapes could share. A few characters at a time
    are packed losslessly into one integer beside the group found so far, and `pd.factorize`
    (which compares the integers themselves) refines the groups until every column is in.
    Groups are numbered in order of first appearance.
    """
    rows, width = shape.shape
    bits_per_char = max(1, int(shape.max(initial=0)).bit_length())
    group = np.zeros(rows, dtype=np.int64)
    group_count = 1
    column = 0
    while column < width:
        # The group number takes the high bits; as many whole characters as fit take the rest.
        free_bits = 63 - (group_count - 1).bit_length()
        take = min(width - column, free_bits // bits_per_char)
        weights = np.left_shift(np.uint64(1), np.arange(take, dtype=np.uint64) * bits_per_char)
        key = shape[:, column : column + take] @ weights
        key |= group.astype(np.uint64) << np.uint64(bits_per_char * take)
        group, uniques = pd.factorize(key)
        group_count = len(uniques)
        column += take
    return np.asarray(group, dtype=np.int64), group_count
