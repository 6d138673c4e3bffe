"""The writing half of the bulk path: one batch of validated rows per call, in one transaction.

Each ``write_<kind>(change, rows)`` runs a constant number of statements,
whatever the batch size: it reads what exists for the whole batch (by the
unique keys and ids the rows name), applies the single stores' rules to the
rows in order (an identical row is kept, a contradicting one raises the
single store's error), and inserts the new rows with one executemany. It
returns one id per row. Locks, live changes and the one-flow-per-deployment
rule are the write path's (:mod:`writes`), as for the single stores.
:mod:`lume_services.services.models.bulk` validates the rows and opens the
transactions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Optional

from sqlalchemy import Table, and_, bindparam, func, insert, select, text, tuple_
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from lume_services.errors import (
    ConflictError,
    DeploymentConflictError,
    DeploymentNotFoundError,
    FlowAlreadyExistsError,
    FlowNotFoundError,
    ProjectAlreadyExistsError,
    ProjectNotFoundError,
    VariablesConflictError,
)
from lume_services.services.models.db.schema import (
    Deployment,
    DeploymentVariables,
    Flow,
    FlowOfFlows,
    Model,
    Project,
)
from lume_services.services.models.queries import MODEL_FIELDS, same_composition
from lume_services.services.models.tags import DEPLOYMENT_TAGS, MODEL_TAGS
from lume_services.services.models.validation import MAX_INT
from lume_services.services.models.writes import Change, LiveMove, claim_flow, flows_of

__all__ = ["WRITERS"]

Row = dict[str, Any]


def _with_keys(
    session: Session, selected: list[Any], columns: list[Any], keys: Iterable[tuple[Any, ...]]
) -> tuple[Any, dict[str, Any]]:
    """SELECT ``selected`` of the rows whose ``columns`` equal one of ``keys`` (a unique key), and its parameters.

    ``(a, b) IN ((..), ..)`` reaches the rows through the unique index on
    MariaDB and stays cheap on SQLite; PostgreSQL plans a long row-value IN
    list as a scan comparing every row with every key (seconds per batch at
    100,000 rows), so there the keys are joined as ``unnest`` of one array
    per column (a statement that is compiled once, whatever the batch size).
    """
    wanted = list(set(keys))
    if session.get_bind().dialect.name != "postgresql":
        return select(*selected).where(tuple_(*columns).in_(wanted)), {}
    stmt = _join_unnest(tuple(selected), tuple(columns))
    return stmt, {f"_key{i}": [key[i] for key in wanted] for i in range(len(columns))}


@functools.lru_cache(maxsize=8)
def _join_unnest(selected: tuple[Any, ...], columns: tuple[Any, ...]) -> Any:
    arrays = [bindparam(f"_key{i}", type_=postgresql.ARRAY(c.type)) for i, c in enumerate(columns)]
    given = func.unnest(*arrays).table_valued(*(c.key for c in columns)).render_derived(name="wanted")
    table = columns[0].table
    return select(*selected).join_from(given, table, and_(*(c == given.c[c.key] for c in columns)))


def _ids_by_key(
    session: Session, pk: Any, columns: list[Any], keys: Iterable[tuple[Any, ...]]
) -> dict[Any, int]:
    """{unique key: id} for the rows with these keys (one SELECT)."""
    keys = list(keys)
    if not keys:
        return {}
    stmt, params = _with_keys(session, [pk, *columns], columns, keys)
    return {tuple(found[1:]): found[0] for found in session.execute(stmt, params)}


def _insert_new(
    session: Session, table: Table, pk: Any, columns: list[Any], rows: dict[Any, Row]
) -> dict[Any, int]:
    """Insert rows without ids (one executemany); read their ids back by their unique keys.

    (RETURNING in parameter order would degrade to one INSERT per row on SQLite.)
    """
    if not rows:
        return {}
    session.execute(insert(table), list(rows.values()))
    return _ids_by_key(session, pk, columns, rows)


def _after_explicit_ids(session: Session, table: str, column: str) -> None:
    """PostgreSQL sequences do not see explicit ids: move them past the largest (never back).

    Never past the column's largest value (an explicit id of 2**31 - 1 made setval fail
    with the driver's "integer out of range").
    """
    if session.get_bind().dialect.name == "postgresql":
        sequence = f"pg_get_serial_sequence('{table}', '{column}')"
        session.execute(
            text(
                f"SELECT setval({sequence}, LEAST({MAX_INT}, GREATEST(nextval({sequence}), "
                f"(SELECT COALESCE(MAX({column}), 0)::bigint + 1 FROM {table}))), false)"
            )
        )


def _write_header(change: Change, rows: list[Row]) -> list[None]:
    return [None for _ in rows]


def _write_projects(change: Change, rows: list[Row]) -> list[str]:
    session = change.unit
    names = [r["project_name"] for r in rows]
    stored = dict(
        session.execute(
            select(Project.project_name, Project.description).where(Project.project_name.in_(set(names)))
        ).all()
    )
    new: dict[str, str] = {}
    for row in rows:
        name, description = row["project_name"], row["description"]
        known = stored.get(name, new.get(name))
        if known is None:
            new[name] = description
        elif known != description:
            raise ProjectAlreadyExistsError(name, known, description)
    if new:
        session.execute(
            insert(Project.__table__), [{"project_name": n, "description": d} for n, d in new.items()]
        )
    return names


def _write_models(change: Change, rows: list[Row]) -> list[int]:
    session = change.unit
    columns = [getattr(Model, f) for f in MODEL_FIELDS]
    keys = [tuple(r[f] for f in MODEL_FIELDS) for r in rows]
    by_key = _ids_by_key(session, Model.model_id, columns, keys)
    ids_given = [r["model_id"] for r in rows if "model_id" in r]
    key_of_id = {
        i: tuple(m[f] for f in MODEL_FIELDS)
        for i, m in _existing(session, Model, Model.model_id, ids_given).items()
    }
    new_explicit: list[Row] = []
    pending: dict[tuple[Any, ...], Row] = {}  # new models without an id, by identity
    for key, row in zip(keys, rows):
        model_id, known = row.get("model_id"), by_key.get(key)
        if model_id is None:
            if known is None and key not in pending:
                pending[key] = row
            continue
        if key_of_id.get(model_id) == key and known == model_id:
            continue  # identical
        if model_id in key_of_id:
            raise ConflictError(
                f"Model {model_id!r} already exists with other fields than {dict(zip(MODEL_FIELDS, key))!r}; "
                "nothing was written. Import into an empty registry, or leave model_id out."
            )
        if known is not None or key in pending:
            raise ConflictError(
                f"The model {dict(zip(MODEL_FIELDS, key))!r} already exists as model {known!r}, not "
                f"{model_id!r}; nothing was written. Leave model_id out to reuse the existing one."
            )
        key_of_id[model_id], by_key[key] = key, model_id
        new_explicit.append(row)
    if new_explicit:
        session.execute(insert(Model.__table__), new_explicit)
        _after_explicit_ids(session, "model", "model_id")
    by_key.update(_insert_new(session, Model.__table__, Model.model_id, columns, pending))
    _index_tags(session, MODEL_TAGS, [{**r, "model_id": by_key[k]} for k, r in pending.items()] + new_explicit)
    return [by_key[key] for key in keys]


def _index_tags(session: Session, tagging: Any, new_rows: list[Row]) -> None:
    """The tag index rows of a batch's new rows (one executemany; none without tags)."""
    index_rows = tagging.index_rows(new_rows)
    if index_rows:
        session.execute(insert(tagging.index), index_rows)


