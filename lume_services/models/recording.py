"""Runs submitted through the registry are recorded: one place for ``Model.run``, ``run_and_return`` and ``flows run``.

The record is written once the run exists (its Prefect id known) and
finished with the result or the error. A registry server records the runs
it submits itself (``scheduling.records_runs``), so a remote client writes
nothing. A record that cannot be written is logged, never allowed to fail a
run already submitted.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

from lume_services.errors import FlowFailedError, RunTimeoutError

log = logging.getLogger(__name__)


class RunRecorder:
    def __init__(self, model_db_service: Any, scheduling: Any, *, model_id: int, deployment_id: int,
                 flow_id: str, parameters: dict[str, Any]) -> None:  # fmt: skip
        self.service, self.scheduling = model_db_service, scheduling
        self.fields = dict(model_id=model_id, deployment_id=deployment_id, flow_id=flow_id, parameters=parameters)
        self.record: Optional[Any] = None

    @classmethod
    def for_flow(cls, model_db_service: Any, scheduling: Any, flow_id: str, parameters: dict[str, Any]) -> RunRecorder:
        """The recorder of a run of a registered flow (its deployment and model looked up)."""
        flow = model_db_service.get_flow(flow_id=flow_id)
        if flow.deployment_id is None:  # a flow no deployment owns (any more): run, but no record to link
            return cls(model_db_service, scheduling, model_id=0, deployment_id=0, flow_id=flow_id,
                       parameters=parameters)  # fmt: skip
        deployment = model_db_service.get_deployment(deployment_id=flow.deployment_id)
        return cls(model_db_service, scheduling, model_id=deployment.model_id,
                   deployment_id=deployment.deployment_id, flow_id=flow_id, parameters=parameters)  # fmt: skip

    def submitted(self, prefect_run_id: str) -> None:
        if getattr(self.scheduling, "records_runs", False) or not self.fields["deployment_id"]:
            return
        try:
            self.record = self.service.record_run(prefect_run_id=prefect_run_id, **self.fields)
        except Exception as exc:  # the run goes on; its record is what is lost
            log.warning("run %s was submitted but could not be recorded: %s: %s", prefect_run_id, type(exc).__name__, exc)

    def finished(self, **outcome: Any) -> None:
        if self.record is None:
            return
        try:
            self.service.finish_run(self.record.run_id, **outcome)
        except Exception as exc:
            log.warning("the outcome of run %s could not be recorded: %s: %s", self.record.prefect_run_id,
                        type(exc).__name__, exc)  # fmt: skip

    def run(self) -> str:
        """Submit; returns the Prefect flow run id at once."""
        run_id = self.scheduling.run(self.fields["flow_id"], self.fields["parameters"])
        self.submitted(run_id)
        return run_id

    def run_and_return(self, *, task_name: Optional[str] = None, timeout: Optional[float] = None) -> Any:
        """Submit, wait, record the outcome, and return the result (or task ``task_name``'s)."""
        try:
            result = self.scheduling.run_and_return(self.fields["flow_id"], self.fields["parameters"],
                                                    task_name=task_name, timeout=timeout,
                                                    on_submitted=self.submitted)  # fmt: skip
        except (FlowFailedError, RunTimeoutError) as exc:
            self.finished(state="cancelled" if isinstance(exc, RunTimeoutError) else "failed", error=str(exc))
            raise
        if task_name is None:
            self.finished(state="completed", result=result)
        elif self.record is not None:  # the record keeps the flow's result, as for any run
            try:
                _, flow_result = self.scheduling.run_outcome(self.record.prefect_run_id)
            except Exception as exc:
                log.warning("the result of run %s could not be read: %s", self.record.prefect_run_id, exc)
                flow_result = None
            self.finished(state="completed", result=flow_result)
        return result
