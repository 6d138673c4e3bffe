"""`lume-services export` and `lume-services import` on real databases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from factories import make_deployment, make_flow, make_model, make_project, registry_snapshot

from lume_services.cli.main import cli
from lume_services.services.models.db.db import ModelDB, ModelDBConfig
from lume_services.variables.formats import read_variables


def invoke(url: str, *args: str, code: int = 0, stdin: str | None = None, **env: str) -> Result:
    result = CliRunner().invoke(cli, list(args), input=stdin, env={"LUME_MODEL_DB__URL": url, **env})
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    assert "Traceback" not in result.stdout + result.stderr
    return result


def url_of(model_db: ModelDB) -> str:
    return model_db.url.render_as_string(hide_password=False)


snapshot = registry_snapshot


def populate(service) -> None:
    project = make_project(service, "proj")
    model_id = make_model(service)
    first = make_flow(service, make_deployment(service, model_id), project)
    variables = read_variables("input_variables:\n  x: {type: scalar, range: [0, .inf]}\n", "my_model/variables.yml")
    second = make_flow(service, make_deployment(service, model_id, is_live=True, variables=variables), project)
    make_model(service, author="Ünïcode Áuthor")
    service.store_flow_of_flows(
        parent_flow_id="composite",
        flow_name="composite",
        project_name=project,
        composing_flows=[first, {"flow_id": second, "mapped_parameters": {"x": "first.y"}}],
    )


@pytest.fixture
def target(dialect, fresh_db_url, lume_home):
    """An empty database on the same dialect (migrated on first use)."""
    db = ModelDB(ModelDBConfig(url=fresh_db_url(dialect)))
    yield db
    db.dispose()


class TestExport:
    def test_writes_json_lines_to_the_file_and_progress_to_stderr(
        self, service, model_db, tmp_path, lume_home
    ):
        populate(service)
        out = tmp_path / "registry.jsonl"
        result = invoke(url_of(model_db), "export", str(out))
        assert result.stdout == ""
        assert "Exported 9 records" in result.stderr
        lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert lines[0]["kind"] == "header" and len(lines) == 10
        assert {line["kind"] for line in lines[1:]} == {
            "project",
            "model",
            "deployment",
            "deployment_variables",
            "flow",
            "flow_of_flows",
        }
        assert "Ünïcode Áuthor" in out.read_text(encoding="utf-8")

    def test_without_file_writes_to_stdout(self, service, model_db, lume_home):
        make_model(service)
        result = invoke(url_of(model_db), "export")
        kinds = [json.loads(line)["kind"] for line in result.stdout.splitlines()]
        assert kinds == ["header", "model"]

    def test_failed_export_leaves_no_file(self, tmp_path, lume_home):
        out = tmp_path / "registry.jsonl"
        result = invoke("mysql+pymysql://lume:pw@127.0.0.1:1/none", "export", str(out), code=1)
        assert "Error:" in result.stderr
        assert list(tmp_path.iterdir()) == []


class TestImport:
    def test_export_then_import_reproduces_the_registry(self, service, model_db, target, tmp_path):
        populate(service)
        out = tmp_path / "registry.jsonl"
        invoke(url_of(model_db), "export", str(out), "--batch-size", "2")
        result = invoke(
            url_of(target), "import", str(out), "--batch-size", "2", LUME_MODEL_DB__AUTO_MIGRATE="true"
        )
        assert "Imported 9 records" in result.stderr
        assert snapshot(target) == snapshot(model_db)
        lines = result.stdout.splitlines()
        assert lines[0].split() == ["Kind", "Records"]
        assert {tuple(line.split()) for line in lines[2:]} == {
            ("project", "1"),
            ("model", "2"),
            ("deployment", "2"),
            ("deployment_variables", "1"),
            ("flow", "2"),
            ("flow_of_flows", "1"),
        }

    def test_json_summary_and_stdin(self, service, model_db, lume_home):
        make_model(service)
        exported = invoke(url_of(model_db), "export").stdout
        result = invoke(url_of(model_db), "import", "-", "--json", stdin=exported)
        assert json.loads(result.stdout)["imported"]["model"] == 1

    def test_a_bad_line_stops_the_import_and_says_what_was_written(
        self, service, model_db, tmp_path, lume_home
    ):
        lines = [
            json.dumps({"kind": "project", "project_name": f"p{i}", "description": "d"}) for i in range(3)
        ]
        path = tmp_path / "bad.jsonl"
        path.write_text("\n".join([*lines, "{not json"]) + "\n", encoding="utf-8")
        result = invoke(url_of(model_db), "import", str(path), "--batch-size", "2", code=1)
        assert "line 4" in result.stderr and "is not JSON" in result.stderr
        assert "Lines 1 to 2 were imported" in result.stderr
        assert [p.project_name for p in service.get_projects()] == ["p0", "p1"]

    def test_a_refused_record_names_its_line(self, service, model_db, tmp_path, lume_home):
        path = tmp_path / "bad.jsonl"
        path.write_text(json.dumps({"kind": "model", "author": ""}) + "\n", encoding="utf-8")
        result = invoke(url_of(model_db), "import", str(path), code=1)
        assert "(record 1)" in result.stderr and "Nothing was imported" in result.stderr

    def test_blank_lines_are_refused(self, model_db, tmp_path, lume_home):
        path = tmp_path / "blank.jsonl"
        path.write_text("\n", encoding="utf-8")
        assert "line 1" in invoke(url_of(model_db), "import", str(path), code=1).stderr

    def test_missing_file_is_a_usage_error(self, tmp_path, lume_home):
        result = invoke("sqlite:///unused.db", "import", str(tmp_path / "nope.jsonl"), code=2)
        assert "does not exist" in result.stderr

    def test_help(self, lume_home):
        result = CliRunner().invoke(cli, ["import", "--help"])
        assert result.exit_code == 0 and "JSON lines" in result.stdout


def test_commands_are_listed(lume_home: Path):
    result = CliRunner().invoke(cli, ["--help"])
    assert "import" in result.stdout and "export" in result.stdout
