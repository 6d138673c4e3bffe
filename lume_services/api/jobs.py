"""The server's job runners: threads in each server process that run queued jobs (stores) to the end.

A runner claims the oldest queued job, heartbeats it while it runs (a
timer, so a long install still heartbeats), runs the store pipeline as the
job's actor, and records the outcome: the DeploymentRecord, or the error's
class, message and attributes (``step``). Claiming first fails jobs whose
runner stopped heartbeating (their server was stopped or killed), so a job
is never left running. A request that submits a job wakes this process's
runners at once; the others poll. An upload's job is run by the process
that received it (its archive is on that server's disk), claimed for it
when it is submitted; a store by URL may run on any replica.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
import uuid
from pathlib import Path
from typing import Any, Optional

from lume_services.errors import LUMEServicesError, UnexpectedError

log = logging.getLogger(__name__)
POLL_SECONDS = 1.0


class JobRunner:
    def __init__(self, context: Any, *, threads: int, lease: float) -> None:
        self.context = context
        self.threads = threads
        self.lease = lease
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._wake = threading.Condition()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for n in range(self.threads):
            thread = threading.Thread(target=self._loop, name=f"lume-job-runner-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self.wake()
        for thread in self._threads:
            thread.join(timeout=5)

    def run_here(self, job: Any) -> None:
        """Run a job already claimed for this runner (an upload received by this process), in its own thread."""
        service = self.context.model_db_service()
        threading.Thread(target=self.run, args=(service, job), name=f"lume-job-{job.job_id}", daemon=True).start()

    def wake(self) -> None:
        with self._wake:
            self._wake.notify_all()

    def _loop(self) -> None:
        service = self.context.model_db_service()
        while not self._stop.is_set():
            try:
                job = service.claim_job(worker=self.worker, lease=self.lease)
            except Exception:  # the database is away: try again later
                log.exception("claiming a job failed")
                job = None
            if job is None:
                with self._wake:
                    self._wake.wait(POLL_SECONDS)
                continue
            self.run(service, job)

    def run(self, service: Any, job: Any) -> None:
        beat = threading.Event()
        heart = threading.Thread(target=self._heartbeat, args=(service, job.job_id, beat), daemon=True)
        heart.start()
        try:
            record = self._store(service, job)
            service.finish_job(job.job_id, worker=self.worker, result=record.model_dump(mode="json"))
        except LUMEServicesError as exc:
            from lume_services.api.problems import attributes

            service.finish_job(job.job_id, worker=self.worker, error=exc, attributes=attributes(exc))
        except Exception as exc:  # a bug: recorded, not lost
            log.exception("job %s failed unexpectedly", job.job_id)
            error = UnexpectedError(f"job {job.job_id}", exc)
            service.finish_job(job.job_id, worker=self.worker, error=error, attributes={})
        finally:
            beat.set()
            if job.request.get("upload"):
                shutil.rmtree(uploads(self.context) / Path(job.request["upload"]).name, ignore_errors=True)

    def _heartbeat(self, service: Any, job_id: int, done: threading.Event) -> None:
        while not done.wait(self.lease / 4):
            try:
                service.heartbeat_job(job_id, worker=self.worker)
            except Exception:
                log.exception("heartbeat of job %s failed", job_id)

    def _store(self, service: Any, job: Any) -> Any:
        request = dict(job.request)
        upload, name = request.pop("upload", None), request.pop("upload_name", None)
        if upload is not None:  # an uploaded archive, kept under LUME_HOME/uploads/<upload>/
            request["source_path"] = str(uploads(self.context) / Path(upload).name / Path(name).name)
        last: dict[str, Optional[str]] = {"step": None}

        def progress(step: str, done: Optional[int], total: Optional[int]) -> None:
            if step != last["step"]:
                last["step"] = step
                service.heartbeat_job(job.job_id, worker=self.worker, step=step)

        return self.context.registrar().store_deployment(service.with_actor(job.actor), progress=progress, **request)


def uploads(context: Any) -> Path:
    return context.settings.home / "uploads"


def upload_dir(context: Any) -> Path:
    """A new private directory for one upload, under LUME_HOME/uploads."""
    base = uploads(context)
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = base / uuid.uuid4().hex
    path.mkdir(mode=0o700)
    return path
