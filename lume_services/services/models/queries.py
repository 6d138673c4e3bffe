"""Helpers that take a session and never commit (used by the service modules)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Optional, TypeVar, Union

from sqlalchemy import Connection, Select, Table, bindparam, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, contains_eager

from lume_services.errors import (
    DeploymentConflictError,
    FlowAlreadyExistsError,
    ProjectNotFoundError,
    ValidationError,
)
from lume_services.services.models.db import adopt
from lume_services.services.models.db.schema import (
    Deployment,
    DeploymentVariables,
    Flow,
    FlowOfFlows,
    Model,
    Project,
)
from lume_services.services.models.records import (
    DeploymentRecord,
    FlowOfFlowsRecord,
    FlowRecord,
    ModelRecord,
    Page,
    ProjectRecord,
    records_builder,
)
from lume_services.services.models.validation import (
    check_values,
    normalize_sha256,
)
from lume_services.services.models.writes import Change, claim_flow, flows_of
from lume_services.variables import Variables

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


# -- Core reads with prepared statements ---------------------------------------------
# The hot reads select a table's columns with SQLAlchemy Core and validate the rows
# into records directly: building the statement once per filter shape (instead of
# per call) and skipping ORM instances makes a read several times cheaper, and a
# Core row has the attribute names the records read (column names = field names
# for model, deployment, project and flow).


@functools.lru_cache(maxsize=512)
def _filtered(
    table: Table, keys: tuple[tuple[str, bool], ...], order: tuple[str, ...], limit: Optional[int]
) -> Select[Any]:
    stmt = select(table)
    for name, is_null in keys:
        column = table.c[name]
        stmt = stmt.where(column.is_(None) if is_null else column == bindparam(f"_{name}"))
    stmt = stmt.order_by(*(table.c[o[1:]].desc() if o.startswith("-") else table.c[o] for o in order))
    return stmt.limit(limit) if limit is not None else stmt


def filtered(
    entity: Any, query: Mapping[str, Any], order: Sequence[str], limit: Optional[int] = None
) -> tuple[Select[Any], dict[str, Any]]:
    """A cached Core SELECT of ``entity``'s rows matching ``query`` (None means IS NULL), and its parameters.

    ``order`` names columns, ``-name`` for descending.
    """
    keys = tuple(sorted((name, value is None) for name, value in query.items()))
    params = {f"_{name}": value for name, value in query.items() if value is not None}
    return _filtered(entity.__table__, keys, tuple(order), limit), params


def fetch_first(
    session: Union[Session, Connection], stmt: Select[Any], params: Mapping[str, Any], record: Any
) -> Any:
    row = session.execute(stmt, params).first()
    return None if row is None else record.model_validate(row)


def fetch_all(
    session: Union[Session, Connection], stmt: Select[Any], params: Mapping[str, Any], record: Any
) -> list[Any]:
    """Every row of ``stmt`` as a ``record``, built without validating again (``records_builder``)."""
    result = session.execute(stmt, params)
    return records_builder(record, tuple(result.keys()))(result.all())  # all(): one fetchall, not one per row


@functools.lru_cache(maxsize=32)
def _insert_unless_exists(dialect: str, table: Table) -> Any:
    pk = next(iter(table.primary_key.columns))
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing().returning(pk)
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing().returning(pk)
    if dialect in ("mysql", "mariadb"):
        return insert(table).prefix_with("IGNORE")
    return insert(table)


def _dialect(unit: Union[Session, Connection]) -> str:
    return unit.dialect.name if isinstance(unit, Connection) else unit.get_bind().dialect.name


def insert_unless_exists(
    session: Union[Session, Connection], table: Table, values: Mapping[str, Any]
) -> Optional[int]:
    """Insert one row in one statement; its new id, or None when a unique key of it exists.

    ON CONFLICT DO NOTHING on SQLite and PostgreSQL, INSERT IGNORE on
    MySQL/MariaDB: no error, so the transaction goes on. The values are
    validated before, so IGNORE can only skip a duplicate key or (MySQL) a
    missing parent row; SQLite and PostgreSQL raise IntegrityError for the latter.
    """
    dialect = _dialect(session)
    result = session.execute(_insert_unless_exists(dialect, table), dict(values))
    if dialect in ("mysql", "mariadb"):
        return result.inserted_primary_key[0] if result.rowcount == 1 else None
    if dialect in ("postgresql", "sqlite"):
        return result.scalar()
    return result.inserted_primary_key[0]


def make_page(rows: list[T], limit: int, key: Callable[[T], Any]) -> Page[T]:
    if len(rows) > limit:
        rows = rows[:limit]
        return Page(items=rows, next_after=key(rows[-1]))
    return Page(items=rows, next_after=None)


_PROJECT = select(Project.__table__.c.project_name).where(
    Project.__table__.c.project_name == bindparam("_project_name")
)


def require_project(unit: Any, project_name: str) -> None:
    if unit.execute(_PROJECT, {"_project_name": project_name}).first() is None:
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
    session: Session,
    existing: Flow,
    flow_name: str,
    project_name: str,
    steps: list[dict[str, Any]],
    deployment_id: Optional[int] = None,
) -> str:
    stored = session.execute(
        select(FlowOfFlows.flow_id, FlowOfFlows.mapped_parameters)
        .where(FlowOfFlows.parent_flow_id == existing.flow_id)
        .order_by(FlowOfFlows.position)
    ).all()
    same = (
        existing.composite
        and (existing.flow_name, existing.project_name, existing.deployment_id)
        == (flow_name, project_name, deployment_id)
        and [(f, p) for f, p in stored] == [(s["flow_id"], s["mapped_parameters"]) for s in steps]
    )
    if not same:
        raise FlowAlreadyExistsError(existing.flow_id, "with a different definition; compose under a new id")
    return existing.flow_id


def deployment_values(*, sha256: str, **fields: Any) -> dict[str, Any]:
    """A deployment's column values, validated against the schema (sha256 normalised)."""
    values = check_values(Deployment, fields)
    values["sha256"] = normalize_sha256(sha256)
    return values


