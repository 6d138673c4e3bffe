"""The one write path of the registry.

Every change of the registry is made inside a :class:`Change`: one write
transaction on behalf of one actor. The rules that several writes need live
here, each once:

* locking the model a change belongs to (:meth:`Change.lock_models`,
  :meth:`Change.lock_owner`), always before anything of it is read for a decision;
* making a deployment its model's only live one (or none live), refusing that
  on a protected model without an approval, and recording the live change
  (:meth:`Change.move_live`, for one model or a whole import batch);
* one flow per deployment (:func:`claim_flow`);
* the audit event of every change (:meth:`Change.record`), which is also an
  event of the feed (``list_events``) and the source of webhook deliveries:
  :meth:`Change.flush` first locks the feed (:meth:`Change.lock_feed`), so
  event ids are assigned in commit order and a reader's cursor never skips
  an event that commits later.

``ServiceBase._write`` opens the transaction, builds the Change for the
service's actor, runs the unit of work and then :meth:`Change.flush`, which
writes the history rows (live changes, audit events) last, in the same
transaction as the rows they describe: there is never a change without its
event, nor an event without its change. A rule that every write must obey
(an authorization check, an outbox row) is added in ``record`` or ``flush``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Optional, Union

from sqlalchemy import Connection, bindparam, case, false, func, insert, select, true, update
from sqlalchemy.orm import Session

from lume_services.errors import (
    ApprovalRequiredError,
    DeploymentNotFoundError,
    FlowAlreadyExistsError,
    ModelNotFoundError,
)
from lume_services.services.models.db.schema import (
    AuditEvent,
    Deployment,
    EventFeed,
    Flow,
    LiveChange,
    Model,
    utcnow,
)
from lume_services.services.models.records import UNSET  # noqa: F401 - re-exported

Unit = Union[Session, Connection]
ONE_TICK = timedelta(microseconds=1)  # the resolution of stored times
MODELS, DEPLOYMENTS, FLOWS = Model.__table__, Deployment.__table__, Flow.__table__
EVENTS, CHANGES = AuditEvent.__table__, LiveChange.__table__
FEED = EventFeed.__table__


class LockedModel(NamedTuple):
    model_id: int
    require_approval: bool


@dataclass(frozen=True)
class LiveMove:
    """Make ``target`` (None: no deployment) the live deployment of ``model_id``."""

    model_id: int
    target: Optional[int]
    version: Optional[str]  # the target's version
    previous: Optional[int]  # the live deployment now (read after locking the model)
    last_change: Optional[datetime]  # the model's latest live change
    protected: bool = False
    reason: Optional[str] = None
    set_by: Optional[str] = None  # default: the change's actor
    approved_by: Optional[str] = None
    request_id: Optional[int] = None


# -- statements (built once) ---------------------------------------------------------

_MODEL_IDS = bindparam("_model_ids", expanding=True)
LOCK_MODELS = (
    select(MODELS.c.model_id, MODELS.c.require_approval)
    .where(MODELS.c.model_id.in_(_MODEL_IDS))
    .order_by(MODELS.c.model_id)
    .with_for_update()
)
_DEPLOYMENT_ID = bindparam("_deployment_id")
# Lock the model that owns a deployment (the subquery's rows are not locked).
LOCK_OWNER = (
    select(MODELS.c.model_id, MODELS.c.require_approval)
    .where(
        MODELS.c.model_id
        == select(DEPLOYMENTS.c.model_id)
        .where(DEPLOYMENTS.c.deployment_id == _DEPLOYMENT_ID)
        .scalar_subquery()
    )
    .with_for_update()
)


def _live_now(model_id: Any) -> Any:
    # An alias, so that the subquery is correlated to the outer row even when that is a deployment.
    # "is_live = true", not "IS TRUE": MariaDB matches only "=" against ix_deployment_model_live.
    live = DEPLOYMENTS.alias("live")
    return (
        select(live.c.deployment_id)
        .where(live.c.model_id == model_id, live.c.is_live == true())
        .limit(1)
        .scalar_subquery()
    )


def _last_change(model_id: Any) -> Any:
    return select(func.max(CHANGES.c.time)).where(CHANGES.c.model_id == model_id).scalar_subquery()


# A deployment's row, its model's live deployment and latest live change: read once the model is locked.
DEPLOYMENT_STATE = select(
    DEPLOYMENTS,
    _live_now(DEPLOYMENTS.c.model_id).label("_live"),
    _last_change(DEPLOYMENTS.c.model_id).label("_last_change"),
).where(DEPLOYMENTS.c.deployment_id == _DEPLOYMENT_ID)
# The same for whole models (an import batch).
MODELS_STATE = select(MODELS.c.model_id, _live_now(MODELS.c.model_id), _last_change(MODELS.c.model_id)).where(
    MODELS.c.model_id.in_(_MODEL_IDS)
)
_TARGETS = bindparam("_targets", expanding=True)
# One statement makes each target its model's only live deployment (models without one: none live).
# It reaches the targets by primary key and the models' live rows through ix_deployment_model_live
# (all of them: a database that somehow holds two live deployments of a model is mended).
MOVE_LIVE = (
    update(DEPLOYMENTS)
    .where(
        DEPLOYMENTS.c.model_id.in_(_MODEL_IDS) & (DEPLOYMENTS.c.is_live == true())
        | DEPLOYMENTS.c.deployment_id.in_(_TARGETS)  # the targets are deployments of these models
    )
    .values(is_live=case((DEPLOYMENTS.c.deployment_id.in_(_TARGETS), true()), else_=false()))
)
FLOWS_OF = select(FLOWS.c.deployment_id, FLOWS.c.flow_id).where(
    FLOWS.c.deployment_id.in_(bindparam("_deployment_ids", expanding=True))
)


class Change:
    """One write transaction on behalf of ``actor``: the rules, and the record of what changed."""

    def __init__(self, unit: Unit, actor: str) -> None:
        self.unit = unit
        self.actor = actor
        self._now: Optional[datetime] = None
        self._events: list[dict[str, Any]] = []
        self._changes: list[dict[str, Any]] = []
        self._feed_locked = False

    @property
    def now(self) -> datetime:
        """The time of this change (the same for every row it writes)."""
        if self._now is None:
            self._now = utcnow()
        return self._now

    def execute(self, statement: Any, params: Any = None) -> Any:
        return self.unit.execute(statement, params)

    @property
    def dialect(self) -> str:
        unit = self.unit
        return unit.dialect.name if isinstance(unit, Connection) else unit.get_bind().dialect.name

    # -- locks ------------------------------------------------------------------------

    def lock_models(self, model_ids: Iterable[int]) -> dict[int, LockedModel]:
        """Lock these models (in id order, so writers never deadlock); a missing one raises."""
        wanted = sorted(set(model_ids))
        found = {
            row.model_id: LockedModel(row.model_id, row.require_approval)
            for row in self.execute(LOCK_MODELS, {"_model_ids": wanted})
        }
        missing = [m for m in wanted if m not in found]
        if missing:
            raise ModelNotFoundError({"model_id": missing[0]})
        return found

    def lock_model(self, model_id: int) -> LockedModel:
        return self.lock_models([model_id])[model_id]

    def lock_owner(self, deployment_id: int) -> LockedModel:
        """Lock the model that owns ``deployment_id`` (DeploymentNotFoundError if there is none)."""
        row = self.execute(LOCK_OWNER, {"_deployment_id": deployment_id}).first()
        if row is None:
            raise DeploymentNotFoundError({"deployment_id": deployment_id})
        return LockedModel(row.model_id, row.require_approval)

    def deployment_state(self, deployment_id: int) -> Any:
        """A deployment's row with ``_live`` and ``_last_change`` of its model; lock the model first."""
        row = self.execute(DEPLOYMENT_STATE, {"_deployment_id": deployment_id}).first()
        if row is None:  # deleted before we locked its model
            raise DeploymentNotFoundError({"deployment_id": deployment_id})
        return row

    def models_state(self, model_ids: Iterable[int]) -> dict[int, tuple[Optional[int], Optional[datetime]]]:
        """{model: (live deployment, latest live change)}; lock the models first."""
        rows = self.execute(MODELS_STATE, {"_model_ids": sorted(set(model_ids))})
        return {m: (live, last) for m, live, last in rows}

    # -- the live pointer -------------------------------------------------------------

    def move_live(self, moves: Sequence[LiveMove], *, gate: bool = True) -> list[LiveMove]:
        """Apply live changes (models locked, ``previous`` read after locking); returns those that changed.

        With ``gate``, a change on a protected model without ``approved_by``
        raises ApprovalRequiredError. Each change is a live-change row (its
        time at least a microsecond after the model's previous change, so a
        model's change times strictly increase and intervals cannot overlap,
        even across hosts whose clocks differ) and a ``deployment.live_changed``
        event.
        """
        moves = [m for m in moves if m.target != m.previous]
        for move in moves:
            if gate and move.protected and move.approved_by is None:
                raise ApprovalRequiredError(move.model_id, move.target)
        if not moves:
            return []
        self.execute(
            MOVE_LIVE,
            {"_model_ids": sorted({m.model_id for m in moves}),
             "_targets": [m.target for m in moves if m.target is not None]},
        )  # fmt: skip
        for move in moves:
            at = utcnow()
            if move.last_change is not None and move.last_change + ONE_TICK > at:
                at = move.last_change + ONE_TICK  # strictly after the model's previous change
            actor = move.set_by or self.actor
            self._changes.append(
                dict(model_id=move.model_id, deployment_id=move.target, version=move.version, time=at,
                     actor=actor, reason=move.reason, approved_by=move.approved_by, request_id=move.request_id)
            )  # fmt: skip
            after = {"live_deployment_id": move.target, "version": move.version, "reason": move.reason}
            if move.approved_by is not None:
                after |= {
                    "requested_by": actor,
                    "approved_by": move.approved_by,
                    "request_id": move.request_id,
                }
            self.record(
                "deployment.live_changed", "deployment", move.target or move.previous, model_id=move.model_id,
                before={"live_deployment_id": move.previous}, after=after, time=at,
            )  # fmt: skip
        return moves

    def move_deployment(self, locked: LockedModel, state: Any, *, live: bool, **details: Any) -> list[LiveMove]:
        """Make the deployment read by :meth:`deployment_state` live, or (``live=False``) leave none live."""
        target, version = (state.deployment_id, state.version) if live else (None, None)
        move = LiveMove(locked.model_id, target, version, state._live, state._last_change, locked.require_approval,
                        **details)  # fmt: skip
        return self.move_live([move])

    def make_live(
        self, locked: LockedModel, deployment_id: Optional[int], version: Optional[str], **details: Any
    ) -> Optional[int]:
        """Make one deployment (None: none) live on a locked model; returns the previous live one."""
        live, last = self.models_state([locked.model_id])[locked.model_id]
        self.move_live(
            [
                LiveMove(
                    locked.model_id, deployment_id, version, live, last, locked.require_approval, **details
                )
            ]
        )
        return live

    # -- the record ---------------------------------------------------------------------

    def record(
        self,
        action: str,
        entity: str,
        entity_id: Any,
        *,
        model_id: Optional[int] = None,
        before: Optional[Mapping[str, Any]] = None,
        after: Optional[Mapping[str, Any]] = None,
        time: Optional[datetime] = None,
    ) -> None:
        """The audit event of a change, written with it (by :meth:`flush`)."""
        self._events.append(
            dict(time=time or self.now, actor=self.actor, action=action, entity=entity,
                 entity_id=str(entity_id), model_id=model_id, before=jsonable(before), after=jsonable(after))
        )  # fmt: skip

    def lock_feed(self) -> None:
        """Hold the feed's lock until commit: events written after this get ids in commit order.

        On MariaDB/MySQL and PostgreSQL this upserts the one ``event_feed`` row
        (which locks it, and creates it in an empty database without a race);
        SQLite's writers are serialised by BEGIN IMMEDIATE already.
        """
        if self._feed_locked:
            return
        self._feed_locked = True
        dialect = self.dialect
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as upsert

            stmt = upsert(FEED).values(feed_id=1, updated=self.now)
            self.execute(stmt.on_conflict_do_update(index_elements=["feed_id"], set_={"updated": self.now}))
        elif dialect in ("mysql", "mariadb"):
            from sqlalchemy.dialects.mysql import insert as upsert

            stmt = upsert(FEED).values(feed_id=1, updated=self.now)
            self.execute(stmt.on_duplicate_key_update(updated=self.now))

    def flush(self) -> None:
        """Write the history rows of this change (the last statements of its transaction)."""
        if self._changes:
            self.execute(insert(CHANGES), self._changes)
        if self._events:
            self.lock_feed()
            self.execute(insert(EVENTS), self._events)
        self._changes, self._events = [], []


