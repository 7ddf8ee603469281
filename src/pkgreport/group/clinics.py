"""The clinics of a group: from `[[clinic]]` tables or a folder of sub-folders, each a `Clinic`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pkgreport.config import (
    CONFIG_TO_SETTINGS,
    ConfigError,
    Settings,
    clinic_name_problem,
    read_config_file,
)
from pkgreport.errors import UsageError

# A group file's own keys that a `report --group` run does not take from it: the output folder
# is `-o`, and a period relative to today belongs to a scheduled `run`.
_REPORT_IGNORES = ("output",)


@dataclass(frozen=True)
class Clinic:
    """One clinic of a group: its name (and report folder) and the settings of its own run.

    Everything a worker needs to compute it: settings and input paths, nothing computed.
    """

    name: str
    settings: Settings


def clinic_settings(shared: Settings, table: dict[str, Any], output_dir: Path) -> Settings:
    """The settings of one clinic: its own table's keys over the group's shared settings."""
    name = str(table["name"])
    values = {CONFIG_TO_SETTINGS[k]: v for k, v in table.items() if k != "name"}
    settings = shared.replace(**values, output_dir=output_dir / name)
    if "title" not in table:
        settings = settings.replace(title=f"{name}: {shared.title}")
    if settings.source is not None or settings.columns_file is not None:
        from pkgreport.inputs.presets import mapping_data

        settings = settings.replace(column_map=mapping_data(settings.source, settings.columns_file))
    return settings


def clinics_from_tables(
    tables: list[dict[str, Any]], shared: Settings, output_dir: Path
) -> list[Clinic]:
    return [
        Clinic(str(table["name"]), clinic_settings(shared, table, output_dir)) for table in tables
    ]


def clinics_from_folder(folder: Path, shared: Settings, output_dir: Path) -> list[Clinic]:
    """One clinic per sub-folder (hidden ones skipped), named after it, with the shared settings."""
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such folder; --group takes a group TOML file or a folder")
    clinics = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        problem = clinic_name_problem(sub.name)
        if problem:
            raise UsageError(f"{sub}: the folder's name {sub.name!r} {problem}; rename the folder")
        clinics.append(
            Clinic(sub.name, clinic_settings(shared, {"name": sub.name, "input": sub}, output_dir))
        )
    if not clinics:
        raise UsageError(
            f"{folder} holds no sub-folders: put each clinic's exports in a folder of its own "
            "(exports/<clinic>/...), or give a group TOML file with [[clinic]] tables"
        )
    return clinics


def read_group(group: Path, shared: Settings, output_dir: Path) -> tuple[Settings, list[Clinic]]:
    """`report --group PATH`: a TOML file (shared keys and `[[clinic]]` tables) or a folder.

    The file's shared keys lie under `shared` (the command-line options win over them); each
    clinic's own keys lie over both.
    """
    if group.is_dir():
        return shared, clinics_from_folder(group, shared, output_dir)
    try:
        values = read_config_file(group)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    tables: list[dict[str, Any]] = values.pop("clinic", [])  # type: ignore[assignment]
    if not tables:
        raise UsageError(
            f"{group}: the group file lists no clinic: add a [[clinic]] table (name and input) "
            "for each clinic"
        )
    period = values.pop("period", None)
    if period is not None and getattr(period, "kind", None) != "explicit":
        raise UsageError(
            f"{group}: period = {period.kind!r} belongs to `pkgreport run`; give `report` an "  # type: ignore[attr-defined]
            "explicit period (--period YYYY-MM) or none"
        )
    for key in (*_REPORT_IGNORES, "input"):
        values.pop(key, None)
    file_settings = Settings().replace(**{CONFIG_TO_SETTINGS[k]: v for k, v in values.items()})
    if period is not None:
        file_settings = file_settings.replace(period_start=period.start, period_end=period.end)  # type: ignore[attr-defined]
    merged = file_settings.replace(**_given(shared))
    return merged, clinics_from_tables(tables, merged, output_dir)


def _given(settings: Settings) -> dict[str, Any]:
    """The fields of `settings` that differ from the defaults: the options actually given."""
    defaults = Settings()
    return {
        name: value
        for name in Settings.__dataclass_fields__
        if (value := getattr(settings, name)) != getattr(defaults, name)
    }
