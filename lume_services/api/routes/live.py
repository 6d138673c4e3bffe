"""The live pointer: read it (with an ETag), set it (compare-and-swap), its history and requests."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Optional

from fastapi import APIRouter, Header, Query, Response
from pydantic import BaseModel

from lume_services.api.bodies import Decision, LiveRequestCreate, LiveSet
from lume_services.api.deps import Access, Reader, Writer
from lume_services.api.routes.common import After, JSONBody, Limit
from lume_services.errors import DeploymentNotFoundError, ValidationError
from lume_services.services.models.records import (
    UNSET,
    BeamlineRecord,
    DeploymentRecord,
    LiveAt,
    LiveIntervalRecord,
    LiveRequestRecord,
    Page,
)

router = APIRouter(tags=["live"])
IfMatch = Annotated[Optional[str], Header(max_length=100, description='"<deployment id>" or "none" (the ETag).')]


class LiveState(BaseModel):
    """A model's live deployment now (null when none is live)."""

    model_id: int
    deployment: Optional[DeploymentRecord]


LIVE_STATE = JSONBody(LiveState)


def etag(deployment_id: Optional[int]) -> str:
    return '"none"' if deployment_id is None else f'"{deployment_id}"'


def expected_from(if_match: Optional[str]) -> object:
    if if_match is None:
        return UNSET
    value = if_match.strip().removeprefix("W/").strip('"')
    if value == "none":
        return None
    if not value.isdigit():
        raise ValidationError("If-Match", if_match, 'expected the ETag of GET .../live: "<deployment id>" or "none"')
    return int(value)


def expected_of(body: LiveSet | LiveRequestCreate, if_match: Optional[str]) -> object:
    if "expected_live" in body.model_fields_set:
        return body.expected_live
    return expected_from(if_match)


def owned(access: Access, model_id: int, deployment_id: int) -> None:
    deployment = access.service.get_deployment(deployment_id=deployment_id)
    if deployment.model_id != model_id:
        raise ValidationError("deployment_id", deployment_id, f"belongs to model {deployment.model_id}, "
                              f"not {model_id}")  # fmt: skip
    access.require_project_of(deployment_id)


def live_state(model_id: int, deployment: Optional[DeploymentRecord]) -> Response:
    """The LiveState body with its ETag."""
    response = LIVE_STATE(LiveState(model_id=model_id, deployment=deployment))
    response.headers["ETag"] = etag(deployment.deployment_id if deployment else None)
    return response


@router.get("/models/{model_id}/live", response_model=LiveState)
def get_live(model_id: int, access: Reader) -> Response:
    access.service.get_model(model_id=model_id)
    try:
        deployment: Optional[DeploymentRecord] = access.service.get_live_deployment(model_id)
    except DeploymentNotFoundError:
        deployment = None
    return live_state(model_id, deployment)


@router.put("/models/{model_id}/live", response_model=LiveState)
def set_live(model_id: int, body: LiveSet, access: Writer, if_match: IfMatch = None) -> Response:
    """Make a deployment live; ``expected_live`` or If-Match makes it a compare-and-swap (409 if it moved)."""
    if access.project is not None:
        owned(access, model_id, body.deployment_id)  # the deployment's project, before anything else
    # the deployment's model is checked inside the change, on the row it locks: no read before it
    record = access.service.set_live(body.deployment_id, expected_live=expected_of(body, if_match),
                                     reason=body.reason, model_id=model_id)  # fmt: skip
    return live_state(model_id, record)


@router.get("/live", response_model=list[LiveAt])
def live_on_beampath(access: Reader, facility: Annotated[str, Query(max_length=2000)],
                     beampath: Annotated[str, Query(max_length=2000)],
                     laboratory: Annotated[Optional[str], Query(max_length=2000)] = None,
                     at: Optional[datetime] = None) -> list[LiveAt]:  # fmt: skip
    """For each model of a beampath, the deployment live now (or at ``at``, with its zone) and since when."""
    return access.service.get_live_deployments(facility=facility, beampath=beampath, laboratory=laboratory, at=at)


@router.get("/beamlines", response_model=list[BeamlineRecord])
def list_beamlines(access: Reader, laboratory: Annotated[Optional[str], Query(max_length=2000)] = None,
                   facility: Annotated[Optional[str], Query(max_length=2000)] = None) -> list[BeamlineRecord]:  # fmt: skip
    """Every (laboratory, facility, beampath) with models, in that order: how many models, how many live."""
    return access.service.list_beamlines(laboratory=laboratory, facility=facility)


@router.get("/models/{model_id}/live/history", response_model=list[LiveIntervalRecord])
def live_history(model_id: int, access: Reader) -> list[LiveIntervalRecord]:
    """Every interval a deployment was live, oldest first: who, when, why, approved by whom."""
    return access.service.get_live_history(model_id)


@router.post("/models/{model_id}/live-requests", response_model=LiveRequestRecord, status_code=201)
def request_live(model_id: int, body: LiveRequestCreate, access: Writer,
                 if_match: IfMatch = None) -> LiveRequestRecord:  # fmt: skip
    """Ask for a deployment of a protected model to go live; another person approves it."""
    owned(access, model_id, body.deployment_id)
    return access.service.request_live(body.deployment_id, reason=body.reason,
                                       expected_live=expected_of(body, if_match))  # fmt: skip


@router.get("/live-requests", response_model=Page[LiveRequestRecord])
def list_live_requests(access: Reader, limit: Limit = 100, after: After = None,
                       model_id: Annotated[Optional[int], Query(ge=1, le=2**31 - 1)] = None,
                       state: Annotated[Optional[str], Query(max_length=16)] = None) -> Page[LiveRequestRecord]:  # fmt: skip
    return access.service.list_live_requests(model_id=model_id, state=state, limit=limit, after=after)


@router.get("/live-requests/{request_id}", response_model=LiveRequestRecord)
def get_live_request(request_id: int, access: Reader) -> LiveRequestRecord:
    return access.service.get_live_request(request_id)


def _decide(access: Access, request_id: int) -> None:
    access.require_project_of(access.service.get_live_request(request_id).deployment_id)


@router.post("/live-requests/{request_id}/approve", response_model=LiveRequestRecord)
def approve_live(request_id: int, body: Decision, access: Writer) -> LiveRequestRecord:
    """Approve (as another person than the requester): the deployment goes live now."""
    _decide(access, request_id)
    return access.service.approve_live(request_id, reason=body.reason)


@router.post("/live-requests/{request_id}/reject", response_model=LiveRequestRecord)
def reject_live(request_id: int, body: Decision, access: Writer) -> LiveRequestRecord:
    _decide(access, request_id)
    if body.reason is None:
        raise ValidationError("reason", None, "a rejection needs a reason", "Nothing was changed.")
    return access.service.reject_live(request_id, reason=body.reason)
