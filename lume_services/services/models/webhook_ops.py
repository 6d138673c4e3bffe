"""Webhooks: add, list, remove, test; their deliveries: list, show, replay.

A webhook is sent the events of some types (of one model, or every model).
Its deliveries are derived from the event feed by the delivery process
(:mod:`.delivery_ops`), never written by the change itself: the audit event
written in the change's transaction is the outbox, and a webhook's
``cursor`` says up to which event it was matched. A new webhook starts at
the newest event (it is not sent the past; ``replay_since`` sends it).

Secrets: generated (or given) when the webhook is added, returned that once
(``NewWebhook.secret``, a SecretStr), stored for signing, never exported,
never in a record, a repr, an audit event or a message.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Optional
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import delete, func, insert, or_, select

from lume_services.errors import DeliveryNotFoundError, ValidationError, WebhookNotFoundError
from lume_services.events.settings import EventsSettings
from lume_services.events.signing import MAX_SECRET, MIN_SECRET, new_secret
from lume_services.events.targets import check_target
from lume_services.services.models.db.schema import (
    AuditEvent,
    Model,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
)
from lume_services.services.models.event_ops import check_types, type_matches
from lume_services.services.models.event_records import (
    AttemptRecord,
    DeliveryRecord,
    NewWebhook,
    WebhookRecord,
)
from lume_services.services.models.queries import make_page
from lume_services.services.models.records import Page
from lume_services.services.models.unit_of_work import ServiceBase
from lume_services.services.models.validation import check_page, check_time, check_value
from lume_services.services.models.writes import Change

EVENTS, MODELS = AuditEvent.__table__, Model.__table__
WEBHOOKS, DELIVERIES, ATTEMPTS = Webhook.__table__, WebhookDelivery.__table__, WebhookAttempt.__table__
WEBHOOK_COLUMNS = [c for c in WEBHOOKS.c if c.key != "secret"]
DELIVERY_COLUMNS = [c for c in DELIVERIES.c if c.key != "body"]
DELIVERY_STATES = ("queued", "pending", "delivered", "dead")
OPEN = ("queued", "pending")


def public_url(url: str) -> str:
    """The URL without its query (which may hold a token), for the audit trail."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def delivery_record(row: Any, attempts: Sequence[AttemptRecord] = ()) -> DeliveryRecord:
    values = {k: v for k, v in row._mapping.items() if k != "body"}
    values["model_id"] = values.pop("model_key") or None
    return DeliveryRecord.model_validate({**values, "attempt_log": list(attempts)})


def check_secret(secret: Any) -> str:
    if not isinstance(secret, str):
        raise ValidationError("secret", "***", "expected text")
    secret = secret.strip()
    if not MIN_SECRET <= len(secret) <= MAX_SECRET or any(not c.isprintable() or c.isspace() for c in secret):
        # never the value itself in the message
        raise ValidationError(
            "secret", "***", f"expected {MIN_SECRET} to {MAX_SECRET} printable characters without spaces"
        )
    return secret


def enqueue(change: Change, webhook_id: int, events: Sequence[Any], bodies: dict[int, str],
            *, replay_of: Optional[dict[int, int]] = None) -> list[int]:  # fmt: skip
    """Insert deliveries of ``events`` (rows of audit_event, in id order) for one locked webhook.

    The first delivery of a (webhook, model) with no open delivery is
    ``pending`` (due now), the others ``queued`` behind it: deliveries of one
    webhook for one model are sent in event order.
    """
    if not events:
        return []
    keys = sorted({e.model_id or 0 for e in events})
    open_groups = set(
        change.execute(
            select(DELIVERIES.c.model_key).distinct().where(
                DELIVERIES.c.webhook_id == webhook_id, DELIVERIES.c.model_key.in_(keys),
                DELIVERIES.c.state.in_(OPEN),
            )
        ).scalars()
    )  # fmt: skip
    rows = []
    for event in events:
        key = event.model_id or 0
        state = "queued" if key in open_groups else "pending"
        open_groups.add(key)
        rows.append(dict(webhook_id=webhook_id, event_id=event.event_id, event_type=event.action, model_key=key,
                         state=state, attempts=0, created=change.now, next_attempt_at=change.now,
                         claimed_until=None, claimed_by=None, finished=None, last_status=None, last_error=None,
                         replay_of=(replay_of or {}).get(event.event_id), body=bodies[event.event_id]))  # fmt: skip
    change.execute(insert(DELIVERIES), rows)
    return [r["event_id"] for r in rows]


