"""A real `prefect server start` on a loopback port, for the test session.

Started with subprocess.Popen in its own session and its own PREFECT_HOME
(never as a shell background job), stopped with SIGTERM (twice if needed)
then SIGKILL, and waited for, so nothing outlives the tests.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

STARTUP_TIMEOUT = 180.0


@dataclass
class PrefectServer:
    url: str  # the API URL, ending in /api
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout=15)
                return
            except subprocess.TimeoutExpired:
                continue


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_prefect_server(home: Path) -> PrefectServer:
    home.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "LUME_"))}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_UI_ENABLED="false")
    log = home / "server.log"
    prefect = Path(sys.executable).parent / "prefect"
    cmd = [
        str(prefect),
        "server",
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-ui",
        "--analytics-off",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = PrefectServer(url=f"http://127.0.0.1:{port}/api", process=proc, log=log)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=2) as response:
                if response.status == 200:
                    return server
        except OSError:
            time.sleep(0.5)
    server.stop()
    raise RuntimeError(
        f"prefect server did not answer within {STARTUP_TIMEOUT:g} s:\n{log.read_text()[-3000:]}"
    )
