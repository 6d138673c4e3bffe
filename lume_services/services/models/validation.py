"""Input validation at the service boundary, driven by the ORM columns.

SQLite stores anything, MySQL rejects over-long strings (or truncates them
in non-strict mode) and PostgreSQL rejects NUL bytes. Checking every value
against the column it is headed for, before any SQL runs, makes the three
behave the same and gives one clear error naming the field.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Integer, String
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from lume_services.errors import UnknownFilterError, ValidationError
from lume_services.services.models.db.schema import ACTOR_LENGTH, REASON_LENGTH

# Keyword aliases accepted in filters (predecessor attribute names).
FILTER_ALIASES = {"sha_256": "sha256", "_id": "id"}
MAX_INT = 2**31 - 1  # MySQL INT
# The range of a filter on an INTEGER / BIGINT column: PostgreSQL casts the parameter to
# the column's type, and a driver cannot bind more than 64 bits.
INT_RANGE, BIGINT_RANGE = (-(2**31), 2**31 - 1), (-(2**63), 2**63 - 1)
STORED, READ = "Nothing was stored.", "Nothing was read."
_SHA256 = re.compile(r"[0-9a-f]{64}")


@functools.cache
def columns(table: type[DeclarativeBase]) -> dict[str, Any]:
    """ORM attribute name -> Column for a mapped class (the mapping never changes: cached)."""
    return {attr.key: attr.columns[0] for attr in table.__mapper__.column_attrs}


def check_value(table: type[DeclarativeBase], field: str, value: Any, *, as_filter: bool = False) -> Any:
    """Validate one value for ``table.field``; returns it unchanged (0 and 1 for a boolean as False/True).

    With ``as_filter`` only the type and encodability are checked: a value
    that is too long simply matches nothing, and an integer only has to fit
    the column's type (it is sent as one). Every filter value reaches the
    database only through here.
    """
    column = columns(table)[field]
    consequence = READ if as_filter else STORED
    if value is None:
        if column.nullable and not column.primary_key:
            return None
        raise ValidationError(field, value, "a value is required", consequence)
    col_type = _base_type(column.type)
    if isinstance(col_type, Boolean):
        if type(value) is int and value in (0, 1):  # the predecessor's callers pass is_live=1
            return bool(value)
        if not isinstance(value, bool):
            raise ValidationError(
                field, value, f"expected True or False (or 0 or 1), got {value!r}", consequence
            )
    elif isinstance(col_type, Integer):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(
                field, value, f"expected an integer, got {type(value).__name__}", consequence
            )
        if not as_filter:
            low, high = 1, MAX_INT
        else:
            low, high = BIGINT_RANGE if isinstance(col_type, BigInteger) else INT_RANGE
        if not low <= value <= high:
            raise ValidationError(field, value, f"must be between {low} and {high}", consequence)
    elif isinstance(col_type, DateTime):
        _check_datetime(field, value, consequence)
    elif isinstance(col_type, JSON):
        if as_filter:
            raise ValidationError(field, value, "a JSON field cannot be used as a filter", consequence)
        _check_json(field, value, list if column.info.get("json") == "list" else dict)
    elif isinstance(col_type, String):
        max_length = 0 if as_filter else _length(col_type)
        _check_text(field, value, max_length, allow_empty=as_filter, consequence=consequence)
    return value


def _base_type(col_type: Any) -> Any:
    """The generic type under a TypeDecorator (``UTCDateTime`` is a ``DateTime``)."""
    while isinstance(col_type, TypeDecorator):
        col_type = col_type.impl_instance
    return col_type


def _length(col_type: Any) -> int:
    length = getattr(col_type, "length", None)
    if length is None:  # a variant wraps the generic type
        length = getattr(getattr(col_type, "impl", None), "length", None)
    return int(length or 0)


def _check_text(
    field: str, value: Any, max_length: int, *, allow_empty: bool = False, consequence: str = STORED
) -> None:
    def refuse(problem: str) -> ValidationError:
        return ValidationError(field, value, problem, consequence)

    if not isinstance(value, str):
        raise refuse(f"expected text, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise refuse("must not be empty or only white space")
    if "\x00" in value:
        raise refuse("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise refuse("is not valid Unicode text (lone surrogate)") from None
    if max_length and len(value) > max_length:
        raise refuse(f"is {len(value)} characters long; at most {max_length} fit")


AWARE_HINT = "pass an aware datetime, e.g. datetime(..., tzinfo=timezone.utc)"


def _check_datetime(field: str, value: Any, consequence: str) -> None:
    """An aware datetime (any zone) that is a valid time once converted to UTC."""
    if not isinstance(value, datetime):
        raise ValidationError(
            field, value, f"expected a datetime, got {type(value).__name__}; {AWARE_HINT}", consequence
        )
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(field, value, f"has no time zone; {AWARE_HINT}", consequence)
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValidationError(
            field, value, "is out of range once converted to UTC (years 1 to 9999)", consequence
        ) from None


MAX_JSON_DEPTH = 100


def _too_deep(value: Any) -> bool:
    """Nested deeper than MAX_JSON_DEPTH lists and mappings (walked without recursion)."""
    level = [value]
    for _ in range(MAX_JSON_DEPTH):
        level = [
            v
            for c in level
            if isinstance(c, (dict, list, tuple))
            for v in (c.values() if isinstance(c, dict) else c)
        ]
        if not level:
            return False
    return True


def _check_json(field: str, value: Any, container: type = dict) -> None:
    """A JSON value of the column's container type (``info={"json": "list"}``: a list; else a mapping)."""
    if not isinstance(value, container):
        expected = "a list" if container is list else "a mapping"
        raise ValidationError(field, value, f"expected {expected}, got {type(value).__name__}")
    if _too_deep(value):
        # Not the value itself: its repr (in the message) would recurse as deeply.
        raise ValidationError(
            field, f"<a mapping nested more than {MAX_JSON_DEPTH} levels>",
            f"is nested more than {MAX_JSON_DEPTH} levels deep; flatten it",
        )  # fmt: skip
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(field, value, f"is not JSON-serialisable ({exc})") from None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # SQLite and PostgreSQL would store the escape; MariaDB's JSON check refuses it.
        raise ValidationError(
            field, value, "contains text that is not valid Unicode (lone surrogate)"
        ) from None


