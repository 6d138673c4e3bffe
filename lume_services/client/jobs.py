"""RemoteRegistrar: ``Model.store_deployment`` through a registry server, as a job.

An https URL is sent as such; a local archive (.whl, .tar.gz, .zip, or a
file:// URL of one) is uploaded; a directory is refused here, since the
server never builds one (build it with ``uv build`` and pass the archive).
The job is then polled (0.2 s, growing to 2 s) and its steps reported to
``progress``; the answer is the same DeploymentRecord, or the same error
class with its message and ``step``, as a local store.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from lume_services.client.http import RegistryConnection, rebuild_error
from lume_services.errors import SourceError
from lume_services.services.models.job_records import JobRecord
from lume_services.services.models.records import DeploymentRecord

Progress = Callable[[str, Optional[int], Optional[int]], None]


def local_archive(source: str) -> Path:
    """The local file a non-URL source names; a directory or a missing file is refused."""
    parts = urlsplit(source)
    path = Path(url2pathname(unquote(parts.path))) if parts.scheme == "file" else Path(source).expanduser()
    if path.is_dir():
        raise SourceError(source, "a registry server never builds a directory (that runs its build backend); "
                          "build it with `uv build` and pass the .whl or .tar.gz")  # fmt: skip
    if not path.is_file():
        raise SourceError(source, f"no such file {str(path)!r}")
    return path


class RemoteRegistrar:
    def __init__(self, connection: RegistryConnection, *, poll: float = 0.2, max_poll: float = 2.0) -> None:
        self._http = connection
        self.poll, self.max_poll = poll, max_poll

    def __repr__(self) -> str:
        return f"RemoteRegistrar({self._http.url!r})"

    def store_deployment(self, model_db_service: Any, *, model_id: int, source_path: Any, project_name: str,
                         is_live: bool = True, image: Optional[str] = None, expected_sha256: Optional[str] = None,
                         progress: Optional[Progress] = None) -> DeploymentRecord:  # fmt: skip
        """Submit the store as a job on the server and wait for its outcome."""
        source = os.fspath(source_path)
        if source.lower().startswith(("https://", "http://")):
            body = dict(source_path=source, project_name=project_name, is_live=is_live, image=image,
                        expected_sha256=expected_sha256)  # fmt: skip
            job = JobRecord.model_validate(self._http.send("POST", f"/models/{model_id}/deployments", body))
        else:
            job = self._upload(model_id, local_archive(source), project_name, is_live, image, expected_sha256)
        return self.wait(job.job_id, progress)

    def _upload(self, model_id: int, path: Path, project_name: str, is_live: bool, image: Optional[str],
                expected_sha256: Optional[str]) -> JobRecord:  # fmt: skip
        fields = {"project_name": project_name, "is_live": "true" if is_live else "false"}
        fields.update({k: v for k, v in (("image", image), ("expected_sha256", expected_sha256)) if v is not None})
        with open(path, "rb") as archive:
            response = self._http.request("POST", f"/models/{model_id}/deployments/upload", data=fields,
                                          files={"archive": (path.name, archive, "application/octet-stream")})  # fmt: skip
        return JobRecord.model_validate(response.json())

    def wait(self, job_id: int, progress: Optional[Progress] = None) -> DeploymentRecord:
        """Poll the job until it ends: its DeploymentRecord, or its error raised."""
        delay, step = self.poll, None
        while True:
            job = JobRecord.model_validate(self._http.get(f"/jobs/{job_id}"))
            if progress is not None and job.step is not None and job.step != step:
                step = job.step
                progress(step, None, None)
            if job.state == "succeeded":
                return DeploymentRecord.model_validate(job.result)
            if job.state == "failed":
                raise rebuild_error(job.error_type, job.error or "The job failed.", job.error_attributes)
            time.sleep(delay)
            delay = min(delay * 1.5, self.max_poll)
