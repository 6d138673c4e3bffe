"""The server's jobs: submitted by a request, claimed by a job runner, heartbeated, finished once.

A job is claimed in one transaction (``FOR UPDATE SKIP LOCKED`` on
MariaDB/PostgreSQL; SQLite serialises writers), so two runners never run
the same job. A running job's runner heartbeats it; one whose heartbeat is
older than the lease was interrupted (its server stopped or was killed) and
is failed by the next runner that looks, with a message saying so: a job is
never left running forever. Jobs are work, not registry changes: what a job
changes is recorded by the change itself (audit events, as the job's actor).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, Optional

from sqlalchemy import insert, or_, select, update

from lume_services.errors import JobNotFoundError, ValidationError
from lume_services.services.models.db.schema import ERROR_LENGTH, WORKER_LENGTH, Job
from lume_services.services.models.job_records import JobRecord
from lume_services.services.models.queries import make_page
from lume_services.services.models.records import Page
from lume_services.services.models.unit_of_work import ServiceBase
from lume_services.services.models.validation import check_page, check_value
from lume_services.services.models.writes import Change

JOBS = Job.__table__
KINDS = ("store_deployment",)
INTERRUPTED = ("The server running this job stopped before it finished (no heartbeat for {lease:.0f} s); "
               "nothing was recorded by it. Submit it again.")  # fmt: skip


def check_json(field: str, value: Any, consequence: str = "Nothing was stored.") -> Any:
    """``value`` if it is a JSON object (a dict that json can write); else ValidationError."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(field, "(not JSON)", f"expected a JSON object ({exc})", consequence) from None
    if not isinstance(value, dict):
        raise ValidationError(field, value, "expected a JSON object", consequence)
    return value


def check_lease(lease: Any) -> float:
    if isinstance(lease, bool) or not isinstance(lease, (int, float)) or not 0 < lease <= 86400:
        raise ValidationError("lease", lease, "expected a number of seconds, above 0 and at most 86400",
                              "Nothing was claimed.")  # fmt: skip
    return float(lease)


def check_worker(worker: Any) -> str:
    if not isinstance(worker, str) or not 0 < len(worker) <= WORKER_LENGTH or not worker.isprintable():
        raise ValidationError("worker", worker, f"expected 1 to {WORKER_LENGTH} printable characters",
                              "Nothing was claimed.")  # fmt: skip
    return worker


