"""A mapping's transforms applied to one file's raw text, vectorised: skip, values, join, last
segment, flags and formats, before its headers are matched and its values typed."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd

from pkgreport.errors import Issue
from pkgreport.inputs import parsing
from pkgreport.inputs.mapping import CHECKS, KindMapping, LineKey, absent_issue, alias_lookup
from pkgreport.inputs.schemas import PROVENANCE, normalise_header, spec_for

_DATE_TYPES = ("date", "timestamp")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EXAMPLE_ZONE = timezone(timedelta(hours=11))  # shown only by a format with %z


@dataclass
class Applied:
    """One file after its kind's transforms.

    `frame` is its text (with provenance) minus the rows left out; `renames` maps its headers to
    canonical columns for header matching; `left_out` holds the rows left out (provenance) with
    their `reasons`; `usable` is False when the mapping names a column the file lacks.
    """

    frame: pd.DataFrame
    renames: dict[str, str]
    issues: list[Issue] = field(default_factory=list)
    left_out: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(PROVENANCE)))
    reasons: list[str] = field(default_factory=list)
    usable: bool = True


class _File:
    """One file being transformed: its text, where its rows came from, and what went wrong."""

    def __init__(self, kind: str, kind_map: KindMapping, frame: pd.DataFrame, file: str) -> None:
        self.kind = kind
        self.map = kind_map
        self.frame = frame.reset_index(drop=True)
        self.file = file
        self.renames = dict(kind_map.renames)
        self.issues: list[Issue] = []
        self.reasons = np.full(len(frame), None, dtype=object)

    def text(self, header: str) -> pd.Series:
        """The column's values with surrounding spaces trimmed."""
        return _per_distinct(self.frame[header], str.strip)

    def row_problems(self, mask: np.ndarray, header: str, message: str | list[str]) -> None:
        """An error per row of `mask` (`message` completes "<header> ..."); the rows go."""
        at = np.flatnonzero(mask)
        texts = [message] * len(at) if isinstance(message, str) else message
        values = self.frame[header].to_numpy(dtype=object)[at]
        rows = self.frame["source_row"].to_numpy()[at]
        for position, row, value, text in zip(at, rows, values, texts, strict=True):
            full = f"{header} {text}"
            self.issues.append(Issue("error", self.file, int(row), header, str(value), full))
            if self.reasons[position] is None:
                self.reasons[position] = full


def apply_mapping(kind: str, kind_map: KindMapping, frame: pd.DataFrame, file: str) -> Applied:
    """A file's raw text -> the same rows transformed as its kind's mapping says."""
    if not (_needed(kind_map) or kind_map.date_formats or kind_map.currency):
        return Applied(frame, dict(kind_map.renames))  # renames alone: nothing to copy
    work = _File(kind, kind_map, frame, file)
    headers = _sources_present(work)
    if headers is None:
        return Applied(work.frame, work.renames, work.issues, usable=False)
    skipped = _skip(work, headers)
    left_out = [work.frame.loc[skipped, list(PROVENANCE)]]
    reasons = _skip_reasons(work, headers, skipped)
    work.frame = work.frame[~skipped].reset_index(drop=True)
    work.reasons = work.reasons[~skipped]
    _map_values(work, headers)
    _join(work, headers)
    _last_segments(work, headers)
    _flags(work, headers)
    _formats(work)
    for target, source in kind_map.checks.items():
        work.renames[headers[source]] = target
    bad = ~pd.isna(work.reasons)
    left_out.append(work.frame.loc[bad, list(PROVENANCE)])
    reasons += list(work.reasons[bad])
    return Applied(
        work.frame[~bad].reset_index(drop=True),
        work.renames,
        work.issues,
        pd.concat(left_out, ignore_index=True),
        reasons,
    )


def _needed(kind_map: KindMapping) -> list[tuple[str, LineKey]]:
    """(source column, the line of the mapping naming it), for every transform's column."""
    needed = [(c, ("join", t)) for t, cs in kind_map.joins.items() for c in cs]
    needed += [(c, ("values", c)) for c in kind_map.values]
    needed += [(c, ("last_segment", t)) for t, c in kind_map.last_segments.items()]
    needed += [(c, ("skip", c)) for c in kind_map.skips]
    figures = {target: figure for checks in CHECKS.values() for figure, target in checks.items()}
    needed += [(c, ("check", figures[t])) for t, c in kind_map.checks.items()]
    for flag in kind_map.flags:
        needed += [(c, ("flags", flag.target)) for c in (flag.flag, flag.date) if c]
    return needed


