"""Model.store_deployment end to end: real packages, uv environments, a real
Prefect server, and the registry on SQLite, MariaDB and PostgreSQL."""

from __future__ import annotations

import pytest
from e2e_marks import on_every_dialect

from lume_services import config
from lume_services.errors import (
    ApprovalRequiredError,
    DeploymentConflictError,
    FlowAlreadyExistsError,
    InstallError,
    NoFlowFoundInPackageError,
    ProjectNotFoundError,
    RegistrationError,
    SourceError,
    ValidationError,
)
from lume_services.models import Model

MODEL = dict(
    author="Jackie Garrahan", laboratory="slac", facility="lcls", beampath="cu_hxr", description="test_model"
)
pytestmark = pytest.mark.slow


def count_rows(ctx) -> tuple[int, int]:
    """(deployments, flows) in the registry."""
    svc = ctx.model_db_service()
    return len(svc.get_deployments()), len(svc.get_flows())


def spec_setup(ctx, project: str = "test") -> Model:
    """The spec example up to store_deployment."""
    model = Model.create_model(**MODEL)
    ctx.model_db_service().store_project(project_name=project, description="my_description")
    ctx.scheduling_service().create_project(project)
    return model


class TestStoreDeployment:
    @on_every_dialect
    def test_spec_example_from_an_archive_then_the_same_bytes_by_url(self, registry, artifacts, http_base):
        model = spec_setup(registry)
        record = model.store_deployment(str(artifacts["sdist"]), project_name="test")
        assert (record.version, record.package_import_name, record.is_live) == ("0.1.0", "my_model", True)
        assert record.image == "registry.example.org/slac/my-model:v0.1.0"
        assert record.source == artifacts["sdist"].resolve().as_uri()
        assert model.deployments[-1] == record
        assert model.deployment.flow.flow_name == "fixture-flow"
        assert model.deployment.project.project_name == "test"
        base, root = http_base
        url = f"{base}/{artifacts['sdist'].relative_to(root).as_posix()}"
        again = model.store_deployment(url, project_name="test")
        assert again == record  # same bytes: the existing deployment, nothing reinstalled
        assert count_rows(registry) == (1, 1)

    def test_prefect_deployment_runs_in_the_deployment_environment(self, registry, artifacts):
        model = spec_setup(registry)
        record = model.store_deployment(artifacts["sdist"], project_name="test")
        env = registry.environment_manager().get(record.sha256)
        assert env is not None and env.python.exists()
        prefect_deployment = registry.scheduling_service().read_flow(model.deployment.flow.flow_id)
        job = prefect_deployment.job_variables
        assert job["command"] == f"{env.python} -m prefect.engine"
        assert job["env"]["PREFECT_RESULTS_PERSIST_BY_DEFAULT"] == "true"
        assert job["env"]["PREFECT_RESULTS_DEFAULT_SERIALIZER"] == "json"
        assert prefect_deployment.version == "0.1.0"
        assert prefect_deployment.work_queue_name == "test"
        assert prefect_deployment.work_pool_name == "lume-services"
        assert "project:test" in prefect_deployment.tags
        assert prefect_deployment.entrypoint == "my_model.flow.flow"
        assert set(prefect_deployment.parameter_openapi_schema["properties"]) == {"input1", "input2"}

    @pytest.mark.parametrize("kind", ["wheel", "legacy", "directory"])
    def test_other_source_kinds(self, registry, artifacts, kind):
        model = spec_setup(registry)
        record = model.store_deployment(artifacts[kind], project_name="test", image="ghcr.io/slac/x:v1")
        assert record.image == "ghcr.io/slac/x:v1"  # the explicit image wins
        assert model.deployment.flow is not None

    def test_newer_version_becomes_live(self, registry, artifacts):
        model = spec_setup(registry)
        first = model.store_deployment(artifacts["legacy"], project_name="test")
        second = model.store_deployment(artifacts["sdist"], project_name="test", is_live=False)
        assert (first.is_live, second.is_live) == (True, False)
        assert model.live_deployment.deployment_id == first.deployment_id


