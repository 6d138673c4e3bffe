"""A real `lume-services worker` process for tests, always stopped (and checked) on the way out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def running_worker() -> Iterator[subprocess.Popen]:
    """Serve the configured pool until the block ends; one SIGTERM must stop it and its children."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env["PREFECT_WORKER_QUERY_SECONDS"] = "1"
    exe = Path(sys.executable).parent / "lume-services"
    worker = subprocess.Popen([str(exe), "worker"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        yield worker
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=60)
        output = worker.stdout.read().decode(errors="replace")
    assert code == 0, output
    leftover = subprocess.run(["pgrep", "-s", str(worker.pid)], capture_output=True, text=True)
    assert leftover.stdout.strip() == "", output
