"""Helpers that take a session and never commit (used by the service modules)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, Union

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from lume_services.errors import (
    DeploymentConflictError,
    FlowAlreadyExistsError,
    ProjectNotFoundError,
    ValidationError,
)
from lume_services.services.models.db.schema import Deployment, Flow, FlowOfFlows, Model, Project
from lume_services.services.models.records import (
    DeploymentRecord,
    FlowRecord,
    ModelRecord,
    Page,
    ProjectRecord,
)
from lume_services.services.models.validation import (
    check_values,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

MODEL_FIELDS = ("author", "laboratory", "facility", "beampath", "description")
SubflowSpec = Union[str, Mapping[str, Any]]


def oldest_first() -> tuple[Any, ...]:
    return (Deployment.deploy_date.asc(), Deployment.deployment_id.asc())


def newest_first() -> tuple[Any, ...]:
    return (Deployment.deploy_date.desc(), Deployment.deployment_id.desc())


RECORDS = {Model: ModelRecord, Deployment: DeploymentRecord, Project: ProjectRecord, Flow: FlowRecord}


def first_record(session: Session, stmt: Select[Any], record: Any = None) -> Any:
    row = session.execute(stmt.limit(1)).scalars().first()
    if row is None:
        return None
    return (record or RECORDS[type(row)]).model_validate(row)


def all_records(session: Session, stmt: Select[Any], record: Any) -> list[Any]:
    return [record.model_validate(row) for row in session.execute(stmt).scalars().unique()]


def make_page(rows: list[T], limit: int, key: Callable[[T], Any]) -> Page[T]:
    if len(rows) > limit:
        rows = rows[:limit]
        return Page(items=rows, next_after=key(rows[-1]))
    return Page(items=rows, next_after=None)


def make_live(session: Session, target: Deployment) -> None:
    """Demote the model's live deployment(s), then promote ``target``."""
    session.execute(
        update(Deployment)
        .where(
            Deployment.model_id == target.model_id,
            Deployment.is_live.is_(True),
            Deployment.deployment_id != target.deployment_id,
        )
        .values(is_live=False)
        .execution_options(synchronize_session=False)
    )
    target.is_live = True
    session.flush()


def require_project(session: Session, project_name: str) -> None:
    if session.get(Project, project_name) is None:
        raise ProjectNotFoundError({"project_name": project_name})


def flows_used_in_compositions(session: Session, flow_ids: Select[Any]) -> list[str]:
    """Which of ``flow_ids`` are steps of some flow of flows."""
    stmt = (
        select(FlowOfFlows.flow_id)
        .where(FlowOfFlows.flow_id.in_(flow_ids))
        .distinct()
        .order_by(FlowOfFlows.flow_id)
    )
    return list(session.execute(stmt).scalars())


def normalise_steps(composing_flows: Sequence[SubflowSpec]) -> list[dict[str, Any]]:
    if isinstance(composing_flows, (str, bytes)) or not isinstance(composing_flows, Sequence):
        raise ValidationError("composing_flows", composing_flows, "expected a list of flow ids or mappings")
    if not composing_flows:
        raise ValidationError("composing_flows", composing_flows, "a flow of flows needs at least one step")
    steps = []
    for item in composing_flows:
        if isinstance(item, str):
            item = {"flow_id": item}
        if not isinstance(item, Mapping) or set(item) - {"flow_id", "mapped_parameters"}:
            raise ValidationError(
                "composing_flows",
                item,
                "each step is a flow id or {'flow_id': ..., 'mapped_parameters': {...}}",
            )
        step = {"flow_id": item.get("flow_id"), "mapped_parameters": item.get("mapped_parameters")}
        check_values(FlowOfFlows, step)
        steps.append(step)
    return steps


def same_composition(
    session: Session, existing: Flow, flow_name: str, project_name: str, steps: list[dict[str, Any]]
) -> str:
    stored = session.execute(
        select(FlowOfFlows.flow_id, FlowOfFlows.mapped_parameters)
        .where(FlowOfFlows.parent_flow_id == existing.flow_id)
        .order_by(FlowOfFlows.position)
    ).all()
    same = (
        existing.composite
        and (existing.flow_name, existing.project_name) == (flow_name, project_name)
        and [(f, p) for f, p in stored] == [(s["flow_id"], s["mapped_parameters"]) for s in steps]
    )
    if not same:
        raise FlowAlreadyExistsError(existing.flow_id, "with a different definition; compose under a new id")
    return existing.flow_id


def upsert_deployment(session: Session, values: dict[str, Any], *, is_live: bool) -> Deployment:
    """Insert a deployment, or find the identical one; the model must be locked.

    The same version with another sha256 raises DeploymentConflictError.
    """
    existing = session.execute(
        select(Deployment).where(
            Deployment.model_id == values["model_id"], Deployment.version == values["version"]
        )
    ).scalar_one_or_none()
    if existing is not None:
        if existing.sha256 != values["sha256"]:
            raise DeploymentConflictError(
                values["model_id"], values["version"], existing.sha256, values["sha256"]
            )
        target = existing
    else:
        target = Deployment(**{**values, "is_live": False})
        session.add(target)
        session.flush()
    if is_live and not target.is_live:
        make_live(session, target)
    return target


def insert_flow(session: Session, values: dict[str, Any]) -> str:
    """Insert a deployment's flow, or find the identical one; the model must be locked."""
    flow_id, deployment_id = values["flow_id"], values["deployment_id"]
    by_id = session.get(Flow, flow_id)
    if by_id is not None:
        if (by_id.deployment_id, by_id.flow_name, by_id.project_name) == (
            deployment_id,
            values["flow_name"],
            values["project_name"],
        ):
            return flow_id
        raise FlowAlreadyExistsError(
            flow_id,
            f"for deployment {by_id.deployment_id!r} as {by_id.flow_name!r} in project {by_id.project_name!r}",
        )
    other = session.execute(
        select(Flow.flow_id).where(Flow.deployment_id == deployment_id)
    ).scalar_one_or_none()
    if other is not None:
        raise FlowAlreadyExistsError(
            other,
            f"for deployment {deployment_id!r} (one flow per deployment); delete it before registering another",
        )
    session.add(Flow(**values, composite=False))
    session.flush()
    return flow_id
