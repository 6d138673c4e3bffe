"""``lume-services webhooks``: add, list, remove and test webhooks; list and replay their deliveries.

A webhook's signing secret is printed once, when it is added (or read from
``--secret-file``); no command shows it again.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Optional

import click

from lume_services.cli.history import TIME
from lume_services.cli.output import (
    ID,
    Column,
    after_option,
    dump,
    get_service,
    handle_errors,
    json_option,
    limit_option,
    print_fields,
    print_json,
    print_next_page,
    print_table,
)

WEBHOOK_COLUMNS: list[Column] = [
    ("Webhook", lambda w: w.webhook_id),
    ("URL", lambda w: w.url),
    ("Events", lambda w: ", ".join(w.event_types)),
    ("Model", lambda w: w.model_id if w.model_id is not None else "all"),
    ("Created (UTC)", lambda w: w.created),
    ("By", lambda w: w.created_by),
]
DELIVERY_COLUMNS: list[Column] = [
    ("Delivery", lambda d: d.delivery_id),
    ("Webhook", lambda d: d.webhook_id),
    ("Event", lambda d: d.event_id),
    ("Type", lambda d: d.event_type),
    ("Model", lambda d: d.model_id),
    ("State", lambda d: d.state),
    ("Attempts", lambda d: d.attempts),
    ("Last", lambda d: d.last_status if d.last_status is not None else d.last_error),
    ("Next attempt (UTC)", lambda d: d.next_attempt_at if d.state == "pending" else None),
]


def _read_secret(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise click.ClickException(
            f"Cannot read the secret file {str(path)!r}: {reason}. Nothing was stored."
        ) from None


@click.group()
def webhooks() -> None:
    """Webhooks: targets that are POSTed the registry's events, signed, retried and replayable."""


@webhooks.command("add")
@click.argument("url")
@click.option("--event", "event_types", multiple=True, required=True, metavar="TYPE",
              help="An event type to send (repeatable): e.g. deployment.live_changed, deployment.*, or *.")
@click.option("--model-id", type=ID, default=None, metavar="ID", help="Only events of this model.")
@click.option("--secret-file", type=click.Path(path_type=Path), default=None,
              help="Read the signing secret from this file instead of generating one.")
@json_option
@handle_errors
def add(url: str, event_types: tuple[str, ...], model_id: Optional[int], secret_file: Optional[Path],
        as_json: bool) -> None:  # fmt: skip
    """Add a webhook; prints its id and, this once, its signing secret."""
    secret = _read_secret(secret_file) if secret_file is not None else None
    new = get_service().add_webhook(url, event_types=list(event_types), model_id=model_id, secret=secret)
    shown = None if secret_file is not None else new.secret.get_secret_value()
    if as_json:
        print_json({"webhook": dump(new.webhook), "secret": shown})
        return
    click.echo(f"Webhook {new.webhook.webhook_id} sends {', '.join(new.webhook.event_types)} to {new.webhook.url}.")
    if shown is not None:
        click.echo(f"Signing secret (shown only now; store it with the receiver): {shown}")
    else:
        click.echo(f"Signing secret: the one in {str(secret_file)!r}.")


@webhooks.command("list")
@json_option
@handle_errors
def list_webhooks(as_json: bool) -> None:
    """List webhooks (never their secrets)."""
    items = get_service().list_webhooks()
    if as_json:
        print_json([dump(w) for w in items])
        return
    print_table(items, WEBHOOK_COLUMNS, empty="No webhooks.")


@webhooks.command("remove")
@click.argument("webhook_id", type=ID)
@json_option
@handle_errors
def remove(webhook_id: int, as_json: bool) -> None:
    """Remove a webhook, its deliveries and their attempts."""
    record = get_service().remove_webhook(webhook_id)
    if as_json:
        print_json(dump(record))
        return
    click.echo(f"Webhook {record.webhook_id} ({record.url}) is removed.")


