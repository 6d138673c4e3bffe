"""The live pointer and its history: set live with compare-and-swap, live at a time, approvals.

A model's live history is its ``live_change`` rows in time order; each
interval runs from one change to the next. Every change of the live
deployment is made by :meth:`Change.move_live` (the one place that demotes,
promotes, gates protected models and records the change).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import and_, bindparam, func, insert, select, update

from lume_services.errors import (
    DeploymentNotFoundError,
    LiveDeploymentChangedError,
    LiveRequestClosedError,
    LiveRequestNotFoundError,
    SelfApprovalError,
    ValidationError,
)
from lume_services.services.models.db.schema import (
    Deployment,
    LiveChange,
    LiveRequest,
    Model,
)
from lume_services.services.models.queries import fetch_all, fetch_first, filtered, make_page
from lume_services.services.models.records import (
    DeploymentRecord,
    LiveAt,
    LiveIntervalRecord,
    LiveRequestRecord,
    ModelRecord,
    Page,
)
from lume_services.services.models.unit_of_work import ServiceBase
from lume_services.services.models.validation import (
    check_page,
    check_reason,
    check_time,
    check_value,
    check_values,
)
from lume_services.services.models.writes import UNSET, Change, LockedModel, row_values

MODELS, DEPLOYMENTS = Model.__table__, Deployment.__table__
CHANGES, REQUESTS = LiveChange.__table__, LiveRequest.__table__
REQUEST_STATES = ("pending", "approved", "rejected")
_AT = bindparam("_at")


def _live_at_statement() -> Any:
    """Models with the deployment live at ``_at``, the change that made it live and the next one."""
    c, n = CHANGES.alias("c"), CHANGES.alias("n")
    latest = (
        select(CHANGES.c.change_id)
        .where(CHANGES.c.model_id == MODELS.c.model_id, CHANGES.c.time <= _AT)
        .order_by(CHANGES.c.time.desc(), CHANGES.c.change_id.desc())
        .limit(1)
        .correlate(MODELS)
        .scalar_subquery()
    )
    following = (
        select(n.c.change_id)
        # The change after the one live at T is the model's first change after T: a constant
        # bound, which MariaDB can seek to (it cannot range-scan on a bound from the outer row).
        .where(n.c.model_id == MODELS.c.model_id, n.c.time > _AT)
        .order_by(n.c.time, n.c.change_id)
        .limit(1)
        .correlate(MODELS)
        .scalar_subquery()
    )
    nxt = CHANGES.alias("nxt")
    return (
        select(MODELS, DEPLOYMENTS, c, nxt.c.time, func.coalesce(nxt.c.approved_by, nxt.c.actor))
        .select_from(MODELS)
        .join(c, and_(c.c.model_id == MODELS.c.model_id, c.c.change_id == latest))
        .join(
            DEPLOYMENTS,
            and_(
                DEPLOYMENTS.c.deployment_id == c.c.deployment_id,
                DEPLOYMENTS.c.model_id == c.c.model_id,
                DEPLOYMENTS.c.version == c.c.version,  # an id SQLite reused is another deployment
            ),
        )
        .outerjoin(nxt, and_(nxt.c.model_id == c.c.model_id, nxt.c.change_id == following))
        .order_by(MODELS.c.model_id)
    )


LIVE_AT = _live_at_statement()
_SPLIT = (
    len(MODELS.c),
    len(MODELS.c) + len(DEPLOYMENTS.c),
    len(MODELS.c) + len(DEPLOYMENTS.c) + len(CHANGES.c),
)
HISTORY = (
    select(CHANGES)
    .where(CHANGES.c.model_id == bindparam("_model_id"))
    .order_by(CHANGES.c.time, CHANGES.c.change_id)
)
REQUEST_BY_ID = select(REQUESTS).where(REQUESTS.c.request_id == bindparam("_request_id"))
OWNER_OF = select(DEPLOYMENTS.c.model_id).where(DEPLOYMENTS.c.deployment_id == bindparam("_deployment_id"))


def _live_at(row: Any) -> LiveAt:
    m, d, c = _SPLIT
    change = dict(zip(CHANGES.c.keys(), row[d:c]))
    return LiveAt(
        model=ModelRecord.model_validate(dict(zip(MODELS.c.keys(), row[:m]))),
        deployment=DeploymentRecord.model_validate(dict(zip(DEPLOYMENTS.c.keys(), row[m:d]))),
        interval=_interval(change, row[c], row[c + 1]),
    )


def _interval(
    change: dict[str, Any], until: Optional[datetime], ended_by: Optional[str]
) -> LiveIntervalRecord:
    return LiveIntervalRecord(
        change_id=change["change_id"], model_id=change["model_id"], deployment_id=change["deployment_id"],
        version=change["version"], live_from=change["time"], live_until=until, set_by=change["actor"],
        ended_by=ended_by, reason=change["reason"], approved_by=change["approved_by"],
        request_id=change["request_id"],
    )  # fmt: skip


def _applied_by(change: Any) -> str:
    """Who applied a live change: its approver, when an approved request made it."""
    return change["approved_by"] or change["actor"]


def _expected(value: Any) -> Any:
    if value is UNSET or value is None:
        return value
    try:
        return check_value(Deployment, "deployment_id", value, as_filter=True)
    except ValidationError as exc:
        raise ValidationError("expected_live", value, f"{exc.problem} (a deployment id, or None)") from None


class LiveOps(ServiceBase):
    # -- setting the live deployment ------------------------------------------------------

    def set_live(
        self, deployment_id: int, *, expected_live: Any = UNSET, reason: Optional[str] = None,
        model_id: Optional[int] = None,
    ) -> DeploymentRecord:
        """Make ``deployment_id`` its model's one live deployment.

        With ``expected_live`` (a deployment id, or None for "nothing live")
        this is a compare-and-swap: if the model's live deployment is another
        one, LiveDeploymentChangedError is raised and nothing is written. A
        protected model raises ApprovalRequiredError (use :meth:`request_live`).
        With ``model_id``, a deployment of another model is refused
        (ValidationError), checked on the row the change locks.
        """
        check_value(Deployment, "deployment_id", deployment_id)
        if model_id is not None:
            check_value(Model, "model_id", model_id, as_filter=True)
        expected_live, reason = _expected(expected_live), check_reason(reason)

        def work(change: Change) -> DeploymentRecord:
            locked = change.lock_owner(deployment_id)
            if model_id is not None and locked.model_id != model_id:
                raise ValidationError("deployment_id", deployment_id, f"belongs to model {locked.model_id}, "
                                      f"not {model_id}", "Nothing was changed.")  # fmt: skip
            state = change.deployment_state(deployment_id)
            self._compare(change, locked.model_id, expected_live, state._live)
            change.move_deployment(locked, state, live=True, reason=reason)
            return DeploymentRecord.model_validate({**row_values(state), "is_live": True})

        return self._write("set_live", work, core=True)

    def _compare(
        self, change: Change, model_id: int, expected: Any, actual: Optional[int], *, given: bool = True
    ) -> None:
        """Compare-and-swap: the live deployment must be ``expected``.

        An ``expected`` the caller ``given`` must be a deployment of this model.
        """
        if expected is UNSET or expected == actual:
            return
        if given and expected is not None:
            owner = change.execute(OWNER_OF, {"_deployment_id": expected}).scalar_one_or_none()
            if owner != model_id:
                problem = (
                    "no deployment has this id" if owner is None else f"it is a deployment of model {owner!r}"
                )
                raise ValidationError(
                    "expected_live", expected,
                    f"{problem}; pass a deployment of model {model_id!r}, or None for 'nothing live'",
                    "Nothing was changed.",
                )  # fmt: skip
        raise LiveDeploymentChangedError(model_id, expected, actual)

    # -- approvals --------------------------------------------------------------------

    def request_live(
        self, deployment_id: int, *, reason: str, expected_live: Any = UNSET
    ) -> LiveRequestRecord:
        """Ask for ``deployment_id`` to become live; another person approves it with :meth:`approve_live`.

        The request expects the model's current live deployment (or
        ``expected_live``, checked now) to be the one it replaces.
        """
        check_value(Deployment, "deployment_id", deployment_id)
        expected_live, reason = _expected(expected_live), check_reason(reason, required=True)

        def work(change: Change) -> LiveRequestRecord:
            locked = change.lock_owner(deployment_id)
            state = change.deployment_state(deployment_id)
            self._compare(change, locked.model_id, expected_live, state._live)
            if state._live == deployment_id:
                raise ValidationError(
                    "deployment_id", deployment_id, "it is live already; there is nothing to request"
                )
            row = dict(model_id=locked.model_id, deployment_id=deployment_id, expected_live=state._live,
                       requested_by=change.actor, requested_at=change.now, reason=reason, state="pending",
                       decided_by=None, decided_at=None, decision_reason=None)  # fmt: skip
            request_id = change.execute(insert(REQUESTS), row).inserted_primary_key[0]
            record = LiveRequestRecord(request_id=request_id, **row)
            change.record("live_request.created", "live_request", request_id, model_id=locked.model_id,
                          after=record.model_dump())  # fmt: skip
            return record

        return self._write("request_live", work, core=True)

    def approve_live(self, request_id: int, *, reason: Optional[str] = None) -> LiveRequestRecord:
        """Approve a pending request of another actor: its deployment goes live (compare-and-swap).

        If the live deployment is no longer the one the request expected,
        LiveDeploymentChangedError is raised and the request stays pending.
        """
        reason = check_reason(reason)

        def work(change: Change) -> LiveRequestRecord:
            request, locked = self._pending(change, request_id)
            if request.requested_by == change.actor:
                raise SelfApprovalError(request_id, change.actor)
            state = change.deployment_state(request.deployment_id)
            self._compare(change, request.model_id, request.expected_live, state._live, given=False)
            change.move_deployment(locked, state, live=True, reason=request.reason, set_by=request.requested_by,
                                   approved_by=change.actor, request_id=request_id)  # fmt: skip
            return self._decide(change, request, "approved", reason)

        return self._write("approve_live", work, core=True)

    def reject_live(self, request_id: int, *, reason: str) -> LiveRequestRecord:
        """Close a pending request without applying it (its requester may withdraw it this way)."""
        reason = check_reason(reason, required=True)

        def work(change: Change) -> LiveRequestRecord:
            return self._decide(change, self._pending(change, request_id)[0], "rejected", reason)

        return self._write("reject_live", work, core=True)

    def _pending(self, change: Change, request_id: int) -> tuple[LiveRequestRecord, LockedModel]:
        """The request, read again once its model is locked (and that lock); it must be pending."""
        check_value(LiveRequest, "request_id", request_id)
        row = change.execute(REQUEST_BY_ID, {"_request_id": request_id}).first()
        locked = None
        if row is not None:
            locked = change.lock_model(row.model_id)
            row = change.execute(REQUEST_BY_ID, {"_request_id": request_id}).first()
        if row is None or locked is None:
            raise LiveRequestNotFoundError({"request_id": request_id})
        if row.state != "pending":
            raise LiveRequestClosedError(request_id, row.state, row.decided_by)
        return LiveRequestRecord.model_validate(row), locked

    def _decide(
        self, change: Change, request: LiveRequestRecord, state: str, reason: Optional[str]
    ) -> LiveRequestRecord:
        decision = dict(state=state, decided_by=change.actor, decided_at=change.now, decision_reason=reason)
        change.execute(update(REQUESTS).where(REQUESTS.c.request_id == request.request_id).values(decision))
        change.record(f"live_request.{state}", "live_request", request.request_id, model_id=request.model_id,
                      before={"state": "pending"}, after=decision)  # fmt: skip
        return request.model_copy(update=decision)

    def get_live_request(self, request_id: int) -> LiveRequestRecord:
        check_value(LiveRequest, "request_id", request_id, as_filter=True)
        row = self._read("get_live_request", lambda c: fetch_first(
            c, REQUEST_BY_ID, {"_request_id": request_id}, LiveRequestRecord), core=True)  # fmt: skip
        if row is None:
            raise LiveRequestNotFoundError({"request_id": request_id})
        return row

    def list_live_requests(
        self,
        *,
        model_id: Optional[int] = None,
        state: Optional[str] = None,
        limit: int = 100,
        after: Optional[int] = None,
    ) -> Page[LiveRequestRecord]:
        """A page of live requests in request_id order; ``state`` is pending, approved or rejected."""
        limit = check_page(limit)
        if state is not None and state not in REQUEST_STATES:
            raise ValidationError(
                "state", state, f"expected one of {', '.join(REQUEST_STATES)}", "Nothing was read."
            )
        query = {k: v for k, v in (("model_id", model_id), ("state", state)) if v is not None}
        if model_id is not None:
            check_value(LiveRequest, "model_id", model_id, as_filter=True)
        stmt, params = filtered(LiveRequest, query, ["request_id"], limit + 1)
        if after is not None:
            check_value(LiveRequest, "request_id", after, as_filter=True)
            stmt = stmt.where(REQUESTS.c.request_id > after)
        rows = self._read(
            "list_live_requests", lambda c: fetch_all(c, stmt, params, LiveRequestRecord), core=True
        )
        return make_page(rows, limit, lambda r: r.request_id)

    # -- reading the history ------------------------------------------------------------

    def get_live_deployment(self, model_id: int, *, at: Optional[datetime] = None) -> DeploymentRecord:
        """The model's live deployment now, or at time ``at`` (an aware datetime).

        DeploymentNotFoundError when none was live then (or it was deleted since).
        """
        if at is None:
            return self.get_deployment(model_id=model_id, is_live=True)
        return self.get_live_at(model_id, at=at).deployment

    def get_live_at(self, model_id: int, *, at: datetime) -> LiveAt:
        """The model, its deployment live at ``at`` and the interval it was live in (one statement)."""
        check_value(Model, "model_id", model_id, as_filter=True)
        check_time("at", at)
        stmt = LIVE_AT.where(MODELS.c.model_id == bindparam("_model_id"))
        found = self._read("get_live_at", lambda c: c.execute(stmt, {"_model_id": model_id, "_at": at}).first(),
                           core=True)  # fmt: skip
        if found is None:
            self._require_model(model_id)
            raise DeploymentNotFoundError({"model_id": model_id, "live_at": at.isoformat()})
        return _live_at(found)

    def get_live_deployments(
        self, *, facility: str, beampath: str, laboratory: Optional[str] = None, at: Optional[datetime] = None
    ) -> list[LiveAt]:
        """For each model of a beampath, the deployment live at ``at`` (default now), in one statement.

        Models with nothing live then are left out.
        """
        where = {k: v for k, v in (("facility", facility), ("beampath", beampath), ("laboratory", laboratory))
                 if v is not None}  # fmt: skip
        check_values(Model, where)
        at = check_time("at", at) if at is not None else datetime.now().astimezone()
        stmt = LIVE_AT.where(*(MODELS.c[k] == v for k, v in where.items()))
        rows = self._read("get_live_deployments", lambda c: c.execute(stmt, {"_at": at}).all(), core=True)
        return [_live_at(row) for row in rows]

    def get_live_history(self, model_id: int) -> list[LiveIntervalRecord]:
        """Every interval during which a deployment was the model's live one, oldest first.

        ``live_until`` is None for the interval still open; the ones that
        ended record who ended them (``ended_by``: who applied the next
        change, the approver when an approved request made it).
        """
        check_value(Model, "model_id", model_id, as_filter=True)
        rows = self._read(
            "get_live_history",
            lambda c: c.execute(HISTORY, {"_model_id": model_id}).mappings().all(),
            core=True,
        )
        if not rows:
            self._require_model(model_id)
        intervals = []
        for i, row in enumerate(rows):
            if row["deployment_id"] is None:
                continue
            nxt = rows[i + 1] if i + 1 < len(rows) else None
            intervals.append(_interval(dict(row), nxt and nxt["time"], nxt and _applied_by(nxt)))
        return intervals

    def _require_model(self, model_id: int) -> None:
        self.get_model(model_id=model_id)  # type: ignore[attr-defined]  # ModelNotFoundError
