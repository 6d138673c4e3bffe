"""Every endpoint against every kind of principal, on a real server per dialect.

The table below must name every operation of the served OpenAPI document, so
a new endpoint cannot go untested. A principal below the needed scope gets
401 (no token, revoked, expired) or 403 (scope or project); one with it never
does, and never a 5xx.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from factories import make_deployment, make_flow, make_model, make_project

from lume_services.services.models.service import ModelDBService

# needed: public < read < write (the deployment's project) < write_any (not limited to a project) < admin
RANK = {"public": 0, "read": 1, "write": 2, "write_any": 2, "admin": 3}
GRANTED = {"anonymous": -1, "revoked": -1, "expired": -1, "read": 1, "write_other": 2, "write": 2, "admin": 3}


def routes(ids: dict[str, Any]) -> dict[tuple[str, str], tuple[str, str, dict[str, Any]]]:
    """(method, path template) -> (needed, concrete path, request keywords)."""
    m, d, r, f, run = ids["model"], ids["deployment"], ids["request"], ids["flow"], ids["run"]
    model = dict(author="a", laboratory="slac", facility="lcls", beampath="cu_hxr", description="matrix")
    return {
        ("GET", "/healthz"): ("public", "/healthz", {}),
        ("GET", "/readyz"): ("public", "/readyz", {}),
        ("GET", "/api/v1/models"): ("read", "/api/v1/models", {}),
        ("POST", "/api/v1/models"): ("write_any", "/api/v1/models", {"json": model}),
        ("GET", "/api/v1/live-models"): ("read", "/api/v1/live-models", {}),
        ("GET", "/api/v1/models/{model_id}"): ("read", f"/api/v1/models/{m}", {}),
        ("GET", "/api/v1/models/{model_id}/loaded-deployment"): ("read", f"/api/v1/models/{m}/loaded-deployment", {}),
        ("PATCH", "/api/v1/models/{model_id}"): ("write_any", f"/api/v1/models/{m}", {"json": {"description": "x"}}),
        ("POST", "/api/v1/models/{model_id}/tags"): ("write_any", f"/api/v1/models/{m}/tags",
                                                     {"json": {"tags": {"k": "v"}}}),
        ("POST", "/api/v1/models/{model_id}/tags/remove"): ("write_any", f"/api/v1/models/{m}/tags/remove",
                                                            {"json": {"keys": ["k"]}}),
        ("GET", "/api/v1/deployments"): ("read", "/api/v1/deployments", {}),
        ("GET", "/api/v1/deployments/{deployment_id}"): ("read", f"/api/v1/deployments/{d}", {}),
        ("GET", "/api/v1/deployments/latest"): ("read", "/api/v1/deployments/latest", {}),
        ("GET", "/api/v1/deployments/{deployment_id}/variables"): ("read", f"/api/v1/deployments/{d}/variables", {}),
        ("GET", "/api/v1/deployments/{deployment_id}/flows"): ("read", f"/api/v1/deployments/{d}/flows", {}),
        ("POST", "/api/v1/deployments/{deployment_id}/tags"): ("write", f"/api/v1/deployments/{d}/tags",
                                                               {"json": {"tags": {"k": "v"}}}),
        ("POST", "/api/v1/deployments/{deployment_id}/tags/remove"): (
            "write", f"/api/v1/deployments/{d}/tags/remove", {"json": {"keys": ["k"]}}),
        ("GET", "/api/v1/models/{model_id}/live"): ("read", f"/api/v1/models/{m}/live", {}),
        ("PUT", "/api/v1/models/{model_id}/live"): ("write", f"/api/v1/models/{m}/live",
                                                    {"json": {"deployment_id": d}}),
        ("GET", "/api/v1/models/{model_id}/live/history"): ("read", f"/api/v1/models/{m}/live/history", {}),
        ("POST", "/api/v1/models/{model_id}/live-requests"): (
            "write", f"/api/v1/models/{m}/live-requests", {"json": {"deployment_id": d, "reason": "matrix"}}),
        ("GET", "/api/v1/live-requests"): ("read", "/api/v1/live-requests", {}),
        ("GET", "/api/v1/live-requests/{request_id}"): ("read", f"/api/v1/live-requests/{r}", {}),
        ("POST", "/api/v1/live-requests/{request_id}/approve"): ("write", f"/api/v1/live-requests/{r}/approve",
                                                                 {"json": {}}),
        ("POST", "/api/v1/live-requests/{request_id}/reject"): ("write", f"/api/v1/live-requests/{r}/reject",
                                                                {"json": {"reason": "no"}}),
        ("GET", "/api/v1/projects"): ("read", "/api/v1/projects", {}),
        ("POST", "/api/v1/projects"): ("write_any", "/api/v1/projects",
                                       {"json": {"project_name": "matrix", "description": "m"}}),
        ("GET", "/api/v1/projects/{project_name}"): ("read", "/api/v1/projects/test-project", {}),
        ("GET", "/api/v1/flows/{flow_id}/steps"): ("read", f"/api/v1/flows/{f}/steps", {}),
        ("GET", "/api/v1/flows/{flow_id}"): ("read", f"/api/v1/flows/{f}", {}),
        ("GET", "/api/v1/whoami"): ("read", "/api/v1/whoami", {}),
        ("GET", "/api/v1/live"): ("read", "/api/v1/live?facility=lcls&beampath=cu_hxr", {}),
        ("POST", "/api/v1/flows-of-flows"): ("write", "/api/v1/flows-of-flows", {"json": {"spec": {
            "name": "two-step", "project_name": "test-project", "composing_flows": [{"flow_id": f}]}}}),
        # stores answer 422 (a local path, a bad name) or 503 (no Prefect server) once the scope is granted
        ("POST", "/api/v1/models/{model_id}/deployments"): (
            "write", f"/api/v1/models/{m}/deployments", {"json": {"source_path": "/etc/passwd", "project_name": "test-project"}}),
        ("POST", "/api/v1/models/{model_id}/deployments/upload"): (
            "write", f"/api/v1/models/{m}/deployments/upload",
            {"data": {"project_name": "test-project"}, "files": {"archive": ("../x.whl", b"x")}}),
        ("GET", "/api/v1/jobs"): ("read", "/api/v1/jobs", {}),
        ("POST", "/api/v1/runs"): ("write", "/api/v1/runs", {"json": {"flow_id": f, "parameters": {}}}),
        ("GET", "/api/v1/runs"): ("read", "/api/v1/runs", {}),
        ("GET", "/api/v1/runs/{run_id}"): ("read", f"/api/v1/runs/{run}", {}),
        ("GET", "/api/v1/runs/{run_id}/task-result"): ("read", f"/api/v1/runs/{run}/task-result?task_name=t", {}),
        ("POST", "/api/v1/runs/{run_id}/cancel"): ("write", f"/api/v1/runs/{run}/cancel", {}),
        ("POST", "/api/v1/projects/{project_name}/queue"): ("write_any", "/api/v1/projects/test-project/queue", {}),
        ("GET", "/api/v1/jobs/{job_id}"): ("read", "/api/v1/jobs/1", {}),
        ("GET", "/api/v1/audit-events"): ("read", "/api/v1/audit-events", {}),
        ("GET", "/api/v1/beamlines"): ("read", "/api/v1/beamlines?facility=lcls", {}),
        ("GET", "/api/v1/events"): ("read", "/api/v1/events", {}),
        ("GET", "/api/v1/tokens"): ("admin", "/api/v1/tokens", {}),
        ("POST", "/api/v1/tokens"): ("admin", "/api/v1/tokens", {"json": {"name": "matrix-token"}}),
        ("DELETE", "/api/v1/tokens/{name}"): ("admin", "/api/v1/tokens/nobody", {}),
    }


def prefect_needed(path: str) -> bool:
    """This test's server has no Prefect server: runs and work queues answer 503 once the scope is granted."""
    return "/runs" in path or path.endswith(("/queue", "/flows-of-flows"))


