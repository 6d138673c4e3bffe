"""Tags of models and deployments: validation, the index rows, and ``tags={k: v}`` filters.

A row's tags are a JSON object in its ``tags`` column (read with the row);
``model_tag`` / ``deployment_tag`` hold one row per tag with the SHA-256 of
its value, so that a filter reaches the tagged rows through
``ix_*_tag_lookup`` (key, value_sha256) whatever the length of the values.
Only the write path changes tags, and it writes both in one transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any, Optional

from sqlalchemy import Select, delete, insert, select, update

from lume_services.errors import ValidationError
from lume_services.services.models.db.schema import (
    TAG_KEY_LENGTH,
    TAG_VALUE_LENGTH,
    Deployment,
    DeploymentTag,
    Model,
    ModelTag,
)
from lume_services.services.models.validation import READ, STORED

MAX_TAGS = 1000  # per call, and per filter


class Tagging:
    """What tags one kind of row: its table, its key column and its index table."""

    def __init__(self, entity: Any, index: Any, key: str) -> None:
        self.table, self.index, self.key = entity.__table__, index.__table__, key

    def filter(self, stmt: Select[Any], tags: Optional[Mapping[str, str]]) -> Select[Any]:
        """``stmt`` limited to the rows that carry every tag of ``tags`` (AND), through the index."""
        owner = self.table.c[self.key]
        for key, value in sorted((tags or {}).items()):
            tagged = select(self.index.c[self.key]).where(
                self.index.c.key == key, self.index.c.value_sha256 == value_sha256(value)
            )
            stmt = stmt.where(owner.in_(tagged))
        return stmt

    def replace(self, unit: Any, owner_id: int, before: Mapping[str, str], after: Mapping[str, str]) -> None:
        """Give row ``owner_id`` the tags ``after`` (it has ``before``): its ``tags`` column and its index rows."""
        unit.execute(
            update(self.table).where(self.table.c[self.key] == owner_id).values(tags=dict(after) or None)
        )
        self.write(unit, owner_id, before, after)

    def write(self, unit: Any, owner_id: int, before: Mapping[str, str], after: Mapping[str, str]) -> None:
        """Bring the index rows of ``owner_id`` from ``before`` to ``after`` (its new tags)."""
        gone = [k for k in before if k not in after or before[k] != after[k]]
        if gone:
            unit.execute(
                delete(self.index).where(self.index.c[self.key] == owner_id, self.index.c.key.in_(gone))
            )
        new = [
            {self.key: owner_id, "key": k, "value_sha256": value_sha256(v)}
            for k, v in after.items()
            if before.get(k) != v
        ]
        if new:
            unit.execute(insert(self.index), new)

    def index_rows(self, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The index rows of new rows (with their ids and ``tags``), for one executemany."""
        return [
            {self.key: row[self.key], "key": k, "value_sha256": value_sha256(v)}
            for row in rows
            for k, v in (row.get("tags") or {}).items()
        ]


MODEL_TAGS = Tagging(Model, ModelTag, "model_id")
DEPLOYMENT_TAGS = Tagging(Deployment, DeploymentTag, "deployment_id")


def value_sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def check_key(key: Any, consequence: str = STORED) -> str:
    def refuse(problem: str) -> ValidationError:
        return ValidationError("tag key", key, problem, consequence)

    if not isinstance(key, str):
        raise refuse(f"expected text, got {type(key).__name__}")
    if not key or key != key.strip():
        raise refuse("must not be empty nor start or end with white space")
    if len(key) > TAG_KEY_LENGTH:
        raise refuse(f"is {len(key)} characters long; at most {TAG_KEY_LENGTH} fit")
    if "=" in key or any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise refuse("must not contain '=' or control characters")
    _encodable(key, refuse)
    return key


def check_tags(tags: Any, consequence: str = STORED) -> dict[str, str]:
    """``{key: value}`` with valid keys (1-250 characters, no '=') and text values (up to 100,000)."""
    if not isinstance(tags, Mapping):
        raise ValidationError("tags", tags, f"expected a mapping of tag keys to values, got {type(tags).__name__}",
                              consequence)  # fmt: skip
    if len(tags) > MAX_TAGS:
        raise ValidationError("tags", f"<{len(tags)} tags>", f"at most {MAX_TAGS} at once", consequence)
    checked = {}
    for key, value in tags.items():
        checked[check_key(key, consequence)] = _check_value(key, value, consequence)
    return checked


def _check_value(key: str, value: Any, consequence: str) -> str:
    def refuse(problem: str) -> ValidationError:
        return ValidationError(f"tag {key!r}", value, problem, consequence)

    if not isinstance(value, str):
        raise refuse(f"expected text, got {type(value).__name__}")
    if len(value) > TAG_VALUE_LENGTH:
        raise refuse(f"is {len(value)} characters long; at most {TAG_VALUE_LENGTH} fit")
    if "\x00" in value:
        raise refuse("must not contain NUL characters")
    _encodable(value, refuse)
    return value


def check_keys(keys: Any) -> list[str]:
    if isinstance(keys, (str, bytes, Mapping)) or not isinstance(keys, Iterable):
        raise ValidationError("keys", keys, "expected a list of tag keys")
    return [check_key(k) for k in keys]


def tag_filter(filters: dict[str, Any]) -> Optional[dict[str, str]]:
    """Take ``tags`` out of a read's filters (validated), leaving the column filters."""
    if "tags" not in filters:
        return None
    return check_tags(filters.pop("tags"), READ)


def _encodable(text: str, refuse: Any) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise refuse("is not valid Unicode text (lone surrogate)") from None
