"""The mapping file: another system's export -> pkgreport's columns (renames and transforms).

A mapping file is TOML with one table per kind. Plain `"Header" = "canonical"` lines rename (a
header mapped to "" is ignored); the optional sub-tables `join`, `values`, `flags`,
`last_segment`, `skip`, `formats`, `check` and `split` transform a file's raw text, vectorised,
before its headers are matched and its values typed.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pkgreport.errors import Issue, UsageError
from pkgreport.inputs import parsing
from pkgreport.inputs.schemas import COLUMNS, KINDS, PROVENANCE, normalise_header, spec_for

TRANSFORMS: tuple[str, ...] = (
    "join",
    "values",
    "flags",
    "last_segment",
    "skip",
    "formats",
    "check",
    "split",
)
FORMAT_KEYS: tuple[str, ...] = ("date", "currency")
# A system's own figure, named in `[kind.check]`, and the column of pkgreport's that holds it.
CHECKS: dict[str, dict[str, str]] = {
    "cases": {"remaining_sessions": "reported_remaining"},
    "patients": {"credit": "reported_credit"},
}
_DATE_TYPES = ("date", "timestamp")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EXAMPLE_ZONE = timezone(timedelta(hours=11))  # shown only by a format with %z


@dataclass(frozen=True)
class Flag:
    """A boolean `flag` column (and an optional `date` column) -> the timestamp column `target`."""

    target: str
    flag: str
    date: str | None = None


@dataclass(frozen=True)
class KindMapping:
    """What the mapping file says about one kind. Source columns are headers as written."""

    renames: dict[str, str] = field(default_factory=dict)
    joins: dict[str, tuple[str, ...]] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    flags: tuple[Flag, ...] = ()
    last_segments: dict[str, str] = field(default_factory=dict)
    skips: dict[str, tuple[str, ...]] = field(default_factory=dict)
    date_formats: tuple[str, ...] = ()  # tried in order
    currency: str | None = None
    checks: dict[str, str] = field(default_factory=dict)
    splits: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Mapping:
    """A checked mapping file: one `KindMapping` per kind it names."""

    kinds: dict[str, KindMapping] = field(default_factory=dict)

    def kind(self, kind: str) -> KindMapping:
        return self.kinds.get(kind) or KindMapping()


# --- reading and checking ---------------------------------------------------------------------


def read_mapping_file(path: Path) -> dict[str, Any]:
    """A mapping file's TOML, checked (`parse_mapping`), as plain data (the `column_map` setting)."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read the column map {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"the column map {path} is not UTF-8 text: save it as UTF-8") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"the column map {path} is not valid TOML: {exc}") from exc
    parse_mapping(data, str(path))
    return data


