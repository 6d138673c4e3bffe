"""Frozen records of webhooks and their deliveries (the feed's items are AuditEventRecords), and of API tokens.

A webhook's signing secret is a :class:`~pydantic.SecretStr` wherever it
appears (``NewWebhook`` once, ``ClaimedDelivery`` for the delivery process),
so it never shows in a repr, a log line or ``model_dump(mode="json")``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from pydantic import SecretStr

from lume_services.services.models.records import Record


class WebhookRecord(Record):
    """A webhook: where events of ``event_types`` (of ``model_id``, or every model) are POSTed."""

    webhook_id: int
    url: str
    event_types: list[str]
    model_id: Optional[int]
    created: datetime
    created_by: str
    cursor: int  # the last event matched against this webhook


class NewWebhook(Record):
    """A webhook just added, with its signing secret (shown this once)."""

    webhook: WebhookRecord
    secret: SecretStr


class AttemptRecord(Record):
    """One POST of a delivery."""

    attempt_id: int
    delivery_id: int
    attempt: int
    started: datetime
    duration: float  # seconds
    status_code: Optional[int]
    error: Optional[str]
    worker: str


class DeliveryRecord(Record):
    """One event for one webhook: ``state`` queued, pending, delivered or dead.

    ``attempts`` counts the POSTs begun; ``attempt_log`` holds the recorded
    ones (filled by ``get_delivery``; empty in listings).
    """

    delivery_id: int
    webhook_id: int
    event_id: int
    event_type: str
    model_id: Optional[int]
    state: str
    attempts: int
    created: datetime
    next_attempt_at: datetime
    claimed_until: Optional[datetime]
    claimed_by: Optional[str]
    finished: Optional[datetime]
    last_status: Optional[int]
    last_error: Optional[str]
    replay_of: Optional[int]
    attempt_log: list[AttemptRecord] = []


class ClaimedDelivery(Record):
    """A delivery claimed by one delivery process for one attempt (until its lease ends)."""

    delivery_id: int
    webhook_id: int
    event_id: int
    event_type: str
    attempt: int
    url: str
    secret: SecretStr
    body: str


class TokenRecord(Record):
    """A REST API token without its secret: ``name`` is the actor of what it changes.

    ``scope`` is read, write or admin (each includes the ones before it);
    ``project_name`` limits a write token's changes to that project's
    deployments; ``active`` is False once revoked or expired.
    """

    token_id: int
    name: str
    scope: str
    project_name: Optional[str]
    created: datetime
    created_by: str
    expires: Optional[datetime]
    revoked: Optional[datetime]
    revoked_by: Optional[str]

    def active_at(self, now: datetime) -> bool:
        return self.revoked is None and (self.expires is None or self.expires > now)


class NewToken(Record):
    """A token just created, with the token itself (shown this once, never stored)."""

    record: TokenRecord
    token: SecretStr


class NewSession(Record):
    """A web UI session just opened: its id (the browser's cookie, never stored) and its token."""

    session: SecretStr
    token: TokenRecord
    expires: datetime