class JobOps(ServiceBase):
    def submit_job(self, kind: str, request: dict[str, Any], *, worker: Optional[str] = None) -> JobRecord:
        """Queue a job of ``kind`` with its (JSON) request, as this service's actor.

        With ``worker`` the job starts running for that worker at once instead
        (an upload, whose archive is on the disk of the server that received it).
        """
        if not isinstance(kind, str) or kind not in KINDS:
            raise ValidationError("job kind", kind, f"expected one of {', '.join(KINDS)}")
        check_json("job request", request)
        if worker is not None:
            check_worker(worker)

        def work(change: Change) -> JobRecord:
            now = None if worker is None else change.now
            row = dict(kind=kind, actor=change.actor, state="queued" if worker is None else "running", step=None,
                       request=request, result=None, error=None, error_type=None, error_attributes=None,
                       created=change.now, started=now, finished=None, heartbeat=now, worker=worker)  # fmt: skip
            job_id = change.execute(insert(JOBS), row).inserted_primary_key[0]
            return JobRecord(job_id=job_id, **row)

        return self._write("submit_job", work, core=True)

    def get_job(self, job_id: int) -> JobRecord:
        check_value(Job, "job_id", job_id, as_filter=True)
        row = self._read("get_job", lambda c: c.execute(select(JOBS).where(JOBS.c.job_id == job_id)).first(),
                         core=True)  # fmt: skip
        if row is None:
            raise JobNotFoundError({"job_id": job_id})
        return JobRecord.model_validate(row)

    def list_jobs(self, *, actor: Optional[str] = None, state: Optional[str] = None, limit: int = 100,
                  after: Optional[int] = None) -> Page[JobRecord]:  # fmt: skip
        """Jobs newest first (``after``: the previous page's ``next_after``)."""
        limit = check_page(limit)
        stmt = select(JOBS).order_by(JOBS.c.job_id.desc()).limit(limit + 1)
        if actor is not None:
            stmt = stmt.where(JOBS.c.actor == check_value(Job, "actor", actor, as_filter=True))
        if state is not None:
            stmt = stmt.where(JOBS.c.state == check_value(Job, "state", state, as_filter=True))
        if after is not None:
            stmt = stmt.where(JOBS.c.job_id < check_value(Job, "job_id", after, as_filter=True))
        rows = self._read("list_jobs", lambda c: c.execute(stmt).all(), core=True)
        return make_page([JobRecord.model_validate(r) for r in rows], limit, lambda j: j.job_id)

    def claim_job(self, *, worker: str, lease: float) -> Optional[JobRecord]:
        """The oldest queued job, now running for ``worker``; first fails jobs whose runner went quiet."""
        check_worker(worker)
        lease = check_lease(lease)

        def work(change: Change) -> Optional[JobRecord]:
            stale = change.now - timedelta(seconds=lease)
            change.execute(
                update(JOBS).where(JOBS.c.state == "running", or_(JOBS.c.heartbeat.is_(None), JOBS.c.heartbeat < stale))
                .values(state="failed", finished=change.now, error=INTERRUPTED.format(lease=lease),
                        error_type="JobInterruptedError", error_attributes={"step": None})
            )  # fmt: skip
            stmt = (select(JOBS.c.job_id).where(JOBS.c.state == "queued").order_by(JOBS.c.job_id).limit(1)
                    .with_for_update(skip_locked=True))  # fmt: skip
            job_id = change.execute(stmt).scalar()
            if job_id is None:
                return None
            change.execute(update(JOBS).where(JOBS.c.job_id == job_id).values(
                state="running", started=change.now, heartbeat=change.now, worker=worker))  # fmt: skip
            return JobRecord.model_validate(change.execute(select(JOBS).where(JOBS.c.job_id == job_id)).one())

        return self._write("claim_job", work, core=True)

    def heartbeat_job(self, job_id: int, *, worker: str, step: Optional[str] = None) -> bool:
        """Say the job is still being worked on (at ``step``); False if it is no longer this worker's."""
        check_value(Job, "job_id", job_id, as_filter=True)
        check_worker(worker)
        values: dict[str, Any] = {}
        if step is not None:
            if not isinstance(step, str):
                raise ValidationError("step", step, "expected text", "Nothing was changed.")
            values["step"] = step[:64]

        def work(change: Change) -> bool:
            return bool(change.execute(
                update(JOBS).where(JOBS.c.job_id == job_id, JOBS.c.state == "running", JOBS.c.worker == worker)
                .values(heartbeat=change.now, **values)
            ).rowcount)  # fmt: skip

        return self._write("heartbeat_job", work, core=True)

    def finish_job(self, job_id: int, *, worker: str, result: Optional[dict[str, Any]] = None,
                   error: Optional[BaseException] = None, attributes: Optional[dict[str, Any]] = None) -> bool:  # fmt: skip
        """Record the outcome (``result``, or ``error`` with its plain ``attributes``); False if not ours."""
        check_value(Job, "job_id", job_id, as_filter=True)
        check_worker(worker)
        if result is not None:
            check_json("job result", result)
        if attributes is not None:
            check_json("error attributes", attributes)
        if error is not None and not isinstance(error, BaseException):
            raise ValidationError("error", error, "expected an exception", "Nothing was changed.")
        if error is None:
            values: dict[str, Any] = dict(state="succeeded", result=result)
        else:
            values = dict(state="failed", error=str(error)[: ERROR_LENGTH * 32], error_type=type(error).__name__,
                          error_attributes=attributes or {})  # fmt: skip

        def work(change: Change) -> bool:
            return bool(change.execute(
                update(JOBS).where(JOBS.c.job_id == job_id, JOBS.c.state == "running", JOBS.c.worker == worker)
                .values(finished=change.now, heartbeat=change.now, **values)
            ).rowcount)  # fmt: skip

        return self._write("finish_job", work, core=True)
