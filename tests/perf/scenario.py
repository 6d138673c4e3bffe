"""Registries of a known shape for the query-count and index tests, and a statement counter.

The ``registry_of(dialect, n)`` fixture (conftest.py) builds, once per
session, a migrated database holding a scenario where everything a read could touch has ``n`` related
rows: the main model has ``n`` deployments (the last one live), each with a
flow in one project, and was made live in turn (``n`` live changes and
audit events); there are ``n`` models, each with a live deployment;
and one flow of flows has ``n`` steps. Rows are written with the bulk path
(a few transactions), so the 500-row registries take about a second.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from factories import deployment_fields, model_fields
from sqlalchemy import Engine, event

from lume_services.services.models.records import ModelRecord
from lume_services.services.models.service import ModelDBService

AUTHOR = "Query Counter"
PROJECT = "perf"
COMPOSITE = "composite-flow"
TRANSACTION_CONTROL = re.compile(r"\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Scenario:
    service: ModelDBService
    n: int
    model: ModelRecord  # the main model: n deployments
    deployments: list[int]  # of the main model, oldest first; the last is live
    flows: list[str]  # one per deployment of the main model
    models: list[int]  # n models (the main one first), each with a live deployment


class Statements:
    """The SQL statements an engine runs while the block runs (SQLAlchemy events)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.all: list[tuple[str, Any]] = []

    def __enter__(self) -> Statements:
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.all.append((statement, parameters))

    @property
    def queries(self) -> list[str]:
        """Statements other than transaction control (BEGIN is SQL on SQLite only)."""
        return [sql for sql, _ in self.all if not TRANSACTION_CONTROL.match(sql)]

    @property
    def selects(self) -> list[tuple[str, Any]]:
        return [(sql, p) for sql, p in self.all if sql.lstrip().upper().startswith("SELECT")]


def populate(service: ModelDBService, n: int) -> Scenario:
    service.store_project(project_name=PROJECT, description="query-count scenario")
    models = service.store_models(model_fields(author=AUTHOR) for _ in range(n))
    main = models[0]
    deployments = service.store_deployments(deployment_fields(main) for i in range(n))
    for deployment_id in deployments:  # the last one stays live
        service.set_live(deployment_id, reason="scenario")
    service.store_deployments(deployment_fields(m, is_live=True) for m in models[1:])
    flows = [f"flow-{d}" for d in deployments]
    service.import_records(
        {"kind": "flow", "flow_id": f, "flow_name": "step", "project_name": PROJECT, "deployment_id": d}
        for f, d in zip(flows, deployments)
    )
    steps = [{"flow_id": f, "mapped_parameters": {"position": i}} for i, f in enumerate(flows)]
    service.store_flow_of_flows(
        parent_flow_id=COMPOSITE, flow_name="composite", project_name=PROJECT, composing_flows=steps
    )
    return Scenario(service, n, service.get_model(model_id=main), deployments, flows, models)


def new_database_url(pool: Any, dialect: str, tmp: Any, name: str) -> str:
    """A new empty database on ``dialect`` (``pool`` is the session's server pool)."""
    if dialect == "sqlite":
        return f"sqlite:///{tmp / (name + '.db')}"
    return pool.get(dialect).create_database(name)