def merge_mappings(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`extra` over `base` (a user's file over a preset), line by line within each table."""
    merged: dict[str, Any] = {kind: dict(table) for kind, table in base.items()}
    for kind, table in extra.items():
        into = merged.setdefault(kind, {})
        if not isinstance(table, dict):
            merged[kind] = table
            continue
        for key, value in table.items():
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                into[key] = {**into[key], **value}
            else:
                into[key] = value
    return merged


def parse_mapping(data: dict[str, Any], where: str) -> Mapping:
    """Plain TOML data -> a `Mapping`; a mistake is a `UsageError` naming `where` and the line."""
    kinds: dict[str, KindMapping] = {}
    for kind, table in data.items():
        if kind not in KINDS:
            raise UsageError(
                f"{where}: [{kind}] is not a kind of export; use one of: {', '.join(KINDS)}"
            )
        if not isinstance(table, dict):
            raise UsageError(
                f'{where}: {kind} must be a table of "Your header" = "canonical_name" lines'
            )
        kinds[kind] = _parse_kind(kind, table, where)
    return Mapping(_with_split_renames(kinds))


def _with_split_renames(kinds: dict[str, KindMapping]) -> dict[str, KindMapping]:
    """The columns one kind splits off are renames of the kind they become."""
    out = dict(kinds)
    for kind_map in kinds.values():
        for other, columns in kind_map.splits.items():
            base = out.get(other) or KindMapping()
            renames = {source: target for target, source in columns.items()} | base.renames
            out[other] = dataclasses.replace(base, renames=renames)
    return out


def _parse_kind(kind: str, table: dict[str, Any], where: str) -> KindMapping:
    renames: dict[str, str] = {}
    parts: dict[str, dict[str, Any]] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            if key not in TRANSFORMS:
                raise UsageError(
                    f"{where}: [{kind}.{key}] is not something a mapping can do; use one of: "
                    f"{', '.join(f'[{kind}.{t}]' for t in TRANSFORMS)}"
                )
            parts[key] = value
        else:
            # "" tells pkgreport to ignore that header (say, a second total it must not use).
            _check_canonical(kind, f'[{kind}] "{key}" = {value!r}', value, where, empty_ok=True)
            renames[key] = value
    here = f"[{kind}.%s]"
    date_formats, currency = _parse_formats(kind, parts.get("formats", {}), where)
    return KindMapping(
        renames=renames,
        joins={
            t: _texts(v, f"{here % 'join'} {t}", where, at_least=2)
            for t, v in _targets(kind, parts.get("join", {}), "join", where).items()
        },
        values={
            c: _value_map(v, f'{here % "values"} "{c}"', where)
            for c, v in parts.get("values", {}).items()
        },
        flags=tuple(
            _flag(kind, t, v, where)
            for t, v in _targets(kind, parts.get("flags", {}), "flags", where).items()
        ),
        last_segments={
            t: _text(v, f"{here % 'last_segment'} {t}", where)
            for t, v in _targets(kind, parts.get("last_segment", {}), "last_segment", where).items()
        },
        skips={
            c: _texts(v, f'{here % "skip"} "{c}"', where, at_least=1)
            for c, v in parts.get("skip", {}).items()
        },
        date_formats=date_formats,
        currency=currency,
        checks=_checks(kind, parts.get("check", {}), where),
        splits=_splits(kind, parts.get("split", {}), where),
    )


def _check_canonical(
    kind: str, line: str, value: object, where: str, empty_ok: bool = False
) -> None:
    names = spec_for(kind)
    if isinstance(value, str) and (value in names or (empty_ok and value == "")):
        return
    also = ' (or "" to ignore the column)' if empty_ok else ""
    raise UsageError(
        f"{where}: {line}: {value!r} is not one of the {kind} columns; use one of: "
        f"{', '.join(names)}{also}"
    )


def _targets(kind: str, part: dict[str, Any], name: str, where: str) -> dict[str, Any]:
    for target in part:
        _check_canonical(kind, f"[{kind}.{name}] {target}", target, where)
    return part


def _text(value: object, line: str, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise UsageError(f'{where}: {line} must name a column of the file, like "Client Link"')
    return value


def _texts(value: object, line: str, where: str, at_least: int) -> tuple[str, ...]:
    if (
        not isinstance(value, list)
        or len(value) < at_least
        or not all(isinstance(v, str) for v in value)
    ):
        example = '["First Name", "Last Name"]' if at_least > 1 else '["Unavailable"]'
        raise UsageError(
            f"{where}: {line} must be a list of at least {at_least} "
            f"{'texts' if at_least > 1 else 'text'}, like {example}"
        )
    return tuple(value)


def _value_map(value: object, line: str, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise UsageError(
            f'{where}: {line} must be a table of texts, like {{ "N/A" = "", "Yes" = "true" }}'
        )
    return dict(value)


def _flag(kind: str, target: str, value: object, where: str) -> Flag:
    line = f"[{kind}.flags] {target}"
    if spec_for(kind)[target].type != "timestamp":
        raise UsageError(
            f"{where}: {line}: {target} is not a date and time column, so a flag "
            f"cannot fill it; use a rename or [{kind}.values] instead"
        )
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("flag"), str)
        or set(value) - {"flag", "date"}
        or not isinstance(value.get("date", ""), str)
    ):
        raise UsageError(
            f'{where}: {line} must be like {{ flag = "cancelled", date = '
            '"cancellationDate" } (date is optional)'
        )
    return Flag(target, value["flag"], value.get("date") or None)


def _parse_formats(
    kind: str,
    part: dict[str, Any],
    where: str,
) -> tuple[tuple[str, ...], str | None]:
    """`date` is one strptime format or a list tried in order; `currency` a prefix."""
    for key, value in part.items():
        values = value if key == "date" and isinstance(value, list) else [value]
        if (
            key not in FORMAT_KEYS
            or not values
            or not all(isinstance(v, str) and v for v in values)
        ):
            raise UsageError(
                f'{where}: [{kind}.formats] {key} = {value!r}: a format is date = "%d %b %Y" '
                '(or a list of them, tried in order) or currency = "A$"'
            )
    dates = part.get("date", ())
    return tuple([dates] if isinstance(dates, str) else dates), part.get("currency")


def _checks(kind: str, part: dict[str, Any], where: str) -> dict[str, str]:
    known = CHECKS.get(kind, {})
    for figure, source in part.items():
        if figure not in known:
            offer = (
                f"use one of: {', '.join(known)}"
                if known
                else f"only {', '.join(f'[{k}.check]' for k in CHECKS)} exist"
            )
            raise UsageError(
                f"{where}: [{kind}.check] {figure} is not a figure pkgreport checks; {offer}"
            )
        _text(source, f"[{kind}.check] {figure}", where)
    return {known[figure]: source for figure, source in part.items()}


def _splits(kind: str, part: dict[str, Any], where: str) -> dict[str, dict[str, str]]:
    for other, table in part.items():
        if other not in KINDS or other == kind:
            raise UsageError(
                f"{where}: [{kind}.split.{other}] is not another kind of export; "
                f"use one of: {', '.join(k for k in KINDS if k != kind)}"
            )
        if not isinstance(table, dict):
            raise UsageError(
                f"{where}: [{kind}.split.{other}] must be a table of "
                f'canonical_name = "Your header" lines'
            )
        for target, source in table.items():
            _check_canonical(other, f"[{kind}.split.{other}] {target}", target, where)
            _text(source, f"[{kind}.split.{other}] {target}", where)
    return {other: dict(table) for other, table in part.items()}


# --- applying ---------------------------------------------------------------------------------


def alias_lookup(kind: str) -> dict[str, str]:
    """Normalised header -> canonical column, from pkgreport's own names and aliases."""
    lookup: dict[str, str] = {}
    for spec in COLUMNS[kind]:
        for name in (spec.name, *spec.aliases):
            lookup.setdefault(normalise_header(name), spec.name)
    return lookup


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
    if not (_needed(kind, kind_map) or kind_map.date_formats or kind_map.currency):
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


def _needed(kind: str, kind_map: KindMapping) -> list[tuple[str, str]]:
    """(source column, the line of the mapping naming it), for every transform's column."""
    needed = [(c, f"[{kind}.join] {t}") for t, cs in kind_map.joins.items() for c in cs]
    needed += [(c, f"[{kind}.values]") for c in kind_map.values]
    needed += [(c, f"[{kind}.last_segment] {t}") for t, c in kind_map.last_segments.items()]
    needed += [(c, f"[{kind}.skip]") for c in kind_map.skips]
    needed += [(c, f"[{kind}.check]") for c in kind_map.checks.values()]
    for flag in kind_map.flags:
        needed += [(c, f"[{kind}.flags] {flag.target}") for c in (flag.flag, flag.date) if c]
    return needed


def _sources_present(work: _File) -> dict[str, str] | None:
    """Each source column the mapping names -> the file's header, or None if one is missing."""
    written = [str(c) for c in work.frame.columns if c not in PROVENANCE]
    by_normal = {normalise_header(h): h for h in reversed(written)}
    found: dict[str, str] = {}
    needed = _needed(work.kind, work.map)
    for source, line in needed:
        header = source if source in written else by_normal.get(normalise_header(source))
        if header is not None:
            found[source] = header
            continue
        work.issues.append(_absent_issue(work.file, written, source, line))
    return None if len(found) < len({s for s, _ in needed}) else found


def _skip(work: _File, headers: dict[str, str]) -> np.ndarray:
    """Rows holding a value `[kind.skip]` lists (as written in the file): one info line."""
    skipped = np.zeros(len(work.frame), dtype=bool)
    for source, values in work.map.skips.items():
        skipped |= work.text(headers[source]).isin(values).to_numpy()
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
                f"{count} {'rows were' if count > 1 else 'row was'} left out as the mapping file's "
                f"[{work.kind}.skip] says ({'rows' if count > 1 else 'row'} {listed})",
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
            f"{headers[source]} is {c}: left out as the mapping file's [{work.kind}.skip] says"
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
                f"correct it, or take {target} from another column in the mapping file",
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
            f"is not a date written as {written}, the mapping file's [{work.kind}.formats] "
            "date, nor as ISO 2026-10-05: correct the date, or the format in the mapping file",
        )
    work.frame[header] = np.where(bad, "", converted).astype(object)


def split_table(
    kind: str, kind_map: KindMapping, frame: pd.DataFrame, file: str
) -> tuple[dict[str, pd.DataFrame], list[Issue]]:
    """`[kind.split.other]`: one file's rows -> {other kind: its rows, "": the file's own rows}.

    Each other kind gets the rows with something in its columns. The file's own kind keeps its
    own columns, one row per distinct content: a payment listed once per invoice it pays is one
    payment, not copies of it. A column the split names that the file lacks is an error, and
    the file is then read whole as its own kind.
    """
    written = [str(c) for c in frame.columns if c not in PROVENANCE]
    by_normal = {normalise_header(h): h for h in reversed(written)}
    lookup = alias_lookup(kind)

    def own_kind(header: str) -> bool:
        return bool(kind_map.renames.get(header, lookup.get(normalise_header(header))))

    parts: dict[str, pd.DataFrame] = {}
    taken: list[str] = []
    issues: list[Issue] = []
    carried = np.zeros(len(frame), dtype=bool)
    for other, columns in kind_map.splits.items():
        headers = {t: by_normal.get(normalise_header(s)) for t, s in columns.items()}
        for target, header in headers.items():
            if header is None:
                issues.append(
                    _absent_issue(
                        file, written, columns[target], f"[{kind}.split.{other}] {target}"
                    )
                )
        present = [h for h in headers.values() if h is not None]
        if len(present) < len(headers):
            continue
        # A row is the other kind's when a column only it uses is filled in (not Payment ID).
        only_theirs = [h for h in present if not own_kind(h)] or present
        filled = np.zeros(len(frame), dtype=bool)
        for header in only_theirs:
            filled |= (frame[header].astype(str).str.strip() != "").to_numpy()
        parts[other] = frame.loc[filled, [*present, *PROVENANCE]].reset_index(drop=True)
        carried |= filled
        taken += only_theirs
    if not parts:
        return {}, issues
    own_columns = [h for h in written if h not in taken]
    own = frame[[*own_columns, *PROVENANCE]]
    # Only a repeat that carried the other kind's part goes; any other copy is still reported.
    repeat = own.duplicated(subset=own_columns).to_numpy() & carried
    parts[""] = own[~repeat].reset_index(drop=True)
    return parts, issues


def _absent_issue(file: str, written: list[str], source: str, line: str) -> Issue:
    return Issue(
        "error",
        file,
        None,
        source,
        None,
        f"the mapping file's {line} names the column {source!r}, which this file does not "
        f"have. Columns found: {', '.join(written) if written else '(none)'}. Correct the "
        "name in the mapping file, or export that column",
    )
