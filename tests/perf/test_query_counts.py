"""Every read issues a constant number of SQL statements, however many rows it returns.

Each read runs against a registry with 1 and with 500 related rows (models,
deployments, flows, composition steps; see scenario.py) and the statements
are counted with SQLAlchemy's ``before_cursor_execute`` event, on every
dialect. Transaction control (BEGIN, which is SQL only on SQLite) is not
counted; the first call of a service (its schema-revision check) is made
before counting. No timing is measured here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from scenario import AUTHOR, COMPOSITE, PROJECT, Scenario, Statements

from lume_services.models import Model

Read = Callable[[Scenario], Any]

# name -> (the read, how many rows it returns at n related rows, statements it may issue)
READS: dict[str, tuple[Read, Callable[[int], int], int]] = {
    # ModelDBService
    "get_model": (lambda x: [x.service.get_model(model_id=x.model.model_id)], lambda n: 1, 1),
    "get_models": (lambda x: x.service.get_models(author=AUTHOR), lambda n: n, 1),
    "list_models": (lambda x: x.service.list_models(limit=100).items, lambda n: min(n, 100), 1),
    "list_models search": (
        lambda x: x.service.list_models(search=AUTHOR.upper(), limit=100).items,
        lambda n: min(n, 100),
        1,
    ),
    "list_models_with_live": (
        lambda x: [
            r.live_deployment for r in x.service.list_models_with_live(limit=100) if r.live_deployment
        ],
        lambda n: min(n, 100),
        1,
    ),
    "get_deployment": (lambda x: [x.service.get_deployment(deployment_id=x.deployments[-1])], lambda n: 1, 1),
    "get_deployments": (lambda x: x.service.get_deployments(model_id=x.model.model_id), lambda n: n, 1),
    "get_latest_deployment": (
        lambda x: [x.service.get_latest_deployment(model_id=x.model.model_id)],
        lambda n: 1,
        1,
    ),
    "get_live_deployment": (lambda x: [x.service.get_live_deployment(x.model.model_id)], lambda n: 1, 1),
    "get_live_deployment at": (
        lambda x: [x.service.get_live_deployment(x.model.model_id, at=datetime.now(UTC))],
        lambda n: 1,
        1,
    ),
    "get_live_history": (lambda x: x.service.get_live_history(x.model.model_id), lambda n: n, 1),
    "get_live_deployments of a beampath": (
        lambda x: x.service.get_live_deployments(facility="lcls", beampath="cu_hxr", at=datetime.now(UTC)),
        lambda n: n,
        1,
    ),
    "list_beamlines": (lambda x: x.service.list_beamlines(), lambda n: 1, 1),  # every model is on cu_hxr
    "get_flows_of a page": (lambda x: list(x.service.get_flows_of(x.deployments[:100]).values()), lambda n: min(n, 100), 1),
    "get_live_of a page": (lambda x: list(x.service.get_live_of(x.models[:100]).values()), lambda n: min(n, 100), 1),
    "list_audit_events of a model": (
        lambda x: x.service.list_audit_events(model_id=x.model.model_id, limit=100).items,
        lambda n: min(n, 100),
        1,
    ),
    "list_audit_events": (lambda x: x.service.list_audit_events(limit=5).items, lambda n: 5, 1),
    "list_deployments": (
        lambda x: x.service.list_deployments(model_id=x.model.model_id, limit=100).items,
        lambda n: min(n, 100),
        1,
    ),
    "load_deployment latest": (
        lambda x: [x.service.load_deployment(model_id=x.model.model_id).flow],
        lambda n: 1,
        1,
    ),
    "load_deployment by id": (
        lambda x: [
            x.service.load_deployment(model_id=x.model.model_id, deployment_id=x.deployments[0]).project
        ],
        lambda n: 1,
        1,
    ),
    "load_deployment variables": (
        lambda x: [x.service.load_deployment(model_id=x.model.model_id).variables], lambda n: 1, 1,
    ),  # fmt: skip
    "get_variables_of": (lambda x: list(x.service.get_variables_of(x.deployments).values()), lambda n: n, 1),
    "get_project": (lambda x: [x.service.get_project(project_name=PROJECT)], lambda n: 1, 1),
    "get_projects": (lambda x: x.service.get_projects(), lambda n: 1, 1),
    "get_flow": (lambda x: [x.service.get_flow(deployment_id=x.deployments[-1])], lambda n: 1, 1),
    "get_flows": (lambda x: x.service.get_flows(project_name=PROJECT), lambda n: n + 1, 1),
    "get_flow_of_flows": (
        lambda x: [s.flow for s in x.service.get_flow_of_flows(parent_flow_id=COMPOSITE)],
        lambda n: n,
        1,
    ),
    # the Model API
    "Model(model_id)": (lambda x: [Model(x.model.model_id, model_db_service=x.service)], lambda n: 1, 1),
    "Model.deployments": (lambda x: model_of(x).deployments, lambda n: n, 1),
    "Model.live_deployment": (lambda x: [model_of(x).live_deployment], lambda n: 1, 1),
    "Model.load_deployment": (lambda x: [model_of(x).load_deployment()], lambda n: 1, 1),
    "Model(deployment_id)": (
        lambda x: [Model(deployment_id=x.deployments[-1], model_db_service=x.service).deployment],
        lambda n: 1,
        3,  # the deployment's model id, the model, the loaded deployment
    ),
}


def model_of(x: Scenario) -> Model:
    return Model(metadata=x.model, model_db_service=x.service)


def statements_of(read: Read, scenario: Scenario) -> tuple[list[str], Any]:
    read(scenario)  # warm: schema check, first connection
    with Statements(scenario.service.model_db.engine) as statements:
        rows = read(scenario)
    return statements.queries, rows


class TestConstantStatementCount:
    @pytest.mark.parametrize("name", READS)
    def test_same_statements_at_1_and_500_related_rows(self, name, dialect, registry_of):
        read, expected_rows, expected_statements = READS[name]
        counted = {}
        for n in (1, 500):
            queries, rows = statements_of(read, registry_of(dialect, n))
            assert len(rows) == expected_rows(n), (
                f"{name} at n={n}: the scenario is not what the test assumes"
            )
            assert all(row is not None for row in rows)
            counted[n] = queries
        assert len(counted[1]) == len(counted[500]) == expected_statements, counted

    def test_the_schema_check_happens_once_per_service(self, dialect, registry_of):
        from lume_services.services.models.service import ModelDBService

        scenario = registry_of(dialect, 1)
        fresh = ModelDBService(scenario.service.model_db)
        with Statements(fresh.model_db.engine) as first:
            fresh.get_model(model_id=scenario.model.model_id)
        with Statements(fresh.model_db.engine) as second:
            fresh.get_model(model_id=scenario.model.model_id)
        assert 1 <= len(first.queries) - len(second.queries) <= 2
        assert len(second.queries) == 1

    def test_a_flow_of_flows_deployment_loads_its_steps_in_one_more_statement(self, service):
        """Model(deployment_id=...) of a composition: 3 statements plus 1 for its steps, at 1 or 300 steps."""
        from factories import deployment_fields, make_flow, make_model, make_project

        project = make_project(service)
        flows = [make_flow(service, project_name=project) for _ in range(3)]
        counted = {}
        for n in (1, 300):
            fields = deployment_fields(
                make_model(service), package_import_name="lume_services.flows.composite"
            )
            parent = service.store_flow_of_flows(
                parent_flow_id=f"composite-{n}", flow_name="composite", project_name=project,
                composing_flows=[flows[i % 3] for i in range(n)], deployment=fields,
            )  # fmt: skip
            deployment_id = service.get_flow(flow_id=parent).deployment_id
            with Statements(service.model_db.engine) as statements:
                loaded = Model(deployment_id=deployment_id, model_db_service=service).deployment
            assert len(loaded.flow_of_flows) == n
            counted[n] = statements.queries
        assert len(counted[1]) == len(counted[300]) == 4, counted
