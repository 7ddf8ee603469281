"""Integer cents as text: the one place money is formatted for people and for plain output."""

from __future__ import annotations


def format_dollars(cents: int, symbol: str = "$") -> str:
    """`$1,234.56` / `-$50.00`: how messages, reports and Cliniko's exports show money."""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(int(cents)), 100)
    return f"{sign}{symbol}{whole:,}.{rest:02d}"


def format_plain(cents: int) -> str:
    """`1234.56` / `-50.00`: plain decimals for CSV/JSON output, no symbol or separators."""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(int(cents)), 100)
    return f"{sign}{whole}.{rest:02d}"
