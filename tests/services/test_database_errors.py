"""Database failures carry the driver's own reason, never SQL, parameters or the password.

Real failures on real databases: a SQLite path that is a directory, a SQLite
file that is full (``PRAGMA max_page_count``), servers that refuse the
connection, and a server's own error message.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import model_fields
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError

from lume_services.errors import DatabaseError, driver_reason
from lume_services.services.models.db.db import ModelDB, ModelDBConfig
from lume_services.services.models.service import ModelDBService

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
        assert message == "Database error during store_model: database or disk is full."
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