def check_values(table: type[DeclarativeBase], values: Mapping[str, Any]) -> dict[str, Any]:
    """Validate several values for ``table``; returns a plain dict."""
    return {field: check_value(table, field, value) for field, value in values.items()}


def check_filters(table: type[DeclarativeBase], filters: Mapping[str, Any]) -> dict[str, Any]:
    """Map filter keywords to ORM attributes, refusing unknown ones."""
    known = columns(table)
    unknown = [key for key in filters if FILTER_ALIASES.get(key, key) not in known]
    if unknown:
        raise UnknownFilterError(table.__tablename__, unknown, known)
    resolved = {FILTER_ALIASES.get(key, key): value for key, value in filters.items()}
    for field, value in resolved.items():
        if field == "sha256" and isinstance(value, str):
            value = resolved[field] = value.strip().lower().removeprefix("sha256:")
        resolved[field] = check_value(table, field, value, as_filter=True)
    return resolved


def normalize_sha256(value: Any) -> str:
    """Accept ``<hex>`` or ``sha256:<hex>`` in any case; return lowercase hex."""
    if not isinstance(value, str):
        raise ValidationError("sha256", value, f"expected text, got {type(value).__name__}")
    digest = value.strip().lower()
    if digest.startswith("sha256:"):
        digest = digest[len("sha256:") :]
    if not _SHA256.fullmatch(digest):
        raise ValidationError(
            "sha256", value, "expected 64 hexadecimal digits (optionally prefixed 'sha256:')"
        )
    return digest


def check_page(limit: Any, max_limit: int = 1000) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= max_limit:
        raise ValidationError("limit", limit, f"must be an integer from 1 to {max_limit}")
    return limit


def check_actor(actor: Any) -> str:
    """Who acts: printable text of 1 to 100 characters (LUME_ACTOR, a token's name)."""
    if not isinstance(actor, str):
        raise ValidationError(
            "actor", actor, f"expected text, got {type(actor).__name__}", "Nothing was done."
        )
    if not actor.strip():
        raise ValidationError(
            "actor", actor, "must not be empty (set LUME_ACTOR to who you are)", "Nothing was done."
        )
    if not actor.isprintable():
        raise ValidationError(
            "actor", actor, "must be printable text (no control characters)", "Nothing was done."
        )
    if len(actor) > ACTOR_LENGTH:
        raise ValidationError(
            "actor", actor, f"is {len(actor)} characters long; at most {ACTOR_LENGTH} fit", "Nothing was done."
        )
    return actor


def check_reason(reason: Any, *, required: bool = False) -> Any:
    """A reason given for a change: optional text of at most 2000 characters."""
    if reason is None and not required:
        return None
    if reason is None or (isinstance(reason, str) and not reason.strip()):
        raise ValidationError("reason", reason, "a reason is required: say why")
    _check_text("reason", reason, REASON_LENGTH)
    return reason


def check_time(field: str, value: Any) -> Any:
    """An aware datetime (any zone) for a time filter; naive or other types are refused."""
    _check_datetime(field, value, READ)
    return value
