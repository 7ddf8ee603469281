"""The mapping presets shipped with pkgreport: one mapping file per practice system (`--source`)."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from pkgreport.engine.registry import DEFAULT_SYSTEM
from pkgreport.errors import UsageError

SUFFIX = ".toml"

# The practice system each preset reads, as findings name it ("apply the credit in Mindbody").
SYSTEMS = {
    "cliniko": "Cliniko",
    "cliniko-api": "Cliniko",
    "jane": "Jane",
    "mindbody-api": "Mindbody",
    "nookal-api": "Nookal",
}
# Without a preset the exports are Cliniko's (DEFAULT_SYSTEM); a user's own mapping names none.
OWN_MAPPING_SYSTEM = "your practice system"


def preset_names() -> tuple[str, ...]:
    """Every preset's name (its file name without `.toml`), sorted."""
    folder = resources.files(__package__)
    return tuple(
        sorted(p.name.removesuffix(SUFFIX) for p in folder.iterdir() if p.name.endswith(SUFFIX))
    )


def system_name(source: str | None, columns_file: Path | None) -> str:
    """The practice system the exports come from, as the findings' advice names it."""
    if source is not None:
        return SYSTEMS[source]
    return DEFAULT_SYSTEM if columns_file is None else OWN_MAPPING_SYSTEM


def preset_text(name: str) -> str:
    """A preset as written (comments included): a starting point for a user's own mapping file."""
    if name not in preset_names():
        raise UsageError(
            f"{name!r} is not a source pkgreport has a preset for; use one of: "
            f"{', '.join(preset_names())} (`pkgreport mapping --list` describes them)"
        )
    return resources.files(__package__).joinpath(name + SUFFIX).read_text(encoding="utf-8")


def preset_summary(name: str) -> str:
    """A preset's first comment line: the system, and whether its headers are verified."""
    first = preset_text(name).splitlines()[0]
    return first.removeprefix("#").strip()


def preset_data(source: str | None) -> tuple[str, dict[str, Any]] | None:
    """A preset's name and TOML as data (None without `source`)."""
    return None if source is None else (source, tomllib.loads(preset_text(source)))


def mapping_data(source: str | None, columns_file: Path | None) -> dict[str, Any]:
    """The mapping a run uses: the `source` preset, with the user's `--columns` file over it."""
    from pkgreport.inputs.mapping import merge_mappings, parse_mapping, read_mapping_file

    data: dict[str, Any] = {}
    preset = preset_data(source)
    if preset is not None:
        data = preset[1]
        parse_mapping(data, f"the {source} preset")
    if columns_file is not None:
        data = merge_mappings(data, read_mapping_file(columns_file))
    return data
