"""Storing deployments over HTTP: an https URL or an uploaded archive becomes a job; jobs are read back.

The server never accepts a local path or a directory (building a directory
runs its build backend): a source is an https URL (http only with the
server's LUME_ENVIRONMENT__ALLOW_HTTP) or an archive uploaded with the
request (.whl, .tar.gz or .zip, at most LUME_API__MAX_UPLOAD_BYTES). The
answer is 202 with the job; GET /jobs/{id} says where it is and, at the
end, gives the DeploymentRecord or the error (with its ``step``).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Optional

from fastapi import APIRouter, File, Form, Request, Response, UploadFile

from lume_services.api.bodies import DeploymentCreate
from lume_services.api.deps import Access, Reader, Writer, server_scheduling
from lume_services.api.routes.common import After, Limit
from lume_services.errors import SchedulingNotConfiguredError, ScopeError, SourceError, ValidationError
from lume_services.services.models.job_records import JobRecord
from lume_services.services.models.records import Page

router = APIRouter(tags=["jobs"])
ARCHIVE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,250}\.(whl|tar\.gz|zip)")
CHUNK = 1024 * 1024


def _check_project(access: Access, project_name: str) -> None:
    token = access.token
    if token is not None and token.project_name is not None and token.project_name != project_name:
        raise ScopeError(token.name, f"write for project {token.project_name!r}", f"write for {project_name!r}",
                         "A project-limited token stores deployments in its own project only.")  # fmt: skip


def _runner(request: Request) -> Any:
    runner = getattr(request.app.state, "job_runner", None)
    if runner is None:
        raise SchedulingNotConfiguredError(
            "this server process runs no jobs (LUME_API__JOB_THREADS=0), so it takes no uploads; send the "
            "upload to a server with job threads, or store from an https URL"
        )
    return runner


def _submit(request: Request, access: Access, response: Response, arguments: dict, *, here: bool = False) -> JobRecord:
    """Queue the store (``here``: run it in this process, whose disk holds the upload)."""
    server_scheduling(request)  # a store registers with the server's Prefect: refuse now if there is none
    access.service.get_model(model_id=arguments["model_id"])
    access.service.get_project(project_name=arguments["project_name"])
    runner = _runner(request) if here else getattr(request.app.state, "job_runner", None)
    job = access.service.submit_job("store_deployment", arguments, worker=runner.worker if here else None)
    if here:
        runner.run_here(job)
    elif runner is not None:
        runner.wake()
    response.headers["Location"] = f"/api/v1/jobs/{job.job_id}"
    return job


@router.post("/models/{model_id}/deployments", response_model=JobRecord, status_code=202)
def store_deployment(model_id: int, body: DeploymentCreate, access: Writer, request: Request,
                     response: Response) -> JobRecord:  # fmt: skip
    """Store a released package from an https URL, as a job (poll GET /jobs/{job_id})."""
    from lume_services.environment.sources import parse_source

    _check_project(access, body.project_name)
    settings = request.app.state.context.settings.environment
    if not body.source_path.lower().startswith(("https://", "http://")):
        raise SourceError(body.source_path, "the server accepts https URLs or uploaded archives only, never a local "
                          "path, file:// URL or directory; upload the archive (POST .../deployments/upload)")  # fmt: skip
    parse_source(body.source_path, allow_http=settings.allow_http)
    return _submit(request, access, response, {"model_id": model_id, **body.model_dump()})


@router.post("/models/{model_id}/deployments/upload", response_model=JobRecord, status_code=202)
def upload_deployment(
    model_id: int,
    access: Writer,
    request: Request,
    response: Response,
    archive: Annotated[UploadFile, File(description="The package: a .whl, .tar.gz or .zip.")],
    project_name: Annotated[str, Form(max_length=2000)],
    is_live: Annotated[bool, Form()] = True,
    image: Annotated[Optional[str], Form(max_length=2000)] = None,
    expected_sha256: Annotated[Optional[str], Form(max_length=200)] = None,
) -> JobRecord:
    """Store an uploaded package archive, as a job (poll GET /jobs/{job_id})."""
    from lume_services.api.jobs import upload_dir

    _check_project(access, project_name)
    _runner(request)
    name = archive.filename or ""
    if ARCHIVE_NAME.fullmatch(name) is None:
        raise ValidationError("archive name", name, "expected a package file name ending in .whl, .tar.gz or "
                              ".zip, without directories")  # fmt: skip
    directory = upload_dir(request.app.state.context)
    path = directory / name
    with open(path, "wb") as out:
        while chunk := archive.file.read(CHUNK):
            out.write(chunk)
    arguments = dict(model_id=model_id, project_name=project_name, is_live=is_live, image=image,
                     expected_sha256=expected_sha256, recorded_source=f"upload:{name}",
                     upload=directory.name, upload_name=name)  # fmt: skip (no server path in the job)
    try:
        return _submit(request, access, response, arguments, here=True)
    except BaseException:
        import shutil

        shutil.rmtree(directory, ignore_errors=True)
        raise


@router.get("/jobs/{job_id}", response_model=JobRecord)
def get_job(job_id: int, access: Reader) -> JobRecord:
    return access.service.get_job(job_id)


@router.get("/jobs", response_model=Page[JobRecord])
def list_jobs(access: Reader, limit: Limit = 100, after: After = None, actor: Optional[str] = None,
              state: Optional[str] = None) -> Page[JobRecord]:  # fmt: skip
    """Jobs, newest first."""
    return access.service.list_jobs(actor=actor, state=state, limit=limit, after=after)
