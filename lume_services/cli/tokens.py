"""``lume-services tokens``: create, list and revoke the REST API's tokens (on the server host).

A token is printed once, when it is created; only its sha256 is stored, so
no command can show it again. Its name is who its changes are recorded as.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Optional

import click

from lume_services.cli.output import (
    Column,
    dump,
    get_service,
    handle_errors,
    json_option,
    print_json,
    print_table,
)

TOKEN_COLUMNS: list[Column] = [
    ("Name", lambda t: t.name),
    ("Scope", lambda t: t.scope),
    ("Project", lambda t: t.project_name or "all"),
    ("Created (UTC)", lambda t: t.created),
    ("By", lambda t: t.created_by),
    ("Expires (UTC)", lambda t: t.expires or "never"),
    ("Revoked (UTC)", lambda t: t.revoked),
]
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
MAX_DAYS = 3660


class Duration(click.ParamType):
    """``90d``, ``12h``, ``30m`` or ``2w``."""

    name = "DURATION"

    def convert(self, value: object, param: Optional[click.Parameter], ctx: Optional[click.Context]) -> timedelta:
        if isinstance(value, timedelta):
            return value
        match = re.fullmatch(r"([1-9][0-9]{0,5})([mhdw])", str(value).strip())
        if match is None:
            self.fail(f"{value!r} is not a duration: give a number and a unit, e.g. 90d, 12h, 30m or 2w", param, ctx)
        duration = timedelta(**{UNITS[match.group(2)]: int(match.group(1))})
        if duration > timedelta(days=MAX_DAYS):
            self.fail(f"{value!r} is longer than {MAX_DAYS} days", param, ctx)
        return duration


@click.group()
def tokens() -> None:
    """REST API tokens: scope read < write < admin, optional project and expiry, revocable at once."""


@tokens.command("create")
@click.argument("name")
@click.option("--scope", type=click.Choice(["read", "write", "admin"]), default="read", show_default=True,
              help="read: every read; write: also changes; admin: also tokens and webhooks.")
@click.option("--project", "project_name", default=None, metavar="NAME",
              help="Limit a write token's changes to this project's deployments.")
@click.option("--expires-in", type=Duration(), default=None, help="e.g. 90d; default: never expires.")
@json_option
@handle_errors
def create(name: str, scope: str, project_name: Optional[str], expires_in: Optional[timedelta],
           as_json: bool) -> None:  # fmt: skip
    """Create a token for NAME (who its changes are recorded as); prints it this once."""
    new = get_service().create_token(name, scope=scope, project_name=project_name, expires_in=expires_in)
    token = new.token.get_secret_value()
    if as_json:
        print_json({"token": token, "record": dump(new.record)})
        return
    limits = f" for project {new.record.project_name!r}" if new.record.project_name else ""
    expiry = f", expiring {new.record.expires:%Y-%m-%d %H:%M} UTC" if new.record.expires else ""
    click.echo(f"Token for {new.record.name!r} with scope {new.record.scope!r}{limits}{expiry}.")
    click.echo("Shown only now; give it to its owner (LUME_REGISTRY__TOKEN):")
    click.echo(token)


@tokens.command("list")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked tokens.")
@json_option
@handle_errors
def list_tokens(include_revoked: bool, as_json: bool) -> None:
    """List tokens (never the tokens themselves)."""
    items = get_service().list_tokens(include_revoked=include_revoked)
    if as_json:
        print_json([dump(t) for t in items])
        return
    print_table(items, TOKEN_COLUMNS, empty="No tokens.")


@tokens.command("revoke")
@click.argument("name")
@json_option
@handle_errors
def revoke(name: str, as_json: bool) -> None:
    """Revoke NAME's token: the server refuses it from the next request on."""
    record = get_service().revoke_token(name)
    if as_json:
        print_json(dump(record))
        return
    click.echo(f"The token of {record.name!r} is revoked.")
