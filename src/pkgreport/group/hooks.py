"""The clinic-group options of `report` and `run`, and the step that takes a group run (or a
partitioned one) aside before the single-clinic command runs: the commands stay as they were."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from pkgreport.cli_options import GROUP, fanout_options, report_options, stacked
from pkgreport.errors import UsageError

# INPUT_DIR, left out when --group names the clinics.
GROUP_INPUT_DIR = click.argument(
    "input_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=False,
    metavar="INPUT_DIR",
)
# The parameters `run` takes for itself; the rest become settings (`resolve_run_settings`).
RUN_OWN_PARAMETERS = ("config", "generated_at", "quiet", "today", "lock_wait", "verbose")


def _fanout(kwargs: dict[str, Any]) -> Any:
    from pkgreport.group.command import Fanout

    return Fanout(kwargs.pop("workers"), kwargs.pop("scheduler"), kwargs.pop("partitions"))


def report_group_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """`report_options` and `--group`, `--workers`, `--scheduler`, `--partitions`."""

    @functools.wraps(func)
    def command(**kwargs: Any) -> Any:
        group, fanout = kwargs.pop("group"), _fanout(kwargs)
        if group is None and not fanout.on_dask:
            if kwargs["input_dir"] is None:
                raise UsageError(
                    "give INPUT_DIR (the folder of exports), or --group for a clinic group"
                )
            return func(**kwargs)
        from pkgreport.group.command import report_command

        sys.exit(report_command(group, fanout, **kwargs))

    return stacked([report_options, GROUP, fanout_options], command)


def run_group_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """`report_options` and `--workers`, `--scheduler`, `--partitions`; a config file with
    `[[clinic]]` tables runs the group. Otherwise `func` gets the run's resolved `settings` and
    the options `run` keeps for itself."""

    @functools.wraps(func)
    def command(**kwargs: Any) -> Any:
        from pkgreport.cli_options import resolve_run_settings

        fanout = _fanout(kwargs)
        options = {k: v for k, v in kwargs.items() if k not in RUN_OWN_PARAMETERS}
        environ = dict(os.environ)
        settings, clinics = resolve_run_settings(
            kwargs["config"], environ, options, kwargs["today"]
        )
        if not clinics and not fanout.on_dask:
            # One clinic: the scheduled run, given the settings resolved here (read once).
            own = ("generated_at", "quiet", "lock_wait", "verbose")
            return func(settings=settings, **{k: kwargs[k] for k in own})
        from pkgreport.group.command import run_config_command

        sys.exit(run_config_command(clinics, settings, fanout, **kwargs))

    return stacked([report_options, fanout_options], command)
