"""Migrations produce exactly the ORM schema, both ways, on every dialect."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from lume_services import migrations
from lume_services.errors import SchemaNotCurrentError
from lume_services.services.models.db.db import ModelDB, ModelDBConfig
from lume_services.services.models.db.schema import Base
from lume_services.services.models.service import ModelDBService

ROOT = Path(__file__).resolve().parents[1]
INIT_SQL = ROOT / "lume_services" / "docker" / "files" / "model-db-init.sql"
TABLES = {"model", "deployment", "project", "flow", "flow_of_flows"}


def schema_diff(db: ModelDB) -> list:
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(ctx, Base.metadata)


def table_names(db: ModelDB) -> set[str]:
    return set(inspect(db.engine).get_table_names())


@pytest.fixture
def fresh_db(dialect, fresh_db_url):
    db = ModelDB(ModelDBConfig(url=fresh_db_url(dialect), auto_migrate=False))
    yield db
    db.dispose()


class TestChangeHistoryMigration:
    def test_a_live_deployment_gets_an_open_interval_set_by_unknown(self, fresh_db):
        migrations.upgrade(fresh_db, "0002")
        with fresh_db.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO model (model_id, created, author, laboratory, facility, beampath, description) "
                "VALUES (1, '2026-11-01 10:00:00', 'a', 'slac', 'lcls', 'cu_hxr', 'm')"
            ))  # fmt: skip
            for i, live in ((1, False), (2, True)):
                conn.execute(
                    text(
                        "INSERT INTO deployment (deployment_id, version, deploy_date, package_import_name, "
                        "source, sha256, is_live, model_id) VALUES (:i, :v, :d, 'pkg', 's', :sha, :live, 1)"
                    ),
                    {"i": i, "v": f"0.{i}", "d": f"2026-11-0{i} 12:00:00", "sha": f"{i}" * 64, "live": live},
                )
        migrations.upgrade(fresh_db)
        service = ModelDBService(fresh_db)
        (interval,) = service.get_live_history(1)
        assert (interval.deployment_id, interval.version, interval.set_by, interval.live_until) == (
            2, "0.2", "unknown", None,
        )  # fmt: skip
        assert interval.live_from.isoformat() == "2026-11-02T12:00:00+00:00"
        assert service.get_model(model_id=1).require_approval is False
        assert service.set_live(1, expected_live=2).is_live
        migrations.downgrade(fresh_db, "0002")  # in place: no table is copied, no row lost
        with fresh_db.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM deployment")).scalar_one() == 2


class TestUpgrade:
    def test_head_matches_the_orm_exactly(self, fresh_db):
        migrations.upgrade(fresh_db)
        assert schema_diff(fresh_db) == []
        assert migrations.current(fresh_db) == migrations.head()

    def test_round_trip_down_and_up(self, fresh_db):
        migrations.upgrade(fresh_db)
        migrations.downgrade(fresh_db, "base")
        assert table_names(fresh_db) & TABLES == set()
        assert migrations.current(fresh_db) is None
        migrations.upgrade(fresh_db)
        assert schema_diff(fresh_db) == []

    def test_upgrade_is_idempotent(self, fresh_db):
        migrations.upgrade(fresh_db)
        migrations.upgrade(fresh_db)
        assert table_names(fresh_db) >= TABLES


def test_expected_revision_constant_is_the_head():
    from lume_services.services.models.db.revision import SCHEMA_REVISION

    assert SCHEMA_REVISION == migrations.head()


class TestSchemaCheck:
    def test_unreachable_server_is_a_database_error_without_password(self):
        from lume_services.errors import DatabaseError

        db = ModelDB(ModelDBConfig(url="mysql+pymysql://lume:hunter2secret@127.0.0.1:1/x"))
        with pytest.raises(DatabaseError) as info:
            ModelDBService(db).get_models()
        assert "hunter2secret" not in str(info.value) and "127.0.0.1" in str(info.value)

    def test_missing_driver_is_a_configuration_error(self):
        from lume_services.errors import ConfigurationError

        db = ModelDB(ModelDBConfig(url="mysql+nosuchdriver://u:pw@h/x"))
        with pytest.raises(ConfigurationError, match="driver"):
            ModelDBService(db).get_models()

    def test_server_database_without_schema_is_refused_with_next_step(self, fresh_db):
        service = ModelDBService(fresh_db)
        with pytest.raises(SchemaNotCurrentError, match="lume-services db upgrade"):
            service.get_models()
        assert table_names(fresh_db) & TABLES == set()

    def test_auto_migrate_creates_the_schema_on_first_use(self, dialect, fresh_db_url):
        db = ModelDB(ModelDBConfig(url=fresh_db_url(dialect), auto_migrate=True))
        assert ModelDBService(db).get_models() == []
        assert schema_diff(db) == []
        db.dispose()

    def test_embedded_sqlite_migrates_by_default(self, tmp_path):
        db = ModelDB(ModelDBConfig(sqlite_path=tmp_path / "sub" / "registry.db"))
        assert ModelDBService(db).get_projects() == []
        assert migrations.current(db) == migrations.head()


class TestInitSql:
    def test_committed_file_is_current(self):
        result = subprocess.run(
            [
                sys.executable,
                str(ROOT / "scripts" / "update_docker_compose_schema.py"),
                "check-docker-compose-schema",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def test_tables_in_foreign_key_order(self):
        sql = INIT_SQL.read_text()
        positions = [
            sql.index(f"CREATE TABLE {name} (")
            for name in ("model", "project", "deployment", "flow", "flow_of_flows")
        ]
        assert positions == sorted(positions)
        assert "DROP" not in sql and "IF NOT EXISTS" not in sql and sql.endswith(";\n")

    def test_loads_into_mariadb_and_equals_the_migrations(self, fresh_db_url):
        db = ModelDB(ModelDBConfig(url=fresh_db_url("mariadb"), auto_migrate=False))
        statements = [s.strip() for s in INIT_SQL.read_text().split(";\n")]
        with db.engine.begin() as conn:
            for statement in statements:
                body = "\n".join(line for line in statement.splitlines() if not line.startswith("--")).strip()
                if body:
                    conn.execute(text(body))
        assert table_names(db) >= TABLES
        assert schema_diff(db) == []
        assert migrations.current(db) == migrations.head()
        assert ModelDBService(db).get_models() == []  # the schema check accepts it
        db.dispose()
