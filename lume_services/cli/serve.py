"""``lume-services serve``: the REST API (and, beside it, the event delivery process)."""

from __future__ import annotations

import subprocess
import sys
from typing import Optional

import click

from lume_services.cli.output import handle_errors


@click.command("serve")
@click.option("--host", default=None, help="Address to listen on (LUME_API__HOST; default 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port (LUME_API__PORT; default 8080).")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Server processes (LUME_API__WORKERS; default 1).")
@click.option("--forwarded-allow-ips", default=None, metavar="IPS",
              help="Trust X-Forwarded-* from these proxy addresses (TLS terminated by a proxy), e.g. 10.0.0.5.")
@click.option("--deliver-events/--no-deliver-events", default=True, show_default=True,
              help="Also run `lume-services events deliver` (webhooks) beside the server.")
@handle_errors
def serve(host: Optional[str], port: Optional[int], workers: Optional[int], forwarded_allow_ips: Optional[str],
          deliver_events: bool) -> None:  # fmt: skip
    """Serve the registry's REST API under /api/v1 (the OpenAPI document: /api/v1/openapi.json).

    The server holds the database settings (LUME_MODEL_DB__*); clients use a
    token from `lume-services tokens create`. Terminate TLS in front of it.
    """
    from lume_services.api.server import run
    from lume_services.config import configure

    context = configure()
    settings = context.settings.api
    context.model_db().ensure_schema()  # refuse to start on a schema this code does not expect
    delivery = None
    if deliver_events:
        delivery = subprocess.Popen([sys.executable, "-m", "lume_services.cli", "events", "deliver"])
    try:
        run(host=host or settings.host, port=port or settings.port, workers=workers or settings.workers,
            forwarded_allow_ips=forwarded_allow_ips)  # fmt: skip
    finally:
        if delivery is not None:
            delivery.terminate()
            try:
                delivery.wait(timeout=15)
            except subprocess.TimeoutExpired:
                delivery.kill()
