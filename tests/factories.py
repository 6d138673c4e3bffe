"""Factories for test data: valid values, unique unless told otherwise."""

from __future__ import annotations

import hashlib
import itertools
from typing import Any

from sqlalchemy import delete, select

from lume_services.services.models.db.schema import Base
from lume_services.services.models.service import ModelDBService

_seq = itertools.count(1)


def emptied(db: Any) -> Any:
    """The ModelDB ``db`` with every table emptied."""
    with db.session() as session:
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(delete(table))
    return db


def sha(text: Any) -> str:
    return hashlib.sha256(str(text).encode()).hexdigest()


def model_fields(**overrides: Any) -> dict[str, Any]:
    n = next(_seq)
    fields = dict(
        author="Jackie Garrahan",
        laboratory="slac",
        facility="lcls",
        beampath="cu_hxr",
        description=f"test_model {n}",
    )
    fields.update(overrides)
    return fields


def deployment_fields(model_id: int, **overrides: Any) -> dict[str, Any]:
    n = next(_seq)
    fields = dict(
        model_id=model_id,
        version=f"0.{n}.0",
        source=f"https://example.org/my_model-0.{n}.0.tar.gz",
        sha256=sha(n),
        package_import_name="my_model",
        image=f"registry.example.org/slac/my-model:v0.{n}.0",
    )
    fields.update(overrides)
    return fields


def make_model(service: ModelDBService, **overrides: Any) -> int:
    return service.store_model(**model_fields(**overrides))


def make_deployment(service: ModelDBService, model_id: int | None = None, **overrides: Any) -> int:
    if model_id is None:
        model_id = make_model(service)
    return service.store_deployment(**deployment_fields(model_id, **overrides))


def make_project(service: ModelDBService, name: str | None = None, description: str = "a project") -> str:
    return service.store_project(project_name=name or f"project-{next(_seq)}", description=description)


def make_flow(
    service: ModelDBService,
    deployment_id: int | None = None,
    project_name: str | None = None,
    **overrides: Any,
) -> str:
    if deployment_id is None:
        deployment_id = make_deployment(service)
    if project_name is None:
        project_name = make_project(service)
    fields = dict(
        deployment_id=deployment_id,
        flow_id=f"flow-{next(_seq)}",
        flow_name="my_test_flow",
        project_name=project_name,
    )
    fields.update(overrides)
    return service.store_flow(**fields)


HISTORY_TABLES = {"audit_event", "live_change", "live_request", "event_feed"}  # event_feed: the feed lock row


def registry_snapshot(model_db: Any) -> dict[str, list[tuple]]:
    """Every row of every registry table (not the history of its changes), in primary-key order."""
    with model_db.engine.connect() as conn:
        return {
            t.name: [tuple(r) for r in conn.execute(select(t).order_by(*t.primary_key.columns))]
            for t in Base.metadata.sorted_tables
            if t.name not in HISTORY_TABLES
        }
