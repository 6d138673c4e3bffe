"""Storing deployments through a registry server: a URL or an uploaded archive becomes a server job.

A real `lume-services serve` (its job runners install with uv and register
with the session's real Prefect server), a client configured with only
LUME_REGISTRY__URL and a token, and real packages served over loopback.
"""

from __future__ import annotations

import httpx
import pytest
from apiserver import start_api_server

from lume_services import config
from lume_services.errors import DeploymentConflictError, ScopeError, SourceError
from lume_services.flows.spec import FlowOfFlowsSpec
from lume_services.models import Model
from lume_services.services.models.service import ModelDBService

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store_server(migrated_dbs, prefect_server, shared_home, tmp_path_factory):
    db = migrated_dbs("sqlite")
    env = {"LUME_HOME": str(shared_home), "LUME_PREFECT__API_URL": prefect_server.url,
           "LUME_ENVIRONMENT__ALLOW_HTTP": "true"}  # fmt: skip
    try:
        server = start_api_server(tmp_path_factory.mktemp("store-server"),
                                  db.engine.url.render_as_string(hide_password=False), extra_env=env)  # fmt: skip
    except RuntimeError as exc:
        pytest.fail(f"the API server failed to start: {exc}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def client(store_server, model_db, lume_home, monkeypatch):
    """A physicist's machine: a token for the server, no database setting; the test project exists."""
    service = ModelDBService(model_db)
    service.store_project(project_name="test", description="my_description")
    token = service.create_token("physicist", scope="write").token.get_secret_value()
    monkeypatch.setenv("LUME_REGISTRY__URL", store_server.url)
    monkeypatch.setenv("LUME_REGISTRY__TOKEN", token)
    config.configure()
    return service, token


def test_a_url_and_an_upload_store_through_the_server(client, artifacts, http_base, shared_home) -> None:
    service, _ = client
    model = Model.create_model("Jackie Garrahan", "slac", "lcls", "cu_hxr", "remote store")
    base, root = http_base
    url = f"{base}/{artifacts['sdist'].relative_to(root).as_posix()}"
    steps: list[str] = []
    record = model.store_deployment(url, project_name="test", progress=lambda s, d, t: steps.append(s))
    assert (record.version, record.source, record.is_live) == ("0.1.0", url, True)
    assert "record" in steps or "check project" in steps  # the job's steps reached the client
    assert model.deployment.flow.flow_name == "fixture-flow"
    assert service.list_audit_events(action="deployment.created").items[0].actor == "physicist"

    legacy = model.store_deployment(str(artifacts["legacy"]), project_name="test", is_live=False)
    assert legacy.source == f"upload:{artifacts['legacy'].name}" and not legacy.is_live
    assert service.get_deployment(deployment_id=legacy.deployment_id).version == "0.0.9"
    assert list((shared_home / "uploads").glob("*")) == []  # the upload is removed after its job
    upload_job = service.list_jobs(limit=1).items[0]
    assert "source_path" not in upload_job.request and str(shared_home) not in str(upload_job)  # no server path

    with pytest.raises(DeploymentConflictError) as conflict:  # same version, other bytes: the same error
        model.store_deployment(str(artifacts["wheel"]), project_name="test")
    assert "0.1.0" in str(conflict.value)
    assert [d.deployment_id for d in model.deployments] == [record.deployment_id, legacy.deployment_id]


def test_local_paths_and_directories_are_refused(client, artifacts, store_server) -> None:
    service, token = client
    model = Model.create_model("Jackie Garrahan", "slac", "lcls", "cu_hxr", "refusals")
    with pytest.raises(SourceError, match="never builds a directory"):
        model.store_deployment(str(artifacts["directory"]), project_name="test")
    headers = {"Authorization": f"Bearer {token}"}
    for source in (str(artifacts["sdist"]), artifacts["sdist"].as_uri(), "/etc/passwd"):
        answer = httpx.post(f"{store_server.url}/api/v1/models/{model.model_id}/deployments", headers=headers,
                            json={"source_path": source, "project_name": "test"})  # fmt: skip
        assert answer.status_code == 422 and "never a local path" in answer.json()["detail"]
    for name in ("../evil.tar.gz", "dist/x.whl", "x.exe", ".hidden.whl"):
        answer = httpx.post(f"{store_server.url}/api/v1/models/{model.model_id}/deployments/upload",
                            headers=headers, data={"project_name": "test"},
                            files={"archive": (name, b"not an archive")})  # fmt: skip
        assert answer.status_code == 422, (name, answer.text)
    assert service.list_jobs().items == [] and model.deployments == []


def test_a_project_limited_token_stores_only_in_its_project(client, artifacts, store_server, monkeypatch) -> None:
    service, _ = client
    service.store_project(project_name="other", description="d")
    limited = service.create_token("limited", scope="write", project_name="other").token.get_secret_value()
    model_id = service.store_model(author="a", laboratory="slac", facility="lcls", beampath="b", description="p")
    monkeypatch.setenv("LUME_REGISTRY__TOKEN", limited)
    config.configure()
    with pytest.raises(ScopeError, match="its own project only"):
        Model(model_id=model_id).store_deployment(str(artifacts["sdist"]), project_name="test")
    assert service.list_jobs().items == []


REMOTE_SNIPPET = """
from lume_services.models import Model
from lume_services import config
config.configure()
model = Model.create_model(
author = "Jackie Garrahan",
laboratory = "slac",
facility = "lcls",
beampath = "cu_hxr",
description = "test_model"
)
model_db_service = config.context.model_db_service()
scheduling_service = config.context.scheduling_service()
# create a project
project_name = model_db_service.store_project(
project_name="test", description="my_description"
)
scheduling_service.create_project("test")
source_path = SOURCE_PATH
# populates local channel
model.store_deployment(source_path, project_name="test")
d = model.deployments[-1]
print(model.model_id, d.deployment_id, d.version, d.package_import_name, d.is_live, model.deployment.flow.flow_id)
"""


def test_the_spec_example_runs_unchanged_against_the_server(store_server, model_db, artifacts, tmp_path) -> None:
    """The spec's example with a token and no database setting, twice, in fresh processes."""
    import os
    import subprocess
    import sys

    service = ModelDBService(model_db)
    token = service.create_token("seed", scope="write").token.get_secret_value()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LUME_", "PREFECT_"))}
    env.update(LUME_REGISTRY__URL=store_server.url, LUME_REGISTRY__TOKEN=token, LUME_HOME=str(tmp_path / "home"))
    code = REMOTE_SNIPPET.replace("SOURCE_PATH", repr(str(artifacts["sdist"])))
    outputs = []
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        assert token not in done.stdout + done.stderr
        outputs.append(done.stdout.strip().splitlines()[-1])
    assert outputs[0] == outputs[1] and outputs[0].split()[2:5] == ["0.1.0", "my_model", "True"]
    assert not (tmp_path / "home").exists()  # a remote client writes nothing locally
    [model] = service.get_models(description="test_model")
    actors = {e.actor for e in service.list_audit_events(model_id=model.model_id).items}
    assert actors == {"seed"}  # every change the example made is the token's


def test_runs_go_to_a_worker_and_are_recorded(client, runner_artifact, store_server, prefect_server, shared_home,
                                             monkeypatch) -> None:  # fmt: skip
    from worker_process import running_worker

    service, token = client
    model = Model.create_model("Jackie Garrahan", "slac", "lcls", "cu_hxr", "remote runs")
    config.context.scheduling_service().create_project("test")
    record = model.store_deployment(str(runner_artifact), project_name="test")
    for name in ("LUME_REGISTRY__URL", "LUME_REGISTRY__TOKEN"):  # the worker runs next to the server
        monkeypatch.delenv(name)
    monkeypatch.setenv("LUME_HOME", str(shared_home))
    monkeypatch.setenv("LUME_PREFECT__API_URL", prefect_server.url)
    with running_worker():
        monkeypatch.setenv("LUME_REGISTRY__URL", store_server.url)
        monkeypatch.setenv("LUME_REGISTRY__TOKEN", token)
        config.configure()
        remote = Model(model_id=model.model_id)
        assert remote.run_and_return({"input1": 3.0}, timeout=180) == {"sum": 8.0, "inputs": [3.0, 2.0]}
        assert remote.run_and_return({"input1": 1.0}, task_name="double", timeout=180) == 2.0
        spec = FlowOfFlowsSpec.parse({"name": "remote-composite", "project_name": "test",
                                      "composing_flows": [{"flow_id": remote.deployment.flow.flow_id}]})  # fmt: skip
        composite = remote.compose(spec, version="2.0.0", is_live=False)  # registered by the server
        assert composite.version == "2.0.0" and remote.deployment.flow.composite
        steps = remote.run_and_return({"runner-flow": {"input1": 5.0}}, timeout=180)
        assert steps["result"] == {"sum": 12.0, "inputs": [5.0, 2.0]}
        remote.load_deployment(record.deployment_id)
    [composite_run, run, first] = remote.get_results(state=None)
    assert composite_run.deployment_id == composite.deployment_id and composite_run.actor == "physicist"
    assert (first.state, first.actor, first.parameters) == ("completed", "physicist", {"input1": 3.0})
    assert first.result == {"sum": 8.0, "inputs": [3.0, 2.0]} and first.deployment_id == record.deployment_id
    assert service.get_run(run.run_id).state == "completed"
    frame = remote.get_results_df(deployment_id=record.deployment_id)
    assert list(frame["result.sum"]) == [4.0, 8.0] and list(frame["parameters.input1"]) == [1.0, 3.0]


def test_a_run_from_the_web_ui_goes_to_a_worker_and_shows_its_result(client, runner_artifact, store_server,
                                                                      prefect_server, shared_home, monkeypatch) -> None:  # fmt: skip
    """Headless Chromium: the run form of a deployment, submitted, followed until the worker's result shows."""
    from browser import IN_CI, start_chromium
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from worker_process import running_worker

    service, token = client
    model = Model.create_model("Jackie Garrahan", "slac", "lcls", "cu_hxr", "web runs")
    config.context.scheduling_service().create_project("test")
    record = model.store_deployment(str(runner_artifact), project_name="test")
    try:
        driver = start_chromium()
    except Exception as exc:  # noqa: BLE001
        if IN_CI:
            pytest.fail(f"headless Chromium did not start: {exc}", pytrace=False)
        pytest.skip(f"headless Chromium did not start: {exc}")
    for name in ("LUME_REGISTRY__URL", "LUME_REGISTRY__TOKEN"):  # the worker runs next to the server
        monkeypatch.delenv(name)
    monkeypatch.setenv("LUME_HOME", str(shared_home))
    monkeypatch.setenv("LUME_PREFECT__API_URL", prefect_server.url)
    try:
        with running_worker():
            driver.get(f"{store_server.url}/sign-in?next=/models/{model.model_id}/deployments/{record.deployment_id}")
            driver.find_element(By.ID, "token").send_keys(token)
            driver.find_element(By.CSS_SELECTOR, "form[action='/sign-in'] button").click()
            WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.ID, "extra"))
            field = driver.find_element(By.NAME, "in:input1")  # the package declares input1 as a variable
            field.clear()
            field.send_keys("3.0")
            driver.find_element(By.CSS_SELECTOR, "form.run-form button").click()
            WebDriverWait(driver, 240).until(  # the page reloads itself until the run is final
                lambda d: d.find_elements(By.ID, "run-state") and d.find_element(By.ID, "run-state").text in
                ("completed", "failed", "cancelled"))  # fmt: skip
            assert driver.find_element(By.ID, "run-state").text == "completed", driver.page_source[-3000:]
            rows = [r.text for r in driver.find_elements(By.CSS_SELECTOR, "table.result tbody tr")]
            assert rows == ["sum 8.0"]
            assert driver.find_elements(By.CSS_SELECTOR, "figure svg polyline")  # "inputs", an array: plotted
            assert "this run in Prefect" in driver.page_source
    finally:
        driver.quit()
    [run] = service.list_runs(model_id=model.model_id).items
    assert (run.actor, run.state, run.result) == ("physicist", "completed", {"sum": 8.0, "inputs": [3.0, 2.0]})
    assert run.parameters == {"input1": 3.0, "input2": 2.0}  # the form sends each variable's field, defaults too