def _existing(session: Session, entity: Any, pk: Any, ids: Sequence[Any]) -> dict[Any, Row]:
    if not ids:
        return {}
    stmt = select(*entity.__table__.c).where(pk.in_(set(ids)))
    return {row[pk.key]: dict(row) for row in session.execute(stmt).mappings()}


def _write_deployments(change: Change, rows: list[Row]) -> list[int]:
    session = change.unit
    locked = change.lock_models(r["model_id"] for r in rows)
    keys = [(r["model_id"], r["version"]) for r in rows]
    known: dict[tuple[int, str], tuple[Optional[int], str]] = {
        (m, v): (d, sha)
        for d, m, v, sha in session.execute(
            *_with_keys(
                session,
                [Deployment.deployment_id, Deployment.model_id, Deployment.version, Deployment.sha256],
                [Deployment.model_id, Deployment.version],
                keys,
            )
        ).all()
    }
    by_id = _existing(
        session,
        Deployment,
        Deployment.deployment_id,
        [r["deployment_id"] for r in rows if "deployment_id" in r],
    )
    new: dict[tuple[int, str], Row] = {}
    live: dict[int, tuple[int, str]] = {}
    given: dict[int, tuple[int, str]] = {}  # explicit ids of this batch's new rows
    for key, row in zip(keys, rows):
        given_id = row.get("deployment_id")
        if key in known:
            stored_id, sha = known[key]
            if sha != row["sha256"]:
                raise DeploymentConflictError(key[0], key[1], sha, row["sha256"])
            if given_id is not None and given_id != stored_id:
                raise ConflictError(
                    f"Model {key[0]!r} already has version {key[1]!r} as deployment {stored_id!r}, "
                    f"not {given_id!r}; nothing was written. Leave deployment_id out to keep the existing one."
                )
        elif given_id is not None and given_id in by_id:
            other = by_id[given_id]
            raise ConflictError(
                f"Deployment {given_id!r} already exists as version {other['version']!r} of model "
                f"{other['model_id']!r}; nothing was written. Import into an empty registry."
            )
        elif given_id is not None and given_id in given:
            model_id, version = given[given_id]
            raise ConflictError(
                f"Deployment id {given_id!r} is given twice in this import, for version {version!r} of model "
                f"{model_id!r} and version {key[1]!r} of model {key[0]!r}; nothing was written. "
                "Give each deployment its own id, or leave deployment_id out."
            )
        else:
            known[key] = (given_id, row["sha256"])
            new[key] = {**row, "is_live": False}
            if given_id is not None:
                given[given_id] = key
        if row["is_live"]:
            live[key[0]] = key
    explicit = [r for r in new.values() if "deployment_id" in r]
    if explicit:
        session.execute(insert(Deployment.__table__), explicit)
        _after_explicit_ids(session, "deployment", "deployment_id")
    implicit = {k: r for k, r in new.items() if "deployment_id" not in r}
    columns = [Deployment.model_id, Deployment.version]
    for key, new_id in _insert_new(
        session, Deployment.__table__, Deployment.deployment_id, columns, implicit
    ).items():
        known[key] = (new_id, known[key][1])
    _index_tags(session, DEPLOYMENT_TAGS, [{**r, "deployment_id": known[k][0]} for k, r in new.items()])
    if live:
        # An import reproduces a registry's state: not gated by approval, recorded as every live change is.
        state = change.models_state(live)
        change.move_live(
            [
                LiveMove(m, known[key][0], key[1], *state[m], locked[m].require_approval)
                for m, key in live.items()
            ],
            gate=False,
        )
    return [known[key][0] for key in keys]  # type: ignore[misc]


