"""RemoteModelDBService: the ModelDBService's reads and changes, through a registry server.

The same method names, arguments, records and exception classes as
:class:`~lume_services.services.models.service.ModelDBService`, so that
``Model``, the CLI and scripts need not know which one they hold. Filters
are those the API offers for each listing; a filter it does not offer is
refused here, before any request, like the local service refuses an unknown
column. The local service's other methods (export, import, deletes,
webhooks: what an administrator does on the server host) are refused with
what to run there instead.
Changes are recorded on the server as the token's name.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, Optional, TypeVar
from urllib.parse import quote

from pydantic import BaseModel

from lume_services.client.http import RegistryConnection
from lume_services.errors import ConfigurationError, DeploymentNotFoundError, UnknownFilterError
from lume_services.services.models.event_records import NewToken, TokenRecord
from lume_services.services.models.job_records import RunRecord
from lume_services.services.models.records import (
    UNSET,
    AuditEventRecord,
    BeamlineRecord,
    DeploymentRecord,
    FlowOfFlowsRecord,
    FlowRecord,
    LiveAt,
    LiveIntervalRecord,
    LiveRequestRecord,
    LoadedDeployment,
    ModelRecord,
    ModelWithLive,
    Page,
    ProjectRecord,
)
from lume_services.variables.types import Variables

R = TypeVar("R", bound=BaseModel)
MODEL_FILTERS = ("author", "laboratory", "facility", "beampath", "description", "require_approval", "tags")
DEPLOYMENT_FILTERS = ("model_id", "version", "is_live", "sha256", "source", "package_import_name", "image", "tags")


def _query(table: str, filters: Mapping[str, Any], allowed: Iterable[str]) -> dict[str, Any]:
    """Query parameters for a listing's filters (``tags={k: v}`` as repeated ``tag=k=v``)."""
    allowed = tuple(allowed)
    unknown = set(filters) - set(allowed)
    if unknown:
        raise UnknownFilterError(table, unknown, allowed)
    query = {k: v for k, v in filters.items() if k != "tags"}
    tags = filters.get("tags") or {}
    if tags:
        query["tag"] = [f"{k}={v}" for k, v in dict(tags).items()]
    return query


def _seg(value: Any) -> str:
    """One path segment: user text quoted whole (a "/" or ".." stays inside it)."""
    return quote(str(value), safe="")


def _expected(expected_live: Any) -> dict[str, Any]:
    return {} if expected_live is UNSET else {"expected_live": expected_live}


