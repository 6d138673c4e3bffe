"""/api/v1/runs: submit a run of a registered flow, read its outcome, cancel it, list past runs.

The server runs flows on Prefect workers only (LUME_PREFECT__API_URL and
`lume-services worker`), never as subprocesses of the API process. A run's
parameters are checked against the flow's schema as SchedulingService.run
checks them (the Model checks its variables before it submits). Reading a
run that is not final asks Prefect; once it is, its outcome is recorded.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

from fastapi import APIRouter, Query, Request

from lume_services.api.bodies import RunCreate
from lume_services.api.deps import Access, Reader, Writer, server_scheduling
from lume_services.api.routes.common import After, Limit
from lume_services.errors import EmptyResultError, FlowFailedError, SchedulingError
from lume_services.services.models.job_records import RunRecord
from lume_services.services.models.records import Page

router = APIRouter(tags=["runs"])
Id = Annotated[Optional[int], Query(ge=1, le=2**31 - 1)]


def refresh(request: Request, access: Access, run: RunRecord, task_name: Optional[str] = None) -> RunRecord:
    """The run, with its outcome recorded if Prefect says it is final."""
    if run.done:
        return run
    try:
        final, result = server_scheduling(request).run_outcome(run.prefect_run_id, task_name)
    except FlowFailedError as exc:
        state = "cancelled" if "CANCELLED" in str(exc).upper() else "failed"
        return access.service.finish_run(run.run_id, state=state, error=str(exc))
    except EmptyResultError as exc:
        return access.service.finish_run(run.run_id, state="completed", result={"repr": str(exc)})
    if not final:
        return run
    return access.service.finish_run(run.run_id, state="completed", result=result)


@router.post("/runs", response_model=RunRecord, status_code=201)
def submit_run(body: RunCreate, access: Writer, request: Request) -> RunRecord:
    """Submit a run of the registered flow ``flow_id`` with ``parameters``; it runs on a Prefect worker."""
    flow = access.service.get_flow(flow_id=body.flow_id)
    if flow.deployment_id is None:
        raise SchedulingError(f"Flow {body.flow_id!r} belongs to no deployment; nothing was submitted.")
    access.require_project_of(flow.deployment_id)
    deployment = access.service.get_deployment(deployment_id=flow.deployment_id)
    return start_run(request, access, deployment, body.flow_id, body.parameters)


def start_run(request: Request, access: Access, deployment: Any, flow_id: str, parameters: dict[str, Any]) -> RunRecord:
    """Submit a run of ``flow_id`` (of ``deployment``) to the server's Prefect workers, and record it."""
    prefect_run_id = server_scheduling(request).run(flow_id, parameters)
    return access.service.record_run(prefect_run_id=prefect_run_id, model_id=deployment.model_id,
                                     deployment_id=deployment.deployment_id, flow_id=flow_id,
                                     parameters=parameters)  # fmt: skip


@router.get("/runs/{run_id}", response_model=RunRecord)
def get_run(run_id: int, access: Reader, request: Request) -> RunRecord:
    """The run; while it is not final, its state is read from Prefect (and recorded once final)."""
    return refresh(request, access, access.service.get_run(run_id))


@router.get("/runs/{run_id}/task-result")
def task_result(run_id: int, access: Reader, request: Request,
                task_name: Annotated[str, Query(max_length=200)]) -> dict[str, Any]:  # fmt: skip
    """The result of one task of a finished run: ``{"result": ...}``."""
    from lume_services.services.models.run_ops import as_json

    run = access.service.get_run(run_id)
    final, result = server_scheduling(request).run_outcome(run.prefect_run_id, task_name)
    if not final:
        raise SchedulingError(f"Run {run_id} is not finished; read its task results once it is.")
    return {"result": as_json(result)}


@router.post("/runs/{run_id}/cancel", response_model=RunRecord)
def cancel_run(run_id: int, access: Writer, request: Request) -> RunRecord:
    run = access.service.get_run(run_id)
    access.require_project_of(run.deployment_id)
    if run.done:
        return run
    server_scheduling(request).cancel_run(run.prefect_run_id, reason=f"cancelled by {access.name}")
    return access.service.finish_run(run.run_id, state="cancelled", error=f"cancelled by {access.name}")


@router.get("/runs", response_model=Page[RunRecord])
def list_runs(access: Reader, limit: Limit = 100, after: After = None, model_id: Id = None,
              deployment_id: Id = None, state: Annotated[Optional[str], Query(max_length=16)] = None,
              ) -> Page[RunRecord]:  # fmt: skip
    """Runs newest first (as recorded: a run not read since it ended may still say submitted)."""
    return access.service.list_runs(model_id=model_id, deployment_id=deployment_id, state=state, limit=limit,
                                    after=after)  # fmt: skip
