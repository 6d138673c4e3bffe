"""What every command group shares: output, the configured service, errors.

Tables are for people, ``--json`` is for scripts. Nothing heavy is imported
at module level (no pydantic, SQLAlchemy, config or services), so ``--help``
stays instant and works without any configuration.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Optional, TypeVar

import click

from lume_services.errors import DatabaseError, LUMEServicesError, driver_reason

if TYPE_CHECKING:
    from lume_services.services.models.service import ModelDBService

F = TypeVar("F", bound=Callable[..., Any])
Column = tuple[str, Callable[[Any], Any]]

MAX_ID = 2**31 - 1  # ids are INT columns
MAX_PAGE = 1000  # the largest page ModelDBService returns (validation.check_page)
ID = click.IntRange(1, MAX_ID)

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON (for scripts) instead of a table."
)
limit_option = click.option(
    "--limit",
    type=click.IntRange(1, MAX_PAGE),
    default=100,
    metavar="N",
    show_default=True,
    help="Show at most this many rows.",
)


def after_option(noun: str) -> Callable[[F], F]:
    return click.option(
        "--after",
        type=ID,
        default=None,
        metavar="ID",
        help=f"Start after this {noun} id (the next_after of the previous page).",
    )


# -- the service ----------------------------------------------------------------


def get_service() -> ModelDBService:
    """The ModelDBService configured by the LUME_* environment variables."""
    from lume_services.config import configure

    return configure().model_db_service()


# -- errors ---------------------------------------------------------------------


def handle_errors(func: F) -> F:
    """Report lume-services and database errors as "Error: ..." with exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except LUMEServicesError as exc:
            raise click.ClickException(_mask_password(str(exc))) from None
        except Exception as exc:
            error = _database_error(exc)
            if error is None:
                raise
            raise click.ClickException(_mask_password(str(error))) from None

    return wrapper  # type: ignore[return-value]


def _database_error(exc: Exception) -> Optional[DatabaseError]:
    """A DatabaseError for a SQLAlchemy error (None for anything else)."""
    sa_exc = sys.modules.get("sqlalchemy.exc")
    if sa_exc is None or not isinstance(exc, sa_exc.SQLAlchemyError):
        return None
    ctx = click.get_current_context(silent=True)
    operation = f"`{ctx.command_path}`" if ctx is not None else "the command"
    return DatabaseError(operation, driver_reason(exc))


def _mask_password(message: str) -> str:
    """Replace the configured database password, should it appear, by ***."""
    config = sys.modules.get("lume_services.config")
    ctx = getattr(config, "context", None)
    if ctx is None:
        return message
    try:
        password = ctx.settings.model_db_config().sqlalchemy_url().password
    except Exception:  # an unusable URL has no password to hide
        return message
    return message.replace(password, "***") if password else message


# -- output ---------------------------------------------------------------------


def cell(value: Any) -> str:
    """One table cell: one line, readable booleans, dates in UTC."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return "".join(ch if ch.isprintable() else " " for ch in str(value))


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An aligned plain-text table with a rule under the headers."""
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def print_table(records: Sequence[Any], columns: Sequence[Column], *, empty: str) -> None:
    """Print records as a table, or the sentence ``empty`` when there are none."""
    if not records:
        click.echo(empty)
        return
    rows = [[cell(get(record)) for _, get in columns] for record in records]
    click.echo(render_table([header for header, _ in columns], rows))


def print_fields(pairs: Iterable[tuple[str, Any]]) -> None:
    """Print "Label:  value" lines with the values aligned."""
    pairs = list(pairs)
    width = max(len(label) for label, _ in pairs) + 1
    for label, value in pairs:
        click.echo(f"{label + ':':<{width}}  {cell(value)}")


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def dump(record: Any) -> Any:
    """A record (or None) as JSON-ready data."""
    return None if record is None else record.model_dump(mode="json")


def print_next_page(next_after: Optional[int], noun: str) -> None:
    if next_after is not None:
        click.echo(f"\nMore {noun} follow; show them with --after {next_after}.")