class TestProtectedModels:
    def test_a_live_store_needs_approval_and_is_refused_before_installing(self, registry, artifacts):
        model = spec_setup(registry)
        svc = registry.model_db_service()
        first = model.store_deployment(artifacts["legacy"], project_name="test")
        svc.update_model(model.model_id, require_approval=True)
        envs = {e.name for e in registry.environment_manager().root.iterdir()}
        with pytest.raises(ApprovalRequiredError, match="request_live") as info:
            model.store_deployment(artifacts["sdist"], project_name="test")
        assert info.value.step == "check approval"
        assert {e.name for e in registry.environment_manager().root.iterdir()} == envs  # nothing installed
        assert count_rows(registry) == (1, 1)
        again = model.store_deployment(artifacts["legacy"], project_name="test")  # the live one: fine
        assert again.deployment_id == first.deployment_id
        candidate = model.store_deployment(artifacts["sdist"], project_name="test", is_live=False)
        request = model.request_live(candidate.deployment_id, reason="newer physics")
        svc.with_actor("approver").approve_live(request.request_id)
        assert model.live_deployment.deployment_id == candidate.deployment_id
        assert [i.approved_by for i in model.live_history] == [None, "approver"]


class TestAllOrNothing:
    @on_every_dialect
    def test_same_version_with_other_bytes_is_refused_naming_both_hashes(self, registry, artifacts):
        model = spec_setup(registry)
        record = model.store_deployment(artifacts["sdist"], project_name="test")
        with pytest.raises(DeploymentConflictError) as info:
            model.store_deployment(artifacts["changed"], project_name="test")
        assert record.sha256 in str(info.value) and info.value.given_sha256 in str(info.value)
        assert count_rows(registry) == (1, 1)

    def test_project_must_exist(self, registry, artifacts):
        model = Model.create_model(**MODEL)
        with pytest.raises(ProjectNotFoundError, match="store_project"):
            model.store_deployment(artifacts["sdist"], project_name="nope")
        assert count_rows(registry) == (0, 0)

    def test_missing_flow_entry_point(self, registry, artifacts):
        model = spec_setup(registry)
        with pytest.raises(NoFlowFoundInPackageError) as info:
            model.store_deployment(artifacts["no_flow"], project_name="test")
        assert info.value.step == "inspect"
        assert count_rows(registry) == (0, 0)

    def test_install_failure_names_the_step_and_the_installers_reason(self, registry, artifacts):
        model = spec_setup(registry)
        with pytest.raises(InstallError, match="lume-services-no-such-package-xyz") as info:
            model.store_deployment(artifacts["bad_deps"], project_name="test")
        assert info.value.step == "install"
        assert count_rows(registry) == (0, 0)
        model.store_deployment(artifacts["sdist"], project_name="test")  # the registry is still usable
        assert count_rows(registry) == (1, 1)

    def test_prefect_failure_records_nothing_and_a_rerun_succeeds(self, registry, artifacts, monkeypatch):
        monkeypatch.setenv("LUME_BACKEND", "docker")  # a docker pool that nobody created
        monkeypatch.setenv("LUME_PREFECT__POOL_NAME", "lume-docker-pool")
        ctx = config.configure()
        model = Model.create_model(**MODEL)
        ctx.model_db_service().store_project(project_name="docker-project", description="d")
        with pytest.raises(RegistrationError, match="prefect work-pool create") as info:
            model.store_deployment(artifacts["sdist"], project_name="docker-project")
        assert info.value.step == "register"
        assert count_rows(ctx) == (0, 0)
        monkeypatch.setenv("LUME_BACKEND", "local")
        monkeypatch.delenv("LUME_PREFECT__POOL_NAME")
        ctx = config.configure()
        Model(model_id=model.model_id).store_deployment(artifacts["sdist"], project_name="docker-project")
        assert count_rows(ctx) == (1, 1)

    def test_project_queue_is_created_from_the_registry_project(self, registry, artifacts):
        model = Model.create_model(**MODEL)
        registry.model_db_service().store_project(
            project_name="fresh-project", description="from the registry"
        )
        model.store_deployment(artifacts["sdist"], project_name="fresh-project")
        with registry.scheduling_service()._client() as client:
            queue = client.read_work_queue_by_name("fresh-project", work_pool_name="lume-services")
        assert queue.description == "from the registry"

    @on_every_dialect
    def test_a_failed_record_removes_the_prefect_deployment(self, registry, artifacts):
        model = spec_setup(registry)
        with pytest.raises(ValidationError, match="flow_name") as info:
            model.store_deployment(artifacts["long_name"], project_name="test")
        assert info.value.step == "record"
        assert count_rows(registry) == (0, 0)
        scheduling = registry.scheduling_service()
        with scheduling._client() as client:
            from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

            name = f"test-{model.model_id}-0.1.0"
            left = client.read_deployments(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[name]))
            )
        assert [d for d in left if d.version == "0.1.0" and d.entrypoint == "long_name.flow.flow"] == []

    @pytest.mark.parametrize(
        "source", ["ftp://example.org/x.tar.gz", "http://example.org/notes.txt", "/no/such.whl"]
    )
    def test_refused_sources(self, registry, source):
        model = spec_setup(registry)
        with pytest.raises(SourceError):
            model.store_deployment(source, project_name="test")
        assert count_rows(registry) == (0, 0)

    def test_flow_row_ids_are_prefect_deployment_ids(self, registry, artifacts):
        model = spec_setup(registry)
        model.store_deployment(artifacts["sdist"], project_name="test")
        flow = model.deployment.flow
        with pytest.raises(FlowAlreadyExistsError):
            registry.model_db_service().store_flow(
                deployment_id=model.deployment.deployment.deployment_id, flow_id="other",
                flow_name="x", project_name="test",
            )  # fmt: skip
        assert len(flow.flow_id) == 36


