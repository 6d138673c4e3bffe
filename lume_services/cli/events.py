"""``lume-services events``: the event feed (``list``, with ``--follow``) and the delivery process."""

from __future__ import annotations

import json
import signal
import time
from typing import Any, Optional

import click

from lume_services.cli.history import AUDIT_COLUMNS
from lume_services.cli.output import (
    ID,
    dump,
    get_service,
    handle_errors,
    json_option,
    limit_option,
    print_json,
    print_table,
)


@click.group()
def events() -> None:
    """The event feed (every change of the registry, in commit order) and webhook delivery."""


@events.command("list")
@click.option("--after", "cursor", type=click.IntRange(0), default=None, metavar="CURSOR",
              help="Only events after this cursor (the last event id you processed).")
@click.option("--type", "types", multiple=True, metavar="T",
              help="Only this event type (repeatable): e.g. deployment.live_changed or deployment.*.")
@click.option("--model-id", type=ID, default=None, metavar="ID", help="Only events of this model.")
@click.option("--follow", is_flag=True, help="Keep printing new events as they are committed (Ctrl-C stops).")
@click.option("--interval", type=click.FloatRange(0.05), default=1.0, show_default=True,
              help="Seconds between polls with --follow.")
@limit_option
@json_option
@handle_errors
def list_events(cursor: Optional[int], types: tuple[str, ...], model_id: Optional[int], follow: bool,
                interval: float, limit: int, as_json: bool) -> None:  # fmt: skip
    """List events after a cursor, oldest first; store the printed cursor to resume exactly there.

    With --json and --follow, one JSON object per line (each event), so a
    reconciler can read the stream; otherwise --json prints a page with its
    next cursor.
    """
    service = get_service()
    chosen = list(types) or None
    while True:
        page = service.list_events(after=cursor, types=chosen, model_id=model_id, limit=limit)
        if follow:
            for event in page.items:
                if as_json:
                    click.echo(json.dumps(dump(event), ensure_ascii=False))
                else:
                    print_table([event], AUDIT_COLUMNS, empty="")
            cursor = page.next_after
            if len(page.items) < limit:
                time.sleep(interval)
            continue
        if as_json:
            print_json({"items": [dump(e) for e in page.items], "next_after": page.next_after})
            return
        print_table(page.items, AUDIT_COLUMNS, empty="No events after this cursor.")
        if page.next_after is not None:
            click.echo(f"\nCursor: {page.next_after} (pass --after {page.next_after} to continue).")
        return


@events.command("deliver")
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit (no waiting for retries).")
@handle_errors
def deliver(once: bool) -> None:
    """Run the delivery process: POST events to webhooks, with retries (SIGTERM or Ctrl-C stops it).

    Any number of these may run at once, against one registry.
    """
    from lume_services.events.deliver import Deliverer

    service = get_service()
    with Deliverer(service) as deliverer:

        def stop(_signum: int, _frame: Any) -> None:
            deliverer.stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        if not once:
            click.echo(f"Delivering events as {deliverer.worker} (SIGTERM or Ctrl-C stops).", err=True)
        made = deliverer.run(once=once)
    if once:
        click.echo(f"{made} delivery attempt(s) made.")
