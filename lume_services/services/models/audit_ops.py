"""Reading the audit trail: keyset pages of events with filters (there is no call that changes one)."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import false, select

from lume_services.services.models.db.schema import ACTION_LENGTH, AuditEvent
from lume_services.services.models.queries import fetch_all, make_page
from lume_services.services.models.records import AuditEventRecord, Page
from lume_services.services.models.unit_of_work import ServiceBase
from lume_services.services.models.validation import check_page, check_time, check_value

EVENTS = AuditEvent.__table__


class AuditOps(ServiceBase):
    def list_audit_events(
        self,
        *,
        model_id: Optional[int] = None,
        actor: Optional[str] = None,
        action: Optional[str] = None,
        entity: Optional[str] = None,
        entity_id: Optional[str] = None,
        since: Optional[datetime] = None,
        until: Optional[datetime] = None,
        limit: int = 100,
        after: Optional[int] = None,
    ) -> Page[AuditEventRecord]:
        """A page of audit events, oldest first (event_id order), all filters ANDed.

        ``action`` is exact (``deployment.live_changed``) or a prefix ending in
        ``.*`` (``deployment.*``); ``since`` (inclusive) and ``until``
        (exclusive) are aware datetimes. Pass ``next_after`` as ``after``.
        """
        limit = check_page(limit)
        stmt = select(EVENTS).order_by(EVENTS.c.event_id).limit(limit + 1)
        for field, value in (("model_id", model_id), ("actor", actor), ("entity", entity),
                             ("entity_id", entity_id), ("event_id", after)):  # fmt: skip
            if value is not None:
                check_value(AuditEvent, field, value, as_filter=True)
                column = EVENTS.c[field]
                stmt = stmt.where(column > value if field == "event_id" else column == value)
        if action is not None:
            check_value(AuditEvent, "action", action, as_filter=True)
            if action.endswith(".*") and len(action) - 1 > ACTION_LENGTH:
                stmt = stmt.where(false())  # longer than any action; SQLite would refuse the LIKE pattern
            elif action.endswith(".*"):
                stmt = stmt.where(EVENTS.c.action.startswith(action[:-1], autoescape=True))
            else:
                stmt = stmt.where(EVENTS.c.action == action)
        if since is not None:
            stmt = stmt.where(EVENTS.c.time >= check_time("since", since))
        if until is not None:
            stmt = stmt.where(EVENTS.c.time < check_time("until", until))
        rows = self._read("list_audit_events", lambda c: fetch_all(c, stmt, {}, AuditEventRecord), core=True)
        return make_page(rows, limit, lambda r: r.event_id)
