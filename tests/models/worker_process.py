"""A real `lume-services worker` process for tests, always stopped (and checked) on the way out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lume_services.services.scheduling.worker_loop import READY


@contextmanager
def running_worker(query_seconds: str = "1", wait_until_listening: bool = False) -> Iterator[subprocess.Popen]:
    """Serve the configured pool until the block ends; one SIGTERM must stop it and its children.

    ``query_seconds`` is its poll interval; ``wait_until_listening`` waits
    until it listens to the server's flow-run events (and has done its first
    poll) before the block runs.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env["PREFECT_WORKER_QUERY_SECONDS"] = query_seconds
    exe = Path(sys.executable).parent / "lume-services"
    worker = subprocess.Popen([str(exe), "worker"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(raw.decode(errors="replace") for raw in worker.stdout))
    reader.start()
    try:
        if wait_until_listening:
            listening = READY.split("{")[0]
            deadline = time.monotonic() + 120
            while not any(listening in line for line in lines):
                assert worker.poll() is None and time.monotonic() < deadline, "".join(lines)
                time.sleep(0.1)
            time.sleep(2.0)  # its first poll (skipped until it has synced with the server) is behind it
        yield worker
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=60)
        reader.join(timeout=10)
        output = "".join(lines)
    assert code == 0, output
    leftover = subprocess.run(["pgrep", "-s", str(worker.pid)], capture_output=True, text=True)
    assert leftover.stdout.strip() == "", output
