"""/api/v1/deployments: list, read, variables, tag."""

from __future__ import annotations

from typing import Annotated, Optional

from fastapi import APIRouter, Depends, Query

from lume_services.api.bodies import TagsRemove, TagsSet
from lume_services.api.deps import Reader, Writer
from lume_services.api.routes.common import After, Field100, Limit, Tags, given, tag_filter
from lume_services.services.models.records import DeploymentRecord, FlowRecord, Page
from lume_services.variables.types import Variables

router = APIRouter(tags=["deployments"])
ModelId = Annotated[Optional[int], Query(ge=1, le=2**31 - 1)]


def filters(model_id: ModelId = None, version: Field100 = None, is_live: Optional[bool] = None,
            sha256: Field100 = None, source: Field100 = None, package_import_name: Field100 = None,
            image: Field100 = None, tag: Tags = ()) -> dict[str, object]:  # fmt: skip
    """Deployment filters: fields (exact) and tags (all must match)."""
    return {**given(model_id=model_id, version=version, is_live=is_live, sha256=sha256, source=source,
                    package_import_name=package_import_name, image=image), **tag_filter(tag)}  # fmt: skip


Filters = Annotated[dict[str, object], Depends(filters)]


@router.get("/deployments", response_model=Page[DeploymentRecord])
def list_deployments(access: Reader, where: Filters, limit: Limit = 100,
                     after: After = None) -> Page[DeploymentRecord]:  # fmt: skip
    """A page of deployments in deployment_id order."""
    return access.service.list_deployments(limit=limit, after=after, **where)


@router.get("/deployments/latest", response_model=DeploymentRecord)
def get_latest_deployment(access: Reader, where: Filters) -> DeploymentRecord:
    """The newest matching deployment (by deploy date, then id)."""
    return access.service.get_latest_deployment(**where)


@router.get("/deployments/{deployment_id}", response_model=DeploymentRecord)
def get_deployment(deployment_id: int, access: Reader) -> DeploymentRecord:
    return access.service.get_deployment(deployment_id=deployment_id)


@router.get("/deployments/{deployment_id}/variables", response_model=Variables)
def get_variables(deployment_id: int, access: Reader) -> Variables:
    """Inputs and outputs read from the deployment's package when it was stored."""
    return access.service.get_variables(deployment_id)


@router.get("/deployments/{deployment_id}/flows", response_model=list[FlowRecord])
def get_flows(deployment_id: int, access: Reader) -> list[FlowRecord]:
    access.service.get_deployment(deployment_id=deployment_id)
    return access.service.get_flows(deployment_id=deployment_id)


@router.post("/deployments/{deployment_id}/tags", response_model=DeploymentRecord)
def set_deployment_tags(deployment_id: int, body: TagsSet, access: Writer) -> DeploymentRecord:
    access.require_project_of(deployment_id)
    return access.service.set_deployment_tags(deployment_id, body.tags)


@router.post("/deployments/{deployment_id}/tags/remove", response_model=DeploymentRecord)
def remove_deployment_tags(deployment_id: int, body: TagsRemove, access: Writer) -> DeploymentRecord:
    access.require_project_of(deployment_id)
    return access.service.remove_deployment_tags(deployment_id, body.keys)
