"""The MLflow bridge against a real `mlflow server` on loopback (import, sync, push-live, bad input).

Registered models, versions, tags and aliases are made with MLflow's own
client (tests/mlflowserver.py, as lume-model's register_to_mlflow does).
The server is shared by the session, so each test uses its own model names
and imports only those (``--model``). Most tests run on SQLite; the import
and sync test runs on every dialect.
"""

from __future__ import annotations

import http.server
import logging
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflowserver import log_model_run, register
from sqlalchemy import event

from lume_services.errors import (
    MlflowAuthError,
    MlflowMappingError,
    MlflowModelError,
    MlflowUnreachableError,
    NotMlflowError,
)
from lume_services.mlflow.client import MlflowClient
from lume_services.mlflow.importer import KEY_DELETED, KEY_NAME, KEY_VERSION, Importer, alias_key
from lume_services.mlflow.mapping import load_mapping
from lume_services.mlflow.push import push_live

SQLITE = pytest.mark.parametrize("dialect", ["sqlite"])
SECRET = "s3cr3t-pw-0xC0FFEE"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def mlflow(mlflow_server: Any) -> Any:
    return mlflow_server.client()


@pytest.fixture
def bridge(mlflow_server: Any) -> Iterator[MlflowClient]:
    with MlflowClient(mlflow_server.url) as client:
        yield client


def live_version(service: Any, model_id: int) -> Any:
    live = [d for d in service.get_deployments(model_id=model_id) if d.is_live]
    return live[0].version if live else None


def by_version(service: Any, model_id: int) -> dict[str, Any]:
    return {d.version: d for d in service.get_deployments(model_id=model_id)}


class TestImportAndSync:
    def test_import_then_sync_follows_mlflow(self, service: Any, mlflow: Any, bridge: MlflowClient, tmp_path: Path) -> None:
        name = unique("cu-inj")
        register(mlflow, name, tmp_path, versions=2, champion=1)
        report = Importer(service, bridge).run([name])
        assert [(m.action, m.new_versions, m.live) for m in report.models] == [("created", ["1", "2"], "- -> 1")]
        model = service.get_model(model_id=report.models[0].model_id)
        assert (model.author, model.laboratory, model.beampath, model.description) == (
            "jane@slac.stanford.edu", "slac", "cu_inj", f"{name} surrogate")  # fmt: skip
        assert model.tags["stage"] == "production" and model.tags[KEY_NAME] == name
        deployments = by_version(service, model.model_id)
        first = deployments["1"]
        assert first.source == f"models:/{name}/1" and first.package_import_name == "mlflow.pyfunc.model"
        assert first.tags["ready_to_deploy"] == "true" and first.tags[KEY_VERSION] == "1"
        # The manifest digest is of the artifacts' contents and relative paths: two runs logging the same files agree.
        assert len(first.sha256) == 64 and first.sha256 == deployments["2"].sha256
        variables = service.get_variables(first.deployment_id)
        assert list(variables.inputs) == ["energy"] and list(variables.outputs) == ["sigma_x"]
        assert variables.inputs["energy"].range == (0.0, 10.0)
        assert live_version(service, model.model_id) == "1"
        events = len(service.list_events(model_id=model.model_id, limit=1000).items)

        again = Importer(service, bridge).run([name])  # idempotent: nothing written
        assert [m.action for m in again.models] == ["unchanged"]
        assert len(service.list_events(model_id=model.model_id, limit=1000).items) == events

        mlflow.set_registered_model_alias(name, "champion", "2")
        mlflow.set_registered_model_tag(name, "stage", "staging")
        mlflow.delete_model_version(name, "1")
        source = log_model_run(mlflow, "0", tmp_path)
        mlflow.create_model_version(name, source[0], run_id=source[1])
        synced = Importer(service, bridge, verify=False).run([name])
        assert [(m.action, m.new_versions, m.live, m.deleted) for m in synced.models] == [
            ("updated", ["3"], "1 -> 2", ["1"])
        ]
        assert service.get_model(model_id=model.model_id).tags["stage"] == "staging"
        deployments = by_version(service, model.model_id)
        assert KEY_DELETED in deployments["1"].tags  # marked, never deleted here
        assert live_version(service, model.model_id) == "2"
        history = service.get_live_history(model.model_id)
        assert [(h.version, h.set_by) for h in history] == [("1", "mlflow"), ("2", "mlflow")]
        moves = [e for e in service.list_events(model_id=model.model_id, limit=1000).items
                 if e.action == "deployment.live_changed"]  # fmt: skip
        assert [e.after["version"] for e in moves] == ["1", "2"]  # recorded as made by whoever ran the sync
        assert [m.action for m in Importer(service, bridge, verify=False).run([name]).models] == ["unchanged"]