_DEPLOYMENTS, _FLOWS, _VARIABLES = Deployment.__table__, Flow.__table__, DeploymentVariables.__table__
_VERSION = select(_DEPLOYMENTS.c.deployment_id, _DEPLOYMENTS.c.sha256).where(
    _DEPLOYMENTS.c.model_id == bindparam("_model_id"), _DEPLOYMENTS.c.version == bindparam("_version")
)
_FLOW = select(_FLOWS).where(_FLOWS.c.flow_id == bindparam("_flow_id"))


def variables_values(variables: Any) -> Optional[dict[str, Any]]:
    """A deployment_variables row's values (without deployment_id), validated; None when none are declared."""
    if variables is None:
        return None
    if not isinstance(variables, Variables):
        raise ValidationError(
            "variables", variables, "expected a lume_services.variables.Variables (as a package's inspection gives) or None"
        )
    return check_values(DeploymentVariables, variables.stored()) if variables.declared else None


def upsert_deployment(
    change: Change, values: Mapping[str, Any], variables: Optional[Mapping[str, Any]] = None
) -> int:
    """Insert a deployment (not live) with its variables, or find the identical one; the model must be locked.

    The same version with another sha256 raises DeploymentConflictError (the
    same sha256 has the same variables), unless the stored one is an
    unverifiable checksum kept by ``db adopt``: then it is replaced. Making it
    live is the caller's next step (``change.make_live``).
    """
    model_id, version = values["model_id"], values["version"]
    existing = change.execute(_VERSION, {"_model_id": model_id, "_version": version}).first()
    if existing is not None:
        if existing.sha256 != values["sha256"]:
            if not adopt.unverified_checksum(existing.sha256):
                raise DeploymentConflictError(model_id, version, existing.sha256, values["sha256"])
            _record_checksum(change, existing.deployment_id, model_id, existing.sha256, values["sha256"])
            insert_variables(change, existing.deployment_id, variables)  # adopted rows predate variables
        return existing.deployment_id
    row = {**values, "is_live": False, "deploy_date": change.now}
    deployment_id = change.execute(insert(_DEPLOYMENTS), row).inserted_primary_key[0]
    record_deployment_created(change, deployment_id, row)
    insert_variables(change, deployment_id, variables)
    return deployment_id


def insert_variables(change: Change, deployment_id: int, variables: Optional[Mapping[str, Any]]) -> None:
    """The new deployment's variables row (``variables_values``; None: its package declares none)."""
    if variables is not None:
        change.execute(insert(_VARIABLES), {"deployment_id": deployment_id, **variables})


def _record_checksum(change: Change, deployment_id: int, model_id: int, old: str, new: str) -> None:
    """An adopted deployment's unverifiable sha256 replaced by the one a re-store computed."""
    change.execute(
        _DEPLOYMENTS.update().where(_DEPLOYMENTS.c.deployment_id == deployment_id).values(sha256=new)
    )
    change.record("deployment.updated", "deployment", deployment_id, model_id=model_id,
                  before={"sha256": old}, after={"sha256": new})  # fmt: skip


def record_deployment_created(change: Change, deployment_id: int, row: Mapping[str, Any]) -> None:
    """The audit event of a new deployment row."""
    change.record("deployment.created", "deployment", deployment_id, model_id=row["model_id"],
                  after={**row, "deployment_id": deployment_id})  # fmt: skip


def insert_flow(change: Change, values: dict[str, Any], *, model_id: int) -> str:
    """Insert a deployment's flow, or find the identical one; the model must be locked."""
    flow_id, deployment_id = values["flow_id"], values["deployment_id"]
    by_id = change.execute(_FLOW, {"_flow_id": flow_id}).first()
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
    taken = flows_of(change, [deployment_id])
    adopt.release_prefect1_flow(change, taken, deployment_id, model_id=model_id)
    claim_flow(taken, deployment_id, flow_id)
    change.execute(insert(_FLOWS), {**values, "composite": False})
    change.record("flow.created", "flow", flow_id, model_id=model_id, after=values)
    return flow_id


def steps_query(query: Mapping[str, Any]) -> Select[Any]:
    """Composition steps matching ``query`` (column equalities), with their flows, in position order."""
    # With one parent, order by position alone: MariaDB cannot see that a text
    # column compared with a parameter is constant, and would sort instead of
    # reading the (parent_flow_id, position) index in order.
    order = (
        [FlowOfFlows.position]
        if "parent_flow_id" in query
        else [FlowOfFlows.parent_flow_id, FlowOfFlows.position]
    )
    return (
        select(FlowOfFlows)
        .join(FlowOfFlows.flow)
        .options(contains_eager(FlowOfFlows.flow))
        # Explicit columns: filter_by would find flow_id ambiguous (the step's, or its flow's).
        .where(*(getattr(FlowOfFlows, key) == value for key, value in query.items()))
        .order_by(*order)
    )


def composition_steps(session: Session, parent_flow_id: str) -> list[FlowOfFlowsRecord]:
    """The steps of one flow of flows, in position order."""
    return all_records(session, steps_query({"parent_flow_id": parent_flow_id}), FlowOfFlowsRecord)