def _require(
    session: Session, column: Any, wanted: set[Any], error: Callable[[dict[str, Any]], Exception]
) -> None:
    found = set(session.execute(select(column).where(column.in_(wanted))).scalars())
    missing = sorted(wanted - found)
    if missing:
        raise error({column.key: missing[0] if len(missing) == 1 else missing})


def _owned_deployments(change: Change, deployments: set[int]) -> dict[int, str]:
    """Check that these deployments exist, lock their models, and map each to the flow it has."""
    if not deployments:
        return {}
    session = change.unit
    owners = dict(
        session.execute(
            select(Deployment.deployment_id, Deployment.model_id).where(
                Deployment.deployment_id.in_(deployments)
            )
        ).all()
    )
    if deployments - set(owners):
        raise DeploymentNotFoundError({"deployment_id": min(deployments - set(owners))})
    change.lock_models(owners.values())
    return flows_of(change, deployments)


def _write_variables(change: Change, rows: list[Row]) -> list[int]:
    """Variables of existing deployments: a deployment's identical variables again are kept."""
    session = change.unit
    ids = [r["deployment_id"] for r in rows]
    _owned_deployments(change, set(ids))
    stored = _existing(session, DeploymentVariables, DeploymentVariables.deployment_id, ids)
    new: dict[int, Row] = {}
    for row in rows:
        before = stored.get(row["deployment_id"]) or new.get(row["deployment_id"])
        if before is not None and before != row:
            raise VariablesConflictError(row["deployment_id"], before["source_file"], row["source_file"])
        if before is None:
            new[row["deployment_id"]] = row
    if new:
        session.execute(insert(DeploymentVariables.__table__), list(new.values()))
    return ids


