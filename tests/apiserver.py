"""A real `lume-services serve` (uvicorn) on a loopback port, for the API tests.

Started with subprocess.Popen in its own session (never a shell job) with
the database URL in its environment, waited for until /readyz answers, and
stopped with SIGTERM then SIGKILL, so nothing outlives the tests. Its log
(uvicorn's access log included) is kept so tests can check what it printed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import httpx

STARTUP_TIMEOUT = 60.0


@dataclass
class ApiServer:
    url: str  # http://127.0.0.1:PORT
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout=15)
                return
            except subprocess.TimeoutExpired:
                continue

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_api_server(home: Path, db_url: str, *, workers: int = 1,
                     extra_env: Optional[dict[str, str]] = None) -> ApiServer:  # fmt: skip
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LUME_", "PREFECT_"))}
    env.update({"LUME_HOME": str(home), "LUME_MODEL_DB__URL": db_url, **(extra_env or {})})
    log = home / "serve.log"
    cmd = [sys.executable, "-m", "lume_services.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(workers), "--no-deliver-events"]  # fmt: skip
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = ApiServer(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"lume-services serve exited with {process.returncode}: {server.log_text()[-2000:]}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"lume-services serve did not become ready in {STARTUP_TIMEOUT:.0f} s: "
                       f"{server.log_text()[-2000:]}")  # fmt: skip
