"""A server SIGKILLed in the middle of a job: the job is failed by the next server, never left running.

The job's download hangs on a loopback server that sends headers and then
nothing, so the job is certainly running when its server is killed. Also:
an upload over the size limit is refused before it is stored.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

import httpx
import pytest
from apiserver import start_api_server
from factories import emptied

from lume_services.client.http import RegistryConnection
from lume_services.client.jobs import RemoteRegistrar
from lume_services.client.settings import RegistrySettings
from lume_services.errors import JobInterruptedError
from lume_services.services.models.service import ModelDBService

pytestmark = pytest.mark.slow
LEASE = "5"


class HangingServer:
    """Answers every request with headers promising a body, then sends nothing until closed."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/gzip\r\nContent-Length: 1000000\r\n\r\n")
            self.connections.append(conn)

    def close(self) -> None:
        for conn in self.connections:
            conn.close()
        self.sock.close()


def server_env(home) -> dict[str, str]:
    return {"LUME_PREFECT__API_URL": "http://127.0.0.1:9/api",  # a store never gets as far as registering
            "LUME_ENVIRONMENT__ALLOW_HTTP": "true", "LUME_ENVIRONMENT__READ_TIMEOUT": "600",
            "LUME_API__JOB_LEASE": LEASE, "LUME_API__MAX_UPLOAD_BYTES": "2048"}  # fmt: skip


def test_a_job_of_a_killed_server_is_failed_by_the_next(migrated_dbs, tmp_path) -> None:
    # A database of its own: the session's API servers would claim the job too (their runners poll theirs).
    db = emptied(migrated_dbs("sqlite", "lume_killed_server"))
    service = ModelDBService(db)
    url = db.engine.url.render_as_string(hide_password=False)
    service.store_project(project_name="test", description="d")
    model_id = service.store_model(author="a", laboratory="slac", facility="lcls", beampath="b", description="k")
    token = service.create_token("physicist", scope="write").token.get_secret_value()
    hanging = HangingServer()
    first = start_api_server(tmp_path / "first", url, extra_env=server_env(tmp_path))
    try:
        headers = {"Authorization": f"Bearer {token}"}
        source = f"http://127.0.0.1:{hanging.port}/my_model-0.1.0.tar.gz"
        job = httpx.post(f"{first.url}/api/v1/models/{model_id}/deployments", headers=headers,
                         json={"source_path": source, "project_name": "test"}).json()  # fmt: skip
        deadline = time.monotonic() + 60
        while service.get_job(job["job_id"]).step != "fetch" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert service.get_job(job["job_id"]).state == "running"
        os.killpg(first.process.pid, signal.SIGKILL)  # the server dies mid-download
        first.process.wait(timeout=30)
    finally:
        first.stop()
        hanging.close()
    assert service.get_job(job["job_id"]).state == "running"  # nobody has noticed yet

    second = start_api_server(tmp_path / "second", url, extra_env=server_env(tmp_path))
    try:
        registrar = RemoteRegistrar(RegistryConnection(RegistrySettings(url=second.url, token=token)))
        with pytest.raises(JobInterruptedError, match="stopped before it finished"):
            registrar.wait(job["job_id"])  # the second server's runners fail it once its lease is over
        assert service.get_deployments(model_id=model_id) == []

        big = httpx.post(f"{second.url}/api/v1/models/{model_id}/deployments/upload", headers=headers,
                         data={"project_name": "test"}, files={"archive": ("m-0.1.0.tar.gz", b"x" * 4096)})  # fmt: skip
        assert big.status_code == 413 and "LUME_API__MAX_UPLOAD_BYTES" in big.json()["detail"]
        assert len(service.list_jobs().items) == 1
    finally:
        second.stop()