@webhooks.command("test")
@click.argument("webhook_id", type=ID)
@json_option
@handle_errors
def test(webhook_id: int, as_json: bool) -> None:
    """Send a webhook.tested event to this webhook now, and say how it went."""
    from lume_services.events.deliver import Deliverer

    service = get_service()
    event_id = service.test_webhook(webhook_id)
    with Deliverer(service) as deliverer:
        deliverer.round(webhook_id=webhook_id)
    found = service.list_deliveries(webhook_id=webhook_id, event_id=event_id, limit=1).items
    delivery = service.get_delivery(found[0].delivery_id) if found else None
    if as_json:
        print_json({"event_id": event_id, "delivery": dump(delivery)})
        return
    if delivery is None:
        raise click.ClickException(f"Event {event_id} has no delivery yet; this is a bug, please report it.")
    _print_delivery(delivery)
    if delivery.state != "delivered":
        raise click.ClickException(
            f"The test event was not delivered (delivery {delivery.delivery_id} is {delivery.state}); "
            "it is retried by `lume-services events deliver`."
        )


def _print_delivery(d: Any) -> None:
    print_fields([("Delivery", d.delivery_id), ("Webhook", d.webhook_id), ("Event", f"{d.event_id} ({d.event_type})"),
                  ("State", d.state), ("Attempts", d.attempts)])  # fmt: skip
    for a in d.attempt_log:
        outcome = f"HTTP {a.status_code}" if a.status_code is not None else a.error
        click.echo(f"  attempt {a.attempt} at {a.started:%Y-%m-%d %H:%M:%S}: {outcome} in {a.duration * 1000:.0f} ms")


@webhooks.command("deliveries")
@click.option("--webhook", "webhook_id", type=ID, default=None, metavar="ID", help="Only this webhook's.")
@click.option("--failed", is_flag=True, help="Only dead ones and those waiting to be retried.")
@click.option("--show", "show_id", type=ID, default=None, metavar="ID", help="Show one delivery with its attempts.")
@limit_option
@after_option("delivery")
@json_option
@handle_errors
def deliveries(webhook_id: Optional[int], failed: bool, show_id: Optional[int], limit: int,
               after: Optional[int], as_json: bool) -> None:  # fmt: skip
    """List deliveries in id order (or show one with every attempt)."""
    service = get_service()
    if show_id is not None:
        delivery = service.get_delivery(show_id)
        print_json(dump(delivery)) if as_json else _print_delivery(delivery)
        return
    page = service.list_deliveries(webhook_id=webhook_id, failed=failed, limit=limit, after=after)
    if as_json:
        print_json({"items": [dump(d) for d in page.items], "next_after": page.next_after})
        return
    print_table(page.items, DELIVERY_COLUMNS, empty="No deliveries match.")
    print_next_page(page.next_after, "deliveries")


@webhooks.command("replay")
@click.argument("delivery_id", type=ID, required=False)
@click.option("--webhook", "webhook_id", type=ID, default=None, metavar="ID",
              help="Replay every event of this webhook since --since.")
@click.option("--since", type=TIME, default=None, help="With --webhook: events at or after this time.")
@json_option
@handle_errors
def replay(delivery_id: Optional[int], webhook_id: Optional[int], since: Optional[datetime], as_json: bool) -> None:
    """Send events again: one delivery (DELIVERY_ID), or a webhook's events since a time."""
    if (delivery_id is None) == (webhook_id is None) or (webhook_id is not None) != (since is not None):
        raise click.UsageError("give DELIVERY_ID, or --webhook ID with --since TIME")
    service = get_service()
    if delivery_id is not None:
        new = service.replay_delivery(delivery_id)
        if as_json:
            print_json(dump(new))
            return
        click.echo(f"Delivery {new.delivery_id} replays delivery {delivery_id} (event {new.event_id}); "
                   f"it is {new.state}.")  # fmt: skip
        return
    assert webhook_id is not None and since is not None
    count = service.replay_since(webhook_id, since=since)
    if as_json:
        print_json({"webhook_id": webhook_id, "replayed": count})
        return
    click.echo(f"{count} event(s) since {since.isoformat()} are queued again for webhook {webhook_id}.")