class RemoteModelDBService:
    """The registry's storage API through ``LUME_REGISTRY__URL`` (see the module docstring)."""

    def __init__(self, connection: RegistryConnection) -> None:
        self._http = connection
        self._actor: Optional[str] = None

    def __repr__(self) -> str:
        return f"RemoteModelDBService({self._http.url!r})"

    def __getattr__(self, name: str) -> Any:
        from lume_services.services.models.service import ModelDBService

        if not name.startswith("_") and hasattr(ModelDBService, name):
            raise ConfigurationError(
                f"{name} is not available through the registry server {self._http.url}: run it on the server "
                "host (without LUME_REGISTRY__URL), or use the lume-services command there."
            )
        raise AttributeError(name)

    @property
    def actor(self) -> str:
        """The token's name, which the server records this client's changes as."""
        if self._actor is None:
            self._actor = self._http.get("/whoami")["name"]
        return self._actor

    def with_actor(self, actor: str) -> Any:
        raise ConfigurationError(
            f"A remote client acts as its token's name ({self.actor!r}); to act as {actor!r}, use their token."
        )

    # -- helpers ------------------------------------------------------------------

    def _one(self, cls: type[R], path: str, **params: Any) -> R:
        return cls.model_validate(self._http.get(path, **params))

    def _page(self, cls: type[R], path: str, params: dict[str, Any]) -> Page[R]:
        body = self._http.get(path, **params)
        return Page[cls](items=[cls.model_validate(i) for i in body["items"]], next_after=body["next_after"])  # type: ignore[valid-type]

    def _all(self, cls: type[R], path: str, params: dict[str, Any]) -> list[R]:
        return list(self._pages(cls, path, params))

    def _pages(self, cls: type[R], path: str, params: dict[str, Any]) -> Iterator[R]:
        after = None
        while True:
            page = self._page(cls, path, {**params, "limit": 1000, "after": after})
            yield from page.items
            if page.next_after is None:
                return
            after = page.next_after

    def _send(self, cls: type[R], method: str, path: str, body: Any = None, **kwargs: Any) -> R:
        return cls.model_validate(self._http.send(method, path, body, **kwargs))

    # -- models -------------------------------------------------------------------

    def store_model(self, *, author: str, laboratory: str, facility: str, beampath: str, description: str) -> int:
        body = dict(author=author, laboratory=laboratory, facility=facility, beampath=beampath,
                    description=description)  # fmt: skip
        return self._send(ModelRecord, "POST", "/models", body).model_id

    def get_model(self, **filters: Any) -> ModelRecord:
        if set(filters) == {"model_id"}:
            return self._one(ModelRecord, f"/models/{int(filters['model_id'])}")
        found = self.list_models(limit=1, **filters).items
        if not found:
            from lume_services.errors import ModelNotFoundError

            raise ModelNotFoundError(filters)
        return found[0]

    def get_models(self, **filters: Any) -> list[ModelRecord]:
        if "model_id" in filters:
            try:
                model = self.get_model(model_id=filters.pop("model_id"))
            except LookupError:
                return []
            return [m for m in [model] if all(getattr(m, k) == v for k, v in filters.items() if k != "tags")]
        return self._all(ModelRecord, "/models", _query("model", filters, MODEL_FILTERS))

    def list_models(self, *, limit: int = 100, after: Optional[int] = None, search: Optional[str] = None,
                    **filters: Any) -> Page[ModelRecord]:  # fmt: skip
        params = {"limit": limit, "after": after, "search": search, **_query("model", filters, MODEL_FILTERS)}
        return self._page(ModelRecord, "/models", params)

    def list_models_with_live(self, *, limit: int = 100, after: Optional[int] = None, search: Optional[str] = None,
                              **filters: Any) -> Page[ModelWithLive]:  # fmt: skip
        params = {"limit": limit, "after": after, "search": search, **_query("model", filters, MODEL_FILTERS)}
        return self._page(ModelWithLive, "/live-models", params)

    def update_model(self, model_id: int, *, description: Optional[str] = None,
                     require_approval: Optional[bool] = None) -> ModelRecord:  # fmt: skip
        body = {k: v for k, v in (("description", description), ("require_approval", require_approval))
                if v is not None}  # fmt: skip
        return self._send(ModelRecord, "PATCH", f"/models/{model_id}", body)

    def set_model_tags(self, model_id: int, tags: Mapping[str, str]) -> ModelRecord:
        return self._send(ModelRecord, "POST", f"/models/{model_id}/tags", {"tags": dict(tags)})

    def remove_model_tags(self, model_id: int, keys: Iterable[str]) -> ModelRecord:
        return self._send(ModelRecord, "POST", f"/models/{model_id}/tags/remove", {"keys": list(keys)})

    # -- deployments ----------------------------------------------------------------

    def get_deployment(self, **filters: Any) -> DeploymentRecord:
        if set(filters) == {"deployment_id"}:
            return self._one(DeploymentRecord, f"/deployments/{int(filters['deployment_id'])}")
        found = self.list_deployments(limit=1, **filters).items
        if not found:
            raise DeploymentNotFoundError(filters)
        return found[0]

    def get_deployments(self, **filters: Any) -> list[DeploymentRecord]:
        return self._all(DeploymentRecord, "/deployments", _query("deployment", filters, DEPLOYMENT_FILTERS))

    def get_latest_deployment(self, **filters: Any) -> DeploymentRecord:
        return self._one(DeploymentRecord, "/deployments/latest",
                         **_query("deployment", filters, DEPLOYMENT_FILTERS))  # fmt: skip

    def list_deployments(self, *, limit: int = 100, after: Optional[int] = None,
                         **filters: Any) -> Page[DeploymentRecord]:  # fmt: skip
        params = {"limit": limit, "after": after, **_query("deployment", filters, DEPLOYMENT_FILTERS)}
        return self._page(DeploymentRecord, "/deployments", params)

    def load_deployment(self, *, model_id: int, deployment_id: Optional[int] = None) -> LoadedDeployment:
        return self._one(LoadedDeployment, f"/models/{model_id}/loaded-deployment", deployment_id=deployment_id)

    def get_variables(self, deployment_id: int) -> Variables:
        return self._one(Variables, f"/deployments/{deployment_id}/variables")

    def get_variables_of(self, deployment_ids: Iterable[int]) -> dict[int, Variables]:
        return {d: self.get_variables(d) for d in dict.fromkeys(deployment_ids)}

    def set_deployment_tags(self, deployment_id: int, tags: Mapping[str, str]) -> DeploymentRecord:
        return self._send(DeploymentRecord, "POST", f"/deployments/{deployment_id}/tags", {"tags": dict(tags)})

    def remove_deployment_tags(self, deployment_id: int, keys: Iterable[str]) -> DeploymentRecord:
        return self._send(DeploymentRecord, "POST", f"/deployments/{deployment_id}/tags/remove",
                          {"keys": list(keys)})  # fmt: skip

    # -- the live pointer -------------------------------------------------------------

    def _model_of(self, deployment_id: int) -> int:
        return self.get_deployment(deployment_id=deployment_id).model_id

    def set_live(self, deployment_id: int, *, expected_live: Any = UNSET, reason: Optional[str] = None,
                 model_id: Optional[int] = None) -> DeploymentRecord:  # fmt: skip
        body = {"deployment_id": deployment_id, "reason": reason, **_expected(expected_live)}
        owner = self._model_of(deployment_id) if model_id is None else model_id  # the server checks it
        state = self._http.send("PUT", f"/models/{owner}/live", body)
        return DeploymentRecord.model_validate(state["deployment"])

    def get_live_deployment(self, model_id: int, *, at: Optional[datetime] = None) -> DeploymentRecord:
        if at is not None:
            return self._live_at(model_id, at)
        state = self._http.get(f"/models/{model_id}/live")
        if state["deployment"] is None:
            raise DeploymentNotFoundError({"model_id": model_id, "is_live": True})
        return DeploymentRecord.model_validate(state["deployment"])

    def _live_at(self, model_id: int, at: datetime) -> DeploymentRecord:
        from lume_services.services.models.validation import check_time

        check_time("at", at)
        for interval in reversed(self.get_live_history(model_id)):
            if interval.live_from <= at and (interval.live_until is None or at < interval.live_until):
                return self.get_deployment(deployment_id=interval.deployment_id)
        raise DeploymentNotFoundError({"model_id": model_id, "live_at": at.isoformat()})

    def get_live_deployments(self, *, facility: str, beampath: str, laboratory: Optional[str] = None,
                             at: Optional[datetime] = None) -> list[LiveAt]:  # fmt: skip
        if at is not None:
            from lume_services.services.models.validation import check_time

            at = check_time("at", at)
        params = {"facility": facility, "beampath": beampath, "laboratory": laboratory,
                  "at": None if at is None else at.isoformat()}  # fmt: skip
        return [LiveAt.model_validate(item) for item in self._http.get("/live", **params)]

    def list_beamlines(self, *, laboratory: Optional[str] = None, facility: Optional[str] = None) -> list[BeamlineRecord]:
        params = {"laboratory": laboratory, "facility": facility}
        return [BeamlineRecord.model_validate(item) for item in self._http.get("/beamlines", **params)]

    def get_live_history(self, model_id: int) -> list[LiveIntervalRecord]:
        return [LiveIntervalRecord.model_validate(i) for i in self._http.get(f"/models/{model_id}/live/history")]

    def request_live(self, deployment_id: int, *, reason: str, expected_live: Any = UNSET) -> LiveRequestRecord:
        body = {"deployment_id": deployment_id, "reason": reason, **_expected(expected_live)}
        return self._send(LiveRequestRecord, "POST", f"/models/{self._model_of(deployment_id)}/live-requests", body)

    def approve_live(self, request_id: int, *, reason: Optional[str] = None) -> LiveRequestRecord:
        return self._send(LiveRequestRecord, "POST", f"/live-requests/{request_id}/approve", {"reason": reason})

    def reject_live(self, request_id: int, *, reason: str) -> LiveRequestRecord:
        return self._send(LiveRequestRecord, "POST", f"/live-requests/{request_id}/reject", {"reason": reason})

    def get_live_request(self, request_id: int) -> LiveRequestRecord:
        return self._one(LiveRequestRecord, f"/live-requests/{request_id}")

    def list_live_requests(self, *, model_id: Optional[int] = None, state: Optional[str] = None, limit: int = 100,
                           after: Optional[int] = None) -> Page[LiveRequestRecord]:  # fmt: skip
        params = {"model_id": model_id, "state": state, "limit": limit, "after": after}
        return self._page(LiveRequestRecord, "/live-requests", params)

    # -- projects, flows, history -------------------------------------------------------

    def store_project(self, *, project_name: str, description: str) -> str:
        body = {"project_name": project_name, "description": description}
        return self._send(ProjectRecord, "POST", "/projects", body).project_name

    def get_project(self, **filters: Any) -> ProjectRecord:
        if set(filters) != {"project_name"}:
            raise UnknownFilterError("project", set(filters) - {"project_name"}, ["project_name"])
        return self._one(ProjectRecord, f"/projects/{_seg(filters['project_name'])}")

    def get_projects(self, **filters: Any) -> list[ProjectRecord]:
        projects = [ProjectRecord.model_validate(p) for p in self._http.get("/projects")]
        return [p for p in projects if all(getattr(p, k) == v for k, v in filters.items())]

    def get_flow(self, **filters: Any) -> FlowRecord:
        if set(filters) != {"flow_id"}:
            return self._first(self.get_flows(**filters), filters)
        return self._one(FlowRecord, f"/flows/{_seg(filters['flow_id'])}")

    def get_flows(self, **filters: Any) -> list[FlowRecord]:
        if set(filters) != {"deployment_id"}:
            raise UnknownFilterError("flow", set(filters) - {"deployment_id"}, ["deployment_id"])
        return [FlowRecord.model_validate(f) for f in self._http.get(f"/deployments/{int(filters['deployment_id'])}/flows")]

    @staticmethod
    def _first(items: list[Any], filters: Mapping[str, Any]) -> Any:
        if not items:
            from lume_services.errors import FlowNotFoundError

            raise FlowNotFoundError(filters)
        return items[0]

    def get_flow_of_flows(self, **filters: Any) -> list[FlowOfFlowsRecord]:
        if set(filters) != {"parent_flow_id"}:
            raise UnknownFilterError("flow_of_flows", set(filters) - {"parent_flow_id"}, ["parent_flow_id"])
        return [FlowOfFlowsRecord.model_validate(s) for s in self._http.get(f"/flows/{_seg(filters['parent_flow_id'])}/steps")]

    def list_audit_events(self, **params: Any) -> Page[AuditEventRecord]:
        allowed = ("model_id", "actor", "action", "entity", "entity_id", "since", "until", "limit", "after")
        unknown = set(params) - set(allowed)
        if unknown:
            raise UnknownFilterError("audit_event", unknown, allowed)
        params = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in params.items()}
        return self._page(AuditEventRecord, "/audit-events", params)

    def list_events(self, *, after: Optional[int] = None, types: Optional[Iterable[str]] = None,
                    model_id: Optional[int] = None, limit: int = 100) -> Page[AuditEventRecord]:  # fmt: skip
        params = {"after": after, "type": list(types or []), "model_id": model_id, "limit": limit}
        return self._page(AuditEventRecord, "/events", params)

    # -- runs ---------------------------------------------------------------------------

    def get_run(self, run_id: int) -> RunRecord:
        return self._one(RunRecord, f"/runs/{int(run_id)}")

    def list_runs(self, *, model_id: Optional[int] = None, deployment_id: Optional[int] = None,
                  state: Optional[str] = None, limit: int = 100, after: Optional[int] = None) -> Page[RunRecord]:  # fmt: skip
        params = {"model_id": model_id, "deployment_id": deployment_id, "state": state, "limit": limit,
                  "after": after}  # fmt: skip
        return self._page(RunRecord, "/runs", params)

    # -- tokens (admin) ----------------------------------------------------------------

    def create_token(self, name: str, *, scope: str = "read", project_name: Optional[str] = None,
                     expires_in: Any = None) -> NewToken:  # fmt: skip
        days = None if expires_in is None else max(1, round(expires_in.total_seconds() / 86400))
        body = {"name": name, "scope": scope, "project_name": project_name, "expires_in_days": days}
        answer = self._http.send("POST", "/tokens", body)
        return NewToken(record=TokenRecord.model_validate(answer["record"]), token=answer["token"])

    def list_tokens(self, *, include_revoked: bool = False) -> list[TokenRecord]:
        return [TokenRecord.model_validate(t) for t in self._http.get("/tokens", include_revoked=include_revoked)]

    def revoke_token(self, name: str) -> TokenRecord:
        return self._send(TokenRecord, "DELETE", f"/tokens/{_seg(name)}")

    def close(self) -> None:
        self._http.close()

