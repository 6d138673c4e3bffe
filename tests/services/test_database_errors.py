"""Database failures carry the driver's own reason, never SQL, parameters or the password.

Real failures on real databases: a SQLite path that is a directory, a SQLite
file that is full (``PRAGMA max_page_count``), servers that refuse the
connection, and a server's own error message.
"""

from __future__ import annotations

import os
import pickle
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from factories import model_fields
from sqlalchemy import create_engine, event, insert, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from lume_services.errors import DatabaseError, driver_reason
from lume_services.services.models.db.db import ModelDB, ModelDBConfig
from lume_services.services.models.db.schema import Project
from lume_services.services.models.service import ModelDBService

# Tests of PostgreSQL-only behaviour run on PostgreSQL alone (when it is a selected dialect).
on_postgresql = pytest.mark.parametrize(
    "dialect",
    [d for d in os.environ.get("LUME_TEST_DIALECTS", "postgresql").split(",") if d.strip() == "postgresql"],
    indirect=True,
)

SECRET = "hunter2-Secret"


def assert_no_sql(message: str) -> None:
    """No statement text (a clause name, as in MariaDB's "in 'SELECT'", is not one), no parameters."""
    for fragment in ("[SQL", "[parameters", "Background on this error", "INSERT INTO", "FROM model", SECRET):
        assert fragment not in message


class TestSQLite:
    def test_a_directory_as_the_file_names_the_drivers_reason(self, tmp_path: Path):
        service = ModelDBService(ModelDB(ModelDBConfig(sqlite_path=tmp_path)))
        with pytest.raises(DatabaseError) as info:
            service.get_models()
        message = str(info.value)
        assert "unable to open database file" in message
        assert message.startswith(f"Database error during connecting to sqlite:///{tmp_path}: ")
        assert info.value.reason == "unable to open database file"
        assert_no_sql(message)

    def test_a_full_database_names_the_reason_and_stores_nothing(self, tmp_path: Path):
        db = ModelDB(ModelDBConfig(sqlite_path=tmp_path / "registry.db"))
        service = ModelDBService(db)
        service.apply_schema()
        with db.engine.connect() as conn:
            pages = conn.execute(text("PRAGMA page_count")).scalar_one()
        db.dispose()

        @event.listens_for(db.engine, "connect")
        def _cap(dbapi_conn, _record):  # the file may not grow: the next new page is "full"
            dbapi_conn.execute(f"PRAGMA max_page_count={pages}")

        stored: list[int] = []
        with pytest.raises(DatabaseError) as info:
            for n in range(10_000):  # each model and its audit event take space until none is left
                fields = model_fields(description=f"model {n} " + "x" * 200)
                stored.append(service.store_model(**fields))
        message = str(info.value)
        assert message == "Database error during store_model: database or disk is full. Nothing was stored."
        assert info.value.outcome_unknown is False
        assert_no_sql(message)
        assert stored  # it filled up on a later model, not the first
        assert service.get_models(description=fields["description"]) == []
        assert [m.model_id for m in service.get_models()] == stored
        assert len(service.list_audit_events(limit=1000).items) == len(stored)
        db.dispose()


class TestServers:
    @pytest.mark.parametrize(
        "url, reason",
        [
            (f"mysql+pymysql://lume:{SECRET}@127.0.0.1:1/registry", "Can't connect to MySQL server"),
            (f"postgresql+psycopg://lume:{SECRET}@127.0.0.1:1/registry", "Connection refused"),
        ],
        ids=["pymysql", "psycopg"],
    )
    def test_a_refused_connection_names_the_drivers_reason(self, url, reason):
        service = ModelDBService(ModelDB(ModelDBConfig(url=url)))
        with pytest.raises(DatabaseError) as info:
            service.get_models()
        message = str(info.value)
        assert reason in message
        assert "\n" not in message
        assert info.value.outcome_unknown is False
        assert_no_sql(message)


def test_a_servers_own_message_is_its_first_line_without_sql(model_db):
    """driver_reason on every dialect's real error for a missing table."""
    with pytest.raises(DBAPIError) as info:
        with model_db.connection(write=False) as conn:
            conn.execute(text("SELECT no_such_column FROM model WHERE author = :a"), {"a": SECRET})
    reason = driver_reason(info.value)
    assert "no_such_column" in reason  # every driver names the column
    assert "\n" not in reason
    assert_no_sql(reason)