class WebhookOps(ServiceBase):
    _events_settings: EventsSettings = EventsSettings()

    @property
    def events_settings(self) -> EventsSettings:
        """The delivery settings (LUME_EVENTS__*); the context sets the configured ones."""
        return self._events_settings

    @events_settings.setter
    def events_settings(self, value: EventsSettings) -> None:
        self._events_settings = value

    def add_webhook(
        self,
        url: str,
        *,
        event_types: Sequence[str],
        model_id: Optional[int] = None,
        secret: Optional[str] = None,
    ) -> NewWebhook:
        """Add a webhook; returns it with its signing secret (generated unless given), shown only now.

        The URL is checked now (https unless LUME_EVENTS__ALLOW_HTTP; its host
        must not resolve to a private address unless allowed) and again before
        every delivery. It is sent the events after the newest one now.
        """
        check_target(url, self.events_settings)
        types = check_types("event type", event_types, "Nothing was stored.")
        if not types:
            raise ValidationError("event type", [], "give at least one event type (or * for all)")
        if model_id is not None:
            check_value(Webhook, "model_id", model_id)
        secret = new_secret() if secret is None else check_secret(secret)

        def work(change: Change) -> WebhookRecord:
            if model_id is not None and change.execute(
                select(MODELS.c.model_id).where(MODELS.c.model_id == model_id)
            ).first() is None:  # fmt: skip
                from lume_services.errors import ModelNotFoundError

                raise ModelNotFoundError({"model_id": model_id})
            change.lock_feed()  # the newest event now is the newest committed one
            cursor = change.execute(select(func.coalesce(func.max(EVENTS.c.event_id), 0))).scalar_one()
            row = dict(url=url, secret=secret, event_types=types, model_id=model_id, created=change.now,
                       created_by=change.actor, cursor=cursor)  # fmt: skip
            webhook_id = change.execute(insert(WEBHOOKS), row).inserted_primary_key[0]
            record = WebhookRecord(webhook_id=webhook_id, **{k: v for k, v in row.items() if k != "secret"})
            change.record("webhook.created", "webhook", webhook_id, model_id=model_id,
                          after={"url": public_url(url), "event_types": types, "model_id": model_id})  # fmt: skip
            return record

        return NewWebhook(webhook=self._write("add_webhook", work, core=True), secret=secret)

    def get_webhook(self, webhook_id: int) -> WebhookRecord:
        check_value(Webhook, "webhook_id", webhook_id, as_filter=True)
        stmt = select(*WEBHOOK_COLUMNS).where(WEBHOOKS.c.webhook_id == webhook_id)
        row = self._read("get_webhook", lambda c: c.execute(stmt).first(), core=True)
        if row is None:
            raise WebhookNotFoundError({"webhook_id": webhook_id})
        return WebhookRecord.model_validate(row)

    def list_webhooks(self) -> list[WebhookRecord]:
        stmt = select(*WEBHOOK_COLUMNS).order_by(WEBHOOKS.c.webhook_id)
        rows = self._read("list_webhooks", lambda c: c.execute(stmt).all(), core=True)
        return [WebhookRecord.model_validate(r) for r in rows]

    def remove_webhook(self, webhook_id: int) -> WebhookRecord:
        """Delete a webhook with its deliveries and their attempts."""
        record = self.get_webhook(webhook_id)

        def work(change: Change) -> None:
            deleted = change.execute(delete(WEBHOOKS).where(WEBHOOKS.c.webhook_id == webhook_id)).rowcount
            if not deleted:
                raise WebhookNotFoundError({"webhook_id": webhook_id})
            change.record("webhook.deleted", "webhook", webhook_id, model_id=record.model_id,
                          before={"url": public_url(record.url), "event_types": record.event_types})  # fmt: skip

        self._write("remove_webhook", work, core=True)
        return record

    def test_webhook(self, webhook_id: int) -> int:
        """Record a ``webhook.tested`` event, which is sent to this webhook only; returns its event id."""
        record = self.get_webhook(webhook_id)

        def work(change: Change) -> None:
            change.record("webhook.tested", "webhook", webhook_id, model_id=record.model_id,
                          after={"url": public_url(record.url)})  # fmt: skip

        self._write("test_webhook", work, core=True)
        stmt = (select(func.max(EVENTS.c.event_id))
                .where(EVENTS.c.action == "webhook.tested", EVENTS.c.entity_id == str(webhook_id)))  # fmt: skip
        return self._read("test_webhook", lambda c: c.execute(stmt).scalar_one(), core=True)

    # -- deliveries -------------------------------------------------------------------

    def list_deliveries(
        self,
        *,
        webhook_id: Optional[int] = None,
        event_id: Optional[int] = None,
        state: Optional[str] = None,
        failed: bool = False,
        limit: int = 100,
        after: Optional[int] = None,
    ) -> Page[DeliveryRecord]:
        """A page of deliveries in delivery_id order (``failed``: dead, or pending after a failed attempt)."""
        limit = check_page(limit)
        stmt = select(*DELIVERY_COLUMNS).order_by(DELIVERIES.c.delivery_id).limit(limit + 1)
        for field, value in (("webhook_id", webhook_id), ("event_id", event_id), ("delivery_id", after)):
            if value is not None:
                check_value(WebhookDelivery, field, value, as_filter=True)
                column = DELIVERIES.c[field]
                stmt = stmt.where(column > value if field == "delivery_id" else column == value)
        if state is not None:
            if state not in DELIVERY_STATES:
                raise ValidationError("state", state, f"expected one of {', '.join(DELIVERY_STATES)}",
                                      "Nothing was read.")  # fmt: skip
            stmt = stmt.where(DELIVERIES.c.state == state)
        if failed:
            retrying = (DELIVERIES.c.state == "pending") & (
                DELIVERIES.c.last_status.is_not(None) | DELIVERIES.c.last_error.is_not(None))
            stmt = stmt.where(or_(DELIVERIES.c.state == "dead", retrying))  # fmt: skip
        rows = self._read("list_deliveries", lambda c: c.execute(stmt).all(), core=True)
        return make_page([delivery_record(r) for r in rows], limit, lambda d: d.delivery_id)

    def get_delivery(self, delivery_id: int) -> DeliveryRecord:
        """One delivery with every recorded attempt."""
        check_value(WebhookDelivery, "delivery_id", delivery_id, as_filter=True)

        def read(c: Any) -> Any:
            row = c.execute(select(*DELIVERY_COLUMNS).where(DELIVERIES.c.delivery_id == delivery_id)).first()
            attempts = c.execute(
                select(ATTEMPTS).where(ATTEMPTS.c.delivery_id == delivery_id).order_by(ATTEMPTS.c.attempt_id)
            ).all()
            return row, attempts

        row, attempts = self._read("get_delivery", read, core=True)
        if row is None:
            raise DeliveryNotFoundError({"delivery_id": delivery_id})
        return delivery_record(row, [AttemptRecord.model_validate(a) for a in attempts])

    def replay_delivery(self, delivery_id: int) -> DeliveryRecord:
        """Send a delivery's event again (the same body), as a new delivery queued in event order."""
        check_value(WebhookDelivery, "delivery_id", delivery_id, as_filter=True)

        def work(change: Change) -> int:
            found = change.execute(select(DELIVERIES).where(DELIVERIES.c.delivery_id == delivery_id)).first()
            if found is None:
                raise DeliveryNotFoundError({"delivery_id": delivery_id})
            lock_webhook(change, found.webhook_id)
            event = _EventRow(found.event_id, found.event_type, found.model_key or None)
            enqueue(change, found.webhook_id, [event], {found.event_id: found.body},
                    replay_of={found.event_id: delivery_id})  # fmt: skip
            return change.execute(  # the webhook is locked: no other delivery of it was added since
                select(func.max(DELIVERIES.c.delivery_id)).where(DELIVERIES.c.webhook_id == found.webhook_id)
            ).scalar_one()

        return self.get_delivery(self._write("replay_delivery", work, core=True))

    def replay_since(self, webhook_id: int, *, since: datetime, limit: int = 10_000) -> int:
        """Send a webhook again every event it matches at or after ``since``; returns how many."""
        from lume_services.services.models.delivery_ops import bodies_for

        check_value(Webhook, "webhook_id", webhook_id, as_filter=True)
        check_time("since", since)
        limit = check_page(limit, 100_000)

        def work(change: Change) -> int:
            hook = lock_webhook(change, webhook_id)
            rows = change.execute(
                select(EVENTS).where(EVENTS.c.time >= since, EVENTS.c.event_id <= hook.cursor)
                .order_by(EVENTS.c.event_id).limit(limit)
            ).all()  # fmt: skip
            events = [e for e in rows if matches(hook, e)]
            return len(enqueue(change, webhook_id, events, bodies_for(change, events)))

        return self._write("replay_since", work, core=True)


class _EventRow:
    def __init__(self, event_id: int, action: str, model_id: Optional[int]) -> None:
        self.event_id, self.action, self.model_id = event_id, action, model_id


def lock_webhook(change: Change, webhook_id: int) -> Any:
    row = change.execute(
        select(WEBHOOKS).where(WEBHOOKS.c.webhook_id == webhook_id).with_for_update()
    ).first()
    if row is None:
        raise WebhookNotFoundError({"webhook_id": webhook_id})
    return row


def matches(webhook: Any, event: Any) -> bool:
    """Whether ``event`` (an audit_event row) goes to ``webhook`` (a webhook row)."""
    if event.action == "webhook.tested":
        return event.entity_id == str(webhook.webhook_id)
    if webhook.model_id is not None and event.model_id != webhook.model_id:
        return False
    return type_matches(webhook.event_types, event.action)
