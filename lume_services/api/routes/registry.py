"""/api/v1: projects, flows, the audit trail and the event feed."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Optional
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from lume_services.api.bodies import CompositionCreate, ProjectCreate
from lume_services.api.deps import Reader, Writer, server_scheduling
from lume_services.api.routes.common import After, Field100, Limit
from lume_services.errors import ScopeError
from lume_services.services.models.records import (
    AuditEventRecord,
    FlowOfFlowsRecord,
    FlowRecord,
    Page,
    ProjectRecord,
)

router = APIRouter()
ModelId = Annotated[Optional[int], Query(ge=1, le=2**31 - 1)]


@router.get("/projects", response_model=list[ProjectRecord], tags=["projects"])
def list_projects(access: Reader) -> list[ProjectRecord]:
    return access.service.get_projects()


@router.get("/projects/{project_name}", response_model=ProjectRecord, tags=["projects"])
def get_project(project_name: str, access: Reader) -> ProjectRecord:
    return access.service.get_project(project_name=project_name)


@router.post("/projects", response_model=ProjectRecord, status_code=201, tags=["projects"])
def create_project(body: ProjectCreate, access: Writer, response: Response) -> ProjectRecord:
    """Record a project (its Prefect work queue is created by the scheduling service)."""
    access.require_unrestricted("Creating a project")
    name = access.service.store_project(project_name=body.project_name, description=body.description)
    response.headers["Location"] = f"/api/v1/projects/{quote(name, safe='')}"  # any text: one path segment
    return access.service.get_project(project_name=name)


@router.post("/projects/{project_name}/queue", response_model=ProjectRecord, tags=["projects"])
def create_project_queue(project_name: str, access: Writer, request: Request) -> ProjectRecord:
    """Create the project's Prefect work queue (the spec's scheduling_service.create_project)."""
    access.require_unrestricted("Creating a project's work queue")
    project = access.service.get_project(project_name=project_name)
    server_scheduling(request).create_project(project_name, description=project.description)
    return project


class Composed(BaseModel):
    flow_id: str  # the parent flow (a Prefect deployment id)
    deployment_id: Optional[int]  # the model version it was stored as, if any


@router.post("/flows-of-flows", response_model=Composed, status_code=201, tags=["flows"])
def compose(body: CompositionCreate, access: Writer, request: Request) -> Composed:
    """Validate a flow of flows against the registry, register it with Prefect and store it."""
    from lume_services.flows.compose import compose as register
    from lume_services.flows.spec import FlowOfFlowsSpec

    spec = FlowOfFlowsSpec.parse(body.spec, source="the request's spec")
    token = access.token
    if token is not None and token.project_name is not None and token.project_name != spec.project_name:
        raise ScopeError(token.name, f"write for project {token.project_name!r}", f"write for {spec.project_name!r}",
                         "A project-limited token composes flows in its own project only.")  # fmt: skip
    server_scheduling(request)
    parent = register(spec, model_id=body.model_id, version=body.version, is_live=body.is_live,
                      context=request.app.state.context, model_db_service=access.service)  # fmt: skip
    return Composed(flow_id=parent, deployment_id=access.service.get_flow(flow_id=parent).deployment_id)


@router.get("/flows/{flow_id}", response_model=FlowRecord, tags=["flows"])
def get_flow(flow_id: str, access: Reader) -> FlowRecord:
    return access.service.get_flow(flow_id=flow_id)


@router.get("/flows/{flow_id}/steps", response_model=list[FlowOfFlowsRecord], tags=["flows"])
def flow_of_flows(flow_id: str, access: Reader) -> list[FlowOfFlowsRecord]:
    """A composite flow's steps in order, with their mapped parameters."""
    access.service.get_flow(flow_id=flow_id)
    return access.service.get_flow_of_flows(parent_flow_id=flow_id)


@router.get("/audit-events", response_model=Page[AuditEventRecord], tags=["audit"])
def audit_events(access: Reader, limit: Limit = 100, after: After = None, model_id: ModelId = None,
                 actor: Field100 = None, action: Field100 = None, entity: Field100 = None,
                 entity_id: Field100 = None, since: Optional[datetime] = None,
                 until: Optional[datetime] = None) -> Page[AuditEventRecord]:  # fmt: skip
    """Who changed what and when, newest first."""
    return access.service.list_audit_events(model_id=model_id, actor=actor, action=action, entity=entity,
                                            entity_id=entity_id, since=since, until=until, limit=limit,
                                            after=after)  # fmt: skip


@router.get("/events", response_model=Page[AuditEventRecord], tags=["audit"])
def events(access: Reader, limit: Limit = 100, after: After = None, model_id: ModelId = None,
           type: Annotated[list[str], Query(max_length=50)] = ()) -> Page[AuditEventRecord]:  # fmt: skip
    """The event feed, oldest first after a cursor (``type``: e.g. deployment.live_changed, deployment.*)."""
    return access.service.list_events(after=after, types=type or None, model_id=model_id, limit=limit)