@on_postgresql  # only PostgreSQL's sequence raises DataError at its end
def test_every_driver_error_of_a_unit_of_work_is_ours(model_db):
    """Not only OperationalError: e.g. PostgreSQL's DataError when model ids run out."""
    with model_db.connection(write=True) as conn:
        conn.execute(text("SELECT setval(pg_get_serial_sequence('model', 'model_id'), 2147483647)"))
    try:
        with pytest.raises(DatabaseError, match="Nothing was stored") as info:
            ModelDBService(model_db).store_model(**model_fields())
    finally:  # the database is shared by later tests: give the ids back
        with model_db.connection(write=True) as conn:
            conn.execute(text("SELECT setval(pg_get_serial_sequence('model', 'model_id'), 1, false)"))
    assert not info.value.outcome_unknown
    assert_no_sql(str(info.value))


# --- a connection lost at COMMIT: the outcome is unknown --------------------------

UNKNOWN = (
    "The connection was lost while committing: the change may or may not have been applied; "
    "read it back before retrying."
)


def _server_id(dbapi_conn, dialect: str) -> int:
    """The server's id of a driver connection: what KILL / pg_terminate_backend take."""
    cur = dbapi_conn.cursor()
    try:
        cur.execute("SELECT pg_backend_pid()" if dialect == "postgresql" else "SELECT CONNECTION_ID()")
        return int(cur.fetchone()[0])
    finally:
        cur.close()


class Killer:
    """A second connection to the same server that ends another connection, and waits until it is gone."""

    def __init__(self, model_db: ModelDB) -> None:
        self.dialect = model_db.dialect
        self.engine = create_engine(model_db.url, poolclass=NullPool)

    def kill(self, server_id: int) -> None:
        if self.dialect == "postgresql":
            end = "SELECT pg_terminate_backend(:id)"
            alive = "SELECT count(*) FROM pg_stat_activity WHERE pid = :id"
        else:
            end = f"KILL {int(server_id)}"
            alive = "SELECT count(*) FROM information_schema.PROCESSLIST WHERE ID = :id"
        with self.engine.begin() as conn:
            conn.execute(text(end), {"id": server_id})
        deadline = time.monotonic() + 10
        while True:  # each check in a new transaction: pg_stat_activity is a per-transaction snapshot
            with self.engine.begin() as conn:
                if not conn.execute(text(alive), {"id": server_id}).scalar_one():
                    return
            assert time.monotonic() < deadline, f"connection {server_id} still alive"
            time.sleep(0.01)


@pytest.fixture
def killer(model_db: ModelDB) -> Iterator[Killer]:
    k = Killer(model_db)
    yield k
    k.engine.dispose()


@pytest.fixture
def lose_commit(model_db: ModelDB, killer: Killer) -> Iterator[list[int]]:
    """Every COMMIT of ``model_db`` is counted; the first one's connection is killed just before it is sent.

    SQLAlchemy's ``commit`` event runs right before the driver's commit(), so
    the real COMMIT goes to a connection the server has already closed.
    """
    commits: list[int] = []

    def on_commit(conn) -> None:
        commits.append(1)
        if len(commits) == 1:
            killer.kill(_server_id(conn.connection.driver_connection, model_db.dialect))

    event.listen(model_db.engine, "commit", on_commit)
    yield commits
    event.remove(model_db.engine, "commit", on_commit)


def assert_outcome_unknown(error: DatabaseError, operation: str) -> None:
    message = str(error)
    assert error.outcome_unknown is True
    assert error.operation == operation
    assert message.startswith(f"Database error during {operation}: ")
    assert message.endswith(UNKNOWN)
    assert "Nothing was stored" not in message
    assert "\n" not in message
    assert_no_sql(message)


