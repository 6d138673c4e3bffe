"""Flow runs of registered deployments: submit, execute, wait, cancel, read results.

Two executors:

* ``inline`` (the default with no Prefect server configured): the flow run is
  created on the Prefect API, claimed (Pending), and executed at once by
  ``<environment>/bin/python -m prefect.engine`` in a subprocess with
  ``PREFECT__FLOW_RUN_ID`` set -- exactly the command a process worker would
  run, without waiting for a worker's poll.
* ``worker``: the run is only created; a worker serving the pool
  (``lume-services worker``) picks it up, anywhere that reaches the API.

Results are persisted with Prefect's JSON serializer into a directory both
sides can read (``LUME_PREFECT__RESULTS_PATH``), so the registry reads them
back without unpickling anything.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional
from uuid import UUID

from lume_services.errors import (
    EmptyResultError,
    FlowFailedError,
    RunTimeoutError,
    SchedulingError,
    TaskNotCompletedError,
    TaskNotInFlowError,
    ValidationError,
)

POLL_SECONDS = 0.2
TASK_RUNS_SETTLE_SECONDS = 3.0  # how long a finished run's task runs may take to be recorded
NOT_SUBMITTED = "Nothing was submitted."


def result_environment(results_path: Path, logs_path: Optional[Path] = None) -> dict[str, str]:
    """Prefect settings every flow run gets: persisted JSON results in a shared place."""
    logs = {"LUME_RUN_LOGS": str(logs_path)} if logs_path is not None else {}
    return {
        **logs,
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
        "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(results_path),
        "PREFECT_RESULTS_DEFAULT_SERIALIZER": "json",
    }


def check_parameters(schema: Mapping[str, Any], parameters: Any, flow_name: str) -> dict[str, Any]:
    """Refuse unknown names and wrong types before anything is submitted."""
    from prefect.utilities.schema_tools import validate

    if not isinstance(parameters, Mapping):
        raise ValidationError(
            "parameters", parameters, "expected a mapping of parameter names to values", NOT_SUBMITTED
        )
    known = set(schema.get("properties", {}))
    unknown = sorted(set(parameters) - known)
    if unknown:
        raise ValidationError(
            "parameters", parameters, f"flow {flow_name!r} has no parameter {', '.join(unknown)}; "
            f"its parameters are {', '.join(sorted(known)) or '(none)'}", NOT_SUBMITTED,
        )  # fmt: skip
    errors = validate(dict(parameters), schema, raise_on_error=False)
    if errors:
        reasons = "; ".join(f"{'.'.join(map(str, e.path)) or 'parameters'}: {e.message}" for e in errors)
        raise ValidationError("parameters", parameters, reasons, NOT_SUBMITTED)
    return dict(parameters)


def engine_command(python: Path) -> str:
    """The process-job command that executes a flow run with ``python``."""
    return shlex.join([str(python), "-m", "prefect.engine"])


def python_of(deployment: Any) -> Path:
    """The interpreter a process deployment's job runs (the first word of its command)."""
    command = shlex.split(str((deployment.job_variables or {}).get("command", "")))
    if not command:
        raise SchedulingError(
            f"Prefect deployment {deployment.name!r} has no process command, so it cannot run inline "
            "(it was registered for a docker or kubernetes pool); set LUME_PREFECT__EXECUTOR=worker "
            "and run a worker for its pool."
        )
    return Path(command[0])


@dataclass
class InlineExecutor:
    """Executes flow runs at once in subprocesses of this process, as a worker would.

    ``env`` is the subprocess environment (results settings included),
    ``log_dir`` receives one log file per run, and ``deadline`` (a
    ``time.monotonic()`` value) bounds every wait made through it;
    ``timed_out`` records that the deadline, not a shorter timeout, ended one.
    """

    env: dict[str, str]
    log_dir: Path
    deadline: Optional[float] = None
    timed_out: bool = False

    def start(self, client: Any, deployment: Any, flow_run_id: UUID) -> subprocess.Popen:
        return start_inline(client, flow_run_id, python_of(deployment), self.env, self.log_dir)

    def wait(
        self, client: Any, flow_run_id: UUID, timeout: Optional[float], process: Optional[subprocess.Popen]
    ) -> Any:
        """:func:`wait`, with ``timeout`` cut down to what is left before the deadline."""
        limit, by_deadline = timeout, False
        if self.deadline is not None:
            left = max(0.0, self.deadline - time.monotonic())
            limit, by_deadline = (left, True) if timeout is None or left <= timeout else (timeout, False)
        try:
            return wait(client, flow_run_id, limit, process)
        except RunTimeoutError:
            self.timed_out = self.timed_out or by_deadline
            raise