def allowed(who: str, needed: str) -> bool:
    if needed == "public":
        return True
    if who == "write_other" and needed in ("write", "write_any"):
        return False  # the test's data is in another project than this token's
    return GRANTED[who] >= RANK[needed]


def setup_data(service: ModelDBService) -> dict[str, Any]:
    model_id = make_model(service)
    project = make_project(service, "test-project")
    deployment_id = make_deployment(service, model_id)
    flow_id = make_flow(service, deployment_id, project)
    protected = make_model(service)
    service.update_model(protected, require_approval=True)
    pending = make_deployment(service, protected)
    make_flow(service, pending, project)
    request = service.with_actor("requester").request_live(pending, reason="for the matrix")
    run = service.record_run(prefect_run_id="00000000-0000-0000-0000-000000000001", model_id=model_id,
                             deployment_id=deployment_id, flow_id=flow_id, parameters={})  # fmt: skip
    return {"model": model_id, "deployment": deployment_id, "request": request.request_id, "flow": flow_id,
            "run": run.run_id}  # fmt: skip


def test_every_endpoint_against_every_principal(api: httpx.Client, service: ModelDBService, principals) -> None:
    ids = setup_data(service)
    table = routes(ids)
    document = api.get("/api/v1/openapi.json").json()
    served = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    assert served == set(table), f"untested: {served - set(table)}; gone: {set(table) - served}"

    failures = []
    for (method, _template), (needed, path, kwargs) in sorted(table.items()):
        for who in principals.tokens:
            response = api.request(method, path, headers=principals.headers(who), **kwargs)
            status = response.status_code
            if allowed(who, needed):
                ok = status not in (401, 403) and (status < 500 or status == 503 and prefect_needed(path))
            else:
                expected = 401 if GRANTED[who] < 0 else 403
                ok = status == expected and response.headers["content-type"] == "application/problem+json"
            if not ok:
                failures.append(f"{who} {method} {path}: {status} {response.text[:200]}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("dialect", ["sqlite"])
def test_a_project_limited_token_writes_only_its_projects_deployments(
    api: httpx.Client, service: ModelDBService, principals
) -> None:
    model_id = make_model(service)
    mine, theirs = make_deployment(service, model_id), make_deployment(service, model_id)
    make_flow(service, mine, principals.project)
    make_flow(service, theirs, make_project(service, "elsewhere"))
    headers = principals.headers("write_other")

    ok = api.post(f"/api/v1/deployments/{mine}/tags", json={"tags": {"stage": "test"}}, headers=headers)
    assert ok.status_code == 200 and ok.json()["tags"] == {"stage": "test"}
    refused = api.post(f"/api/v1/deployments/{theirs}/tags", json={"tags": {"stage": "x"}}, headers=headers)
    assert refused.status_code == 403 and refused.json()["error"] == "ScopeError"
    assert "elsewhere" in refused.json()["detail"] and service.get_deployment(deployment_id=theirs).tags == {}
    assert api.put(f"/api/v1/models/{model_id}/live", json={"deployment_id": mine},
                   headers=headers).status_code == 200  # fmt: skip
    assert api.put(f"/api/v1/models/{model_id}/live", json={"deployment_id": theirs},
                   headers=headers).status_code == 403  # fmt: skip
    assert service.get_live_deployment(model_id).deployment_id == mine
    model = dict(author="a", laboratory="slac", facility="lcls", beampath="b", description="limited")
    assert api.post("/api/v1/models", json=model, headers=headers).status_code == 403
    assert service.get_models(description="limited") == []
