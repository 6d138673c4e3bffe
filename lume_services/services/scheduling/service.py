"""SchedulingService: projects and flow registration on Prefect 3.

A project is a work queue in one shared work pool (``LUME_PREFECT__POOL_NAME``)
plus the tag ``project:<name>``. A registry deployment becomes one Prefect
deployment, named ``<project>-<model_id>-<version>`` so that no two versions
ever share (and overwrite) one; its id is what the ``flow`` table stores.
On a process pool the job runs ``<environment>/bin/python -m prefect.engine``,
so the flow executes in the deployment's own environment; on docker or
kubernetes pools the job runs the deployment's ``image``.

Prefect reads its settings when first imported: unless ``PREFECT_API_URL``
or ``PREFECT_HOME`` is set, this module points ``PREFECT_HOME`` at
``$LUME_HOME/prefect`` before importing it, so nothing is written elsewhere.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional
from uuid import UUID

from lume_services.environment import children
from lume_services.environment.runner import child_environment
from lume_services.errors import RegistrationError, RunTimeoutError, SchedulingError
from lume_services.flows.spec import COMPOSITE_ENTRYPOINT, COMPOSITE_FLOW_NAME
from lume_services.services.scheduling import runs
from lume_services.services.scheduling.runs import result_environment
from lume_services.services.scheduling.settings import PrefectSettings

# Every Prefect deployment the registry makes carries this tag; with its work
# pool (which serves one registry: deployment names are unique only within a
# registry) it is how a sweep recognises the registry's deployments.
REGISTRY_TAG = "lume-services"
PAGE = 200
_NO_SUCH_DEPLOYMENT = (
    "no such Prefect deployment (a flow adopted from the predecessor lume-services was registered "
    "with Prefect 1: store its deployment again, `lume-services deployments create SOURCE --model-id ID "
    "--project NAME`, to register it with Prefect 3)"
)


@dataclass(frozen=True)
class FlowRegistration:
    """What store_deployment gives the scheduler about one deployment."""

    model_id: int
    version: str
    project_name: str
    flow_name: str
    entrypoint: str  # module path "pkg.module.function"
    environment: Path
    parameter_schema: dict[str, Any]
    image: Optional[str] = None
    description: Optional[str] = None


def prepare_prefect_environment(settings: PrefectSettings, home: Path) -> None:
    """Point Prefect at the configured API or at LUME_HOME, before it is imported."""
    if not settings.api_url and not os.environ.get("PREFECT_API_URL") and not os.environ.get("PREFECT_HOME"):
        os.environ["PREFECT_HOME"] = str(home / "prefect")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # A first start migrates a fresh SQLite database: 10-20 s on a busy machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")


class SchedulingService:
    def __init__(self, settings: PrefectSettings, *, home: Path, backend: str = "local") -> None:
        self.settings = settings
        self.home = home
        self.backend = backend
        self._processes: list[Any] = []
        prepare_prefect_environment(settings, home)

    def __repr__(self) -> str:
        return f"SchedulingService(pool={self.settings.pool_name!r}, backend={self.backend!r})"

    @property
    def pool_name(self) -> str:
        return self.settings.pool_name

    @contextmanager
    def _client(self) -> Iterator[Any]:
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        updates = {PREFECT_API_URL: self.settings.api_url} if self.settings.api_url else {}
        with temporary_settings(updates=updates), get_client(sync_client=True) as client:
            guard_ephemeral_server()
            yield client

    @contextmanager
    def _registering(self, what: str) -> Iterator[Any]:
        """A client for registering ``what``: any failure other than ours becomes a RegistrationError naming it."""
        try:
            with self._client() as client:
                yield client
        except SchedulingError:
            raise
        except Exception as exc:
            raise RegistrationError(what, _reason(exc)) from exc

    # -- projects -------------------------------------------------------------

    def create_project(self, name: str, description: Optional[str] = None) -> str:
        """Create (or find) the project's work queue; returns the queue id. Idempotent."""
        from prefect.exceptions import ObjectAlreadyExists

        with self._registering(f"project {name!r}") as client:
            self._ensure_pool(client)
            try:
                queue = client.create_work_queue(
                    name=name, description=description, work_pool_name=self.pool_name
                )
            except ObjectAlreadyExists:
                queue = client.read_work_queue_by_name(name, work_pool_name=self.pool_name)
                if description is not None and queue.description != description:
                    client.update_work_queue(queue.id, description=description)
            return str(queue.id)

    def _ensure_pool(self, client: Any) -> None:
        from prefect.client.schemas.actions import WorkPoolCreate
        from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

        try:
            pool = client.read_work_pool(self.pool_name)
        except ObjectNotFound:
            pool = None
        if pool is not None:
            wanted = "process" if self.backend == "local" else self.backend
            if pool.type != wanted:
                raise RegistrationError(
                    f"work pool {self.pool_name!r}",
                    f"it is a {pool.type!r} pool but LUME_BACKEND={self.backend!r} needs a {wanted!r} pool; "
                    "set LUME_PREFECT__POOL_NAME to a pool of that type",
                )
            return
        if self.backend != "local":
            raise RegistrationError(
                f"work pool {self.pool_name!r}",
                f"it does not exist; create it with `prefect work-pool create {self.pool_name} "
                f"--type {self.backend}` (needs the prefect-{self.backend} package)",
            )
        from prefect.workers.process import ProcessWorker

        pool = WorkPoolCreate(
            name=self.pool_name, type="process", description="lume-services models",
            base_job_template=ProcessWorker.get_default_base_job_template(),
        )  # fmt: skip
        try:
            client.create_work_pool(pool)
        except ObjectAlreadyExists:
            pass

    # -- deployments ----------------------------------------------------------

    def deployment_name(self, reg: FlowRegistration) -> str:
        return f"{reg.project_name}-{reg.model_id}-{reg.version}"

    @property
    def results_path(self) -> Path:
        return self.settings.results_path or self.home / "results"

    @property
    def inline(self) -> bool:
        if self.settings.executor == "auto":
            return not self.api_configured
        return self.settings.executor == "inline"

    def job_variables(self, reg: FlowRegistration) -> dict[str, Any]:
        env = result_environment(self.results_path)
        if self.backend == "local":
            return {"command": runs.engine_command(reg.environment / "bin" / "python"), "env": env}
        if not reg.image:
            raise RegistrationError(
                f"flow {reg.flow_name!r}",
                f"the {self.backend} backend runs images, and the deployment has none",
            )
        return {"image": reg.image, "env": env}

    def register_flow(self, reg: FlowRegistration) -> str:
        """Create or update the Prefect deployment of ``reg``; returns its id."""
        from prefect.exceptions import ObjectNotFound

        with self._registering(f"flow {reg.flow_name!r}") as client:
            try:
                client.read_work_queue_by_name(reg.project_name, work_pool_name=self.pool_name)
            except ObjectNotFound:
                raise RegistrationError(
                    f"flow {reg.flow_name!r}",
                    f"project {reg.project_name!r} has no work queue in pool {self.pool_name!r}; "
                    f"run scheduling_service.create_project({reg.project_name!r}) first",
                ) from None
            flow_id = client.create_flow_from_name(reg.flow_name)
            deployment_id = client.create_deployment(
                flow_id=flow_id, name=self.deployment_name(reg), version=reg.version,
                entrypoint=reg.entrypoint, work_pool_name=self.pool_name,
                work_queue_name=reg.project_name, tags=[REGISTRY_TAG, f"project:{reg.project_name}"],
                parameter_openapi_schema=reg.parameter_schema, enforce_parameter_schema=True,
                job_variables=self.job_variables(reg), pull_steps=[], description=reg.description,
            )  # fmt: skip
            return str(deployment_id)

    def register_composite(
        self,
        *,
        name: str,
        project_name: str,
        steps: list[dict[str, Any]],
        description: str = "",
        digest: str,
        model_id: Optional[int] = None,
        version: Optional[str] = None,
    ) -> str:
        """Create or update the parent deployment of a flow of flows; returns its id.

        The parent runs ``lume_services.flows.composite`` in this interpreter's
        environment; the steps travel as its default parameters. A
        composition stored as a model version is named like any deployment,
        ``<project>-<model_id>-<version>``, one on its own
        ``<project>-composite-<name>``, each followed by the first 12 hex
        digits of the composition's ``digest``: Prefect updates a deployment
        of the same name in place, so two different compositions never share
        one (whatever the registry then records).
        """
        from prefect.utilities.callables import parameter_schema

        from lume_services.flows.composite import run_flow_of_flows

        base = (
            f"{project_name}-{model_id}-{version}"
            if model_id is not None
            else f"{project_name}-composite-{name}"
        )
        deployment_name = f"{base}-{digest[:12]}"
        schema = parameter_schema(run_flow_of_flows.fn).model_dump()
        with self._registering(f"flow of flows {name!r}") as client:
            self._ensure_pool(client)
            flow_id = client.create_flow_from_name(COMPOSITE_FLOW_NAME)
            deployment_id = client.create_deployment(
                flow_id=flow_id, name=deployment_name, version=version,
                entrypoint=COMPOSITE_ENTRYPOINT, work_pool_name=self.pool_name,
                work_queue_name=project_name, tags=[REGISTRY_TAG, f"project:{project_name}", "flow-of-flows"],
                parameters={"steps": steps, "inline": self.inline}, parameter_openapi_schema=schema,
                enforce_parameter_schema=True, pull_steps=[], description=description,
                job_variables={
                    "command": runs.engine_command(Path(sys.executable)),
                    "env": result_environment(self.results_path, self.home / "runs"),
                },
            )  # fmt: skip
            return str(deployment_id)

    @property
    def api_configured(self) -> bool:
        """True when a Prefect server is configured (otherwise Prefect's ephemeral server is used)."""
        return bool(self.settings.api_url or os.environ.get("PREFECT_API_URL"))

    def api_problem(self) -> Optional[str]:
        """Why the Prefect API does not answer its health check, or None when it does."""
        try:
            with self._client() as client:
                failure = client.api_healthcheck()
        except Exception as exc:
            return _reason(exc)
        return None if failure is None else _reason(failure)

    def registry_deployments(self) -> list[Any]:
        """Every Prefect deployment in this registry's pool that the registry made (tag ``lume-services``)."""
        from prefect.client.schemas.filters import (
            DeploymentFilter,
            DeploymentFilterTags,
            WorkPoolFilter,
            WorkPoolFilterName,
        )
        from prefect.client.schemas.sorting import DeploymentSort

        ours = DeploymentFilter(tags=DeploymentFilterTags(all_=[REGISTRY_TAG]))
        pool = WorkPoolFilter(name=WorkPoolFilterName(any_=[self.pool_name]))
        found: list[Any] = []
        with self._registering(f"deployments of pool {self.pool_name!r}") as client:
            while True:
                page = client.read_deployments(
                    deployment_filter=ours, work_pool_filter=pool, sort=DeploymentSort.NAME_ASC,
                    limit=PAGE, offset=len(found),
                )  # fmt: skip
                found += page
                if len(page) < PAGE:
                    return found

    def delete_flow(self, deployment_id: str) -> None:
        """Remove a Prefect deployment (used to undo a registration)."""
        from prefect.exceptions import ObjectNotFound

        with self._client() as client:
            try:
                client.delete_deployment(UUID(deployment_id))
            except ObjectNotFound:
                pass

    # -- runs -----------------------------------------------------------------

    def run(self, flow_id: str, parameters: Optional[dict[str, Any]] = None) -> str:
        """Submit a run of the Prefect deployment ``flow_id``; returns the flow run id at once."""
        with self._client() as client:
            deployment, run = self._create_run(client, flow_id, parameters or {})
            self._processes = [p for p in self._processes if p.poll() is None]  # reap finished ones
            if self.inline:
                self._processes.append(self._executor().start(client, deployment, run.id))
            return str(run.id)

    def run_and_return(
        self,
        flow_id: str,
        parameters: Optional[dict[str, Any]] = None,
        *,
        task_name: Optional[str] = None,
        timeout: Optional[float] = None,
        on_submitted: Optional[Callable[[str], None]] = None,
    ) -> Any:
        """Run, wait, and return the flow's result (or task ``task_name``'s).

        ``on_submitted(flow_run_id)`` is called once the run exists, before
        waiting (the Model records the run there).

        On timeout the run is cancelled (on the server, and its process if
        it is ours) and RunTimeoutError raised; a failed run raises
        FlowFailedError with Prefect's message and the run id. With the
        inline executor a flow of flows runs its parent flow in this
        process (its steps still run each in its own environment), which
        saves one interpreter start per composite run.
        """
        with self._client() as client:
            deployment, run = self._create_run(client, flow_id, parameters or {})
            if on_submitted is not None:
                on_submitted(str(run.id))
            if not self.inline:
                finished = runs.wait(client, run.id, timeout, None)
            elif deployment.entrypoint == COMPOSITE_ENTRYPOINT:
                finished = self._run_composite_here(client, run, timeout)
            else:
                finished = runs.wait(
                    client, run.id, timeout, self._executor().start(client, deployment, run.id)
                )
            return runs.flow_result(client, finished, task_name, self._flow_name(client, finished))

    def _create_run(self, client: Any, flow_id: str, parameters: dict[str, Any]) -> tuple[Any, Any]:
        from prefect.exceptions import ObjectNotFound

        try:
            deployment = client.read_deployment(UUID(flow_id))
        except (ObjectNotFound, ValueError):
            raise RegistrationError(f"flow {flow_id!r}", _NO_SUCH_DEPLOYMENT) from None
        schema = deployment.parameter_openapi_schema or {}
        runs.check_parameters(schema, {**(deployment.parameters or {}), **parameters}, deployment.name)
        return deployment, client.create_flow_run_from_deployment(deployment.id, parameters=dict(parameters))

    def _executor(self, timeout: Optional[float] = None) -> runs.InlineExecutor:
        env = child_environment(self.home, result_environment(self.results_path, self.home / "runs"))
        deadline = None if timeout is None else time.monotonic() + timeout
        return runs.InlineExecutor(env, self.home / "runs", deadline)

    def _run_composite_here(self, client: Any, run: Any, timeout: Optional[float]) -> Any:
        """Execute a composite's flow run in this process; its steps run as subprocesses."""
        from prefect.flow_engine import run_flow
        from prefect.logging.handlers import APILogWorker
        from prefect.settings import (
            PREFECT_RESULTS_DEFAULT_SERIALIZER,
            PREFECT_RESULTS_LOCAL_STORAGE_PATH,
            PREFECT_RESULTS_PERSIST_BY_DEFAULT,
            temporary_settings,
        )
        from prefect.states import Cancelled

        from lume_services.flows import composite

        executor = self._executor(timeout)
        results = {
            PREFECT_RESULTS_PERSIST_BY_DEFAULT: True,
            PREFECT_RESULTS_LOCAL_STORAGE_PATH: self.results_path,
            PREFECT_RESULTS_DEFAULT_SERIALIZER: "json",
        }
        runs.claim(client, run.id)
        token = composite.inline_executor.set(executor)
        try:
            with temporary_settings(updates=results):
                run_flow(
                    composite.run_flow_of_flows, flow_run=client.read_flow_run(run.id), return_type="state"
                )
                APILogWorker.drain_all(timeout=5)  # its logs reach the API now, not at exit
        finally:
            composite.inline_executor.reset(token)
        finished = client.read_flow_run(run.id)
        if executor.timed_out and not finished.state.is_completed():
            client.set_flow_run_state(run.id, Cancelled(message=f"timed out after {timeout:g} s"), force=True)
            raise RunTimeoutError(str(run.id), timeout or 0)
        return finished

    def _flow_name(self, client: Any, run: Any) -> str:
        return client.read_flow(run.flow_id).name

    def run_outcome(self, flow_run_id: str, task_name: Optional[str] = None) -> tuple[bool, Any]:
        """``(False, None)`` while the run is not final, else ``(True, result)``; a failed run raises.

        For a registry server that reads a run's outcome without waiting for it.
        """
        with self._client() as client:
            run = client.read_flow_run(UUID(flow_run_id))
            if run.state is None or not run.state.is_final():
                return False, None
            return True, runs.flow_result(client, run, task_name, self._flow_name(client, run))

    def cancel_run(self, flow_run_id: str, reason: str = "cancelled by lume-services") -> None:
        with self._client() as client:
            runs.cancel(client, UUID(flow_run_id), None, reason=reason)

    def read_run(self, flow_run_id: str) -> Any:
        with self._client() as client:
            return client.read_flow_run(UUID(flow_run_id))

    def read_flow(self, deployment_id: str) -> Any:
        """The Prefect deployment (for inspection and tests)."""
        with self._client() as client:
            return client.read_deployment(UUID(deployment_id))


def guard_ephemeral_server() -> None:
    """Make the ephemeral Prefect server this process started (if any) die with it.

    Prefect stops it at exit, but a killed process never exits: its server
    went on serving an orphaned SQLite database. Reads Prefect's registry of
    the servers it started; changes nothing of Prefect's.
    """
    module = sys.modules.get("prefect.server.api.server")  # imported by Prefect when it started one
    started = getattr(getattr(module, "SubprocessASGIServer", None), "_instances", {})
    for server in list(started.values()):
        process = getattr(server, "server_process", None)
        if process is not None and process.poll() is None:
            children.guard(process.pid)


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