def _sources_present(work: _File) -> dict[str, str] | None:
    """Each source column the mapping names -> the file's header, or None if one is missing."""
    written = [str(c) for c in work.frame.columns if c not in PROVENANCE]
    by_normal = {normalise_header(h): h for h in reversed(written)}
    found: dict[str, str] = {}
    needed = _needed(work.map)
    for source, line in needed:
        header = source if source in written else by_normal.get(normalise_header(source))
        if header is not None:
            found[source] = header
            continue
        work.issues.append(absent_issue(work.file, written, source, work.kind, work.map, line))
    return None if len(found) < len({s for s, _ in needed}) else found


def _skip(work: _File, headers: dict[str, str]) -> np.ndarray:
    """Rows holding a value `[kind.skip]` lists (as written in the file): one info line."""
    skipped = np.zeros(len(work.frame), dtype=bool)
    skipping: list[str] = []
    for source, values in work.map.skips.items():
        hits = work.text(headers[source]).isin(values).to_numpy()
        skipped |= hits
        skipping += [source] if hits.any() else []
    count = int(skipped.sum())
    if count:
        first = work.frame["source_row"].to_numpy()[np.flatnonzero(skipped)[:5]]
        shown = [str(r) for r in first] + ([f"{count - 5} more"] if count > 5 else [])
        listed = ", ".join(shown[:-1]) + " and " + shown[-1] if count > 1 else shown[0]
        work.issues.append(
            Issue(
                "info",
                work.file,
                None,
                None,
                None,
                f"{count} {'rows were' if count > 1 else 'row was'} left out as "
                f"{work.map.owner('skip', *skipping)} [{work.kind}.skip] says "
                f"({'rows' if count > 1 else 'row'} {listed})",
            )
        )
    return skipped


def _skip_reasons(work: _File, headers: dict[str, str], skipped: np.ndarray) -> list[str]:
    if not skipped.any():
        return []
    reasons = np.full(int(skipped.sum()), None, dtype=object)
    for source, values in work.map.skips.items():
        cells = work.text(headers[source]).to_numpy(dtype=object)[skipped]
        hit = pd.isna(reasons) & np.isin(cells, values)
        reasons[hit] = [
            f"{headers[source]} is {c}: left out as {work.map.line(work.kind, 'skip', source)} says"
            for c in cells[hit]
        ]
    return list(reasons)


def _map_values(work: _File, headers: dict[str, str]) -> None:
    """Each listed value (as written, spaces trimmed) becomes its replacement; others stay."""
    for source, table in work.map.values.items():
        header = headers[source]
        replaced = work.text(header).map(table)
        work.frame[header] = replaced.where(replaced.notna(), work.frame[header])


def _consume(work: _File, headers: list[str]) -> None:
    """Source columns a transform used up: gone, unless the mapping also renames them."""
    gone = [h for h in dict.fromkeys(headers) if h not in work.renames]
    work.frame = work.frame.drop(columns=gone)


def _join(work: _File, headers: dict[str, str]) -> None:
    """`target = [a, b]`: the columns' texts joined with one space (blank parts left out)."""
    joined_columns: dict[str, pd.Series] = {}
    for target, sources in work.map.joins.items():
        written = [headers[s] for s in sources]
        joined = work.text(written[0])
        for header in written[1:]:
            part = work.text(header)
            both = (joined != "") & (part != "")
            joined = (joined + np.where(both, " ", "") + part).astype(object)
        label = " + ".join(written)
        joined_columns[label] = joined
        work.renames[label] = target
    # Sources are consumed only after every join is built: two joins may share a column
    # (Nookal's appointmentDate makes both the start and the end).
    _consume(
        work,
        list(
            dict.fromkeys(
                h for sources in work.map.joins.values() for h in (headers[s] for s in sources)
            )
        ),
    )
    for label, joined in joined_columns.items():
        work.frame[label] = joined.to_numpy(dtype=object)


def _last_segments(work: _File, headers: dict[str, str]) -> None:
    """`target = "Link"`: each link's last path segment (`…/patients/82` -> `82`), in place."""
    for target, source in work.map.last_segments.items():
        header = headers[source]
        segment = _per_distinct(work.frame[header], _last_segment)
        bad = pd.isna(segment).to_numpy()
        if bad.any():
            work.row_problems(
                bad,
                header,
                "is not a link ending in an id (like https://example.com/patients/82): "
                f"correct it, or take {target} from another column in "
                + work.map.fix_in("last_segment", target),
            )
        work.frame[header] = segment.where(~bad, "").to_numpy(dtype=object)
        work.renames[header] = target


