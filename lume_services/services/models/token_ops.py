"""REST API tokens: create (shown once), list, revoke, and authenticate a request's token.

A token is ``lume_`` followed by 43 random URL-safe characters (256 bits
from :mod:`secrets`). Only its sha256 is stored: a lookup by that digest is
the whole check, so a revocation or an expiry holds at once on every server
replica sharing the database. A token's ``name`` is who its changes are
recorded as; one name has at most one token in use (``active_name``).

Tokens never appear in a record, a repr, an audit event or a message: the
new token is a :class:`~pydantic.SecretStr` in :class:`NewToken`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta
from typing import Any, Optional

from sqlalchemy import bindparam, insert, select, update

from lume_services.errors import (
    AlreadyExistsError,
    AuthenticationError,
    ProjectNotFoundError,
    TokenNotFoundError,
    ValidationError,
)
from lume_services.services.models.db.schema import TOKEN_SCOPES, ApiToken, Project, utcnow
from lume_services.services.models.event_records import NewToken, TokenRecord
from lume_services.services.models.unit_of_work import ServiceBase
from lume_services.services.models.validation import check_value
from lume_services.services.models.writes import Change

TOKENS, PROJECTS = ApiToken.__table__, Project.__table__
TOKEN_COLUMNS = [c for c in TOKENS.c if c.key not in ("token_sha256", "active_name")]
BY_DIGEST = select(*TOKEN_COLUMNS).where(TOKENS.c.token_sha256 == bindparam("_digest"))  # every request
TOKEN_PREFIX = "lume_"
MAX_TOKEN_LENGTH = 200  # longer text is refused before it is hashed
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@:-]{0,99}")


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def scope_includes(granted: str, needed: str) -> bool:
    """read < write < admin."""
    return TOKEN_SCOPES.index(granted) >= TOKEN_SCOPES.index(needed)


def check_token_name(name: Any) -> str:
    if not isinstance(name, str) or NAME_PATTERN.fullmatch(name) is None:
        raise ValidationError(
            "token name", name,
            "expected 1 to 100 letters, digits or . _ @ : - (starting with a letter or digit), "
            "e.g. the person's user name",
        )  # fmt: skip
    return name


def check_scope(scope: Any) -> str:
    if scope not in TOKEN_SCOPES:
        raise ValidationError("scope", scope, f"expected one of {', '.join(TOKEN_SCOPES)}")
    return scope


def check_expiry(expires: Optional[datetime], now: datetime) -> Optional[datetime]:
    if expires is None:
        return None
    if not isinstance(expires, datetime) or expires.tzinfo is None:
        raise ValidationError("expiry", expires, "expected an aware datetime (UTC)")
    if expires <= now:
        raise ValidationError("expiry", expires, "is not in the future")
    return expires


class TokenOps(ServiceBase):
    def create_token(
        self,
        name: str,
        *,
        scope: str = "read",
        project_name: Optional[str] = None,
        expires_in: Optional[timedelta] = None,
    ) -> NewToken:
        """Create a token for ``name``; the returned ``NewToken.token`` is the only copy.

        ``project_name`` limits a write token's changes to that project's
        deployments. An expired token of the same name is revoked here; one
        still in use must be revoked first.
        """
        name, scope = check_token_name(name), check_scope(scope)
        if project_name is not None:
            check_value(Project, "project_name", project_name)
            if scope != "write":
                raise ValidationError("project", project_name, "only a write token is limited to a project")
        if expires_in is not None and (not isinstance(expires_in, timedelta) or expires_in <= timedelta(0)):
            raise ValidationError("expiry", expires_in, "expected a positive duration, e.g. 90d")
        token = new_token()

        def work(change: Change) -> TokenRecord:
            if project_name is not None and change.execute(
                select(PROJECTS.c.project_name).where(PROJECTS.c.project_name == project_name)
            ).first() is None:  # fmt: skip
                raise ProjectNotFoundError({"project_name": project_name})
            current = change.execute(select(*TOKEN_COLUMNS).where(TOKENS.c.active_name == name)).first()
            if current is not None:
                if TokenRecord.model_validate(current).active_at(change.now):
                    raise AlreadyExistsError(
                        "token for", name, "and is in use; revoke it first with `lume-services tokens revoke NAME`"
                    )
                self._mark_revoked(change, current.token_id, name)
            expires = None if expires_in is None else change.now + expires_in
            row = dict(name=name, active_name=name, token_sha256=token_digest(token), scope=scope,
                       project_name=project_name, created=change.now, created_by=change.actor,
                       expires=expires, revoked=None, revoked_by=None)  # fmt: skip
            token_id = change.execute(insert(TOKENS), row).inserted_primary_key[0]
            change.record("token.created", "token", token_id,
                          after={"name": name, "scope": scope, "project_name": project_name, "expires": expires})  # fmt: skip
            values = {k: v for k, v in row.items() if k not in ("token_sha256", "active_name")}
            return TokenRecord(token_id=token_id, **values)

        return NewToken(record=self._write("create_token", work, core=True), token=token)

    def list_tokens(self, *, include_revoked: bool = False) -> list[TokenRecord]:
        """Tokens in use (and expired ones not yet revoked); with ``include_revoked``, every token."""
        stmt = select(*TOKEN_COLUMNS).order_by(TOKENS.c.token_id)
        if not include_revoked:
            stmt = stmt.where(TOKENS.c.revoked.is_(None))
        rows = self._read("list_tokens", lambda c: c.execute(stmt).all(), core=True)
        return [TokenRecord.model_validate(r) for r in rows]

    def revoke_token(self, name: str) -> TokenRecord:
        """Revoke ``name``'s token: every request with it is refused from now on."""
        check_token_name(name)

        def work(change: Change) -> TokenRecord:
            row = change.execute(select(*TOKEN_COLUMNS).where(TOKENS.c.active_name == name)).first()
            if row is None:
                raise TokenNotFoundError({"name": name})
            self._mark_revoked(change, row.token_id, name)
            return TokenRecord.model_validate({**row._mapping, "revoked": change.now, "revoked_by": change.actor})

        return self._write("revoke_token", work, core=True)

    @staticmethod
    def _mark_revoked(change: Change, token_id: int, name: str) -> None:
        change.execute(
            update(TOKENS).where(TOKENS.c.token_id == token_id)
            .values(active_name=None, revoked=change.now, revoked_by=change.actor)
        )  # fmt: skip
        change.record("token.revoked", "token", token_id, before={"name": name})

    def authenticate(self, token: Any) -> TokenRecord:
        """The token in use that ``token`` is, or :class:`AuthenticationError` (never naming it)."""
        if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > MAX_TOKEN_LENGTH:
            raise AuthenticationError("The API token is malformed")
        digest = token_digest(token)
        row = self._read("authenticate", lambda c: c.execute(BY_DIGEST, {"_digest": digest}).first(), core=True)
        if row is None:
            raise AuthenticationError("The API token is not known")
        record = TokenRecord.model_validate(row)
        if record.revoked is not None:
            raise AuthenticationError(f"The API token of {record.name!r} was revoked")
        if not record.active_at(utcnow()):
            raise AuthenticationError(f"The API token of {record.name!r} expired")
        return record