@SQLITE
class TestSyncStatements:
    def test_a_sync_with_nothing_changed_issues_a_constant_number_of_statements(
        self, service: Any, mlflow: Any, bridge: MlflowClient, tmp_path: Path
    ) -> None:
        shared = log_model_run(mlflow, "0", tmp_path)
        names = [unique("count") for _ in range(6)]
        for name in names:
            register(mlflow, name, tmp_path, versions=2, champion=2, source=shared)

        def statements_of_sync(chosen: list[str]) -> int:
            Importer(service, bridge).run(chosen)
            seen: list[str] = []
            engine = service.model_db.engine
            listener = lambda conn, cursor, sql, *rest: seen.append(sql)  # noqa: E731
            event.listen(engine, "before_cursor_execute", listener)
            try:
                report = Importer(service, bridge, verify=False).run(chosen)
            finally:
                event.remove(engine, "before_cursor_execute", listener)
            assert {m.action for m in report.models} == {"unchanged"}
            return len([s for s in seen if not s.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK"))])

        assert statements_of_sync(names[:1]) == statements_of_sync(names) == 2


class TestMappingFile:
    def test_a_mapping_with_an_unknown_field_is_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "mapping.yaml"
        path.write_text("author: tag:email\nbeamline: tag:beam_path\n")
        with pytest.raises(MlflowMappingError, match=r"unknown field 'beamline' \(allowed: author, laboratory"):
            load_mapping(path)

    def test_defaults_follow_slac(self) -> None:
        mapping = load_mapping(None)
        assert (mapping.author, mapping.beampath, mapping.alias) == (["tag:email", "mlflow:user_id"], ["tag:beam_path", "unknown"], "champion")


@SQLITE
class TestDryRunAndMapping:
    def test_dry_run_writes_nothing(self, service: Any, mlflow: Any, bridge: MlflowClient, tmp_path: Path) -> None:
        name = unique("dry")
        register(mlflow, name, tmp_path, versions=1, champion=1)
        report = Importer(service, bridge).run([name], dry_run=True)
        assert [(m.action, m.new_versions) for m in report.models] == [("would create", ["1"])]
        assert service.get_models() == []

    def test_an_unknown_model_name_is_named(self, service: Any, bridge: MlflowClient) -> None:
        with pytest.raises(MlflowModelError, match=r"Registered model 'no-such-model': the tracking server .* has no"):
            Importer(service, bridge).run(["no-such-model"])
        assert service.get_models() == []

    def test_mapping_fixed_values_and_fallbacks(self, service: Any, mlflow: Any, bridge: MlflowClient, tmp_path: Path) -> None:
        name = unique("mapped")
        register(mlflow, name, tmp_path, versions=1, champion=None, tags={"area": "LCLS-II"})
        path = tmp_path / "mapping.yaml"
        path.write_text("laboratory: slac-nal\nfacility: tag:area\ndescription: mlflow:name\nalias: prod\n")
        report = Importer(service, bridge, load_mapping(path)).run([name])
        model = service.get_model(model_id=report.models[0].model_id)
        assert (model.laboratory, model.facility, model.description) == ("slac-nal", "LCLS-II", name)
        assert live_version(service, model.model_id) is None  # no 'prod' alias

    def test_a_value_too_long_fails_that_model_alone(self, service: Any, mlflow: Any, bridge: MlflowClient, tmp_path: Path) -> None:
        good, bad = unique("good"), unique("long")
        shared = log_model_run(mlflow, "0", tmp_path)
        register(mlflow, good, tmp_path, versions=1, source=shared)
        register(mlflow, bad, tmp_path, versions=1, source=shared, tags={"description": "d" * 300})
        report = Importer(service, bridge).run([good, bad])
        actions = {m.name: (m.action, m.error) for m in report.models}
        assert actions[good] == ("created", None)
        assert actions[bad][0] == "failed"
        assert f"Registered model {bad!r}: description from 'tag:description'" in actions[bad][1]
        assert "300 characters long; at most 255 fit" in actions[bad][1] and "mapping file" in actions[bad][1]
        assert [m.tags[KEY_NAME] for m in service.get_models()] == [good]  # nothing of the bad one

    def test_a_changed_artifact_is_a_conflict_not_an_overwrite(
        self, service: Any, mlflow: Any, bridge: MlflowClient, mlflow_server: Any, tmp_path: Path
    ) -> None:
        name = unique("changed")
        register(mlflow, name, tmp_path, versions=1)
        model_id = Importer(service, bridge).run([name]).models[0].model_id
        stored = by_version(service, model_id)["1"].sha256
        run_id = mlflow.get_model_version(name, "1").run_id
        weights = next((mlflow_server.home / "artifacts").glob(f"*/{run_id}/artifacts/model/data/model.pt"))
        weights.write_bytes(b"retrained")
        report = Importer(service, bridge).run([name])
        assert report.models[0].action == "unchanged"
        assert "version '1': its artifacts changed in MLflow" in report.models[0].conflicts[0]
        assert by_version(service, model_id)["1"].sha256 == stored


@SQLITE
class TestPushLive:
    def test_a_live_change_here_sets_the_alias(self, service: Any, mlflow: Any, bridge: MlflowClient, tmp_path: Path) -> None:
        name = unique("push")
        register(mlflow, name, tmp_path, versions=2, champion=1, source=log_model_run(mlflow, "0", tmp_path))
        model_id = Importer(service, bridge).run([name]).models[0].model_id
        assert push_live(service, bridge).models == []  # nothing moved here
        service.set_live(by_version(service, model_id)["2"].deployment_id, reason="better emittance")
        pushed = push_live(service, bridge)
        assert [(m.name, m.action, m.version) for m in pushed.models] == [(name, "pushed", "2")]
        assert mlflow.get_model_version_by_alias(name, "champion").version == "2"
        assert service.get_model(model_id=model_id).tags[alias_key("champion")] == "2"
        assert Importer(service, bridge, verify=False).run([name]).models[0].action == "unchanged"
        assert push_live(service, bridge).models == []

    def test_both_sides_moved_is_a_conflict_and_a_protected_model_refuses_mlflows_move(
        self, service: Any, mlflow: Any, bridge: MlflowClient, tmp_path: Path
    ) -> None:
        name = unique("both")
        register(mlflow, name, tmp_path, versions=3, champion=1, source=log_model_run(mlflow, "0", tmp_path))
        model_id = Importer(service, bridge).run([name]).models[0].model_id
        service.set_live(by_version(service, model_id)["2"].deployment_id)
        mlflow.set_registered_model_alias(name, "champion", "3")
        pushed = push_live(service, bridge)
        assert [m.action for m in pushed.models] == ["conflict"] and "moved in MLflow too (1 -> 3)" in pushed.models[0].detail
        assert mlflow.get_model_version_by_alias(name, "champion").version == "3"  # nothing pushed
        service.update_model(model_id, require_approval=True)
        synced = Importer(service, bridge, verify=False).run([name]).models[0]
        assert synced.action == "failed" and "approv" in synced.error.lower()
        assert live_version(service, model_id) == "2"  # the gate holds for moves made in MLflow too

    def test_a_failed_push_is_retried_and_reported_and_the_live_change_stands(
        self, service: Any, mlflow: Any, bridge: MlflowClient, tmp_path: Path
    ) -> None:
        name = unique("nopush")
        register(mlflow, name, tmp_path, versions=2, champion=1, source=log_model_run(mlflow, "0", tmp_path))
        model_id = Importer(service, bridge).run([name]).models[0].model_id
        mlflow.delete_model_version(name, "2")  # MLflow now refuses an alias to version 2
        service.set_live(by_version(service, model_id)["2"].deployment_id)
        pushed = push_live(service, bridge, attempts=2, pause=0.01)
        assert [(m.action, m.version) for m in pushed.models] == [("failed", "2")]
        assert "HTTP 404" in pushed.models[0].detail and "The live change here stands" in pushed.models[0].detail
        assert live_version(service, model_id) == "2"
        assert mlflow.get_model_version_by_alias(name, "champion").version == "1"


# -- servers that are not MLflow, or refuse the credentials ----------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    status, body, content_type = 200, b"<html>hello</html>", "text/html"

    def do_GET(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Type", self.content_type)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_server() -> Iterator[Any]:
    servers = []

    def start(status: int, body: bytes = b"<html>hello</html>") -> str:
        handler = type("H", (_Handler,), {"status": status, "body": body})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@SQLITE
class TestBadServers:
    def test_an_unreachable_url(self, service: Any) -> None:
        with MlflowClient("http://127.0.0.1:9") as client, pytest.raises(MlflowUnreachableError) as caught:
            Importer(service, client).run()
        assert "'http://127.0.0.1:9' could not be reached" in str(caught.value)
        assert "--tracking-uri" in str(caught.value)

    @pytest.mark.parametrize("status", [200, 404])
    def test_a_server_that_is_not_mlflow(self, service: Any, fake_server: Any, status: int) -> None:
        url = fake_server(status)
        with MlflowClient(url) as client, pytest.raises(NotMlflowError, match="does not answer like an MLflow"):
            Importer(service, client).run()
        assert service.get_models() == []

    @pytest.mark.parametrize("status", [401, 403])
    def test_bad_credentials_never_appear(
        self, service: Any, fake_server: Any, status: int, monkeypatch: pytest.MonkeyPatch, caplog: Any
    ) -> None:
        caplog.set_level(logging.DEBUG)
        url = fake_server(status, b'{"error_code": "UNAUTHENTICATED"}')
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "jane")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", SECRET)
        with MlflowClient(url) as client, pytest.raises(MlflowAuthError) as caught:
            Importer(service, client).run()
        assert f"HTTP {status}" in str(caught.value) and "MLFLOW_TRACKING_PASSWORD" in str(caught.value)
        with_url = MlflowClient(url.replace("http://", f"http://jane:{SECRET}@"))
        for text in (str(caught.value), repr(caught.value), repr(client), repr(with_url), with_url.url, caplog.text):
            assert SECRET not in text
        monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
        with pytest.raises(MlflowAuthError) as from_url:  # credentials in the URL are used, and hidden
            Importer(service, with_url).run()
        assert SECRET not in str(from_url.value)
        with_url.close()


class TestCli:
    def test_import_json_and_table(self, mlflow: Any, mlflow_server: Any, tmp_path: Path) -> None:
        from click.testing import CliRunner

        from lume_services.cli.main import cli

        name = unique("cli")
        register(mlflow, name, tmp_path, versions=1, source=log_model_run(mlflow, "0", tmp_path))
        env = {"LUME_MODEL_DB__URL": f"sqlite:///{tmp_path / 'cli.db'}", "LUME_HOME": str(tmp_path / "home"),
               "MLFLOW_TRACKING_URI": None}  # fmt: skip
        runner = CliRunner()
        args = ["mlflow", "import", "--tracking-uri", mlflow_server.url, "--model", name]
        result = runner.invoke(cli, [*args, "--json"], env=env)
        assert result.exit_code == 0, result.output
        assert '"action": "created"' in result.stdout
        result = runner.invoke(cli, ["mlflow", "sync", "--tracking-uri", mlflow_server.url, "--model", name], env=env)
        assert result.exit_code == 0, result.output
        assert name in result.stdout and "unchanged: 1" in result.stdout
        bad = tmp_path / "bad.yaml"
        bad.write_text("colour: blue\n")
        result = runner.invoke(cli, [*args, "--mapping", str(bad)], env=env)
        assert result.exit_code == 1 and "unknown field 'colour'" in result.output
        assert runner.invoke(cli, ["mlflow", "import"], env=env).exit_code == 2


class TestQuickAcknowledgements:
    """The client's transport acknowledges each response segment at once (see lume_services/mlflow/transport.py)."""

    def test_the_bridge_uses_it_on_linux_and_reads_the_same_bytes(
        self, mlflow: Any, mlflow_server: Any, bridge: MlflowClient, tmp_path: Path
    ) -> None:
        import sys

        import httpx

        from lume_services.mlflow.transport import QUICKACK, acknowledges_at_once, quick_ack_transport

        assert acknowledges_at_once(bridge._http._transport) == (QUICKACK is not None)
        if sys.platform == "linux":
            assert QUICKACK is not None
        source, _ = log_model_run(mlflow, "0", tmp_path, weights=b"\x00\xff" * 50_000)
        root = source.removeprefix("mlflow-artifacts:/")
        path = f"/api/2.0/mlflow-artifacts/artifacts/{root}/data/model.pt"
        with httpx.Client(base_url=mlflow_server.url) as plain, \
                httpx.Client(base_url=mlflow_server.url, transport=quick_ack_transport()) as quick:  # fmt: skip
            for _ in range(3):  # on one kept-alive connection, several responses in a row
                assert quick.get(path).content == plain.get(path).content == b"\x00\xff" * 50_000
        assert b"".join(bridge.stream(f"{root}/data/model.pt")) == b"\x00\xff" * 50_000
