"""Who is looking at a page: sign-in with a token, the session cookie, and the CSRF check of every form.

Signing in exchanges the token for a session (``open_session``): the browser
holds only the random session id, in an HttpOnly, SameSite=Strict cookie
(Secure when the page was served over https), and the token never reaches
it again. Every form carries a CSRF value derived from the session id
(HMAC-SHA256), which another site can neither read nor compute; the sign-in
form, before any session, is guarded by a double-submit cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any, Optional

from fastapi import Request

from lume_services.api.deps import Access
from lume_services.errors import AuthenticationError, CsrfError, ScopeError
from lume_services.services.models.event_records import TokenRecord
from lume_services.services.models.token_ops import scope_includes

SESSION_COOKIE = "lume_session"
SIGN_IN_COOKIE = "lume_sign_in"  # the sign-in form's double-submit value
ANONYMOUS = "anonymous"


def csrf_of(secret: str) -> str:
    return hmac.new(secret.encode("utf-8"), b"lume-services csrf", hashlib.sha256).hexdigest()


def same(a: Optional[str], b: str) -> bool:
    return isinstance(a, str) and hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


@dataclass(frozen=True)
class Viewer:
    """The person looking: their token (None when anonymous), the service acting as them, the CSRF value."""

    token: Optional[TokenRecord]
    service: Any
    csrf: str

    @property
    def name(self) -> str:
        return self.token.name if self.token else ANONYMOUS

    def can(self, scope: str) -> bool:
        return self.token is not None and scope_includes(self.token.scope, scope)

    @property
    def access(self) -> Access:
        """The API's access checks (scope of project-limited tokens) for this viewer."""
        return Access(self.token, self.service)

    def require(self, scope: str, doing: str = "see this page") -> None:
        """Refuse a viewer without a token of ``scope``: 401 when not signed in, else 403."""
        if self.token is None:
            raise AuthenticationError(f"Sign in to {doing}")
        if not self.can(scope):
            raise ScopeError(self.token.name, self.token.scope, scope)

    def check_form(self, csrf: Optional[str], needed: str = "write") -> None:
        """Refuse a form that is not from this session's page (403), or that this token may not send."""
        if self.token is None:
            raise AuthenticationError("Sign in to change anything")
        if not same(csrf, self.csrf):
            raise CsrfError()
        self.require(needed)


def viewer(request: Request) -> Viewer:
    """The page's viewer: the session's token, or anonymous when reads need no token."""
    context = request.app.state.context
    service = context.model_db_service()
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        token = service.session_token(session_id)
        return Viewer(token, service.with_actor(token.name), csrf_of(session_id))
    if context.settings.api.anonymous_read:
        return Viewer(None, service.with_actor(ANONYMOUS), "")
    raise AuthenticationError("Sign in to see the registry")


def new_sign_in_value() -> str:
    return secrets.token_urlsafe(24)


def safe_next(target: Optional[str]) -> str:
    """Where to go after signing in: a path of this site only (never another host)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