@pytest.mark.server_only
class TestLostAtCommit:
    def test_transact_marks_the_outcome_unknown_and_does_not_run_the_work_again(self, model_db, lose_commit):
        calls: list[int] = []

        def work(session) -> None:
            calls.append(1)
            session.add(Project(project_name="p1", description="lost at commit"))

        with pytest.raises(DatabaseError) as info:
            model_db.transact(work, operation="store_project")
        assert_outcome_unknown(info.value, "store_project")
        assert calls == [1] and lose_commit == [1]  # one unit of work, one COMMIT: no retry
        # Read it back: here the server closed the connection before the COMMIT arrived.
        with model_db.connection(write=False) as conn:
            assert conn.execute(text("SELECT count(*) FROM project")).scalar_one() == 0

    def test_a_core_unit_of_work_too(self, model_db, lose_commit):
        calls: list[int] = []

        def work(conn) -> None:
            calls.append(1)
            conn.execute(insert(Project), {"project_name": "p1", "description": "lost at commit"})

        with pytest.raises(DatabaseError) as info:
            model_db.transact(work, operation="store_project", core=True)
        assert_outcome_unknown(info.value, "store_project")
        assert calls == [1] and lose_commit == [1]

    @pytest.mark.parametrize("call", ["store_model", "store_project"])  # a Core and a Session write
    def test_a_service_call_surfaces_it(self, service, lose_commit, call):
        fields = model_fields()

        def store():
            if call == "store_model":
                return service.store_model(**fields)
            return service.store_project(project_name="p1", description="lost at commit")

        with pytest.raises(DatabaseError) as info:
            store()
        assert_outcome_unknown(info.value, call)
        assert lose_commit == [1]  # not retried
        # Read it back (here: not applied), then retry: both calls are idempotent.
        assert service.get_models() == [] and service.get_projects() == []
        assert store() == store()
        assert len(service.get_models()) + len(service.get_projects()) == 1

    def test_the_error_pickles_with_its_outcome(self, model_db, lose_commit):
        with pytest.raises(DatabaseError) as info:
            model_db.transact(lambda s: s.add(Project(project_name="p1", description="d")), operation="op")
        copy = pickle.loads(pickle.dumps(info.value))
        assert type(copy) is DatabaseError
        assert copy.outcome_unknown is True
        assert str(copy) == str(info.value)
        assert (copy.operation, copy.reason) == (info.value.operation, info.value.reason)


@on_postgresql  # a serialization failure raised by COMMIT itself is PostgreSQL's (SSI)
def test_a_retryable_error_at_commit_is_not_retried(model_db, killer, dialect):
    """PostgreSQL SERIALIZABLE write skew: the second committer fails AT COMMIT with 40001.

    40001 is a code transact retries when a statement fails; at COMMIT the
    unit of work must not run again.
    """
    with model_db.connection() as conn:
        conn.execute(insert(Project), [{"project_name": n, "description": "0"} for n in ("a", "b")])
    calls: list[int] = []

    def work(conn) -> None:
        calls.append(1)
        conn.execute(text("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"))
        conn.execute(text("SELECT description FROM project WHERE project_name = 'a'")).all()
        conn.execute(text("UPDATE project SET description = '1' WHERE project_name = 'b'"))
        if len(calls) == 1:  # a concurrent transaction: reads b, writes a, commits first
            with killer.engine.connect() as other:
                other.execute(text("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"))
                other.execute(text("SELECT description FROM project WHERE project_name = 'b'")).all()
                other.execute(text("UPDATE project SET description = '2' WHERE project_name = 'a'"))
                other.commit()

    with pytest.raises(DatabaseError) as info:
        model_db.transact(work, operation="skew", core=True)
    assert calls == [1]
    assert info.value.outcome_unknown is True
    assert "could not serialize access" in info.value.reason
    assert str(info.value).endswith(
        "The commit failed: the change may or may not have been applied; read it back before retrying."
    )


@pytest.mark.server_only
def test_a_connection_lost_before_commit_stored_nothing(model_db, killer):
    """Lost mid-unit-of-work, before COMMIT: the outcome is known, nothing was applied."""
    calls: list[int] = []

    def work(conn) -> None:
        calls.append(1)
        conn.execute(insert(Project), {"project_name": "p1", "description": "lost mid-statement"})
        killer.kill(_server_id(conn.connection.driver_connection, model_db.dialect))
        conn.execute(insert(Project), {"project_name": "p2", "description": "lost mid-statement"})

    with pytest.raises(DatabaseError) as info:
        model_db.transact(work, operation="store_project", core=True)
    message = str(info.value)
    assert info.value.outcome_unknown is False
    assert message.startswith("Database error during store_project: ")
    assert message.endswith(". Nothing was stored.")
    assert "may or may not" not in message
    assert_no_sql(message)
    assert calls == [1]
    with model_db.connection(write=False) as conn:
        assert conn.execute(text("SELECT count(*) FROM project")).scalar_one() == 0