DOCKER_TEMPLATE = {
    "job_configuration": {"image": "{{ image }}", "command": "{{ command }}", "env": "{{ env }}"},
    "variables": {
        "type": "object",
        "properties": {
            "image": {"type": "string"},
            "command": {"type": "string"},
            "env": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
}


class TestContainerBackends:
    def test_docker_pool_job_runs_the_deployments_image(self, registry, artifacts, monkeypatch):
        """No container engine here: check what Prefect would launch, without launching it."""
        from prefect.client.schemas.actions import WorkPoolCreate
        from prefect.exceptions import ObjectAlreadyExists
        from prefect.utilities.templating import apply_values

        with registry.scheduling_service()._client() as client:
            try:
                client.create_work_pool(
                    WorkPoolCreate(name="lume-docker", type="docker", base_job_template=DOCKER_TEMPLATE)
                )
            except ObjectAlreadyExists:
                pass
        monkeypatch.setenv("LUME_BACKEND", "docker")
        monkeypatch.setenv("LUME_PREFECT__POOL_NAME", "lume-docker")
        ctx = config.configure()
        model = Model.create_model(**MODEL)
        ctx.model_db_service().store_project(project_name="containers", description="d")
        record = model.store_deployment(artifacts["sdist"], project_name="containers")
        assert record.image == "registry.example.org/slac/my-model:v0.1.0"
        deployment = ctx.scheduling_service().read_flow(model.deployment.flow.flow_id)
        assert deployment.work_pool_name == "lume-docker"
        job = apply_values(DOCKER_TEMPLATE["job_configuration"], deployment.job_variables)
        assert job["image"] == record.image
        assert job["env"]["PREFECT_RESULTS_DEFAULT_SERIALIZER"] == "json"
        assert "command" not in deployment.job_variables  # the image's own python runs the flow
