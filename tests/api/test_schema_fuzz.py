"""Schemathesis fuzzing of the whole served OpenAPI document, against the real server on loopback.

Every operation of /api/v1/openapi.json gets generated requests, valid ones
and (for the admin) invalid ones, sent with a real token to the uvicorn
server of the ``api`` fixture. Every answer must be no 5xx, a declared status
code, the declared content type, a body matching the declared schema and the
declared headers. A second test fuzzes every write endpoint with the
principals that may not write (a write token for another project, a revoked
token, no token) and requires that none of them ever gets a 2xx.

Deterministic: hypothesis is derandomized (a fixed seed per test) with no
example database, so a run sees the same cases every time; the examples per
operation are capped to keep the whole module well under a minute on SQLite.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from factories import make_deployment, make_flow, make_model, make_project
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from lume_services.services.models.service import ModelDBService

pytestmark = pytest.mark.slow


def no_server_error(ctx: Any, response: Any, case: Any) -> None:
    """No 5xx, but the declared 503 of an operation that needs Prefect (this test's server has no Prefect)."""
    if response.status_code == 503 and response.json().get("error") == "SchedulingNotConfiguredError":
        return None
    return not_a_server_error(ctx, response, case)


CHECKS = [no_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]  # fmt: skip
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def seed(service: ModelDBService) -> None:
    """Rows for the low ids the generator tries first, so reads and writes find something.

    SQLite numbers rows of an emptied table from 1 again (no AUTOINCREMENT), so the ids, and with a
    derandomized generator the whole run, are the same whichever tests ran before.
    """
    project = make_project(service, "fuzz-project")
    for _ in range(3):
        model_id = make_model(service)
        deployment_id = make_deployment(service, model_id)
        make_flow(service, deployment_id, project)
    protected = make_model(service)
    service.update_model(protected, require_approval=True)
    pending = make_deployment(service, protected)
    make_flow(service, pending, project)
    service.with_actor("requester").request_live(pending, reason="for the fuzzer")


def load(api: httpx.Client) -> Any:
    return schemathesis.openapi.from_url(f"{api.server.url}/api/v1/openapi.json")  # type: ignore[attr-defined]


def negatable(operation: Any) -> bool:
    """Whether invalid requests exist for the operation: a body, a query or header parameter, a typed path one.

    (Any text is a valid path segment, so an operation with only text path parameters has no invalid
    request; hypothesis would search for one in vain.)
    """
    raw = operation.definition.raw
    return "requestBody" in raw or any(p["in"] != "path" or p.get("schema", {}).get("type") != "string"
                                       for p in raw.get("parameters", []))  # fmt: skip


def fuzz(schema: Any, examples: dict[GenerationMode, int], send: Callable[[Any], None],
         select: Callable[[Any], bool] = lambda op: True) -> list[str]:  # fmt: skip
    """Run ``send(case)`` on cases of every selected operation; the failures, one line each."""
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations, "the served document has no operations"
    for operation in operations:
        if not select(operation):
            continue
        for mode, count in examples.items():
            if mode is GenerationMode.NEGATIVE and not negatable(operation):
                continue

            @settings(max_examples=count, derandomize=True, database=None, deadline=None,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))  # fmt: skip
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                send(case)

            try:
                run()
            except Unsatisfiable:  # negative mode, and nothing in the operation can be made invalid
                continue
            except (Exception, BaseExceptionGroup) as exc:  # every failing operation is reported, not just the first
                failures.append(f"{operation.label} ({mode.value}): {type(exc).__name__}: {str(exc)[:1500]}")
    return failures


@pytest.mark.parametrize("dialect", ["sqlite"])
@pytest.mark.parametrize("who", ["admin", "read"])
def test_every_operation_answers_as_documented(api: httpx.Client, service: ModelDBService, principals,
                                               who: str) -> None:  # fmt: skip
    seed(service)
    schema = load(api)
    headers = principals.headers(who)
    answered: dict[str, set[int]] = defaultdict(set)
    with requests.Session() as session:

        def send(case: Any) -> None:
            response = case.call_and_validate(base_url=api.server.url, session=session, headers=headers,
                                              checks=CHECKS, timeout=30)  # fmt: skip
            answered[case.operation.label].add(response.status_code)

        examples = {GenerationMode.POSITIVE: 10, GenerationMode.NEGATIVE: 6} if who == "admin" else {
            GenerationMode.POSITIVE: 10}  # fmt: skip
        failures = fuzz(schema, examples, send)
    assert not failures, f"{len(failures)} operations failed:\n" + "\n\n".join(failures)
    # The token was sent and the seeded rows were found: the operations the token may use succeeded too.
    succeeded = {label for label, statuses in answered.items() if any(200 <= s < 300 for s in statuses)}
    expected = {"GET /api/v1/models", "GET /api/v1/models/{model_id}", "GET /api/v1/deployments/{deployment_id}",
                "GET /api/v1/models/{model_id}/live"}  # fmt: skip
    if who == "admin":
        expected |= {"POST /api/v1/models", "PATCH /api/v1/models/{model_id}", "GET /api/v1/tokens"}
    assert expected <= succeeded, f"never a 2xx: {sorted(expected - succeeded)}; answers: {dict(answered)}"


@pytest.mark.parametrize("dialect", ["sqlite"])
def test_no_write_succeeds_without_the_right_token(api: httpx.Client, service: ModelDBService, principals) -> None:
    """A read token, a write token for another project, a revoked token and no token never get a 2xx from a write."""
    seed(service)
    schema = load(api)
    with requests.Session() as session:
        for who in ("read", "write_other", "revoked", "anonymous"):
            headers = principals.headers(who)

            def send(case: Any, headers: dict[str, str] = headers, who: str = who) -> None:
                response = case.call(base_url=api.server.url, session=session, headers=headers, timeout=30)
                assert not 200 <= response.status_code < 300, (
                    f"{who} got {response.status_code} from {case.operation.label}: {response.text[:300]}")
                assert response.status_code < 500 or (response.status_code == 503 and response.json()["error"]
                                                      == "SchedulingNotConfiguredError"), response.text[:300]

            failures = fuzz(schema, {GenerationMode.POSITIVE: 6}, send, select=lambda op: op.method.upper() in WRITES)
            assert not failures, f"{who}:\n" + "\n\n".join(failures)


@pytest.mark.parametrize("dialect", ["sqlite"])
class TestWhatTheFuzzerFound:
    def test_a_body_that_is_not_utf8_is_a_422_problem_and_stores_nothing(self, api, service, principals) -> None:
        response = api.post("/api/v1/models", content=b'{"author": "\xff\xfe"}', headers={
            **principals.headers("write"), "Content-Type": "application/json"})  # fmt: skip
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["error"] == "ValidationError" and "UTF-8" in response.json()["detail"]
        assert service.get_models() == []

    def test_a_project_named_outside_latin1_is_created_with_a_quoted_location(self, api, service,
                                                                              principals) -> None:  # fmt: skip
        name = "beam \U0001b401/line"
        response = api.post("/api/v1/projects", json={"project_name": name, "description": "fuzzed"},
                            headers=principals.headers("write"))  # fmt: skip
        assert response.status_code == 201, response.text
        assert response.headers["location"] == "/api/v1/projects/beam%20%F0%9B%90%81%2Fline"
        assert response.json()["project_name"] == name == service.get_project(project_name=name).project_name
