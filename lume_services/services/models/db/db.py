"""Connection to the model database: configuration, engine, transactions.

``ModelDBConfig`` describes where the registry lives: a MySQL/MariaDB server
(host, port, user, password, database with ``dialect_str`` defaulting to
``mysql+pymysql`` as in the spec), any SQLAlchemy ``url``, or an embedded
SQLite file. ``ModelDB`` owns the engine and is the one place that opens
transactions (:meth:`ModelDB.transact`), retrying units of work that lost a
deadlock or serialisation race. Passwords never appear in reprs, logs or
error messages.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Optional, TypeVar

from filelock import FileLock
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from lume_services.errors import (
    ConfigurationError,
    DatabaseError,
    PredecessorSchemaError,
    SchemaNotCurrentError,
    driver_reason,
)
from lume_services.services.models.db.revision import SCHEMA_REVISION

log = logging.getLogger(__name__)
T = TypeVar("T")

# Driver error codes that mean "lost a race, run the unit of work again".
_MYSQL_RETRY_CODES = {1205, 1213}  # lock wait timeout, deadlock
_PG_RETRY_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock


class ConnectionConfig(BaseModel):
    """Engine options passed to ``sqlalchemy.create_engine``."""

    model_config = ConfigDict(extra="forbid")

    pool_size: Optional[int] = Field(
        default=None, ge=1, description="Connections kept open per process (server databases)."
    )
    pool_pre_ping: bool = Field(
        default=True, description="Test each pooled connection before use (survives restarts)."
    )
    busy_timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds a writer waits for a lock (SQLite busy timeout, retry budget).",
    )


class ModelDBConfig(BaseModel):
    """Where the model registry is stored.

    Give either ``url`` (any SQLAlchemy URL), or ``host``/``port``/``user``/
    ``password``/``database`` (joined with ``dialect_str``), or ``sqlite_path``.
    """

    model_config = ConfigDict(extra="forbid")

    host: Optional[str] = Field(default=None, description="Database server host name.")
    port: Optional[int] = Field(default=None, ge=1, le=65535, description="Database server port.")
    user: Optional[str] = Field(default=None, description="Database user.")
    password: Optional[SecretStr] = Field(default=None, description="Database password (secret).")
    database: Optional[str] = Field(default=None, description="Database (schema) name.")
    dialect_str: str = Field(
        default="mysql+pymysql",
        description="SQLAlchemy dialect+driver used with host/port/user/password/database.",
    )
    url: Optional[SecretStr] = Field(
        default=None,
        description="Full SQLAlchemy URL instead of the parts (secret: may hold a password).",
    )
    sqlite_path: Optional[Path] = Field(
        default=None, description="Embedded SQLite file (the default under LUME_HOME)."
    )
    auto_migrate: Optional[bool] = Field(
        default=None,
        description="Upgrade the schema on first use; default: yes for SQLite, no for servers.",
    )
    connection: ConnectionConfig = Field(default_factory=ConnectionConfig, description="Engine options.")

    @model_validator(mode="after")
    def _one_location(self) -> ModelDBConfig:
        parts = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "database": self.database,
        }
        given = [name for name, value in parts.items() if value is not None]
        chosen = sum(bool(x) for x in (given, self.url, self.sqlite_path))
        if chosen > 1:
            raise ValueError("give only one of: url, sqlite_path, or host/port/user/password/database")
        if given and len(given) < len(parts):
            missing = sorted(set(parts) - set(given))
            raise ValueError(
                f"{', '.join(missing)} missing: host, port, user, password and database "
                "are all required once one of them is set (or give url instead)"
            )
        if not chosen:
            raise ValueError("no database given: set url, sqlite_path or host/port/user/password/database")
        return self

    def sqlalchemy_url(self) -> URL:
        """The URL to connect with; the password is escaped, never formatted in."""
        if self.url is not None:
            try:
                return make_url(self.url.get_secret_value().strip())
            except ArgumentError:
                raise ConfigurationError("The model database url is not a valid SQLAlchemy URL.") from None
        if self.sqlite_path is not None:
            return URL.create("sqlite", database=str(self.sqlite_path))
        return URL.create(
            self.dialect_str.strip(),
            username=self.user,
            password=self.password.get_secret_value() if self.password else None,
            host=self.host.strip() if self.host else None,
            port=self.port,
            database=self.database,
        )

    def safe_url(self) -> str:
        """The URL with the password masked, for messages and logs."""
        return self.sqlalchemy_url().render_as_string(hide_password=True)


class ModelDB:
    """Engine and transactions for one model database."""

    def __init__(self, config: ModelDBConfig) -> None:
        self.config = config
        self.url = config.sqlalchemy_url()
        self.dialect = self.url.get_backend_name()
        self._engine: Optional[Engine] = None
        self._readers: Optional[sessionmaker[Session]] = None
        self._writers: Optional[sessionmaker[Session]] = None
        self._write_engine: Optional[Engine] = None
        self._lock = threading.Lock()
        self._checked_schema = False

    def __repr__(self) -> str:
        return f"ModelDB({self.safe_url()!r})"

    # -- engine -------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    self._engine = self._create_engine()
                    self._write_engine = self._engine.execution_options(lume_write=True)
                    self._readers = sessionmaker(self._engine, expire_on_commit=False)
                    self._writers = sessionmaker(self._write_engine, expire_on_commit=False)
        return self._engine

    def _create_engine(self) -> Engine:
        opts = self.config.connection
        kwargs: dict[str, Any] = {"pool_pre_ping": opts.pool_pre_ping, "json_deserializer": _json_loads}
        if self.dialect == "sqlite":
            return self._create_sqlite_engine(kwargs)
        if opts.pool_size is not None:
            kwargs["pool_size"] = opts.pool_size
        # Every use of a connection here ends its transaction (commit, or rollback on
        # error or close), so the pool's extra ROLLBACK on return -- a round trip per
        # unit of work with PyMySQL -- is never needed.
        kwargs["pool_reset_on_return"] = None
        if self.dialect in ("mysql", "mariadb"):
            # REPEATABLE READ snapshots make "read then write" stale under
            # concurrency; READ COMMITTED plus row locks is what we rely on.
            kwargs["isolation_level"] = "READ COMMITTED"
            if "pymysql" in self.url.drivername:
                from lume_services.services.models.db.mysql_conv import pymysql_connect_args

                kwargs["connect_args"] = pymysql_connect_args()
        try:
            engine = create_engine(self.url, **kwargs)
        except (ImportError, ArgumentError) as exc:
            raise ConfigurationError(
                f"Cannot use the model database URL {self.safe_url()!r}: {exc}. Install the "
                "driver it names (e.g. `pip install lume-services[postgresql]`) or fix the dialect."
            ) from None
        _dispose_in_forked_children(engine)
        return engine

    def _create_sqlite_engine(self, kwargs: dict[str, Any]) -> Engine:
        path = self.url.database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        timeout = self.config.connection.busy_timeout
        # A connection to a local file cannot go stale: no ping before each use.
        kwargs = {**kwargs, "pool_pre_ping": False}
        engine = create_engine(self.url, connect_args={"timeout": timeout}, **kwargs)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Take over transaction control from pysqlite so BEGIN is ours.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            if path and path != ":memory:":
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            # Writers serialise at BEGIN instead of failing at COMMIT;
            # readers never take the write lock (WAL lets them run alongside).
            write = conn.get_execution_options().get("lume_write", False)
            # Straight to the driver: this runs once per unit of work, and going through
            # SQLAlchemy's statement execution here costs more than the BEGIN itself.
            conn.connection.driver_connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")

        _dispose_in_forked_children(engine)
        return engine

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
            self._readers = self._writers = self._write_engine = None

    # -- transactions ---------------------------------------------------------

    @contextmanager
    def session(self, *, write: bool = True) -> Iterator[Session]:
        """A session inside one transaction: committed on success, else rolled back."""
        self.engine  # noqa: B018 - builds the sessionmakers
        maker = self._writers if write else self._readers
        assert maker is not None
        with maker() as session, session.begin():
            yield session

    @contextmanager
    def connection(self, *, write: bool = True) -> Iterator[Connection]:
        """A Core connection inside one transaction: committed on success, else rolled back.

        For units of work that run only Core statements; much lighter than a Session.
        """
        engine = self.engine  # (re)builds the write engine too, also after dispose()
        if write:
            engine = self._write_engine
        assert engine is not None
        with engine.begin() as conn:
            yield conn

    def transact(
        self,
        work: Callable[[Any], T],
        *,
        operation: str = "database operation",
        write: bool = True,
        core: bool = False,
    ) -> T:
        """Run ``work(session)`` as one unit of work, retrying lost lock races.

        With ``core``, ``work`` gets a Core :class:`Connection` instead of a Session.

        A failure before COMMIT rolled everything back: a lost race is retried,
        an operational failure (connection refused or lost) is a DatabaseError
        saying "Nothing was stored." A write whose COMMIT itself fails (the
        connection lost while committing, or the server refusing it) may or may
        not have been applied: it is a DatabaseError with ``outcome_unknown``
        and is never run again here. A read's failed COMMIT changed nothing.
        """
        deadline = time.monotonic() + self.config.connection.busy_timeout
        attempt = 0
        while True:
            attempt += 1
            committing = False
            try:
                with self.connection(write=write) if core else self.session(write=write) as unit:
                    result = work(unit)
                    if not core:
                        unit.flush()  # a flush's failure is the work's, not the commit's
                    committing = True  # leaving the block commits
                return result
            except DBAPIError as exc:
                if committing:
                    raise self._commit_failed(operation, exc, write=write) from None
                if not self._is_retryable(exc) or time.monotonic() > deadline:
                    if not isinstance(exc, IntegrityError):  # those become domain errors upstream
                        nothing = "Nothing was stored." if write else ""
                        raise DatabaseError(operation, self._reason(exc), consequence=nothing) from None
                    raise
                log.debug("retrying %s after lock conflict (attempt %d)", operation, attempt)
                time.sleep(min(0.01 * 2**attempt, 0.5))

    def _commit_failed(self, operation: str, exc: DBAPIError, *, write: bool) -> DatabaseError:
        """The error for a COMMIT that failed: of a write, its outcome is unknown."""
        if not write:  # a read transaction had nothing to apply
            return DatabaseError(operation, self._reason(exc), consequence="Nothing was changed.")
        if exc.connection_invalidated:  # SQLAlchemy saw a disconnect
            consequence = (
                "The connection was lost while committing: the change may or may not have been "
                "applied; read it back before retrying."
            )
        else:
            consequence = ""  # the generic sentence of DatabaseError: the commit failed
        return DatabaseError(operation, self._reason(exc), outcome_unknown=True, consequence=consequence)

    def _reason(self, exc: DBAPIError) -> str:
        """The driver's reason, without SQL, parameters or the password."""
        return driver_reason(exc, secret=self.url.password)

    def _is_retryable(self, exc: DBAPIError) -> bool:
        orig = exc.orig
        if self.dialect in ("mysql", "mariadb"):
            args = getattr(orig, "args", ())
            return bool(args) and args[0] in _MYSQL_RETRY_CODES
        if self.dialect == "postgresql":
            return getattr(orig, "sqlstate", None) in _PG_RETRY_SQLSTATES
        if self.dialect == "sqlite":
            return "database is locked" in str(orig)
        return False

    # -- schema ---------------------------------------------------------------

    @property
    def auto_migrate(self) -> bool:
        if self.config.auto_migrate is not None:
            return self.config.auto_migrate
        return self.dialect == "sqlite"

    def ensure_schema(self) -> None:
        """Check (or, with auto_migrate, bring) the schema at the expected revision."""
        current = self.schema_revision()
        if current == SCHEMA_REVISION:
            return
        self.refuse_predecessor()
        if not self.auto_migrate:
            raise SchemaNotCurrentError(self.safe_url(), current, SCHEMA_REVISION)
        self.upgrade_schema()

    def upgrade_schema(self) -> None:
        """Run the migrations up to head; serialised across processes on SQLite."""
        from lume_services import migrations

        with self._migration_lock():
            if self.schema_revision() != SCHEMA_REVISION:
                self.refuse_predecessor()
                log.info("upgrading model database schema to %s", SCHEMA_REVISION)
                try:
                    migrations.upgrade(self)
                except DBAPIError as exc:
                    raise DatabaseError("schema upgrade", self._reason(exc)) from None

    def refuse_predecessor(self) -> None:
        """Raise PredecessorSchemaError if the database needs ``db adopt`` rather than an upgrade."""
        from lume_services.services.models.db.adopt import is_predecessor

        try:
            with self.engine.connect() as conn:
                why = is_predecessor(conn)
        except DBAPIError as exc:
            raise DatabaseError(f"connecting to {self.safe_url()}", self._reason(exc)) from None
        if why is not None:
            raise PredecessorSchemaError(self.safe_url(), why, SCHEMA_REVISION)

    def schema_revision(self) -> Optional[str]:
        """The revision stamped in the database; None before the first migration."""
        try:
            with self.engine.connect() as conn:
                if not inspect(conn).has_table("alembic_version"):
                    return None
                return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except DBAPIError as exc:
            raise DatabaseError(f"connecting to {self.safe_url()}", self._reason(exc)) from None

    def _migration_lock(self) -> Any:
        path = self.url.database if self.dialect == "sqlite" else None
        if not path or path == ":memory:":
            return nullcontext()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return FileLock(f"{path}.migrate.lock")

    def safe_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))


_JSON_CONSTANTS: dict[str, Any] = {"null": None, "{}": None}  # "{}" is replaced below: a new dict each time


def _json_loads(text: str) -> Any:
    """json.loads, without a parse for the values most read: no tags ("null" or "{}")."""
    if text in _JSON_CONSTANTS:
        return None if text == "null" else {}
    return json.loads(text)


def _dispose_in_forked_children(engine: Engine) -> None:
    """Pooled connections must not be shared with a forked child."""
    ref = weakref.ref(engine)

    def _after_fork() -> None:
        eng = ref()
        if eng is not None:
            eng.dispose(close=False)

    os.register_at_fork(after_in_child=_after_fork)
