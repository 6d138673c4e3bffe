"""Who is asking, and what they may do: the token check and the service acting as its name.

``Access`` is what every route receives: the principal's token record (None
for an anonymous read), the service acting as the token's name, and the
checks of scope and project. Tokens are read from ``Authorization: Bearer``
only (never from a query string, which access logs keep).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Optional

from fastapi import Depends, Request

from lume_services.errors import AuthenticationError, ScopeError
from lume_services.services.models.event_records import TokenRecord
from lume_services.services.models.token_ops import scope_includes

ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Access:
    token: Optional[TokenRecord]
    service: Any  # ModelDBService acting as the token's name

    @property
    def name(self) -> str:
        return self.token.name if self.token else ANONYMOUS

    @property
    def project(self) -> Optional[str]:
        """The one project a write token is limited to (None: not limited, or anonymous)."""
        return self.token.project_name if self.token is not None else None

    def require_unrestricted(self, what: str) -> None:
        """Refuse a project-limited token a change outside deployments (models, projects)."""
        if self.project is not None:
            raise ScopeError(self.name, f"write for project {self.project!r}", "write",
                             f"{what} is not limited to one project.")  # fmt: skip

    def require_project_of(self, deployment_id: int) -> None:
        """Refuse a project-limited token a change of a deployment outside its project."""
        project = self.project
        if project is None:
            return
        projects = {f.project_name for f in self.service.get_flows(deployment_id=deployment_id)}
        if project not in projects:
            raise ScopeError(self.name, f"write for project {project!r}",
                             "write for the deployment's project",
                             f"Deployment {deployment_id!r} is in {sorted(projects) or 'no project'}.")  # fmt: skip


def bearer(request: Request) -> Optional[str]:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("The Authorization header is not 'Bearer <token>'")
    return token.strip()


def access(needed: str) -> Callable[[Request], Access]:
    def dependency(request: Request) -> Access:
        context = request.app.state.context
        service = context.model_db_service()
        token = bearer(request)
        if token is None:
            if needed == "read" and context.settings.api.anonymous_read:
                return Access(None, service.with_actor(ANONYMOUS))
            raise AuthenticationError("This request needs an API token")
        record = service.authenticate(token)
        if not scope_includes(record.scope, needed):
            raise ScopeError(record.name, record.scope, needed)
        return Access(record, service.with_actor(record.name))

    return dependency


Reader = Annotated[Access, Depends(access("read"))]
Writer = Annotated[Access, Depends(access("write"))]
Admin = Annotated[Access, Depends(access("admin"))]


def server_scheduling(request: Request) -> Any:
    """The server's SchedulingService, which must use a Prefect server and its workers.

    A registry server never starts Prefect's ephemeral server nor runs flows
    in its own processes: without LUME_PREFECT__API_URL (or with the inline
    executor) stores, work queues and runs are refused with 503.
    """
    from lume_services.errors import SchedulingNotConfiguredError

    service = request.app.state.context.scheduling_service()
    if not service.api_configured or service.inline:
        raise SchedulingNotConfiguredError(
            "the registry server uses a Prefect server and its workers only, never an ephemeral Prefect nor its "
            "own processes: set LUME_PREFECT__API_URL on the server and run `lume-services worker`"
        )
    return service