def _last_segment(cell: str) -> str | None:
    """`https://x/patients/82?a=1` -> `82`; "" stays ""; None when it is no link ending in one."""
    link = re.sub(r"[?#].*$", "", cell.strip())
    _, slash, segment = link.rpartition("/")
    return segment if link == "" or (slash and segment) else None


def _per_distinct(column: pd.Series, convert: Callable[[str], str | None]) -> pd.Series:
    """`convert` applied once per distinct value (exports repeat values a great deal)."""
    codes, distinct = pd.factorize(column.to_numpy(dtype=object), use_na_sentinel=False)
    table = np.array([convert(str(value)) for value in distinct] + [""], dtype=object)
    return pd.Series(table[codes], index=column.index, dtype=object)


def _source_of(work: _File, canonical: str) -> str | None:
    """The header that will become `canonical` (a rename, a join, or pkgreport's own names)."""
    renamed = [h for h, c in work.renames.items() if c == canonical and h in work.frame]
    if renamed:
        return renamed[0]
    lookup = alias_lookup(work.kind)
    for header in work.frame.columns:
        if (
            header not in PROVENANCE
            and header not in work.renames
            and lookup.get(normalise_header(str(header))) == canonical
        ):
            return str(header)
    return None


def _flags(work: _File, headers: dict[str, str]) -> None:
    """A true flag -> its date column's date, or (blank or none) the row's start; else blank."""
    for flag in work.map.flags:
        flag_header = headers[flag.flag]
        parsed = parsing.parse_bools(work.text(flag_header))
        if parsed.bad.any():
            work.row_problems(parsed.bad, flag_header, parsed.errors.tolist())
        start_header = _source_of(work, "starts_at")
        start = work.text(start_header) if start_header else pd.Series("", index=work.frame.index)
        date_header = headers[flag.date] if flag.date else None
        date = work.text(date_header) if date_header else start
        when = np.where(
            parsed.values.to_numpy(dtype=bool),
            np.where(date.to_numpy(dtype=object) != "", date, start),
            "",
        )
        label = date_header or flag_header
        if date_header:
            _consume(work, [flag_header])
        work.frame[label] = when.astype(object)
        work.renames[label] = flag.target


def _formats(work: _File) -> None:
    """`[kind.formats]`: dates in the mapping's format -> ISO; the currency prefix stripped."""
    if not work.map.date_formats and work.map.currency is None:
        return
    lookup = alias_lookup(work.kind)
    specs = spec_for(work.kind)
    for header in [c for c in work.frame.columns if c not in PROVENANCE]:
        canonical = work.renames.get(header, lookup.get(normalise_header(str(header))))
        spec = specs.get(canonical) if canonical else None
        if spec is None:
            continue
        if spec.type in _DATE_TYPES and work.map.date_formats:
            _read_dates(work, str(header), work.map.date_formats, spec.type == "date")
        elif spec.type == "money" and work.map.currency:
            prefix = re.escape(work.map.currency)
            work.frame[header] = (
                work.text(header)
                .str.replace(rf"^([(-]?\s*-?){prefix}\s*", r"\1", regex=True)
                .to_numpy(dtype=object)
            )


def _iso_date(value: str, formats: tuple[str, ...], date_only: bool) -> str | None:
    """`value` in ISO form ("" stays ""), or None when no format fits and it is not ISO."""
    for date_format in formats:
        try:
            moment = datetime.strptime(value, date_format)
        except ValueError:
            continue
        # A format with %z keeps its offset, so the time is converted to the clinic's zone.
        zone = " %z" if moment.tzinfo else ""
        return moment.strftime("%Y-%m-%d" if date_only else "%Y-%m-%d %H:%M:%S" + zone)
    return value if value == "" or _ISO_DATE.match(value) else None


def _read_dates(work: _File, header: str, formats: tuple[str, ...], date_only: bool) -> None:
    """Each distinct value read once with the first of `formats` that fits; ISO stays; anything
    else is an error naming the formats."""
    codes, distinct = pd.factorize(work.text(header))
    table = np.array(
        [_iso_date(value, formats, date_only) for value in distinct] + [""], dtype=object
    )
    converted = table[codes]
    bad = pd.isna(converted)
    if bad.any():
        written = " or ".join(
            f"{f} (like {datetime(2026, 10, 5, 14, 30, tzinfo=_EXAMPLE_ZONE).strftime(f)})"
            for f in formats
        )
        work.row_problems(
            bad,
            header,
            f"is not a date written as {written}, {work.map.line(work.kind, 'formats', 'date')}, "
            "nor as ISO 2026-10-05: correct the date, or the format in "
            + work.map.fix_in("formats", "date"),
        )
    work.frame[header] = np.where(bad, "", converted).astype(object)
