"""What the delivery process asks of the registry: derive deliveries, claim them, record attempts.

Three short transactions, each safe with any number of delivery processes:

* :meth:`DeliveryOps.derive_deliveries` matches the events after each
  webhook's cursor against it and inserts their deliveries (webhook rows
  locked ``FOR UPDATE SKIP LOCKED``: one process derives a webhook at a
  time, the others skip it);
* :meth:`DeliveryOps.claim_deliveries` takes due ``pending`` deliveries
  whose lease is free (``FOR UPDATE SKIP LOCKED``; on SQLite the write lock
  of BEGIN IMMEDIATE), counts the attempt and leases them for
  ``LUME_EVENTS__LEASE`` seconds: one attempt number is claimed once;
* :meth:`DeliveryOps._finish_deliveries` records the attempt and its outcome
  (delivered, retry at a backed-off time, or dead); a finished delivery
  makes the next queued one of its webhook and model pending, and claims it
  at once for the same process (so a backlog of one model flows without an
  extra claim per event). The outcomes of a batch are recorded together.

A process killed at any point leaves its claims to expire: the delivery is
claimed again (the next attempt number) after its lease, so every event is
delivered at least once.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Optional

from sqlalchemy import bindparam, func, or_, select, tuple_, update

from lume_services.errors import ValidationError
from lume_services.services.models.db.schema import (
    WORKER_LENGTH,
    AuditEvent,
    Deployment,
    Model,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
    utcnow,
)
from lume_services.services.models.event_records import ClaimedDelivery
from lume_services.services.models.unit_of_work import ServiceBase
from lume_services.services.models.validation import check_page, check_value
from lume_services.services.models.webhook_ops import enqueue, matches
from lume_services.services.models.writes import Change, jsonable

EVENTS, MODELS, DEPLOYMENTS = AuditEvent.__table__, Model.__table__, Deployment.__table__
WEBHOOKS, DELIVERIES, ATTEMPTS = Webhook.__table__, WebhookDelivery.__table__, WebhookAttempt.__table__
MODEL_FIELDS = ("model_id", "author", "laboratory", "facility", "beampath", "description", "require_approval")


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def bodies_for(change: Change, events: Sequence[Any]) -> dict[int, str]:
    """The JSON body of each event (``deployment.live_changed`` with its model and both deployments)."""
    live = [e for e in events if e.action == "deployment.live_changed"]
    model_ids = sorted({e.model_id for e in live if e.model_id is not None})
    deployment_ids = sorted({d for e in live for d in _live_ids(e) if d is not None})
    models = {r.model_id: r for r in change.execute(select(MODELS).where(MODELS.c.model_id.in_(model_ids)))} \
        if model_ids else {}  # fmt: skip
    deployments = {r.deployment_id: r for r in change.execute(
        select(DEPLOYMENTS).where(DEPLOYMENTS.c.deployment_id.in_(deployment_ids)))} if deployment_ids else {}  # fmt: skip
    bodies = {}
    for e in events:
        body: dict[str, Any] = {
            "id": e.event_id, "type": e.action, "time": e.time.isoformat(), "actor": e.actor,
            "entity": e.entity, "entity_id": e.entity_id, "model_id": e.model_id,
            "before": e.before, "after": e.after,
        }  # fmt: skip
        if e.action == "deployment.live_changed":
            new, old = _live_ids(e)
            model = models.get(e.model_id)
            body["model"] = None if model is None else jsonable({k: getattr(model, k) for k in MODEL_FIELDS})
            body["live_deployment"] = _deployment(deployments.get(new)) if new is not None else None
            body["previous_deployment"] = _deployment(deployments.get(old)) if old is not None else None
        bodies[e.event_id] = _dump(body)
    return bodies


def _live_ids(event: Any) -> tuple[Optional[int], Optional[int]]:
    return (event.after or {}).get("live_deployment_id"), (event.before or {}).get("live_deployment_id")


def _deployment(row: Any) -> Optional[dict[str, Any]]:
    return None if row is None else jsonable(dict(row._mapping))


def backoff(attempt: int, initial: float, maximum: float, jitter: float) -> float:
    """Seconds before attempt ``attempt + 1``: doubling from ``initial``, capped, with +-``jitter``."""
    wait = min(maximum, initial * 2 ** min(attempt - 1, 60))
    return max(0.0, wait * (1 + jitter * random.uniform(-1, 1)))


class DeliveryOps(ServiceBase):
    def derive_deliveries(self, *, batch_size: int = 500) -> int:
        """Match the events after the webhooks' cursors, ``batch_size`` per transaction; returns deliveries created."""
        batch_size = check_page(batch_size, 10_000)
        created = 0
        while True:
            made, scanned = self._derive_batch(batch_size)
            created += made
            if scanned < batch_size:
                return created

    def _derive_batch(self, batch_size: int) -> tuple[int, int]:
        def work(change: Change) -> tuple[int, int]:
            hooks = change.execute(
                select(WEBHOOKS).order_by(WEBHOOKS.c.webhook_id).with_for_update(skip_locked=True)
            ).all()
            if not hooks:
                return 0, 0
            start = min(h.cursor for h in hooks)
            events = change.execute(
                select(EVENTS).where(EVENTS.c.event_id > start).order_by(EVENTS.c.event_id).limit(batch_size)
            ).all()
            if not events:
                return 0, 0
            last = events[-1].event_id
            wanted = {h.webhook_id: [e for e in events if e.event_id > h.cursor and matches(h, e)] for h in hooks}
            needed = {e.event_id: e for group in wanted.values() for e in group}
            bodies = bodies_for(change, list(needed.values()))
            created = 0
            for hook in hooks:
                created += len(enqueue(change, hook.webhook_id, wanted[hook.webhook_id], bodies))
                if hook.cursor < last:
                    change.execute(update(WEBHOOKS).where(WEBHOOKS.c.webhook_id == hook.webhook_id)
                                   .values(cursor=last))  # fmt: skip
            return created, len(events)

        return self._write("derive_deliveries", work, core=True)

    def claim_deliveries(
        self, *, worker: str, limit: int = 100, webhook_id: Optional[int] = None
    ) -> list[ClaimedDelivery]:
        """Claim due deliveries for ``worker`` (one attempt each, leased for LUME_EVENTS__LEASE seconds)."""
        lease = self.events_settings.lease  # type: ignore[attr-defined]
        limit = check_page(limit)
        if webhook_id is not None:
            check_value(Webhook, "webhook_id", webhook_id, as_filter=True)
        if not isinstance(worker, str) or not 0 < len(worker) <= WORKER_LENGTH or not worker.isprintable():
            raise ValidationError("worker", worker, f"expected 1 to {WORKER_LENGTH} printable characters",
                                  "Nothing was claimed.")  # fmt: skip

        def work(change: Change) -> list[ClaimedDelivery]:
            now = change.now
            stmt = (
                select(DELIVERIES.c.delivery_id)
                .where(DELIVERIES.c.state == "pending", DELIVERIES.c.next_attempt_at <= now,
                       or_(DELIVERIES.c.claimed_until.is_(None), DELIVERIES.c.claimed_until <= now))
                .order_by(DELIVERIES.c.next_attempt_at, DELIVERIES.c.delivery_id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )  # fmt: skip
            if webhook_id is not None:
                stmt = stmt.where(DELIVERIES.c.webhook_id == webhook_id)
            ids = list(change.execute(stmt).scalars())
            return _claim(change, ids, worker, now + timedelta(seconds=lease))

        return self._write("claim_deliveries", work, core=True)

    def _finish_delivery(
        self,
        claimed: ClaimedDelivery,
        *,
        worker: str,
        started: datetime,
        duration: float,
        status_code: Optional[int] = None,
        error: Optional[str] = None,
        chain: bool = True,
    ) -> Optional[ClaimedDelivery]:
        """Record one attempt and its outcome; returns the next delivery of its group, claimed (``chain``)."""
        outcome = Outcome(claimed, started, duration, status_code, error)
        following = self._finish_deliveries([outcome], worker=worker, chain=chain)
        return following[0] if following else None

    def _finish_deliveries(
        self, outcomes: Sequence[Outcome], *, worker: str, chain: bool = True
    ) -> list[ClaimedDelivery]:
        """Record attempts and their outcomes in one transaction (a constant number of statements).

        A 2xx is delivered; anything else is retried after a backoff, or dead
        after LUME_EVENTS__MAX_ATTEMPTS attempts or LUME_EVENTS__DEADLINE. An
        outcome whose lease ran out (another attempt was claimed since) is
        recorded as an attempt and decides nothing. Each finished delivery
        makes the next queued one of its webhook and model pending; with
        ``chain`` those are returned claimed for ``worker``.
        """
        if not outcomes:
            return []
        s = self.events_settings  # type: ignore[attr-defined]

        def work(change: Change) -> list[ClaimedDelivery]:
            # The webhooks first (always in id order): serialises with derive and replay.
            change.execute(select(WEBHOOKS.c.webhook_id).where(WEBHOOKS.c.webhook_id.in_(
                sorted({o.claimed.webhook_id for o in outcomes}))).order_by(WEBHOOKS.c.webhook_id)
                .with_for_update())  # fmt: skip
            ids = sorted({o.claimed.delivery_id for o in outcomes})
            rows = {r.delivery_id: r for r in change.execute(
                select(DELIVERIES).where(DELIVERIES.c.delivery_id.in_(ids)).with_for_update())}  # fmt: skip
            attempts = [dict(delivery_id=o.claimed.delivery_id, attempt=o.claimed.attempt, started=o.started,
                             duration=o.duration, status_code=o.status_code, error=o.error, worker=worker)
                        for o in outcomes if o.claimed.delivery_id in rows]  # fmt: skip
            if attempts:
                change.execute(ATTEMPTS.insert(), attempts)
            now, updates, finished = change.now, [], []
            for o in outcomes:
                row = rows.get(o.claimed.delivery_id)
                if row is None or row.state != "pending" or row.claimed_by != worker or row.attempts != o.claimed.attempt:
                    continue  # removed, or our lease ran out and another attempt was claimed: it decides
                values = dict(_id=row.delivery_id, last_status=o.status_code, last_error=o.error,
                              state="pending", finished=None, next_attempt_at=row.next_attempt_at)  # fmt: skip
                if o.ok:
                    values |= dict(state="delivered", finished=now)
                else:
                    wait = backoff(row.attempts, s.backoff_initial, s.backoff_max, s.backoff_jitter)
                    retry_at = now + timedelta(seconds=wait)
                    if row.attempts >= s.max_attempts or retry_at > row.created + timedelta(seconds=s.deadline):
                        values |= dict(state="dead", finished=now)
                    else:
                        values |= dict(next_attempt_at=retry_at)
                updates.append(values)
                if values["state"] != "pending":
                    finished.append((row.webhook_id, row.model_key))
            if updates:
                change.execute(FINISH, updates)
            if not finished:
                return []
            following = list(change.execute(
                select(func.min(DELIVERIES.c.delivery_id))
                .where(tuple_(DELIVERIES.c.webhook_id, DELIVERIES.c.model_key).in_(finished),
                       DELIVERIES.c.state == "queued")
                .group_by(DELIVERIES.c.webhook_id, DELIVERIES.c.model_key)
            ).scalars())  # fmt: skip
            if not following:
                return []
            change.execute(update(DELIVERIES).where(DELIVERIES.c.delivery_id.in_(following))
                           .values(state="pending", next_attempt_at=now))  # fmt: skip
            return _claim(change, following, worker, now + timedelta(seconds=s.lease)) if chain else []

        return self._write("finish_deliveries", work, core=True)

    def _release_deliveries(self, claimed: Sequence[ClaimedDelivery], *, worker: str) -> None:
        """Give back claims not attempted (their attempt is not counted)."""
        if not claimed:
            return
        ids = [c.delivery_id for c in claimed]

        def work(change: Change) -> None:
            change.execute(
                update(DELIVERIES)
                .where(DELIVERIES.c.delivery_id.in_(ids), DELIVERIES.c.claimed_by == worker,
                       DELIVERIES.c.state == "pending")
                .values(claimed_until=None, claimed_by=None, attempts=DELIVERIES.c.attempts - 1)
            )  # fmt: skip

        self._write("release_deliveries", work, core=True)


class Outcome(NamedTuple):
    """What one attempt of a claimed delivery came to."""

    claimed: ClaimedDelivery
    started: datetime
    duration: float
    status_code: Optional[int] = None
    error: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


FINISH = (
    update(DELIVERIES)
    .where(DELIVERIES.c.delivery_id == bindparam("_id"))
    .values(state=bindparam("state"), last_status=bindparam("last_status"), last_error=bindparam("last_error"),
            finished=bindparam("finished"), next_attempt_at=bindparam("next_attempt_at"),
            claimed_until=None, claimed_by=None)
)  # fmt: skip


def _claim(change: Change, ids: list[int], worker: str, until: datetime) -> list[ClaimedDelivery]:
    if not ids:
        return []
    change.execute(
        update(DELIVERIES).where(DELIVERIES.c.delivery_id.in_(ids))
        .values(attempts=DELIVERIES.c.attempts + 1, claimed_until=until, claimed_by=worker)
    )  # fmt: skip
    rows = change.execute(
        select(DELIVERIES.c.delivery_id, DELIVERIES.c.webhook_id, DELIVERIES.c.event_id, DELIVERIES.c.event_type,
               DELIVERIES.c.attempts, DELIVERIES.c.body, WEBHOOKS.c.url, WEBHOOKS.c.secret)
        .join(WEBHOOKS, WEBHOOKS.c.webhook_id == DELIVERIES.c.webhook_id)
        .where(DELIVERIES.c.delivery_id.in_(ids)).order_by(DELIVERIES.c.delivery_id)
    ).all()  # fmt: skip
    return [
        ClaimedDelivery(delivery_id=r.delivery_id, webhook_id=r.webhook_id, event_id=r.event_id,
                        event_type=r.event_type, attempt=r.attempts, url=r.url, secret=r.secret, body=r.body)
        for r in rows
    ]  # fmt: skip


__all__ = ["DeliveryOps", "Outcome", "backoff", "bodies_for", "utcnow"]
