"""Frozen records of the server's jobs and of the runs submitted through the registry."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from lume_services.services.models.records import Record


class JobRecord(Record):
    """A job: ``state`` queued, running, succeeded or failed; ``step`` the pipeline step it is at.

    A failed job keeps the error's class (``error_type``), message and
    attributes (e.g. ``step``), so the client raises the same error.
    """

    job_id: int
    kind: str
    actor: str
    state: str
    step: Optional[str]
    request: dict[str, Any]
    result: Optional[dict[str, Any]]
    error: Optional[str]
    error_type: Optional[str]
    error_attributes: Optional[dict[str, Any]]
    created: datetime
    started: Optional[datetime]
    finished: Optional[datetime]
    heartbeat: Optional[datetime]
    worker: Optional[str]

    @property
    def done(self) -> bool:
        return self.state in ("succeeded", "failed")


class RunRecord(Record):
    """A run submitted through the registry: ``state`` submitted, running, completed, failed or cancelled."""

    run_id: int
    prefect_run_id: str
    model_id: int
    deployment_id: int
    flow_id: str
    parameters: dict[str, Any]
    actor: str
    state: str
    result: Optional[Any]
    error: Optional[str]
    created: datetime
    finished: Optional[datetime]

    @property
    def done(self) -> bool:
        return self.state in ("completed", "failed", "cancelled")
