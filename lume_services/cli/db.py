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
    print_fields(
        [("Database", model_db.safe_url()), ("Current revision", _revision(rev)), ("Head revision", head)]
    )
    if rev == head:
        click.echo("The schema is up to date.")
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
