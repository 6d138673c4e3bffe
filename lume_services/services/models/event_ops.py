"""The event feed: every audit event, in commit order, behind a cursor that a consumer stores.

Event ids are assigned in commit order (:meth:`Change.lock_feed`), so a
reader that stores the last id it saw and asks for ``after=`` that id later
misses no event and sees none twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Optional

from sqlalchemy import false, or_, select

from lume_services.errors import ValidationError
from lume_services.services.models.db.schema import AuditEvent
from lume_services.services.models.queries import fetch_all
from lume_services.services.models.records import AuditEventRecord, Page
from lume_services.services.models.unit_of_work import ServiceBase
from lume_services.services.models.validation import check_page, check_value

EVENTS = AuditEvent.__table__

# Every type of event the registry writes (a webhook subscribes to some of them).
EVENT_TYPES = (
    "model.created", "model.updated", "model.deleted", "model.tags_changed",
    "deployment.created", "deployment.updated", "deployment.deleted", "deployment.live_changed",
    "deployment.tags_changed",
    "project.created", "project.updated", "project.deleted",
    "flow.created", "flow.deleted", "flow.detached", "flow_of_flows.created",
    "live_request.created", "live_request.approved", "live_request.rejected",
    "import.completed",
    # written once by `lume-services db adopt` (see services/models/db/adopt)
    "adopt.completed", "adopt.prefect1_flow", "adopt.live_demoted", "adopt.checksum_invalid",
    "adopt.checksum_normalized", "adopt.flow_detached", "adopt.position_renumbered", "adopt.time_missing",
    "adopt.too_long",
    "webhook.created", "webhook.deleted", "webhook.tested",
    "token.created", "token.revoked",
)  # fmt: skip


def check_types(field: str, types: object, consequence: str = "Nothing was read.") -> list[str]:
    """Event types: exact (``deployment.live_changed``), a prefix ending in ``.*``, or ``*`` for all."""
    if isinstance(types, str) or not isinstance(types, Iterable):
        raise ValidationError(field, types, "expected a list of event types", consequence)
    given = list(types)
    for t in given:
        if not isinstance(t, str):
            raise ValidationError(field, t, "expected an event type (text)", consequence)
    chosen = list(dict.fromkeys(given))
    prefixes = {t.split(".", 1)[0] for t in EVENT_TYPES}
    for t in chosen:
        ok = isinstance(t, str) and (
            t == "*" or t in EVENT_TYPES or (t.endswith(".*") and t[:-2] in prefixes)
        )
        if not ok:
            raise ValidationError(
                field, t,
                f"unknown event type; expected one of {', '.join(EVENT_TYPES)}, a prefix such as "
                "deployment.*, or * for all",
                consequence,
            )  # fmt: skip
    return chosen


def type_matches(types: Sequence[str], action: str) -> bool:
    return any(t == "*" or t == action or (t.endswith(".*") and action.startswith(t[:-1])) for t in types)


class EventOps(ServiceBase):
    def list_events(
        self,
        *,
        after: Optional[int] = None,
        types: Optional[Sequence[str]] = None,
        model_id: Optional[int] = None,
        limit: int = 100,
    ) -> Page[AuditEventRecord]:
        """The events after cursor ``after`` (None: from the first), oldest first.

        ``next_after`` is always the cursor to store and pass next: the id of
        the last event returned, or ``after`` again when none was (never None
        once a page had events), so polling resumes exactly where it stopped.
        """
        limit = check_page(limit)
        stmt = select(EVENTS).order_by(EVENTS.c.event_id).limit(limit)
        if after is not None:
            check_value(AuditEvent, "event_id", after, as_filter=True)
            stmt = stmt.where(EVENTS.c.event_id > after)
        if model_id is not None:
            check_value(AuditEvent, "model_id", model_id, as_filter=True)
            stmt = stmt.where(EVENTS.c.model_id == model_id)
        if types is not None:
            chosen = check_types("types", types)
            if "*" not in chosen:
                exact = [t for t in chosen if not t.endswith(".*")]
                conditions = [EVENTS.c.action.startswith(t[:-1], autoescape=True) for t in chosen
                              if t.endswith(".*")]  # fmt: skip
                if exact:
                    conditions.append(EVENTS.c.action.in_(exact))
                stmt = stmt.where(or_(*conditions) if conditions else false())
        rows = self._read("list_events", lambda c: fetch_all(c, stmt, {}, AuditEventRecord), core=True)
        return Page(items=rows, next_after=rows[-1].event_id if rows else after)
