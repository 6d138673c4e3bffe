"""The planner uses the registry's indexes for the key queries (SQLite and MariaDB).

The statements are the ones the service really runs (captured with
SQLAlchemy events while calling it), explained with their own parameters:
``EXPLAIN QUERY PLAN`` on SQLite, ``EXPLAIN`` on MariaDB. The registry has
2000 models with 3 deployments each (a flow for each, in 50 projects) (statistics gathered with ANALYZE), so
that an index is the planner's choice for a selective predicate rather than
a scan of a tiny table. Each query must reach its table through the named
index, never by a full scan, and never sort what the index already orders.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from factories import deployment_fields
from scenario import Statements, new_database_url
from sqlalchemy import text

from lume_services import migrations
from lume_services.errors import InUseError
from lume_services.services.models.db.db import ModelDB, ModelDBConfig
from lume_services.services.models.db.schema import Base
from lume_services.services.models.service import ModelDBService

MODELS = 2000
PROJECTS = 50
PROJECT = "plans"


@dataclass(frozen=True)
class Registry:
    service: ModelDBService
    model_id: int  # a model in the middle, with 3 deployments (the last live), each with a flow
    deployment_ids: list[int]
    used_flow: str  # a step of a flow of flows
    identity: dict[str, str]  # the five identifying fields of the model


def build(service: ModelDBService) -> Registry:
    service.import_records(
        {"kind": "project", "project_name": f"{PROJECT}-{i}", "description": "index scenario"}
        for i in range(PROJECTS)
    )
    models = service.store_models(
        dict(
            author=f"author {i % 50}",
            laboratory=f"lab {i % 3}",
            facility=f"facility {i % 20}",
            beampath=f"beampath {i % 40}",
            description=f"model {i}",
        )
        for i in range(MODELS)
    )
    deployments = service.store_deployments(
        deployment_fields(m, version=f"0.{v}.0", is_live=v == 2) for m in models for v in range(3)
    )
    service.import_records(
        {
            "kind": "flow",
            "flow_id": f"flow-{d}",
            "flow_name": "f",
            "project_name": f"{PROJECT}-{i % PROJECTS}",
            "deployment_id": d,
        }
        for i, d in enumerate(deployments)
    )
    service.import_records(
        {
            "kind": "flow_of_flows",
            "parent_flow_id": f"composite-{i}",
            "flow_name": "c",
            "project_name": f"{PROJECT}-0",
            "composing_flows": [{"flow_id": f"flow-{deployments[i + k]}"} for k in range(3)],
        }
        for i in range(0, 600, 3)
    )
    analyze = "ANALYZE" if service.model_db.dialect == "sqlite" else f"ANALYZE TABLE {', '.join(TABLES)}"
    with service.model_db.engine.begin() as conn:
        conn.execute(text(analyze))
    middle = MODELS // 2
    fields = {"author", "laboratory", "facility", "beampath", "description"}
    return Registry(
        service,
        models[middle],
        deployments[3 * middle : 3 * middle + 3],
        f"flow-{deployments[0]}",
        service.get_model(model_id=models[middle]).model_dump(include=fields),
    )


TABLES = [t.name for t in Base.metadata.sorted_tables]


# SQLite and MariaDB, as far as LUME_TEST_DIALECTS selects them (see tests/conftest.py)
PLANNED = [
    d
    for d in ("sqlite", "mariadb")
    if d in os.environ.get("LUME_TEST_DIALECTS", "sqlite,mariadb,postgresql").replace(" ", "").split(",")
]


@pytest.fixture(scope="module", params=PLANNED)
def registry(request, server_pool, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plans")
    db = ModelDB(
        ModelDBConfig(url=new_database_url(server_pool, request.param, tmp, f"lume_plans_{os.getpid()}"))
    )
    migrations.upgrade(db)
    yield build(ModelDBService(db))
    db.dispose()


def delete_used_flow(r: Registry) -> None:
    with pytest.raises(InUseError):
        r.service.delete_flow(r.used_flow)


@dataclass(frozen=True)
class Case:
    call: Callable[[Registry], Any]
    indexes: dict[str, str]  # table -> the index (or PRIMARY) every access to it must use
    ordered_by_index: bool = True  # no sort step: the index delivers the rows in order


CASES = {
    "model by its identity": Case(lambda r: r.service.get_model(**r.identity), {"model": "_model_entry"}),
    "models by author": Case(
        lambda r: r.service.get_models(author="author 7"), {"model": "_model_entry"}, False
    ),
    "models by facility and beampath": Case(
        lambda r: r.service.list_models(facility="facility 3", beampath="beampath 23"),
        {"model": "ix_model_facility_beampath"},
        False,
    ),
    "latest deployment of a model": Case(
        lambda r: r.service.get_latest_deployment(model_id=r.model_id),
        {"deployment": "ix_deployment_model_date"},
    ),
    "deployments of a model, oldest first": Case(
        lambda r: r.service.get_deployments(model_id=r.model_id), {"deployment": "ix_deployment_model_date"}
    ),
    "page of a model's deployments": Case(
        lambda r: r.service.list_deployments(model_id=r.model_id, after=r.deployment_ids[0]),
        {"deployment": "ix_deployment_model_id"},
    ),
    "deployment by model and version": Case(
        lambda r: r.service.get_deployment(model_id=r.model_id, version="0.1.0"),
        {"deployment": "_deployment_unique"},
    ),
    "live deployment of a model": Case(
        lambda r: r.service.get_live_deployment(r.model_id), {"deployment": "ix_deployment_model_live"}, False
    ),
    "page of models with their live deployment": Case(
        lambda r: r.service.list_models_with_live(after=r.model_id, limit=100),
        {"deployment": "ix_deployment_model_live", "model": "PRIMARY"},
        False,
    ),
    "load a deployment with flow and project": Case(
        lambda r: r.service.load_deployment(model_id=r.model_id),
        {"deployment": "ix_deployment_model_date", "flow": "uq_flow_deployment_id", "project": "PRIMARY"},
    ),
    "flow of a deployment": Case(
        lambda r: r.service.get_flow(deployment_id=r.deployment_ids[1]), {"flow": "uq_flow_deployment_id"}
    ),
    "flows of a project": Case(
        lambda r: r.service.get_flows(project_name=f"{PROJECT}-7"), {"flow": "ix_flow_project"}
    ),
    "steps of a flow of flows": Case(
        lambda r: r.service.get_flow_of_flows(parent_flow_id="composite-300"),
        {"flow_of_flows": "_flow_of_flows_position", "flow": "PRIMARY"},
    ),
    "compositions using a flow": Case(delete_used_flow, {"flow_of_flows": "ix_flow_of_flows_flow"}, False),
}


def columns_of(table: str, index: str) -> list[str]:
    """The columns of an index or constraint of the ORM schema, by name."""
    t = Base.metadata.tables[table]
    if index == "PRIMARY":
        return [c.name for c in t.primary_key.columns]
    for item in [*t.indexes, *t.constraints]:
        if item.name == index:
            return [c.name for c in item.columns]
    raise AssertionError(f"{table} has no index {index}")


# -- reading the plans --------------------------------------------------------------

SQLITE_ACCESS = re.compile(
    r"(SEARCH|SCAN) (\w+)(?: AS \w+)?(?: USING (?:COVERING )?INDEX (\w+)| USING (?:INTEGER )?PRIMARY KEY)?"
)


def sqlite_plan(conn: Any, sql: str, params: Any) -> tuple[list[tuple[str, list[str], str]], bool]:
    """([(table, index columns or ['SCAN'], detail)], sorts) from EXPLAIN QUERY PLAN."""
    accesses, sorts = [], False
    for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params):
        detail = row[-1]
        sorts |= detail.startswith("USE TEMP B-TREE FOR ORDER BY")
        match = SQLITE_ACCESS.match(detail)
        if not match or match.group(2) not in Base.metadata.tables:
            continue
        kind, table, index = match.groups()
        if kind == "SCAN":
            columns = ["SCAN"]
        elif index is None:
            columns = columns_of(table, "PRIMARY")
        else:
            columns = [r[2] for r in conn.exec_driver_sql(f"PRAGMA index_info('{index}')")]
        accesses.append((table, columns, detail))
    return accesses, sorts


def mariadb_plan(conn: Any, sql: str, params: Any) -> tuple[list[tuple[str, list[str], str]], bool]:
    accesses, sorts = [], False
    for row in conn.exec_driver_sql("EXPLAIN " + sql, params).mappings():
        table = re.sub(r"_\d+$", "", row["table"])
        if table not in Base.metadata.tables:
            continue
        sorts |= "filesort" in (row["Extra"] or "") or "temporary" in (row["Extra"] or "")
        columns = ["SCAN"] if row["type"] in ("ALL", "index") else columns_of(table, row["key"])
        accesses.append((table, columns, str(dict(row))))
    return accesses, sorts


def plans(
    registry: Registry, call: Callable[[Registry], Any]
) -> list[tuple[list[tuple[str, list[str], str]], bool]]:
    """The plan of every SELECT the call runs."""
    call(registry)  # warm
    engine = registry.service.model_db.engine
    with Statements(engine) as statements:
        call(registry)
    explain = sqlite_plan if registry.service.model_db.dialect == "sqlite" else mariadb_plan
    with engine.connect() as conn:
        return [explain(conn, sql, params) for sql, params in statements.selects]


class TestPlannerUsesTheIndexes:
    @pytest.mark.parametrize("name", CASES)
    def test_query_reaches_its_rows_through_the_index(self, name, registry):
        case = CASES[name]
        seen = {table: [] for table in case.indexes}
        for accesses, sorts in plans(registry, case.call):
            for table, columns, detail in accesses:
                if table in seen:
                    seen[table].append((columns, detail))
            if case.ordered_by_index and any(t in case.indexes for t, _, _ in accesses):
                assert not sorts, f"{name}: sorts rows the index already orders: {accesses}"
        for table, index in case.indexes.items():
            assert seen[table], f"{name}: no access to {table}"
            for columns, detail in seen[table]:
                assert columns == columns_of(table, index), f"{name}: {table} not through {index}: {detail}"

    @pytest.mark.parametrize(
        "name", ["live deployment of a model", "page of models with their live deployment"]
    )
    def test_live_lookup_uses_model_and_flag(self, name, registry):
        """Both columns of ix_deployment_model_live are matched, not just model_id then filtered."""
        details = [
            detail
            for accesses, _ in plans(registry, CASES[name].call)
            for table, _, detail in accesses
            if table == "deployment"
        ]
        assert details
        for detail in details:
            if registry.service.model_db.dialect == "sqlite":
                assert "is_live=" in detail, detail
            else:
                assert "'key_len': '5'" in detail, detail  # INT model_id (4) + BOOL is_live (1)
