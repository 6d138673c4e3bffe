"""`db adopt`: a predecessor database converted in place, every row and id kept, on every dialect.

One predecessor database per dialect is built, dry-run and adopted once for
the module (``adopted``); the tests read it, and those that write go last.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))

import predecessor  # noqa: E402
from test_migrations import schema_diff  # noqa: E402

from lume_services import migrations  # noqa: E402
from lume_services.errors import AdoptionRefusedError, PredecessorSchemaError  # noqa: E402
from lume_services.services.models.db import adopt  # noqa: E402
from lume_services.services.models.db.db import ModelDB, ModelDBConfig  # noqa: E402
from lume_services.services.models.service import ModelDBService  # noqa: E402

DIALECTS = [
    d.strip() for d in os.environ.get("LUME_TEST_DIALECTS", "sqlite,mariadb,postgresql").split(",") if d
]
_names = iter(range(1, 10**6))


def new_db(dialect: str, server_pool, tmp: Path, **config) -> ModelDB:
    name = f"lume_adopt_{os.getpid()}_{next(_names)}"
    url = (
        f"sqlite:///{tmp / (name + '.db')}"
        if dialect == "sqlite"
        else server_pool.get(dialect).create_database(name)
    )
    return ModelDB(ModelDBConfig(url=url, **{"auto_migrate": False, **config}))


def predecessor_db(dialect: str, server_pool, tmp: Path, **config) -> ModelDB:
    db = new_db(dialect, server_pool, tmp, **config)
    predecessor.create(db.engine)
    return db


class Adopted:
    def __init__(
        self, db: ModelDB, before: dict, after_dry_run: dict, dry: adopt.Report, report: adopt.Report
    ):
        self.db, self.before, self.after_dry_run, self.dry, self.report = (
            db,
            before,
            after_dry_run,
            dry,
            report,
        )
        self.service = ModelDBService(db)


@pytest.fixture(scope="module", params=DIALECTS)
def adopted(request, server_pool, tmp_path_factory):
    db = predecessor_db(request.param, server_pool, tmp_path_factory.mktemp("adopt"))
    before = predecessor.dump(db.engine)
    dry = adopt.adopt(db, dry_run=True)
    after_dry_run = predecessor.dump(db.engine)
    report = adopt.adopt(db)
    yield Adopted(db, before, after_dry_run, dry, report)
    db.dispose()


def kinds(report: adopt.Report) -> dict[str, list]:
    out: dict[str, list] = {}
    for f in report.findings:
        out.setdefault(f.kind, []).append(f.key)
    return out


EXPECTED_FINDINGS = {
    "live_demoted": [1],
    "checksum_invalid": [7],
    "checksum_normalized": [8],
    "flow_detached": ["uuid-b"],
    "position_renumbered": [4, 1, 2],
}


class TestDryRun:
    def test_reports_what_it_found_and_writes_nothing(self, adopted):
        assert adopted.after_dry_run == adopted.before
        assert adopted.dry.state == "predecessor" and not adopted.dry.adopted
        assert adopted.dry.rows == {"model": 3, "project": 2, "deployment": 5, "flow": 5, "flow_of_flows": 3}
        assert kinds(adopted.dry) == EXPECTED_FINDINGS
        assert sorted(adopted.dry.prefect1_flows) == sorted(f["flow_id"] for f in predecessor.ROWS["flow"])

    def test_the_conversion_reports_the_same(self, adopted):
        assert adopted.report.adopted and kinds(adopted.report) == EXPECTED_FINDINGS
        assert adopted.report.revision_before is None and adopted.report.revision_after == migrations.head()


class TestSchema:
    def test_matches_the_orm_exactly_at_head(self, adopted):
        assert schema_diff(adopted.db) == []
        assert migrations.current(adopted.db) == migrations.head()
        tables = set(sa.inspect(adopted.db.engine).get_table_names())
        assert not {t for t in tables if t.startswith(adopt.STAGING)}

    def test_delete_semantics_are_ours(self, adopted):
        # flow 'test' is a step of 'parent': RESTRICT; deleting model 5 (no deployments) works
        with pytest.raises(sa.exc.IntegrityError), adopted.db.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM flow WHERE flow_id = 'test'"))


class TestRows:
    def test_every_model_deployment_project_and_flow_keeps_its_id(self, adopted):
        svc = adopted.service
        assert [m.model_id for m in svc.get_models()] == [1, 2, 5]
        assert svc.get_model(model_id=1).description == "test_model"
        deployments = {d.deployment_id: d for d in svc.get_deployments()}
        assert sorted(deployments) == [1, 2, 3, 7, 8]
        assert {p.project_name for p in svc.get_projects()} == {"my_project", "other"}
        assert {f.flow_id for f in svc.get_flows()} == {"test", "uuid-a", "uuid-b", "parent", "child"}
        assert deployments[1].version == "v0.0" and deployments[1].model_id == 1
        assert deployments[2].deploy_date.isoformat() == "2022-05-03T12:30:15+00:00"  # UTC server: no shift

    def test_every_value_of_every_row_is_kept_but_for_the_resolved_ones(self, adopted):
        changed = {("deployment", 1): {"is_live": False}, ("deployment", 8): {"sha256": "ab" * 32},
                   ("flow", "uuid-b"): {"deployment_id": None}, ("flow_of_flows", 1): {"position": 2},
                   ("flow_of_flows", 2): {"position": 3}, ("flow_of_flows", 4): {"position": 1}}  # fmt: skip
        keys = {"model": "model_id", "project": "project_name", "deployment": "deployment_id",
                "flow": "flow_id", "flow_of_flows": "_id"}  # fmt: skip
        with adopted.db.engine.connect() as conn:
            for table, key in keys.items():
                stored = {r[key]: r for r in conn.execute(sa.text(f"SELECT * FROM {table}")).mappings()}
                assert sorted(stored) == sorted(r[key] for r in predecessor.ROWS[table])
                for old in predecessor.ROWS[table]:
                    want = {**predecessor._naive(old), **changed.get((table, old[key]), {})}
                    got = {c: stored[old[key]][c] for c in want}
                    if "is_live" in got:
                        got["is_live"] = bool(got["is_live"])
                    for column in ("created", "deploy_date"):  # SQLite returns text to plain SQL
                        if isinstance(got.get(column), str):
                            got[column] = datetime.fromisoformat(got[column])
                    assert got == want, (table, old[key])

    def test_refused_values_resolved_by_the_rules(self, adopted):
        svc = adopted.service
        deployments = {d.deployment_id: d for d in svc.get_deployments()}
        assert [i for i, d in deployments.items() if d.is_live] == [2, 7]
        assert deployments[7].sha256 == "placeholder" and deployments[8].sha256 == "ab" * 32
        assert svc.get_flow(flow_id="uuid-b").deployment_id is None
        assert svc.get_flow(flow_id="uuid-a").deployment_id == 2
        with adopted.db.engine.connect() as conn:
            steps = conn.execute(sa.text("SELECT _id, position FROM flow_of_flows ORDER BY position")).all()
            unmapped = conn.execute(
                sa.text("SELECT count(*) FROM flow_of_flows WHERE mapped_parameters IS NULL")
            )
            assert unmapped.scalar_one() == 3  # SQL NULL, not JSON null
        assert [tuple(s) for s in steps] == [(4, 1), (1, 2), (2, 3)]

    def test_history_records_the_adoption(self, adopted):
        svc = adopted.service
        (interval,) = svc.get_live_history(1)
        assert (interval.deployment_id, interval.set_by) == (2, adopt.LIVE_ACTOR)
        with adopted.db.engine.connect() as conn:
            events = conn.execute(sa.text("SELECT action, entity_id, actor FROM audit_event")).all()
        actions = [e.action for e in events]
        assert actions.count("adopt.completed") == 1 and actions.count("adopt.prefect1_flow") == 5
        assert ("adopt.live_demoted", "1") in [(e.action, e.entity_id) for e in events]
        assert {e.actor for e in events} == {adopt.ACTOR}

    def test_a_second_adopt_is_a_no_op(self, adopted):
        before = predecessor.dump(adopted.db.engine)
        report = adopt.adopt(adopted.db)
        assert report.state == "ours" and not report.adopted and not report.steps
        assert predecessor.dump(adopted.db.engine) == before


class TestRegistryAfterAdoption:  # writes: runs after the readers above
    def test_store_update_and_set_live(self, adopted):
        from factories import deployment_fields

        svc = adopted.service
        model_id = svc.store_model(
            author="a", laboratory="slac", facility="lcls", beampath="cu_hxr", description="new"
        )
        assert model_id > 5
        new = svc.store_deployment(**deployment_fields(1, version="0.0.44+2.g1a2b3c4.dirty"))
        assert new > 8
        assert svc.set_live(new, expected_live=2).is_live
        assert [d.deployment_id for d in svc.get_deployments(model_id=1) if d.is_live] == [new]
        svc.update_project("other", description="now longer than the predecessor's 255 characters " * 5)

    def test_a_restore_records_the_real_checksum_and_replaces_the_prefect1_flow(self, adopted, caplog):
        from lume_services.errors import DeploymentConflictError
        from lume_services.models import Model
        from lume_services.models.registration import same_version

        svc, real, new_flow = adopted.service, "12" * 32, "6f1c5a44-0000-4000-8000-000000000007"
        assert svc.get_deployment(deployment_id=7).tags == {adopt.PREFECT1_TAG: "child"}
        assert [d.deployment_id for d in svc.get_deployments(tags={adopt.PREFECT1_TAG: "child"})] == [7]
        with caplog.at_level(logging.WARNING, logger="lume_services.models.model"):
            Model(deployment_id=7, model_db_service=svc)  # loading it says what to do
        assert "its flow 'child' was registered with Prefect 1 and cannot run. Store it again" in caplog.text
        assert same_version(svc, 2, "v1.0", real).deployment_id == 7  # no conflict with 'placeholder'
        fields = dict(model_id=2, version="v1.0", source="https://example.org/my_model-v1.0.tar.gz",
                      package_import_name="my_model", flow_name="f", project_name="other")  # fmt: skip
        assert svc.store_deployment_with_flow(sha256=real, flow_id=new_flow, **fields) == (7, new_flow)
        assert svc.get_deployment(deployment_id=7).sha256 == real
        assert svc.get_flow(flow_id="child").deployment_id is None  # the Prefect 1 flow is kept, unattached
        assert svc.get_flow(flow_id=new_flow).deployment_id == 7
        assert svc.get_deployment(deployment_id=7).tags == {}  # the adoption's tag went with the old flow
        assert svc.get_deployments(tags={adopt.PREFECT1_TAG: "child"}) == []
        with pytest.raises(DeploymentConflictError):  # a real checksum is never replaced
            svc.store_deployment_with_flow(sha256="34" * 32, flow_id=new_flow, **fields)


class TestPlanRules:
    """The rules on rows as read from a database (pure: no database needed)."""

    def rows(self) -> dict:
        return {name: [predecessor._naive(r) for r in rows] for name, rows in predecessor.ROWS.items()}

    def test_server_local_times_are_shifted_to_utc(self):
        plan = adopt.plan.make_plan(self.rows(), 3600)  # a server one hour ahead of UTC
        assert plan.rows["model"][0]["created"].isoformat() == "2022-05-01T11:30:15"
        assert plan.rows["deployment"][0]["deploy_date"].isoformat() == "2022-05-02T11:30:15"

    def test_missing_or_zero_times_become_the_unknown_time_and_are_reported(self):
        rows = self.rows()
        rows["model"][2]["created"] = None
        rows["deployment"][4]["deploy_date"] = "0000-00-00 00:00:00"  # MySQL's zero date, unparsed
        plan = adopt.plan.make_plan(rows, 0)
        assert (
            plan.rows["model"][2]["created"]
            == plan.rows["deployment"][4]["deploy_date"]
            == adopt.UNKNOWN_TIME
        )
        missing = [(f.table, f.key) for f in plan.findings if f.kind == "time_missing"]
        assert missing == [("model", 5), ("deployment", 8)]

    def test_orphans_are_refused(self):
        rows = self.rows()
        rows["deployment"][0]["model_id"] = 99
        with pytest.raises(AdoptionRefusedError, match="deployment 1 refers to model 99"):
            adopt.plan.refuse_orphans(rows, "sqlite:///x.db")


class TestRefusals:
    @pytest.mark.parametrize("dialect", DIALECTS)
    def test_upgrade_and_first_use_name_db_adopt(self, dialect, server_pool, tmp_path):
        db = predecessor_db(dialect, server_pool, tmp_path, auto_migrate=True)
        before = predecessor.dump(db.engine)
        with pytest.raises(PredecessorSchemaError, match="lume-services db adopt"):
            ModelDBService(db).get_models()  # auto_migrate would otherwise run the migrations
        with pytest.raises(PredecessorSchemaError, match="db adopt --dry-run"):
            db.upgrade_schema()
        assert predecessor.dump(db.engine) == before
        db.dispose()

    def test_an_unknown_database_is_refused_with_what_was_found(self, server_pool, tmp_path):
        db = predecessor_db("sqlite", server_pool, tmp_path)
        with db.engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE results (id INTEGER)"))
            conn.execute(sa.text("ALTER TABLE project ADD COLUMN owner VARCHAR(10)"))
        before = predecessor.dump(db.engine)
        with pytest.raises(AdoptionRefusedError) as info:
            adopt.adopt(db)
        assert "'results'" in str(info.value) and "'owner'" in str(info.value)
        assert predecessor.dump(db.engine) == before
        db.dispose()

    def test_an_empty_database_has_nothing_to_adopt(self, server_pool, tmp_path):
        db = new_db("sqlite", server_pool, tmp_path)
        assert adopt.adopt(db).state == "empty"
        db.upgrade_schema()  # as today
        assert schema_diff(db) == []
        db.dispose()


@pytest.mark.skipif("mariadb" not in DIALECTS, reason="MariaDB not selected")
class TestResumeOnMariaDB:
    """MariaDB commits each DDL statement: an adoption interrupted after any step is finished by re-running it."""

    @pytest.mark.parametrize("step", ["rename", "create", "copy", "upgrade"])
    def test_rerun_after_an_interruption(self, step, server_pool, tmp_path, monkeypatch):
        db = predecessor_db("mariadb", server_pool, tmp_path)

        def interrupt(done: str) -> None:
            if done == step:
                raise RuntimeError(f"interrupted after {done}")

        monkeypatch.setattr(adopt.convert, "after_step", interrupt)
        with pytest.raises(RuntimeError):
            adopt.adopt(db)
        if step != "upgrade":  # at head the registry works; the re-run records and drops the staging tables
            with pytest.raises(PredecessorSchemaError, match="interrupted"):
                ModelDBService(db).get_models()
        monkeypatch.setattr(adopt.convert, "after_step", None)
        report = adopt.adopt(db)
        assert report.state == "interrupted" and report.adopted
        assert kinds(report) == EXPECTED_FINDINGS
        assert schema_diff(db) == []
        svc = ModelDBService(db)
        assert sorted(d.deployment_id for d in svc.get_deployments()) == [1, 2, 3, 7, 8]
        assert len(svc.get_flows()) == 5
        assert actions(db).count("adopt.completed") == actions(db).count("adopt.live_demoted") == 1
        db.dispose()

    def test_rerun_after_the_staging_tables_were_partly_dropped(self, server_pool, tmp_path, monkeypatch):
        db = predecessor_db("mariadb", server_pool, tmp_path)

        def interrupt(done: str) -> None:
            if done == "record":
                raise RuntimeError("interrupted while dropping")

        monkeypatch.setattr(adopt.convert, "after_step", interrupt)
        with pytest.raises(RuntimeError):
            adopt.adopt(db)
        with db.engine.begin() as conn:  # the drop step got as far as the children
            conn.execute(sa.text(f"DROP TABLE {adopt.STAGING}flow_of_flows, {adopt.STAGING}flow"))
        monkeypatch.setattr(adopt.convert, "after_step", None)
        assert adopt.adopt(db, dry_run=True).state == "cleanup"
        report = adopt.adopt(db)
        assert (report.state, report.steps) == ("cleanup", ["drop"])
        assert schema_diff(db) == [] and actions(db).count("adopt.completed") == 1
        assert adopt.adopt(db).state == "ours"
        db.dispose()


def actions(db: ModelDB) -> list[str]:
    with db.engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT action FROM audit_event")).scalars())


class TestSingleTransaction:
    @pytest.mark.parametrize("dialect", [d for d in DIALECTS if d != "mariadb"])
    def test_a_failure_changes_nothing(self, dialect, server_pool, tmp_path, monkeypatch):
        db = predecessor_db(dialect, server_pool, tmp_path)
        before = predecessor.dump(db.engine)

        def interrupt(done: str) -> None:
            if done == "record":
                raise RuntimeError("interrupted")

        monkeypatch.setattr(adopt.convert, "after_step", interrupt)
        with pytest.raises(RuntimeError):
            adopt.adopt(db)
        assert predecessor.dump(db.engine) == before
        db.dispose()


class TestCli:
    def test_dry_run_then_adopt_then_list(self, server_pool, tmp_path):
        import json

        from click.testing import CliRunner

        from lume_services.cli.main import cli

        db = predecessor_db("sqlite", server_pool, tmp_path)
        env = {"LUME_MODEL_DB__URL": str(db.url)}
        runner = CliRunner()
        dry = runner.invoke(cli, ["db", "adopt", "--dry-run"], env=env)
        assert dry.exit_code == 0, dry.output
        assert (
            "Dry run: nothing was changed" in dry.output
            and "deployment 7: sha256 'placeholder'" in dry.output
        )
        assert "lume-services db adopt" in runner.invoke(cli, ["db", "current"], env=env).output
        refused = runner.invoke(cli, ["db", "upgrade"], env=env)
        assert refused.exit_code == 1 and "lume-services db adopt" in refused.output
        done = runner.invoke(cli, ["db", "adopt", "--json"], env=env)
        assert done.exit_code == 0, done.output
        assert json.loads(done.output)["adopted"] is True
        listed = runner.invoke(cli, ["models", "list", "--json"], env=env)
        assert [m["model"]["model_id"] for m in json.loads(listed.output)["items"]] == [1, 2, 5]
        db.dispose()

    def test_doctor_names_the_deployments_still_on_prefect_1(
        self, server_pool, tmp_path, lume_home, monkeypatch
    ):
        from datetime import timedelta

        from lume_services import config
        from lume_services.models.doctor import ATTENTION, OK, _Doctor

        db = predecessor_db("sqlite", server_pool, tmp_path)
        monkeypatch.setenv("LUME_MODEL_DB__URL", str(db.url))
        doctor = _Doctor(config.configure(), False, timedelta(0))
        schema = doctor.schema()
        assert schema.status == ATTENTION and "db adopt" in schema.summary + schema.fix
        adopt.adopt(db)
        assert doctor.schema().status == OK
        found = doctor.prefect1_flows()
        assert found.status == ATTENTION and len(found.items) == 4  # uuid-b is unattached
        assert "deployments create" in found.fix
        db.dispose()


class TestPredecessorSettings:
    def test_every_predecessor_variable_is_accepted(self, lume_home, monkeypatch, caplog):
        from lume_services import config

        env = {
            "LUME_BACKEND": "docker", "LUME_MODEL_DB__HOST": "db.example.org", "LUME_MODEL_DB__PORT": "3306",
            "LUME_MODEL_DB__USER": "lume", "LUME_MODEL_DB__PASSWORD": "s3cret-pw", "LUME_MODEL_DB__DATABASE": "lume_services_models",
            "LUME_MODEL_DB__DIALECT_STR": "mysql+pymysql", "LUME_MODEL_DB__CONNECTION__POOL_SIZE": "3",
            "LUME_MODEL_DB__CONNECTION__POOL_PRE_PING": "false", "LUME_RESULTS_DB__HOST": "mongo",
            "LUME_RESULTS_DB__PORT": "27017", "LUME_PREFECT__SERVER__TAG": "core-1.4.0",
            "LUME_PREFECT__SERVER__HOST": "http://localhost", "LUME_PREFECT__UI__HOST_PORT": "8080",
            "LUME_PREFECT__AGENT__HOST_PORT": "5000", "LUME_PREFECT__TELEMETRY__ENABLED": "false",
            "LUME_PREFECT__BACKEND": "server", "LUME_PREFECT__ISOLATED": "true",
            "LUME_MOUNTED_FILESYSTEM__IDENTIFIER": "mounted", "LUME_MOUNTED_FILESYSTEM__MOUNT_PATH": "/data",
        }  # fmt: skip
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        config.configure()
        db_config = config._settings.model_db_config()
        assert db_config.safe_url() == "mysql+pymysql://lume:***@db.example.org:3306/lume_services_models"
        assert (db_config.connection.pool_size, db_config.connection.pool_pre_ping) == (3, False)
        assert "LUME_PREFECT__SERVER" in caplog.text and "s3cret-pw" not in caplog.text
