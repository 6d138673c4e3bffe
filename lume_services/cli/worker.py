"""``lume-services worker``: a Prefect process worker for the registry's pool.

It is Prefect's ``ProcessWorker``, woken by the server's flow-run events as
well as by its poll (:mod:`lume_services.services.scheduling.worker_loop`),
so a submitted run starts at once; ``--no-wake`` polls only.

The worker runs as a child process in its own process group. One SIGTERM or
SIGINT (Ctrl-C) stops it and every process it started (the flow runs), even
when this command was started in the background by a non-interactive shell
(which would otherwise ignore SIGINT); a second signal, or 20 s of waiting,
kills what is left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import click

from lume_services.cli.output import handle_errors

GRACE_SECONDS = 20.0


@click.command("worker")
@click.option("--pool", default=None, help="Work pool to serve (default: LUME_PREFECT__POOL_NAME).")
@click.option("--limit", type=click.IntRange(1), default=None, help="Most flow runs at once.")
@click.option(
    "--wake/--no-wake",
    default=True,
    show_default=True,
    help="Start runs as soon as the server reports them scheduled (one event stream), "
    "not only at the next poll (PREFECT_WORKER_QUERY_SECONDS, default 10 s).",
)
@handle_errors
def worker(pool: Optional[str], limit: Optional[int], wake: bool) -> None:
    """Serve the registry's work pool: execute submitted flow runs in their deployments' environments."""
    from lume_services.config import configure

    ctx = configure()
    scheduling = ctx.scheduling_service()
    pool = pool or scheduling.pool_name
    env = dict(os.environ)
    if ctx.settings.prefect.api_url:
        env["PREFECT_API_URL"] = ctx.settings.prefect.api_url
    if not env.get("PREFECT_API_URL"):
        raise click.ClickException(
            "A worker needs a Prefect server: set LUME_PREFECT__API_URL (or PREFECT_API_URL). "
            "Without one, runs execute inline and need no worker."
        )
    env.setdefault("PREFECT_HOME", str(ctx.settings.home / "prefect"))
    cmd = [sys.executable, "-m", "lume_services.services.scheduling.worker_loop", "--pool", pool]
    if limit:
        cmd += ["--limit", str(limit)]
    if not wake:
        cmd.append("--no-wake")
    click.echo(f"Serving work pool {pool!r} at {env['PREFECT_API_URL']} (Ctrl-C or SIGTERM stops it).", err=True)
    sys.exit(supervise(cmd, env))


def supervise(cmd: list[str], env: dict[str, str]) -> int:
    """Run ``cmd`` in its own process group; forward one signal as a full stop."""
    child = subprocess.Popen(cmd, env=env, start_new_session=True)
    stopping: list[float] = []

    def stop(signum: int, _frame: object) -> None:
        sig = signal.SIGTERM if not stopping else signal.SIGKILL
        stopping.append(time.monotonic())
        _signal_tree(child.pid, sig)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)  # also replaces an inherited SIG_IGN
    while True:
        try:
            code = child.wait(timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            if stopping and time.monotonic() - stopping[0] > GRACE_SECONDS:
                _signal_tree(child.pid, signal.SIGKILL)
    _signal_tree(child.pid, signal.SIGKILL)  # flow runs left behind by the worker
    return 0 if stopping else code


def _signal_tree(pid: int, sig: int) -> None:
    """Signal ``pid``, its process group and every descendant (flow runs may start their own)."""
    for target in [pid, *_descendants(pid)]:
        try:
            os.kill(target, sig)
        except ProcessLookupError:
            pass
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found
