"""The user-facing ``Model``: a registered model and its deployments.

``Model`` composes services (it never builds SQL): the model database
service, the scheduling service and the registrar (which stores
deployments from sources). Each comes from the configured
:mod:`lume_services.config` context at first use unless passed in; with
LUME_REGISTRY__URL they are the remote client's, so the same code runs
against a registry server.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Optional

from lume_services.errors import DeploymentNotFoundError, DeploymentNotRegisteredError
from lume_services.services.models.db.adopt.detect import PREFECT1_TAG
from lume_services.services.models.records import (
    UNSET,
    DeploymentRecord,
    LiveIntervalRecord,
    LiveRequestRecord,
    LoadedDeployment,
    ModelRecord,
)

if TYPE_CHECKING:
    from lume_services.services.models.service import ModelDBService

log = logging.getLogger(__name__)


def _default_service() -> ModelDBService:
    from lume_services import config

    return config.get_context().model_db_service()


class Model:
    """A registered model.

    Build it from an id (``Model(model_id=1)``), from one of its deployments
    (``Model(deployment_id=7)``, which also loads that deployment: a
    package's, or a flow of flows stored with :meth:`compose`, then with its
    steps), or get or create it with :meth:`create_model`.
    """

    def __init__(
        self,
        model_id: Optional[int] = None,
        *,
        metadata: Optional[ModelRecord] = None,
        deployment_id: Optional[int] = None,
        model_db_service: Optional[ModelDBService] = None,
        scheduling_service: Optional[Any] = None,
        registrar: Optional[Any] = None,
    ) -> None:
        self._service = model_db_service
        self._scheduling_service = scheduling_service
        self._registrar = registrar
        self.deployment: Optional[LoadedDeployment] = None
        if metadata is not None:
            self.metadata = metadata
        elif model_id is not None:
            self.metadata = self.model_db_service.get_model(model_id=model_id)
        elif deployment_id is not None:
            owner = self.model_db_service.get_deployment(deployment_id=deployment_id).model_id
            self.metadata = self.model_db_service.get_model(model_id=owner)
            self.load_deployment(deployment_id)
        else:
            raise ValueError(
                "Model() needs model_id, deployment_id or metadata; use "
                "Model.create_model(...) to register a new model."
            )

    def __repr__(self) -> str:
        m = self.metadata
        return (
            f"Model(model_id={m.model_id!r}, author={m.author!r}, laboratory={m.laboratory!r}, "
            f"facility={m.facility!r}, beampath={m.beampath!r}, description={m.description!r})"
        )

    @property
    def model_db_service(self) -> ModelDBService:
        if self._service is None:
            self._service = _default_service()
        return self._service

    @property
    def model_id(self) -> int:
        return self.metadata.model_id

    @classmethod
    def create_model(
        cls,
        author: str,
        laboratory: str,
        facility: str,
        beampath: str,
        description: str,
        *,
        model_db_service: Optional[ModelDBService] = None,
    ) -> Model:
        """Get or create the model with these five fields (race-safe)."""
        service = model_db_service or _default_service()
        model_id = service.store_model(
            author=author,
            laboratory=laboratory,
            facility=facility,
            beampath=beampath,
            description=description,
        )
        return cls(metadata=service.get_model(model_id=model_id), model_db_service=service)

    @property
    def deployments(self) -> list[DeploymentRecord]:
        """This model's deployments, oldest first (``[]`` when none)."""
        return self.model_db_service.get_deployments(model_id=self.model_id)

    @property
    def live_deployment(self) -> Optional[DeploymentRecord]:
        try:
            return self.model_db_service.get_live_deployment(self.model_id)
        except DeploymentNotFoundError:
            return None

    def load_deployment(self, deployment_id: Optional[int] = None) -> LoadedDeployment:
        """Load a deployment with its flow and project (the latest when None)."""
        try:
            loaded = self.model_db_service.load_deployment(
                model_id=self.model_id, deployment_id=deployment_id
            )
        except DeploymentNotFoundError:
            raise DeploymentNotRegisteredError(self.model_id, deployment_id) from None
        self.deployment = loaded
        _warn_if_prefect1(loaded)
        return loaded

    def store_deployment(
        self,
        source_path: Any,
        project_name: str,
        is_live: bool = True,
        image: Optional[str] = None,
        expected_sha256: Optional[str] = None,
        *,
        progress: Optional[Callable[[str, Optional[int], Optional[int]], None]] = None,
    ) -> DeploymentRecord:
        """Register a released package of this model as a deployment.

        ``source_path`` is an https URL, a ``file://`` URL, a local ``.tar.gz``
        sdist or ``.whl``, or a local project directory (built with uv). The
        package is fetched into the content-addressed store, inspected without
        running it, installed into its own environment, its flow loaded there
        and registered with Prefect; then the deployment and flow rows are
        written together. All or nothing: on failure nothing is recorded and
        the error names the step. The same artifact again returns the existing
        deployment; the same version with other bytes raises
        DeploymentConflictError. The deployment is left loaded as
        ``self.deployment``.
        """
        from lume_services import config

        registrar = self._registrar or config.get_context().registrar()
        record = registrar.store_deployment(
            self.model_db_service, model_id=self.model_id, source_path=source_path, project_name=project_name,
            is_live=is_live, image=image, expected_sha256=expected_sha256, progress=progress,
        )  # fmt: skip
        self.load_deployment(record.deployment_id)
        return record

    def compose(self, spec: Any, version: str, *, is_live: bool = True) -> DeploymentRecord:
        """Store a flow of flows (a YAML file or FlowOfFlowsSpec) as a version of this model.

        The composition is validated against the registry, registered with
        Prefect, and recorded as deployment ``version`` of this model, live
        unless ``is_live=False``; it is left loaded as ``self.deployment``.
        The same composition again returns the same deployment; other steps
        under the same version raise DeploymentConflictError.
        """
        from lume_services import config

        registrar = self._registrar or config.get_context().registrar()
        parent = registrar.compose(self.model_db_service, spec, model_id=self.model_id, version=version,
                                   is_live=is_live)  # fmt: skip
        flow = self.model_db_service.get_flow(flow_id=parent)
        self.load_deployment(flow.deployment_id)
        assert self.deployment is not None
        return self.deployment.deployment

    def run(self, parameters: Optional[dict[str, Any]] = None, *, validate: str = "error") -> str:
        """Submit a run of the loaded deployment's flow (the latest when none is loaded).

        Returns the Prefect flow run id at once. Without a Prefect server
        configured the run executes in a subprocess of this process, which
        must stay alive until it finishes (use run_and_return to wait).
        For a flow of flows, ``parameters`` maps a step's flow name to that
        step's parameters.

        Parameters named like the deployment's input variables are checked
        against them first (kind, range, constants); ``validate="warn"``
        logs range violations instead of refusing them, ``"none"`` skips
        the check. A refused run raises ValidationError and nothing is submitted.
        """
        return self._recorder(parameters, validate).run()

    def run_and_return(
        self,
        parameters: Optional[dict[str, Any]] = None,
        task_name: Optional[str] = None,
        timeout: Optional[float] = None,
        *,
        validate: str = "error",
    ) -> Any:
        """Run the flow, wait for it, and return its result (or task ``task_name``'s).

        A run still going after ``timeout`` seconds is cancelled and
        RunTimeoutError raised; a failed run raises FlowFailedError. A flow
        of flows returns ``{"result": <last step's result>, "steps": {<flow
        name>: <result>}}``. Inputs are checked as by :meth:`run`. The run
        is recorded (``get_results``).
        """
        return self._recorder(parameters, validate).run_and_return(task_name=task_name, timeout=timeout)

    def _recorder(self, parameters: Optional[dict[str, Any]], validate: str) -> Any:
        from lume_services.models.recording import RunRecorder

        flow_id, params = self._flow_parameters(parameters, validate)
        assert self.deployment is not None
        return RunRecorder(self.model_db_service, self._scheduling(), model_id=self.model_id,
                           deployment_id=self.deployment.deployment.deployment_id, flow_id=flow_id,
                           parameters=params)  # fmt: skip

    def get_results(self, *, deployment_id: Optional[int] = None, state: Optional[str] = "completed",
                    limit: int = 100) -> list[Any]:  # fmt: skip
        """Past runs of this model's deployments, newest first (RunRecords: parameters, actor, result)."""
        if deployment_id is not None:
            self._require_own(deployment_id)
        return self.model_db_service.list_runs(model_id=self.model_id, deployment_id=deployment_id, state=state,
                                               limit=limit).items  # fmt: skip

    def get_results_df(self, *, deployment_id: Optional[int] = None, state: Optional[str] = "completed",
                       limit: int = 100) -> Any:  # fmt: skip
        """:meth:`get_results` as a pandas DataFrame: one row per run, parameters and results as columns."""
        try:
            import pandas
        except ImportError:
            raise ImportError("get_results_df needs pandas: pip install pandas (get_results needs nothing)") from None
        rows = []
        for run in self.get_results(deployment_id=deployment_id, state=state, limit=limit):
            row = {"run_id": run.run_id, "deployment_id": run.deployment_id, "created": run.created,
                   "actor": run.actor, "state": run.state}  # fmt: skip
            row.update({f"parameters.{k}": v for k, v in run.parameters.items()})
            result = run.result if isinstance(run.result, dict) else {"value": run.result}
            row.update({f"result.{k}": v for k, v in result.items()})
            rows.append(row)
        return pandas.DataFrame(rows)

    def _flow_parameters(
        self, parameters: Optional[dict[str, Any]], validate: str
    ) -> tuple[str, dict[str, Any]]:
        """The Prefect deployment to run and its parameters (a composite takes them per step), checked."""
        from lume_services.models.inputs import check_step_inputs
        from lume_services.variables.checks import check_inputs, check_mode

        check_mode(validate)
        if self.deployment is None:
            self.load_deployment()
        assert self.deployment is not None
        flow = self.deployment.flow
        if flow is None:
            raise DeploymentNotRegisteredError(self.model_id, self.deployment.deployment.deployment_id)
        parameters = parameters or {}
        if not flow.composite:
            check_inputs(self.deployment.variables, parameters, validate=validate)
            return flow.flow_id, parameters
        check_step_inputs(self.model_db_service, self.deployment.flow_of_flows, parameters, validate)
        return flow.flow_id, {"parameters": parameters}

    def _scheduling(self) -> Any:
        if self._scheduling_service is None:
            from lume_services import config

            self._scheduling_service = config.get_context().scheduling_service()
        return self._scheduling_service

    def set_live(
        self, deployment_id: int, *, expected_live: Any = UNSET, reason: Optional[str] = None
    ) -> DeploymentRecord:
        """Make one of this model's deployments the live one.

        ``expected_live`` (a deployment id, or None for "nothing live") makes
        it a compare-and-swap (LiveDeploymentChangedError if the live one is
        another); a protected model raises ApprovalRequiredError (use
        :meth:`request_live`).
        """
        self._require_own(deployment_id)
        return self.model_db_service.set_live(deployment_id, expected_live=expected_live, reason=reason,
                                             model_id=self.model_id)

    def request_live(self, deployment_id: int, *, reason: str) -> LiveRequestRecord:
        """Ask for one of this model's deployments to go live; another person approves it."""
        self._require_own(deployment_id)
        return self.model_db_service.request_live(deployment_id, reason=reason)

    @property
    def live_history(self) -> list[LiveIntervalRecord]:
        """Which deployment was live when, who set it and who approved it, oldest first."""
        return self.model_db_service.get_live_history(self.model_id)

    def live_deployment_at(self, at: datetime) -> DeploymentRecord:
        """The deployment that was live at ``at`` (an aware datetime)."""
        return self.model_db_service.get_live_deployment(self.model_id, at=at)

    def _require_own(self, deployment_id: int) -> None:
        try:
            owner = self.model_db_service.get_deployment(deployment_id=deployment_id).model_id
        except DeploymentNotFoundError:
            owner = None
        if owner != self.model_id:
            raise DeploymentNotRegisteredError(self.model_id, deployment_id)


def _warn_if_prefect1(loaded: LoadedDeployment) -> None:
    """A deployment adopted from the predecessor still has its Prefect 1 flow: say so, and how to fix it."""
    old = loaded.deployment.tags.get(PREFECT1_TAG)
    if old is not None and loaded.flow is not None and loaded.flow.flow_id == old:
        log.warning(
            "Deployment %s (model %s, version %s) was adopted from the predecessor: its flow %r was registered "
            "with Prefect 1 and cannot run. Store it again (`lume-services deployments create %s --model-id %s "
            "--project NAME`) to register it with Prefect 3.",
            loaded.deployment.deployment_id, loaded.deployment.model_id, loaded.deployment.version, old,
            loaded.deployment.source, loaded.deployment.model_id,
        )  # fmt: skip
