"""``lume-services doctor``: check the registry for debris and broken pieces, ``--fix`` repairs."""

from __future__ import annotations

import sys

import click

from lume_services.cli.output import handle_errors, json_option, print_json

MARK = {"ok": "ok", "attention": "NEEDS ATTENTION", "fixed": "fixed", "skipped": "skipped"}


def _duration(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.replace(".", "", 1).isdigit():
        raise click.BadParameter(f"{text!r}: expected a number and a unit s, m, h or d (e.g. 30m)")
    return float(number) * units[unit]


@click.command()
@click.option("--fix", is_flag=True, help="Repair what can be repaired (safe while others store and run).")
@click.option(
    "--min-age",
    default="1h",
    show_default=True,
    metavar="DURATION",
    help="Unrecorded environments, Prefect deployments and partial downloads count as debris "
    "only when older than this (a store records its rows last).",
)
@json_option
@handle_errors
def doctor(fix: bool, min_age: str, as_json: bool) -> None:
    """Check the schema, builds, environments, Prefect deployments, results and disk space.

    Each finding says what it is, why it matters and what --fix does. Exits 1
    when something needs attention.
    """
    from datetime import timedelta

    from lume_services.config import configure
    from lume_services.models.doctor import examine

    report = examine(configure(), fix=fix, min_age=timedelta(seconds=_duration(min_age)))
    if as_json:
        print_json(report.as_dict())
    else:
        for finding in report.findings:
            click.echo(f"[{MARK[finding.status]}] {finding.check}: {finding.summary}")
            for item in finding.items[:20]:
                click.echo(f"    {item}")
            if len(finding.items) > 20:
                click.echo(f"    ... and {len(finding.items) - 20} more")
            if finding.status in ("attention", "fixed"):
                if finding.why:
                    click.echo(f"    Why it matters: {finding.why}")
                click.echo(f"    {finding.fix}")
        click.echo("Something needs attention." if report.needs_attention else "Nothing needs attention.")
    sys.exit(1 if report.needs_attention else 0)
