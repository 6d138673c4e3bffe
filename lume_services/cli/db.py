"""``lume-services db``: the model database's schema revision."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import click

from lume_services.cli.output import get_service, handle_errors, json_option, print_fields, print_json

if TYPE_CHECKING:
    from lume_services.services.models.db.db import ModelDB


@click.group()
def db() -> None:
    """Inspect and upgrade the model database schema."""


def _model_db() -> ModelDB:
    return get_service().model_db


def _revision(revision: Optional[str]) -> str:
    return revision or "(none: the database has no lume-services schema)"


def _adopt_needed(model_db: ModelDB) -> Optional[str]:
    """The schema check's message if the database needs `db adopt` (None if not)."""
    from lume_services.errors import PredecessorSchemaError

    try:
        model_db.refuse_predecessor()
    except PredecessorSchemaError as exc:
        return str(exc)
    return None


@db.command()
@json_option
@handle_errors
def current(as_json: bool) -> None:
    """Show the schema revision of the database and the one this release needs."""
    from lume_services import migrations

    model_db = _model_db()
    rev, head = migrations.current(model_db), migrations.head()
    if as_json:
        print_json({"url": model_db.safe_url(), "current": rev, "head": head, "upgrade_needed": rev != head})
        return
    adopt_needed = _adopt_needed(model_db) if rev != head else None
    print_fields(
        [("Database", model_db.safe_url()), ("Current revision", _revision(rev)), ("Head revision", head)]
    )
    if rev == head:
        click.echo("The schema is up to date.")
    elif adopt_needed is not None:
        click.echo(adopt_needed)
    else:
        click.echo("An upgrade is needed: run `lume-services db upgrade`.")


@db.command()
@json_option
@handle_errors
def upgrade(as_json: bool) -> None:
    """Upgrade the database schema to the head revision (idempotent)."""
    from lume_services import migrations

    model_db = _model_db()
    before = migrations.current(model_db)
    model_db.upgrade_schema()
    after = migrations.current(model_db)
    if as_json:
        print_json(
            {"url": model_db.safe_url(), "before": before, "after": after, "upgraded": before != after}
        )
        return
    print_fields(
        [
            ("Database", model_db.safe_url()),
            ("Revision before", _revision(before)),
            ("Revision after", _revision(after)),
        ]
    )
    if before == after:
        click.echo("The schema was already up to date; nothing changed.")
    else:
        click.echo(f"Upgraded the schema to revision {after}.")


_STATE_TEXT = {
    "empty": "The database is empty: nothing to adopt. Run `lume-services db upgrade` to create the schema.",
    "ours": "The database is already a lume-services database: nothing to adopt "
    "(run `lume-services db upgrade` if it is behind).",
}


@db.command()
@click.option("--dry-run", is_flag=True, help="Report what would change; write nothing.")
@json_option
@handle_errors
def adopt(dry_run: bool, as_json: bool) -> None:
    """Convert a predecessor lume-services database in place, then upgrade it to head.

    Every row and id is kept; refused values are resolved by the rules of the
    README's "Coming from the predecessor". Back the database up first.
    """
    from lume_services.services.models.db import adopt as adoption

    report = adoption.adopt(_model_db(), dry_run=dry_run)
    if as_json:
        print_json(report.as_dict())
        return
    print_fields(
        [
            ("Database", report.database),
            ("Found", report.state),
            ("Revision before", _revision(report.revision_before)),
            ("Revision after", _revision(report.revision_after)),
        ]
    )
    if report.state in _STATE_TEXT:
        click.echo(_STATE_TEXT[report.state])
        return
    click.echo("Rows: " + ", ".join(f"{name} {count}" for name, count in report.rows.items()))
    if report.utc_offset_seconds:
        click.echo(f"Times are shifted to UTC by {-report.utc_offset_seconds} seconds (the server's offset).")
    click.echo(f"{len(report.prefect1_flows)} flow(s) were registered with Prefect 1: re-store their deployments.")
    lines = adoption.describe(report.findings)
    click.echo(f"{len(lines)} value(s) that lume-services refuses" + (":" if lines else "."))
    for line in lines:
        click.echo(f"  {line}")
    if dry_run:
        click.echo("Dry run: nothing was changed. Run `lume-services db adopt` to convert the database.")
    else:
        click.echo(f"Adopted: every row kept with its id; the schema is at revision {report.revision_after}.")
