"""The Prefect flow that runs a flow of flows (a composite parent deployment).

Its deployment carries the steps as a default parameter, so running it needs
no registry database: for each step in order it starts the child deployment
as a subflow run (each child in its own environment: inline, or by a worker),
waits for it, and feeds mapped outputs into later steps' parameters. A child
failure stops the composite with a message naming the child and its run.

It runs in the registry's interpreter: in a flow-run process started by a
worker, or, with the inline executor, in the caller's own process
(``SchedulingService.run_and_return`` sets :data:`inline_executor` to its own
executor, whose deadline then bounds every step).
"""

from __future__ import annotations

import logging
import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Optional
from uuid import UUID

from prefect import flow, get_client
from prefect.deployments import run_deployment

from lume_services.environment.runner import child_environment
from lume_services.errors import FlowFailedError
from lume_services.flows.spec import COMPOSITE_FLOW_NAME
from lume_services.services.scheduling import runs

log = logging.getLogger(__name__)
# Set by a caller that runs the composite in its own process.
inline_executor: ContextVar[Optional[runs.InlineExecutor]] = ContextVar("inline_executor", default=None)


def select(value: Any, index: Optional[list[Any]]) -> Any:
    """Walk ``attribute_index`` (keys and positions) into a result."""
    for key in index or []:
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            raise KeyError(
                f"attribute_index {index!r}: {key!r} not found in {type(value).__name__}"
            ) from None
    return value


def step_parameters(step: dict[str, Any], given: dict[str, Any], outputs: dict[str, Any]) -> dict[str, Any]:
    params = dict(given.get(step["name"], {}))
    for param, mapping in step.get("mapped_parameters", {}).items():
        parent = outputs[mapping["parent_flow_name"]]
        source = (
            parent["tasks"][mapping["parent_task_name"]]
            if mapping.get("parent_task_name")
            else parent["result"]
        )
        params[param] = select(source, mapping.get("attribute_index"))
    return params


def _executor() -> runs.InlineExecutor:
    """The caller's executor, or one from this flow-run process's environment (its job's env)."""
    executor = inline_executor.get()
    if executor is not None:
        return executor
    logs = Path(os.environ.get("LUME_RUN_LOGS") or Path(os.environ["PREFECT_HOME"]) / "runs")
    return runs.InlineExecutor(child_environment(None), logs)


def _run_child(
    client: Any, step: dict[str, Any], params: dict[str, Any], inline: bool, timeout: float
) -> Any:
    executor = _executor()
    child = run_deployment(UUID(step["flow_id"]), parameters=params, timeout=0, as_subflow=True)
    process = None
    try:
        if inline:
            process = executor.start(client, client.read_deployment(UUID(step["flow_id"])), child.id)
        finished = executor.wait(client, child.id, timeout, process)
    except BaseException:
        # Failed to start, timed out or interrupted: do not leave the step running or waiting.
        _stop(client, child.id, process, inline)
        raise
    if not finished.state.is_completed():
        raise FlowFailedError(
            str(finished.id),
            f"step {step['position']} ({step['name']!r}) failed: {finished.state.message or finished.state.type.value}",
        )
    return finished


def _stop(client: Any, run_id: UUID, process: Any, inline: bool) -> None:
    from prefect.states import Cancelled

    reason = "its flow of flows stopped"
    try:
        state = client.read_flow_run(run_id).state
        if state is not None and state.is_final():
            return
        if process is not None or not inline:  # ours to kill, or a worker's to stop
            runs.cancel(client, run_id, process, reason=reason)
        else:  # never started
            client.set_flow_run_state(run_id, Cancelled(message=reason), force=True)
    except Exception:  # the original error matters more; say what may be left behind
        log.warning("could not cancel step run %s", run_id, exc_info=True)


@flow(name=COMPOSITE_FLOW_NAME)
def run_flow_of_flows(
    steps: list[dict[str, Any]],
    parameters: Optional[dict[str, dict[str, Any]]] = None,
    inline: bool = True,
    step_timeout: float = 3600.0,
) -> dict[str, Any]:
    """Run ``steps`` in order; returns each step's result by flow name (the last under "result")."""
    outputs: dict[str, Any] = {}
    with get_client(sync_client=True) as client:
        for step in steps:
            params = step_parameters(step, parameters or {}, outputs)
            finished = _run_child(client, step, params, inline, step_timeout)
            tasks = {
                name: runs.flow_result(client, finished, name, step["name"])
                for name in step.get("tasks_needed", [])
            }
            outputs[step["name"]] = {
                "result": runs.flow_result(client, finished, None, step["name"]),
                "tasks": tasks,
            }
    last = steps[-1]["name"]
    return {
        "result": outputs[last]["result"],
        "steps": {name: out["result"] for name, out in outputs.items()},
    }