def claim(client: Any, flow_run_id: UUID) -> None:
    """Take a scheduled run for execution here (Pending), as a worker would; refuse if it is taken."""
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.states import Pending

    result = client.set_flow_run_state(flow_run_id, Pending())
    if result.status != SetStateStatus.ACCEPT:
        raise SchedulingError(
            f"Flow run '{flow_run_id}' could not be claimed ({result.status.value}): a worker serving "
            "its pool may have taken it. With a worker running, set LUME_PREFECT__EXECUTOR=worker."
        )


def start_inline(
    client: Any, flow_run_id: UUID, python: Path, env: dict[str, str], log_dir: Path
) -> subprocess.Popen:
    """Claim the run and execute it in the deployment's environment (output to a log file)."""
    claim(client, flow_run_id)
    child_env = {**env, "PREFECT__FLOW_RUN_ID": str(flow_run_id), "PREFECT_API_URL": str(client.api_url)}
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / f"{flow_run_id}.log", "wb") as log:
        process = subprocess.Popen(
            [str(python), "-m", "prefect.engine"], env=child_env, stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    process.log_path = log_dir / f"{flow_run_id}.log"  # type: ignore[attr-defined]
    return process


def wait(
    client: Any, flow_run_id: UUID, timeout: Optional[float], process: Optional[subprocess.Popen]
) -> Any:
    """Poll until the run is final; on timeout cancel it and raise."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        run = client.read_flow_run(flow_run_id)
        if run.state is not None and run.state.is_final():
            _reap(process)
            return run
        if process is not None and process.poll() is not None:
            run = client.read_flow_run(flow_run_id)  # the engine may have just reported
            if run.state is not None and run.state.is_final():
                return run
            raise FlowFailedError(str(flow_run_id), _engine_failure(process))
        if deadline is not None and time.monotonic() > deadline:
            cancel(client, flow_run_id, process, reason=f"timed out after {timeout:g} s")
            raise RunTimeoutError(str(flow_run_id), timeout or 0)
        time.sleep(POLL_SECONDS)


def cancel(client: Any, flow_run_id: UUID, process: Optional[subprocess.Popen], *, reason: str) -> None:
    """Stop a run: the executing process if it is ours, and its state on the server."""
    from prefect.states import Cancelled, Cancelling

    if process is None:
        client.set_flow_run_state(flow_run_id, Cancelling(message=reason), force=True)
        return
    _terminate(process)
    client.set_flow_run_state(flow_run_id, Cancelled(message=reason), force=True)


def flow_result(client: Any, run: Any, task_name: Optional[str], flow_name: str) -> Any:
    """The run's return value, or the result of its task named ``task_name``."""
    if run.state.is_failed() or run.state.is_crashed() or run.state.is_cancelled():
        raise FlowFailedError(str(run.id), f"{run.state.type.value}: {run.state.message or 'no message'}")
    if task_name is None:
        return _state_result(run.state, str(run.id))
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    # The server records task runs from the events their flow run sends, which may
    # arrive just after the flow run is final: look again for a little while.
    settle = time.monotonic() + TASK_RUNS_SETTLE_SECONDS
    while True:
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
        names = {_task_name(t): t for t in tasks}
        task = names.get(task_name)
        state = task.state if task is not None else None
        if (state is not None and state.is_final()) or time.monotonic() > settle:
            break
        time.sleep(POLL_SECONDS)
    if task is None:
        raise TaskNotInFlowError(flow_name, task_name, names)
    if state is None or not state.is_completed():
        raise TaskNotCompletedError(task_name, state.type.value if state is not None else "not recorded")
    return _state_result(state, str(run.id))


def _task_name(task_run: Any) -> str:
    """The task's own name: task_key is '<name>-<hash>'."""
    return task_run.task_key.rsplit("-", 1)[0]


def _state_result(state: Any, run_id: str) -> Any:
    from prefect.exceptions import MissingResult

    try:
        return state.result(raise_on_failure=True)
    except MissingResult:
        raise EmptyResultError(run_id) from None


def _reap(process: Optional[subprocess.Popen]) -> None:
    if process is not None:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            _terminate(process)


def _terminate(process: subprocess.Popen) -> None:
    import signal

    for sig in (signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None:
            break
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            continue


def _engine_failure(process: subprocess.Popen) -> str:
    log = getattr(process, "log_path", None)
    err = log.read_text(errors="replace") if log is not None and log.exists() else ""
    lines = err.strip().splitlines()[-15:]
    return f"the flow process exited with code {process.returncode}:\n" + "\n".join(lines)
