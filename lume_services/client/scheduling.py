"""RemoteSchedulingService: the SchedulingService calls the Model and the spec make, through a registry server.

``run`` submits on the server (which runs flows on its Prefect workers and
records the run as the token's name: ``records_runs``); ``run_and_return``
then polls the run (0.2 s, growing to 2 s) until it is final, cancels it
after ``timeout`` and raises RunTimeoutError, and raises FlowFailedError
for a failed run, as the local service does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Optional

from lume_services.client.http import RegistryConnection, rebuild_error
from lume_services.errors import RunTimeoutError
from lume_services.services.models.job_records import RunRecord


class RemoteSchedulingService:
    records_runs = True  # the server records the runs it submits (as the token's name)

    def __init__(self, connection: RegistryConnection, *, poll: float = 0.2, max_poll: float = 2.0) -> None:
        self._http = connection
        self.poll, self.max_poll = poll, max_poll

    def __repr__(self) -> str:
        return f"RemoteSchedulingService({self._http.url!r})"

    def create_project(self, name: str, description: Optional[str] = None) -> str:
        """Create the project's work queue on the server's Prefect (the project must be stored first)."""
        from urllib.parse import quote

        self._http.send("POST", f"/projects/{quote(name, safe='')}/queue")
        return name

    def submit(self, flow_id: str, parameters: Optional[dict[str, Any]] = None) -> RunRecord:
        return RunRecord.model_validate(self._http.send("POST", "/runs", {"flow_id": flow_id,
                                                                          "parameters": parameters or {}}))  # fmt: skip

    def run(self, flow_id: str, parameters: Optional[dict[str, Any]] = None) -> str:
        """Submit a run on the server; returns the Prefect flow run id at once."""
        return self.submit(flow_id, parameters).prefect_run_id

    def run_and_return(self, flow_id: str, parameters: Optional[dict[str, Any]] = None, *,
                       task_name: Optional[str] = None, timeout: Optional[float] = None,
                       on_submitted: Optional[Callable[[str], None]] = None) -> Any:  # fmt: skip
        run = self.submit(flow_id, parameters)
        if on_submitted is not None:
            on_submitted(run.prefect_run_id)
        run = self.wait(run, timeout)
        if run.state != "completed":
            raise rebuild_error("FlowFailedError", run.error or f"Run {run.prefect_run_id} ended {run.state}.",
                                {"flow_run_id": run.prefect_run_id})  # fmt: skip
        if task_name is not None:
            return self._http.get(f"/runs/{run.run_id}/task-result", task_name=task_name)["result"]
        return run.result

    def wait(self, run: RunRecord, timeout: Optional[float]) -> RunRecord:
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = self.poll
        while not run.done:
            if deadline is not None and time.monotonic() > deadline:
                self._http.send("POST", f"/runs/{run.run_id}/cancel")
                raise RunTimeoutError(run.prefect_run_id, timeout or 0)
            time.sleep(delay)
            delay = min(delay * 1.5, self.max_poll)
            run = RunRecord.model_validate(self._http.get(f"/runs/{run.run_id}"))
        return run

    def cancel_run(self, flow_run_id: str, reason: str = "cancelled by lume-services") -> None:
        for run in self._http.get("/runs", limit=1000)["items"]:
            if run["prefect_run_id"] == flow_run_id:
                self._http.send("POST", f"/runs/{run['run_id']}/cancel")
                return
