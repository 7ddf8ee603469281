"""The mapping file: its TOML read and checked into a frozen `Mapping` of what each kind says.

A mapping file is TOML with one table per kind. Plain `"Header" = "canonical"` lines rename (a
header mapped to "" is ignored); the optional sub-tables `join`, `values`, `flags`,
`last_segment`, `skip`, `formats`, `check` and `split` say how to transform a file's raw text
(`mapping_transforms`, `mapping_split`) before its headers are matched and its values typed.
Each line remembers whether a preset (`--source`) wrote it, so a message can name the preset.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pkgreport.errors import Issue, UsageError
from pkgreport.inputs.schemas import COLUMNS, KINDS, normalise_header, spec_for

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
# The sub-tables whose key a message shows after the table's name (`[appointments.join]
# starts_at`); the others are keyed by the file's column, which the message names anyway.
_KEY_SHOWN = ("join", "last_segment", "flags", "check", "formats")
# A preset's name and its TOML, as `parse_mapping` compares a run's mapping with it.
Preset = tuple[str, dict[str, Any]]
# A line of a kind's table: (sub-table, key), like ("join", "starts_at").
LineKey = tuple[str, str]


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
    # The preset the run uses (`--source`), and its lines this mapping holds as the preset
    # wrote them: (sub-table, key), like ("join", "starts_at") or ("split.allocations", "amount").
    preset: str | None = None
    from_preset: frozenset[LineKey] = frozenset()

    def line(self, kind: str, part: str, key: str) -> str:
        """A line as a message names it: `the jane preset's [appointments.join] starts_at`."""
        shown = part in _KEY_SHOWN or part.startswith("split.")
        return f"{self.owner(part, key)} [{kind}.{part}]" + (f" {key}" if shown else "")

    def by_preset(self, part: str, *keys: str) -> bool:
        """Whether the preset wrote these lines of one sub-table (and the user left them)."""
        return self.preset is not None and all((part, key) in self.from_preset for key in keys)

    def owner(self, part: str, *keys: str) -> str:
        """Who wrote these lines of one sub-table: the preset, or the user's mapping file."""
        return (
            f"the {self.preset} preset's" if self.by_preset(part, *keys) else "the mapping file's"
        )

    def what_to_do(self, part: str, key: str) -> str:
        """How to fix a line that names a column the file lacks."""
        if self.by_preset(part, key):
            return (
                "Export the file with that column, or give the header your file has in "
                + self.fix_in(part, key)
            )
        return "Correct the name in the mapping file, or export that column"

    def fix_in(self, part: str, *keys: str) -> str:
        """Where to change these lines: a preset is not edited but started from."""
        if not self.by_preset(part, *keys):
            return "the mapping file"
        return (
            f"a mapping file of your own (start from `pkgreport mapping --show {self.preset}`) "
            "given with --columns"
        )


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


def parse_mapping(data: dict[str, Any], where: str, preset: Preset | None = None) -> Mapping:
    """Plain TOML data -> a `Mapping`; a mistake is a `UsageError` naming `where` and the line.

    With `preset` (the run's `--source` and its TOML), each line the data holds as the preset
    wrote it is marked the preset's, so that a message about it names the preset.
    """
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
        if preset is not None:
            name, preset_data = preset
            lines = _lines_as_in(table, preset_data.get(kind))
            kinds[kind] = dataclasses.replace(kinds[kind], preset=name, from_preset=lines)
    return Mapping(_with_split_renames(kinds))


def _lines_as_in(table: dict[str, Any], preset_table: object) -> frozenset[LineKey]:
    """The (sub-table, key) lines of `table` that `preset_table` holds with the same value."""
    if not isinstance(preset_table, dict):
        return frozenset()
    parts = {p: v for p, v in table.items() if isinstance(v, dict) and p != "split"}
    theirs = {p: v for p, v in preset_table.items() if isinstance(v, dict) and p != "split"}
    for other, columns in table.get("split", {}).items():
        parts[f"split.{other}"] = columns
        theirs[f"split.{other}"] = preset_table.get("split", {}).get(other, {})
    return frozenset(
        (part, key)
        for part, entries in parts.items()
        for key, value in entries.items()
        if isinstance(theirs.get(part), dict) and theirs[part].get(key, None) == value
    )


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


# --- what the transforms share --------------------------------------------------------------


def alias_lookup(kind: str) -> dict[str, str]:
    """Normalised header -> canonical column, from pkgreport's own names and aliases."""
    lookup: dict[str, str] = {}
    for spec in COLUMNS[kind]:
        for name in (spec.name, *spec.aliases):
            lookup.setdefault(normalise_header(name), spec.name)
    return lookup


def absent_issue(
    file: str, written: list[str], source: str, kind: str, kind_map: KindMapping, line: LineKey
) -> Issue:
    """The error for a column a line of the mapping names that the file lacks."""
    part, key = line
    return Issue(
        "error",
        file,
        None,
        source,
        None,
        f"{kind_map.line(kind, part, key)} names the column {source!r}, which this file does "
        f"not have. Columns found: {', '.join(written) if written else '(none)'}. "
        f"{kind_map.what_to_do(part, key)}",
    )
