"""ORM schema of the model registry: the five tables of the spec, and their history.

Table and column names follow the predecessor (and the spec) so that existing
SQL and docker-compose init files keep working; lengths, keys and foreign-key
actions fix what the predecessor got wrong:

* every constraint is named (``MetaData(naming_convention=...)``), so
  migrations can refer to them on every dialect;
* foreign keys declare their ``ON DELETE`` / ``ON UPDATE`` behaviour in the
  DDL (a deployment goes with its model, a flow with its deployment, a
  composition with its parent flow; a project or a subflow that is still
  referred to cannot be deleted);
* lengths hold real values (PEP 440 local versions, image references with
  digests, long URLs) while every index stays within MySQL's 3072-byte key
  limit under utf8mb4;
* identifying text compares case-sensitively on MySQL/MariaDB too (binary
  collation), as it does on SQLite and PostgreSQL;
* timestamps are stored as naive UTC with microseconds and read back as
  aware UTC datetimes;
* relationships raise instead of lazy-loading by accident.

Three tables record who changed what and when (written only through
``services/models/writes.py``): ``audit_event`` (append-only; it has no
foreign keys, so a deleted model keeps its events), ``live_change`` (append-
only: from each change's time on, its deployment is the model's live one,
until the next change) and ``live_request`` (requests to change a protected
model's live deployment, and their approval or rejection).

``deployment_variables`` holds a deployment's inputs and outputs, read from
its package when it is stored. Models and deployments carry tags (a JSON
object in ``tags``), indexed by ``model_tag`` / ``deployment_tag``.

Events and webhooks (``lume_services.events``): ``event_feed`` (the one row
writers of audit events lock, so event ids follow commit order),
``webhook``, ``webhook_delivery`` (derived from the audit events by the
delivery process) and ``webhook_attempt``.

The REST server's principals: ``api_token`` (a token's name, scope, project,
expiry and revocation; only the token's sha256 is stored). Its work:
``job`` (a store submitted to the server, run by its job runners, with its
state, step and outcome) and ``flow_run`` (every run submitted through the
registry: parameters, actor, state, result or error).

This module imports nothing else from lume_services. Lengths declared here
are the single source of truth for input validation in the service.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Optional

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Column lengths (characters). Indexed columns are sized so that every key
# stays below 3072 bytes at 4 bytes per character.
NAME_LENGTH = 100  # author, laboratory, facility, beampath, project name
DESCRIPTION_LENGTH = 255  # model description (part of the model's identity)
LONG_TEXT_LENGTH = 2000  # project description
VERSION_LENGTH = 64
IMPORT_NAME_LENGTH = 255
PATH_LENGTH = 1024  # asset_dir
SOURCE_LENGTH = 2048
SHA256_LENGTH = 64
IMAGE_LENGTH = 512
FLOW_ID_LENGTH = 255
FLOW_NAME_LENGTH = 255
ACTOR_LENGTH = 100  # who acted: LUME_ACTOR, a token's name
ACTION_LENGTH = 64  # audit action, e.g. "deployment.live_changed"
ENTITY_LENGTH = 32
ENTITY_ID_LENGTH = 255  # the largest key (a flow id), as text
REASON_LENGTH = 2000
STATE_LENGTH = 16
TAG_KEY_LENGTH = 250  # MLflow's registry tags: keys up to 250 characters
TAG_VALUE_LENGTH = 100_000  # ... and values up to 100,000
VARIABLES_FILE_LENGTH = 1000  # archive member a deployment's variables were read from
VARIABLES_FORMAT_LENGTH = 32
TOKEN_SCOPES = ("read", "write", "admin")  # each includes the ones before it


MYSQL_TABLE = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes, stored naive in UTC with microsecond precision."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=False))

    def process_bind_param(self, value: Optional[datetime], dialect: Any) -> Optional[datetime]:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware datetime (UTC)")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Optional[datetime], dialect: Any) -> Optional[datetime]:
        return None if value is None else value.replace(tzinfo=UTC)


def ident(length: int) -> String:
    """A string that compares case-sensitively on every dialect."""
    return String(length).with_variant(
        mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Model(Base):
    """Top-level information about a model; identity is all five text fields."""

    __tablename__ = "model"
    __table_args__ = (
        UniqueConstraint("author", "laboratory", "facility", "beampath", "description", name="_model_entry"),
        Index("ix_model_facility_beampath", "facility", "beampath", "laboratory"),
        MYSQL_TABLE,
    )

    model_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    author: Mapped[str] = mapped_column(ident(NAME_LENGTH), nullable=False)
    laboratory: Mapped[str] = mapped_column(ident(NAME_LENGTH), nullable=False)
    facility: Mapped[str] = mapped_column(ident(NAME_LENGTH), nullable=False)
    beampath: Mapped[str] = mapped_column(ident(NAME_LENGTH), nullable=False)
    description: Mapped[str] = mapped_column(ident(DESCRIPTION_LENGTH), nullable=False)
    # A protected model changes its live deployment only through an approved live_request.
    require_approval: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false()
    )
    # Its tags ({key: value}; NULL: none), kept in step with model_tag by the write path.
    tags: Mapped[Optional[dict[str, str]]] = mapped_column(JSON, nullable=True)

    deployments: Mapped[list[Deployment]] = relationship(
        back_populates="model",
        lazy="raise",
        order_by="(Deployment.deploy_date, Deployment.deployment_id)",
        passive_deletes=True,
    )


class Deployment(Base):
    """A versioned release of a model: source, checksum, image, liveness."""

    __tablename__ = "deployment"
    __table_args__ = (
        UniqueConstraint("model_id", "version", name="_deployment_unique"),
        Index("ix_deployment_model_date", "model_id", "deploy_date", "deployment_id"),
        Index("ix_deployment_model_id", "model_id", "deployment_id"),
        Index("ix_deployment_model_live", "model_id", "is_live"),
        Index("ix_deployment_sha256", "sha256"),
        MYSQL_TABLE,
    )

    deployment_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version: Mapped[str] = mapped_column(ident(VERSION_LENGTH), nullable=False)
    deploy_date: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    package_import_name: Mapped[str] = mapped_column(String(IMPORT_NAME_LENGTH), nullable=False)
    asset_dir: Mapped[Optional[str]] = mapped_column(String(PATH_LENGTH), nullable=True)
    source: Mapped[str] = mapped_column(String(SOURCE_LENGTH), nullable=False)
    sha256: Mapped[str] = mapped_column(String(SHA256_LENGTH), nullable=False)
    image: Mapped[Optional[str]] = mapped_column(String(IMAGE_LENGTH), nullable=True)
    is_live: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    model_id: Mapped[int] = mapped_column(
        ForeignKey("model.model_id", ondelete="CASCADE", onupdate="CASCADE"), nullable=False
    )
    # Its tags ({key: value}; NULL: none), kept in step with deployment_tag by the write path.
    tags: Mapped[Optional[dict[str, str]]] = mapped_column(JSON, nullable=True)

    model: Mapped[Model] = relationship(back_populates="deployments", lazy="raise")
    flow: Mapped[Optional[Flow]] = relationship(
        back_populates="deployment", lazy="raise", uselist=False, passive_deletes=True
    )


class DeploymentVariables(Base):
    """A deployment's input and output variables, as read from its package (no row: none declared).

    ``source_file`` is the archive member they were read from and ``format``
    its dialect (``lume-model-1``, ``lume-model-2``, ``lume-base``);
    ``inputs`` / ``outputs`` are lists of variables in file order. Written
    with its deployment, never changed, deleted with it.
    """

    __tablename__ = "deployment_variables"
    __table_args__ = (MYSQL_TABLE,)

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployment.deployment_id", ondelete="CASCADE", onupdate="CASCADE"), primary_key=True
    )
    source_file: Mapped[str] = mapped_column(String(VARIABLES_FILE_LENGTH), nullable=False)
    format: Mapped[str] = mapped_column(String(VARIABLES_FORMAT_LENGTH), nullable=False)
    inputs: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False, info={"json": "list"})
    outputs: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False, info={"json": "list"})


class Project(Base):
    """A Prefect project (work queue) as tracked by the registry."""

    __tablename__ = "project"
    __table_args__ = (MYSQL_TABLE,)

    project_name: Mapped[str] = mapped_column(ident(NAME_LENGTH), primary_key=True)
    description: Mapped[str] = mapped_column(String(LONG_TEXT_LENGTH), nullable=False)

    flows: Mapped[list[Flow]] = relationship(back_populates="project", lazy="raise", order_by="Flow.flow_id")


class Flow(Base):
    """A Prefect deployment of a registry deployment, or a composite parent.

    ``flow_id`` holds the Prefect deployment id. ``deployment_id`` is NULL
    only for a composite (flow-of-flows) parent; the service enforces that
    (MySQL/MariaDB refuse CHECK constraints on columns with FK actions).
    """

    __tablename__ = "flow"
    __table_args__ = (
        Index("ix_flow_project", "project_name", "flow_id"),
        MYSQL_TABLE,
    )

    flow_id: Mapped[str] = mapped_column(ident(FLOW_ID_LENGTH), primary_key=True)
    flow_name: Mapped[str] = mapped_column(String(FLOW_NAME_LENGTH), nullable=False)
    project_name: Mapped[str] = mapped_column(
        ForeignKey("project.project_name", ondelete="RESTRICT", onupdate="CASCADE"),
        nullable=False,
    )
    deployment_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("deployment.deployment_id", ondelete="CASCADE", onupdate="CASCADE"),
        nullable=True,
        unique=True,
    )
    composite: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)

    project: Mapped[Project] = relationship(back_populates="flows", lazy="raise")
    deployment: Mapped[Optional[Deployment]] = relationship(back_populates="flow", lazy="raise")
    subflows: Mapped[list[FlowOfFlows]] = relationship(
        foreign_keys="FlowOfFlows.parent_flow_id",
        lazy="raise",
        order_by="FlowOfFlows.position",
        passive_deletes=True,
    )


class FlowOfFlows(Base):
    """One step of a composite flow: which subflow runs at which position."""

    __tablename__ = "flow_of_flows"
    __table_args__ = (
        UniqueConstraint("parent_flow_id", "position", name="_flow_of_flows_position"),
        CheckConstraint("position >= 1", name="position_positive"),
        Index("ix_flow_of_flows_flow", "flow_id"),
        MYSQL_TABLE,
    )

    id: Mapped[int] = mapped_column("_id", Integer, primary_key=True, autoincrement=True)
    parent_flow_id: Mapped[str] = mapped_column(
        ForeignKey("flow.flow_id", ondelete="CASCADE", onupdate="CASCADE"), nullable=False
    )
    flow_id: Mapped[str] = mapped_column(
        ForeignKey("flow.flow_id", ondelete="RESTRICT", onupdate="CASCADE"), nullable=False
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    mapped_parameters: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON, nullable=True)

    flow: Mapped[Flow] = relationship(foreign_keys=[flow_id], lazy="raise")


# Event ids only grow; 64 bits where the dialect has them (SQLite's INTEGER is 64-bit already).
EVENT_ID = BigInteger().with_variant(Integer, "sqlite")


class AuditEvent(Base):
    """One change of the registry: who, when, what, and the changed fields before and after.

    Append-only. ``entity_id`` is the changed row's key as text; ``model_id``
    is set wherever the change belongs to a model (and kept after it is deleted).
    """

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_model", "model_id", "event_id"),
        Index("ix_audit_event_actor", "actor", "event_id"),
        Index("ix_audit_event_action", "action", "event_id"),
        Index("ix_audit_event_time", "time", "event_id"),
        MYSQL_TABLE,
    )

    event_id: Mapped[int] = mapped_column(EVENT_ID, primary_key=True, autoincrement=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    actor: Mapped[str] = mapped_column(ident(ACTOR_LENGTH), nullable=False)
    action: Mapped[str] = mapped_column(ident(ACTION_LENGTH), nullable=False)
    entity: Mapped[str] = mapped_column(ident(ENTITY_LENGTH), nullable=False)
    entity_id: Mapped[str] = mapped_column(ident(ENTITY_ID_LENGTH), nullable=False)
    model_id: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    before: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON, nullable=True)
    after: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON, nullable=True)


class LiveChange(Base):
    """From ``time`` on, ``deployment_id`` is its model's live deployment (NULL: none is).

    Append-only: the live history of a model is its changes in time order,
    each interval running from one change to the next (so intervals never
    overlap and are never rewritten). The deployment id has no foreign key:
    a deployment deleted while live is followed by a change to NULL, and its
    interval stays, with the version it had.
    """

    __tablename__ = "live_change"
    __table_args__ = (
        Index("ix_live_change_model", "model_id", "time", "change_id"),
        MYSQL_TABLE,
    )

    change_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(
        ForeignKey("model.model_id", ondelete="CASCADE", onupdate="CASCADE"), nullable=False
    )
    deployment_id: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    version: Mapped[Optional[str]] = mapped_column(ident(VERSION_LENGTH), nullable=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    actor: Mapped[str] = mapped_column(ident(ACTOR_LENGTH), nullable=False)
    reason: Mapped[Optional[str]] = mapped_column(String(REASON_LENGTH), nullable=True)
    approved_by: Mapped[Optional[str]] = mapped_column(ident(ACTOR_LENGTH), nullable=True)
    request_id: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)


class LiveRequest(Base):
    """A request to make a deployment live on a protected model, and its decision."""

    __tablename__ = "live_request"
    __table_args__ = (
        Index("ix_live_request_model", "model_id", "request_id"),
        Index("ix_live_request_state", "state", "request_id"),
        MYSQL_TABLE,
    )

    request_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(
        ForeignKey("model.model_id", ondelete="CASCADE", onupdate="CASCADE"), nullable=False
    )
    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployment.deployment_id", ondelete="CASCADE", onupdate="CASCADE"), nullable=False
    )
    expected_live: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    requested_by: Mapped[str] = mapped_column(ident(ACTOR_LENGTH), nullable=False)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    reason: Mapped[str] = mapped_column(String(REASON_LENGTH), nullable=False)
    state: Mapped[str] = mapped_column(String(STATE_LENGTH), nullable=False)
    decided_by: Mapped[Optional[str]] = mapped_column(ident(ACTOR_LENGTH), nullable=True)
    decided_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime(), nullable=True)
    decision_reason: Mapped[Optional[str]] = mapped_column(String(REASON_LENGTH), nullable=True)


class ModelTag(Base):
    """One tag of a model, by the SHA-256 of its value: the index behind ``tags={k: v}`` filters.

    The value itself is in ``model.tags``; the write path keeps both in step.
    """

    __tablename__ = "model_tag"
    __table_args__ = (Index("ix_model_tag_lookup", "key", "value_sha256", "model_id"), MYSQL_TABLE)

    model_id: Mapped[int] = mapped_column(
        ForeignKey("model.model_id", ondelete="CASCADE", onupdate="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(ident(TAG_KEY_LENGTH), primary_key=True)
    value_sha256: Mapped[str] = mapped_column(String(SHA256_LENGTH), nullable=False)


class DeploymentTag(Base):
    """One tag of a deployment, by the SHA-256 of its value (see ModelTag)."""

    __tablename__ = "deployment_tag"
    __table_args__ = (Index("ix_deployment_tag_lookup", "key", "value_sha256", "deployment_id"), MYSQL_TABLE)

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployment.deployment_id", ondelete="CASCADE", onupdate="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(ident(TAG_KEY_LENGTH), primary_key=True)
    value_sha256: Mapped[str] = mapped_column(String(SHA256_LENGTH), nullable=False)


# -- events and webhooks ------------------------------------------------------------------

URL_LENGTH = 2048  # a webhook's target
SECRET_LENGTH = 256  # a webhook's signing secret (HMAC key)
ERROR_LENGTH = 2000  # what went wrong with a delivery attempt
WORKER_LENGTH = 200  # which delivery process claimed a delivery (host:pid:random)


class EventFeed(Base):
    """One row that every writer of audit events locks first (MariaDB, PostgreSQL), so event ids are
    assigned in commit order and a reader's cursor never skips an event committed later.

    Upserted by :meth:`Change.flush`; SQLite needs no row (its writers are serialised by BEGIN IMMEDIATE).
    """

    __tablename__ = "event_feed"
    __table_args__ = (MYSQL_TABLE,)

    feed_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    updated: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class Webhook(Base):
    """A target that is sent the events of some types (and of one model, or all).

    ``secret`` signs each body (HMAC-SHA256); it is never exported nor shown
    after creation. ``cursor`` is the last event this webhook's deliveries
    were derived from (events after it are still to be matched).
    """

    __tablename__ = "webhook"
    __table_args__ = (MYSQL_TABLE,)

    webhook_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(String(URL_LENGTH), nullable=False)
    secret: Mapped[str] = mapped_column(String(SECRET_LENGTH), nullable=False)
    event_types: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    model_id: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    created_by: Mapped[str] = mapped_column(ident(ACTOR_LENGTH), nullable=False)
    cursor: Mapped[int] = mapped_column(EVENT_ID, nullable=False)


class WebhookDelivery(Base):
    """One event to send to one webhook, and where that stands.

    ``state``: ``queued`` (behind an earlier delivery of the same webhook and
    model), ``pending`` (the next one of its webhook and model, attempted at
    ``next_attempt_at``), ``delivered`` or ``dead``. ``claimed_until`` is the
    lease of the delivery process attempting it. ``body`` is the exact JSON sent.
    """

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        Index("ix_webhook_delivery_due", "state", "next_attempt_at"),
        Index("ix_webhook_delivery_group", "webhook_id", "model_key", "state", "delivery_id"),
        Index("ix_webhook_delivery_event", "event_id"),
        MYSQL_TABLE,
    )

    delivery_id: Mapped[int] = mapped_column(EVENT_ID, primary_key=True, autoincrement=True)
    webhook_id: Mapped[int] = mapped_column(
        ForeignKey("webhook.webhook_id", ondelete="CASCADE", onupdate="CASCADE"), nullable=False
    )
    event_id: Mapped[int] = mapped_column(EVENT_ID, nullable=False)
    event_type: Mapped[str] = mapped_column(ident(ACTION_LENGTH), nullable=False)
    model_key: Mapped[int] = mapped_column(Integer, nullable=False)  # the event's model, 0 for none
    state: Mapped[str] = mapped_column(String(STATE_LENGTH), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False)
    created: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    claimed_until: Mapped[Optional[datetime]] = mapped_column(UTCDateTime(), nullable=True)
    claimed_by: Mapped[Optional[str]] = mapped_column(String(WORKER_LENGTH), nullable=True)
    finished: Mapped[Optional[datetime]] = mapped_column(UTCDateTime(), nullable=True)
    last_status: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    last_error: Mapped[Optional[str]] = mapped_column(String(ERROR_LENGTH), nullable=True)
    replay_of: Mapped[Optional[int]] = mapped_column(EVENT_ID, nullable=True)
    body: Mapped[str] = mapped_column(
        Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb"), nullable=False
    )


class WebhookAttempt(Base):
    """One POST of a delivery: when, how long, and the status code or the error."""

    __tablename__ = "webhook_attempt"
    __table_args__ = (
        Index("ix_webhook_attempt_delivery", "delivery_id", "attempt"),
        MYSQL_TABLE,
    )

    attempt_id: Mapped[int] = mapped_column(EVENT_ID, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_delivery.delivery_id", ondelete="CASCADE", onupdate="CASCADE"), nullable=False
    )
    attempt: Mapped[int] = mapped_column(Integer, nullable=False)
    started: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    duration: Mapped[float] = mapped_column(Float, nullable=False)  # seconds
    status_code: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    error: Mapped[Optional[str]] = mapped_column(String(ERROR_LENGTH), nullable=True)
    worker: Mapped[str] = mapped_column(String(WORKER_LENGTH), nullable=False)


class ApiToken(Base):
    """A REST API token: its name (the actor of what it changes), scope and limits.

    Only ``token_sha256`` (of the whole token) is kept. ``active_name`` is the
    name while the token is not revoked and NULL after, so that one name has
    at most one token in use (NULLs never collide in a unique index).
    """

    __tablename__ = "api_token"
    __table_args__ = (
        CheckConstraint("scope IN ('read', 'write', 'admin')", name="scope_known"),
        MYSQL_TABLE,
    )

    token_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(ident(ACTOR_LENGTH), nullable=False)
    active_name: Mapped[Optional[str]] = mapped_column(ident(ACTOR_LENGTH), nullable=True, unique=True)
    token_sha256: Mapped[str] = mapped_column(String(SHA256_LENGTH), nullable=False, unique=True)
    scope: Mapped[str] = mapped_column(String(STATE_LENGTH), nullable=False)
    project_name: Mapped[Optional[str]] = mapped_column(ident(NAME_LENGTH), nullable=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    created_by: Mapped[str] = mapped_column(ident(ACTOR_LENGTH), nullable=False)
    expires: Mapped[Optional[datetime]] = mapped_column(UTCDateTime(), nullable=True)
    revoked: Mapped[Optional[datetime]] = mapped_column(UTCDateTime(), nullable=True)
    revoked_by: Mapped[Optional[str]] = mapped_column(ident(ACTOR_LENGTH), nullable=True)


JOB_STATES = ("queued", "running", "succeeded", "failed")
RUN_STATES = ("submitted", "running", "completed", "failed", "cancelled")
RESULT_TEXT = Text().with_variant(mysql.MEDIUMTEXT(), "mysql").with_variant(mysql.MEDIUMTEXT(), "mariadb")


class Job(Base):
    """Work the server does for a client (``kind`` store_deployment): queued, running, then an outcome.

    ``request`` holds the call's arguments (never a secret); ``worker`` and
    ``heartbeat`` say which runner holds a running job and when it last
    said so: a running job whose heartbeat is older than the lease is failed
    by any runner (its server stopped), never left running.
    """

    __tablename__ = "job"
    __table_args__ = (Index("ix_job_state", "state", "job_id"), MYSQL_TABLE)

    job_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(ENTITY_LENGTH), nullable=False)
    actor: Mapped[str] = mapped_column(ident(ACTOR_LENGTH), nullable=False)
    state: Mapped[str] = mapped_column(String(STATE_LENGTH), nullable=False)
    step: Mapped[Optional[str]] = mapped_column(String(ACTION_LENGTH), nullable=True)
    request: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    result: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON, nullable=True)
    error: Mapped[Optional[str]] = mapped_column(RESULT_TEXT, nullable=True)
    error_type: Mapped[Optional[str]] = mapped_column(String(ACTION_LENGTH), nullable=True)
    error_attributes: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON, nullable=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    started: Mapped[Optional[datetime]] = mapped_column(UTCDateTime(), nullable=True)
    finished: Mapped[Optional[datetime]] = mapped_column(UTCDateTime(), nullable=True)
    heartbeat: Mapped[Optional[datetime]] = mapped_column(UTCDateTime(), nullable=True)
    worker: Mapped[Optional[str]] = mapped_column(String(WORKER_LENGTH), nullable=True)


class FlowRun(Base):
    """A run submitted through the registry: which deployment, with what, by whom, and how it ended.

    ``prefect_run_id`` is Prefect's flow run id; ``result`` is the flow's
    return value as JSON (None until it completed), ``error`` the failure.
    No foreign keys: a run outlives its deployment's deletion.
    """

    __tablename__ = "flow_run"
    __table_args__ = (
        Index("ix_flow_run_model", "model_id", "run_id"),
        Index("ix_flow_run_deployment", "deployment_id", "run_id"),
        MYSQL_TABLE,
    )

    run_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    prefect_run_id: Mapped[str] = mapped_column(String(FLOW_ID_LENGTH), nullable=False, unique=True)
    model_id: Mapped[int] = mapped_column(Integer, nullable=False)
    deployment_id: Mapped[int] = mapped_column(Integer, nullable=False)
    flow_id: Mapped[str] = mapped_column(ident(FLOW_ID_LENGTH), nullable=False)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    actor: Mapped[str] = mapped_column(ident(ACTOR_LENGTH), nullable=False)
    state: Mapped[str] = mapped_column(String(STATE_LENGTH), nullable=False)
    result: Mapped[Optional[Any]] = mapped_column(JSON, nullable=True)
    error: Mapped[Optional[str]] = mapped_column(RESULT_TEXT, nullable=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    finished: Mapped[Optional[datetime]] = mapped_column(UTCDateTime(), nullable=True)


class WebSession(Base):
    """A signed-in browser of the web UI: the token it signed in with, until ``expires``.

    Only ``session_sha256`` (of the cookie's random session id) is kept; the
    token itself never reaches the browser after sign-in. Deleting the token
    row deletes its sessions; revoking it ends them at once (the lookup joins
    the token and checks it).
    """

    __tablename__ = "web_session"
    __table_args__ = (Index("ix_web_session_expires", "expires"), MYSQL_TABLE)

    session_sha256: Mapped[str] = mapped_column(String(SHA256_LENGTH), primary_key=True)
    token_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("api_token.token_id", ondelete="CASCADE", onupdate="CASCADE"), nullable=False
    )
    created: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    expires: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