def _write_flows(change: Change, rows: list[Row]) -> list[str]:
    session = change.unit
    _require(session, Project.project_name, {r["project_name"] for r in rows}, ProjectNotFoundError)
    by_deployment = _owned_deployments(change, {r["deployment_id"] for r in rows})
    flow_ids = {r["flow_id"] for r in rows}
    stored = session.execute(
        select(Flow.flow_id, Flow.deployment_id, Flow.flow_name, Flow.project_name).where(
            Flow.flow_id.in_(flow_ids)
        )
    ).all()
    by_id = {f.flow_id: (f.deployment_id, f.flow_name, f.project_name) for f in stored}
    new = []
    for row in rows:
        flow_id, deployment_id = row["flow_id"], row["deployment_id"]
        definition = (deployment_id, row["flow_name"], row["project_name"])
        if flow_id in by_id:
            if by_id[flow_id] != definition:
                d, n, p = by_id[flow_id]
                raise FlowAlreadyExistsError(flow_id, f"for deployment {d!r} as {n!r} in project {p!r}")
            continue
        claim_flow(by_deployment, deployment_id, flow_id)
        by_id[flow_id] = definition
        new.append({**row, "composite": False})
    if new:
        session.execute(insert(Flow.__table__), new)
    return [r["flow_id"] for r in rows]


def _write_compositions(change: Change, rows: list[Row]) -> list[str]:
    """Flows of flows in order: each step must exist already or be defined earlier."""
    session = change.unit
    _require(session, Project.project_name, {r["project_name"] for r in rows}, ProjectNotFoundError)
    parents = {r["flow_id"] for r in rows}
    stored = {
        f.flow_id: f
        for f in session.execute(select(Flow).where(Flow.flow_id.in_(parents)).with_for_update()).scalars()
    }
    wanted = {s["flow_id"] for r in rows for s in r["steps"]}
    available = set(session.execute(select(Flow.flow_id).where(Flow.flow_id.in_(wanted))).scalars())
    taken = _owned_deployments(change, {r["deployment_id"] for r in rows} - {None})
    new: dict[str, Row] = {}
    for row in rows:
        flow_id, deployment_id = row["flow_id"], row["deployment_id"]
        if flow_id in stored:
            same_composition(
                session, stored[flow_id], row["flow_name"], row["project_name"], row["steps"], deployment_id
            )
            continue
        if flow_id in new:
            if new[flow_id] != row:
                raise FlowAlreadyExistsError(flow_id, "earlier in this import with another definition")
            continue
        missing = sorted({s["flow_id"] for s in row["steps"]} - available - set(new))
        if missing:
            raise FlowNotFoundError({"flow_id": missing})
        if deployment_id is not None:
            claim_flow(taken, deployment_id, flow_id)
        new[flow_id] = row
    if new:
        session.execute(
            insert(Flow.__table__),
            [
                {"flow_id": f, "flow_name": r["flow_name"], "project_name": r["project_name"]}
                | {"deployment_id": r["deployment_id"], "composite": True}
                for f, r in new.items()
            ],
        )
        steps = [
            {
                "parent_flow_id": f,
                "position": i,
                "flow_id": s["flow_id"],
                "mapped_parameters": s["mapped_parameters"],
            }
            | ({"_id": s["id"]} if "id" in s else {})
            for f, r in new.items()
            for i, s in enumerate(r["steps"], start=1)
        ]
        explicit = [s for s in steps if "_id" in s]
        if explicit:
            session.execute(insert(FlowOfFlows.__table__), explicit)
            _after_explicit_ids(session, "flow_of_flows", "_id")
        implicit = [s for s in steps if "_id" not in s]
        if implicit:
            session.execute(insert(FlowOfFlows.__table__), implicit)
    return [r["flow_id"] for r in rows]


WRITERS: dict[str, Callable[[Change, list[Row]], list[Any]]] = {
    "header": _write_header,
    "project": _write_projects,
    "model": _write_models,
    "deployment": _write_deployments,
    "deployment_variables": _write_variables,
    "flow": _write_flows,
    "flow_of_flows": _write_compositions,
}
