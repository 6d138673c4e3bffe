"""Web UI sessions: sign in with a token, find the token of a browser's session, sign out.

A session id is 256 random bits (:mod:`secrets`), the value of the browser's
HttpOnly cookie; only its sha256 is stored, with the token it was opened
with. Each lookup joins the token and checks it like :meth:`authenticate`, so
revoking a token (or its expiry) ends its sessions at once on every replica.
Signing in removes sessions that have expired.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, insert, select

from lume_services.errors import AuthenticationError, ValidationError
from lume_services.services.models.db.schema import WebSession, utcnow
from lume_services.services.models.event_records import NewSession, TokenRecord
from lume_services.services.models.token_ops import TOKEN_COLUMNS, TOKENS
from lume_services.services.models.unit_of_work import ServiceBase
from lume_services.services.models.writes import Change

SESSIONS = WebSession.__table__
MAX_SESSION_LENGTH = 100  # longer text is refused before it is hashed
MAX_LIFETIME = timedelta(days=30)


def session_digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def _check_session_id(session_id: Any) -> str:
    if not isinstance(session_id, str) or not 0 < len(session_id) <= MAX_SESSION_LENGTH:
        raise AuthenticationError("The session is malformed; sign in again")
    return session_id


class SessionOps(ServiceBase):
    def open_session(self, token: Any, *, lifetime: timedelta = timedelta(hours=12)) -> NewSession:
        """Sign in with ``token`` (AuthenticationError if it is not in use): a new session of ``lifetime``."""
        if not isinstance(lifetime, timedelta) or not timedelta(minutes=1) <= lifetime <= MAX_LIFETIME:
            raise ValidationError("lifetime", lifetime, "expected a timedelta from one minute to 30 days",
                                  "No session was opened.")  # fmt: skip
        record = self.authenticate(token)  # type: ignore[attr-defined]  # TokenOps
        session_id = secrets.token_urlsafe(32)
        expires = utcnow() + lifetime
        if record.expires is not None:
            expires = min(expires, record.expires)  # a session never outlives its token

        def work(change: Change) -> None:
            change.execute(delete(SESSIONS).where(SESSIONS.c.expires <= change.now))
            change.execute(insert(SESSIONS).values(session_sha256=session_digest(session_id),
                                                   token_id=record.token_id, created=change.now, expires=expires))  # fmt: skip

        self._write("open_session", work, core=True)
        return NewSession(session=session_id, token=record, expires=expires)

    def session_token(self, session_id: Any) -> TokenRecord:
        """The token of the session ``session_id``, or AuthenticationError (never naming the session)."""
        digest = session_digest(_check_session_id(session_id))
        stmt = (select(*TOKEN_COLUMNS, SESSIONS.c.expires.label("_session_expires"))
                .select_from(SESSIONS.join(TOKENS, TOKENS.c.token_id == SESSIONS.c.token_id))
                .where(SESSIONS.c.session_sha256 == digest))  # fmt: skip
        row = self._read("session_token", lambda c: c.execute(stmt).mappings().first(), core=True)
        if row is None:
            raise AuthenticationError("The session is not known (signed out, or it expired); sign in again")
        now = utcnow()
        if row["_session_expires"] <= now:
            raise AuthenticationError("The session expired; sign in again")
        record = TokenRecord.model_validate({k: v for k, v in row.items() if k != "_session_expires"})
        if record.revoked is not None:
            raise AuthenticationError(f"The API token of {record.name!r} was revoked; sign in with another")
        if not record.active_at(now):
            raise AuthenticationError(f"The API token of {record.name!r} expired; sign in with another")
        return record

    def close_session(self, session_id: Any) -> bool:
        """Sign out: the session ends at once; False if there was no such session."""
        digest = session_digest(_check_session_id(session_id))
        return self._write("close_session", lambda change: bool(change.execute(
            delete(SESSIONS).where(SESSIONS.c.session_sha256 == digest)).rowcount), core=True)  # fmt: skip