# -- rules that are not statements ------------------------------------------------------


def flows_of(change: Change, deployment_ids: Iterable[int]) -> dict[int, str]:
    """{deployment: its flow} for those of ``deployment_ids`` that have one."""
    wanted = sorted(set(deployment_ids))
    if not wanted:
        return {}
    return dict(change.execute(FLOWS_OF, {"_deployment_ids": wanted}).all())


def claim_flow(taken: dict[int, str], deployment_id: int, flow_id: str) -> None:
    """One flow per deployment: record ``flow_id`` as ``deployment_id``'s in ``taken``, or refuse."""
    other = taken.get(deployment_id, flow_id)
    if other != flow_id:
        raise FlowAlreadyExistsError(
            other,
            f"for deployment {deployment_id!r} (one flow per deployment); delete it before registering another",
        )
    taken[deployment_id] = flow_id


def row_values(row: Any, fields: Optional[Iterable[str]] = None) -> dict[str, Any]:
    """A row (Core row or ORM object) as a plain dict of its columns."""
    if hasattr(row, "_mapping"):
        values = {k: v for k, v in row._mapping.items() if not str(k).startswith("_")}
    else:
        values = {c.key: getattr(row, c.key) for c in row.__table__.c}
    return values if fields is None else {f: values[f] for f in fields}


def changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fields whose values differ, before and after."""
    keys = [k for k in after if before.get(k) != after[k]]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def jsonable(values: Optional[Mapping[str, Any]]) -> Optional[dict[str, Any]]:
    if values is None:
        return None
    return {
        k: [_plain(x) for x in v] if isinstance(v, (list, tuple)) else _plain(v) for k, v in values.items()
    }
