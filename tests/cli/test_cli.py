"""The `lume-services` command line, run against real databases.

Most tests use click's CliRunner with ``LUME_MODEL_DB__URL`` pointing at the
``model_db`` fixture (SQLite, MariaDB, PostgreSQL); a few run the installed
console script in a subprocess to check ``--help`` without configuration and
the exit codes a shell sees. Every invocation is checked for tracebacks and
for the database password.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import factories
import pytest
from click.testing import CliRunner, Result

from lume_services import __version__, migrations
from lume_services.cli.main import cli
from lume_services.services.models.db.db import ModelDB
from lume_services.services.models.records import (
    DeploymentRecord,
    LoadedDeployment,
    ModelRecord,
    ModelWithLive,
    ProjectRecord,
)

EXE = Path(sys.executable).parent / "lume-services"
SECRET = "Sup3r-s3cret-pa55word"
Run = Callable[..., Result]


def url_of(model_db: ModelDB) -> str:
    return model_db.url.render_as_string(hide_password=False)


def secrets_of(url: str) -> list[str]:
    """The password of a URL, raw and as written in the URL."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        password = make_url(url).password
    except ArgumentError:
        return [url] if url else []
    return [password, url] if password else []


def assert_clean(stdout: str, stderr: str, secrets: list[str]) -> None:
    """No traceback and no secret anywhere in the output."""
    for text in (stdout, stderr):
        assert "Traceback" not in text
        for secret in secrets:
            assert secret not in text


def make_runner(env: dict[str, str]) -> Run:
    runner = CliRunner()

    def invoke(*args: str, code: int = 0, extra_env: dict[str, str] | None = None) -> Result:
        result = runner.invoke(cli, list(args), env={**env, **(extra_env or {})})
        detail = (result.stdout, result.stderr, result.exception)
        assert result.exit_code == code, detail
        assert result.exception is None or isinstance(result.exception, SystemExit), detail
        assert_clean(result.stdout, result.stderr, secrets_of(env.get("LUME_MODEL_DB__URL", "")))
        return result

    return invoke


def run_exe(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed console script with only the LUME_* variables given."""
    base = {k: v for k, v in os.environ.items() if not k.upper().startswith("LUME_")}
    base["LUME_HOME"] = os.environ.get("LUME_HOME", "/nonexistent-lume-home")
    return subprocess.run(
        [str(EXE), *args], env={**base, **(env or {})}, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def db_url(model_db: ModelDB, lume_home: Path) -> str:
    return url_of(model_db)


@pytest.fixture
def run(db_url: str) -> Run:
    return make_runner({"LUME_MODEL_DB__URL": db_url})


def load_json(result: Result) -> Any:
    return json.loads(result.stdout)


# -- help, version, usage, configuration -------------------------------------------


def all_command_paths() -> list[list[str]]:
    paths = [[]]
    for name, group in cli.commands.items():
        paths.append([name])
        paths.extend([name, sub] for sub in getattr(group, "commands", {}))
    return paths


class TestHelp:
    @pytest.mark.parametrize("path", all_command_paths(), ids=lambda p: " ".join(p) or "top")
    def test_every_help_works_with_a_broken_configuration(self, path, lume_home):
        env = {"LUME_MODEL_DB__HOST": "db.example.org", "LUME_MODEL_DB__PASSWORD": SECRET}
        result = make_runner(env)(*path, "--help")
        assert "Usage: " in result.stdout
        assert SECRET not in result.stdout

    def test_help_in_a_subprocess_without_configuration(self, lume_home):
        proc = run_exe("--help")
        assert proc.returncode == 0, proc.stderr
        for group in ("db", "models", "projects", "deployments"):
            assert group in proc.stdout
        assert not lume_home.exists()  # --help writes nothing

    def test_subcommand_help_in_a_subprocess_with_a_broken_configuration(self, lume_home):
        proc = run_exe("models", "list", "--help", env={"LUME_MODEL_DB__HOST": "db.example.org"})
        assert proc.returncode == 0, proc.stderr
        assert "--search" in proc.stdout

    def test_importing_the_cli_imports_nothing_heavy(self):
        code = (
            "import sys, lume_services.cli.main; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'sqlalchemy', 'pydantic', 'pydantic_settings', 'alembic'}))"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert proc.stdout.strip() == "[]", proc.stderr
        heavy = ("lume_services.config", "lume_services.services", "lume_services.models")
        code = (
            f"import sys, lume_services.cli.main; print([m for m in sys.modules if m.startswith({heavy!r})])"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert proc.stdout.strip() == "[]", proc.stderr

    def test_version(self, lume_home):
        proc = run_exe("--version")
        assert proc.returncode == 0
        assert __version__ in proc.stdout


class TestUsageErrors:
    @pytest.mark.parametrize(
        "args",
        [
            ["models", "lst"],
            ["models", "show", "abc"],
            ["models", "show", "0"],
            ["deployments", "list", "--limit", "0"],
            ["models", "create", "--author", "a"],
            ["projects", "create", "p"],
        ],
        ids=" ".join,
    )
    def test_exit_code_2_in_a_subprocess(self, args, lume_home):
        proc = run_exe(*args)
        assert proc.returncode == 2, (proc.stdout, proc.stderr)
        assert "Error: " in proc.stderr
        assert "Traceback" not in proc.stderr


class TestConfiguration:
    def test_partial_server_settings_name_the_variables(self, lume_home):
        env = {"LUME_MODEL_DB__HOST": "db.example.org", "LUME_MODEL_DB__PASSWORD": SECRET}
        proc = run_exe("models", "list", env=env)
        assert proc.returncode == 1
        assert proc.stderr.startswith("Error: ")
        for name in ("LUME_MODEL_DB__PORT", "LUME_MODEL_DB__USER", "LUME_MODEL_DB__DATABASE"):
            assert name in proc.stderr
        assert_clean(proc.stdout, proc.stderr, [SECRET])
        assert proc.stdout == ""

    @pytest.mark.parametrize("scheme", ["mysql+pymysql", "postgresql+psycopg"])
    def test_unreachable_server_is_a_clean_error(self, scheme, lume_home):
        url = f"{scheme}://lume:{SECRET}@127.0.0.1:1/registry"
        proc = run_exe("db", "current", env={"LUME_MODEL_DB__URL": url})
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.startswith("Error: Database error during `lume-services db current`")
        assert_clean(proc.stdout, proc.stderr, [SECRET])

    def test_invalid_url_is_a_clean_error(self, lume_home):
        result = make_runner({"LUME_MODEL_DB__URL": f"not a url {SECRET}"})("models", "list", code=1)
        assert "not a valid SQLAlchemy URL" in result.stderr
        assert SECRET not in result.stderr

    def test_missing_driver_is_a_clean_error(self, lume_home):
        url = f"mysql+mysqldb://lume:{SECRET}@127.0.0.1:1/registry"
        result = make_runner({"LUME_MODEL_DB__URL": url})("db", "current", code=1)
        assert result.stderr.startswith("Error: Cannot use the model database URL 'mysql+mysqldb://lume:***@")
        assert "No module named 'MySQLdb'" in result.stderr
        assert SECRET not in result.stderr

    @pytest.mark.parametrize(
        "scheme, reason",
        [("mysql+pymysql", "Can't connect to MySQL server"), ("postgresql+psycopg", "Connection refused")],
    )
    def test_unreachable_server_names_the_drivers_reason(self, scheme, reason, lume_home):
        url = f"{scheme}://lume:{SECRET}@127.0.0.1:1/registry"
        result = make_runner({"LUME_MODEL_DB__URL": url})("models", "list", code=1)
        assert result.stderr.startswith("Error: Database error during ")
        assert reason in result.stderr
        assert len(result.stderr.splitlines()) == 1

    def test_sqlite_path_that_is_a_directory_names_the_drivers_reason(self, lume_home, tmp_path):
        result = make_runner({"LUME_MODEL_DB__SQLITE_PATH": str(tmp_path)})("models", "list", code=1)
        assert result.stderr == (
            f"Error: Database error during connecting to sqlite:///{tmp_path}: unable to open database file.\n"
        )
        assert result.stdout == ""

    def test_no_configuration_uses_the_embedded_registry(self, lume_home):
        result = make_runner({})("models", "list")
        assert result.stdout.strip() == "No models match."
        assert (lume_home / "registry.db").exists()


# -- db -----------------------------------------------------------------------------


@pytest.fixture
def fresh_url(dialect, fresh_db_url, lume_home) -> str:
    return fresh_db_url(dialect)


class TestDbCurrent:
    def test_up_to_date(self, run, db_url, model_db):
        out = run("db", "current").stdout
        assert f"Current revision:  {migrations.head()}" in out
        assert "The schema is up to date." in out
        assert model_db.safe_url() in out

    def test_json(self, run, model_db):
        data = load_json(run("db", "current", "--json"))
        assert data == {
            "url": model_db.safe_url(),
            "current": migrations.head(),
            "head": migrations.head(),
            "upgrade_needed": False,
        }

    def test_empty_database_needs_an_upgrade(self, fresh_url):
        run = make_runner({"LUME_MODEL_DB__URL": fresh_url})
        out = run("db", "current").stdout
        assert "(none: the database has no lume-services schema)" in out
        assert "An upgrade is needed: run `lume-services db upgrade`." in out
        assert load_json(run("db", "current", "--json"))["upgrade_needed"] is True

    @pytest.mark.server_only
    def test_password_is_masked(self, run, db_url, model_db):
        assert model_db.url.password
        assert "***" in run("db", "current").stdout


class TestDbUpgrade:
    def test_upgrades_an_empty_database(self, fresh_url):
        run = make_runner({"LUME_MODEL_DB__URL": fresh_url, "LUME_MODEL_DB__AUTO_MIGRATE": "false"})
        refused = run("models", "list", code=1)
        assert "run `lume-services db upgrade`" in refused.stderr
        out = run("db", "upgrade").stdout
        assert f"Upgraded the schema to revision {migrations.head()}." in out
        assert "Revision before:  (none" in out
        assert run("models", "list").stdout.strip() == "No models match."

    def test_again_changes_nothing(self, run):
        assert "already up to date; nothing changed" in run("db", "upgrade").stdout
        data = load_json(run("db", "upgrade", "--json"))
        assert data["before"] == data["after"] == migrations.head()
        assert data["upgraded"] is False

    def test_in_a_subprocess(self, fresh_url):
        proc = run_exe("db", "upgrade", "--json", env={"LUME_MODEL_DB__URL": fresh_url})
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["after"] == migrations.head()
        assert_clean(proc.stdout, proc.stderr, secrets_of(fresh_url))


# -- models ---------------------------------------------------------------------------


class TestModelsList:
    def test_table_shows_the_values_and_the_live_version(self, run, service):
        live = factories.make_model(service, author="Ada Lovelace", beampath="sc_bsyd")
        factories.make_deployment(service, live, version="1.2.3", is_live=True)
        idle = factories.make_model(service, description="no deployment yet")
        lines = run("models", "list").stdout.splitlines()
        assert lines[0].split() == [
            "ID",
            "Author",
            "Laboratory",
            "Facility",
            "Beampath",
            "Live",
            "version",
            "Description",
        ]
        row = next(line for line in lines if line.startswith(f"{live} "))
        for value in ("Ada Lovelace", "slac", "lcls", "sc_bsyd", "1.2.3"):
            assert value in row
        assert "no deployment yet" in next(line for line in lines if line.startswith(f"{idle} "))

    def test_json_round_trips(self, run, service):
        model_id = factories.make_model(service)
        factories.make_deployment(service, model_id, is_live=True)
        factories.make_model(service)
        data = load_json(run("models", "list", "--json"))
        assert data["next_after"] is None
        items = [ModelWithLive.model_validate(item) for item in data["items"]]
        assert items == service.list_models_with_live().items

    def test_filters_and_search(self, run, service):
        wanted = factories.make_model(service, facility="facet", description="Injector surrogate")
        factories.make_model(service, facility="lcls")
        by_facility = load_json(run("models", "list", "--facility", "facet", "--json"))["items"]
        by_search = load_json(run("models", "list", "--search", "injector", "--json"))["items"]
        assert [i["model"]["model_id"] for i in by_facility] == [wanted]
        assert [i["model"]["model_id"] for i in by_search] == [wanted]
        assert run("models", "list", "--author", "nobody").stdout.strip() == "No models match."

    def test_pages(self, run, service):
        ids = [factories.make_model(service) for _ in range(3)]
        first = load_json(run("models", "list", "--limit", "2", "--json"))
        assert [i["model"]["model_id"] for i in first["items"]] == ids[:2]
        assert first["next_after"] == ids[1]
        rest = load_json(run("models", "list", "--after", str(ids[1]), "--json"))
        assert [i["model"]["model_id"] for i in rest["items"]] == ids[2:]
        assert f"--after {ids[0]}" in run("models", "list", "--limit", "1").stdout

    def test_in_a_subprocess(self, db_url, service):
        model_id = factories.make_model(service)
        proc = run_exe("models", "list", "--json", env={"LUME_MODEL_DB__URL": db_url})
        assert proc.returncode == 0, proc.stderr
        assert [i["model"]["model_id"] for i in json.loads(proc.stdout)["items"]] == [model_id]
        assert_clean(proc.stdout, proc.stderr, secrets_of(db_url))


class TestModelsShow:
    def test_shows_the_model_and_its_deployments_oldest_first(self, run, service):
        model_id = factories.make_model(service, author="Grace Hopper", description="a surrogate")
        old = factories.make_deployment(service, model_id, version="0.1.0")
        new = factories.make_deployment(service, model_id, version="0.2.0", is_live=True)
        out = run("models", "show", str(model_id)).stdout
        for value in (f"Model id:       {model_id}", "Grace Hopper", "a surrogate", "0.1.0", "0.2.0"):
            assert value in out
        assert out.index("0.1.0") < out.index("0.2.0")
        data = load_json(run("models", "show", str(model_id), "--json"))
        assert ModelRecord.model_validate(data["model"]) == service.get_model(model_id=model_id)
        assert [DeploymentRecord.model_validate(d).deployment_id for d in data["deployments"]] == [old, new]

    def test_no_deployments(self, run, service):
        model_id = factories.make_model(service)
        assert "No deployments yet." in run("models", "show", str(model_id)).stdout
        assert load_json(run("models", "show", str(model_id), "--json"))["deployments"] == []

    def test_unknown_id_is_exit_1(self, run):
        result = run("models", "show", "999999", code=1)
        assert result.stderr.startswith("Error: No model matches model_id=999999;")
        assert result.stdout == ""


class TestModelsCreate:
    ARGS = [
        "--author",
        "Jackie Garrahan",
        "--laboratory",
        "slac",
        "--facility",
        "lcls",
        "--beampath",
        "cu_hxr",
        "--description",
        "test_model",
    ]

    def test_creates_and_prints_the_id(self, run, service):
        out = run("models", "create", *self.ARGS).stdout
        (stored,) = service.get_models()
        assert f"Model {stored.model_id} is registered." in out
        assert stored.author == "Jackie Garrahan" and stored.beampath == "cu_hxr"

    def test_get_or_create_and_json(self, run, service):
        first = load_json(run("models", "create", *self.ARGS, "--json"))
        again = load_json(run("models", "create", *self.ARGS, "--json"))
        assert first == again
        assert ModelRecord.model_validate(first) == service.get_model(model_id=first["model_id"])
        assert len(service.get_models()) == 1

    def test_over_long_author_stores_nothing(self, run, service):
        args = list(self.ARGS)
        args[1] = "x" * 101
        result = run("models", "create", *args, code=1)
        assert result.stderr.startswith("Error: Invalid author ")
        assert "at most 100 fit" in result.stderr
        assert service.get_models() == []

    def test_blank_description_stores_nothing(self, run, service):
        args = self.ARGS[:-1] + ["   "]
        assert "must not be empty" in run("models", "create", *args, code=1).stderr
        assert service.get_models() == []


# -- projects -------------------------------------------------------------------------


class TestProjectsList:
    def test_table_and_json(self, run, service):
        factories.make_project(service, "injector", "Injector models")
        factories.make_project(service, "undulator", "Undulator models")
        lines = run("projects", "list").stdout.splitlines()
        assert lines[0].split() == ["Name", "Description"]
        assert lines[2].split(None, 1) == ["injector", "Injector models"]
        assert lines[3].split(None, 1) == ["undulator", "Undulator models"]
        data = load_json(run("projects", "list", "--json"))
        assert [ProjectRecord.model_validate(p) for p in data] == service.get_projects()

    def test_empty(self, run):
        assert run("projects", "list").stdout.strip() == "No projects yet."
        assert load_json(run("projects", "list", "--json")) == []


class TestProjectsCreate:
    def test_creates(self, run, service):
        assert (
            "Project 'injector' is stored."
            in run("projects", "create", "injector", "--description", "Injector models").stdout
        )
        assert service.get_project(project_name="injector").description == "Injector models"
        again = load_json(run("projects", "create", "injector", "--description", "Injector models", "--json"))
        assert again == {"project_name": "injector", "description": "Injector models"}

    def test_other_description_is_a_conflict(self, run, service):
        factories.make_project(service, "injector", "Injector models")
        result = run("projects", "create", "injector", "--description", "other", code=1)
        assert result.stderr.startswith("Error: A project 'injector' already exists")
        assert service.get_project(project_name="injector").description == "Injector models"

    def test_over_long_name_stores_nothing(self, run, service):
        result = run("projects", "create", "p" * 101, "--description", "d", code=1)
        assert "Invalid project_name" in result.stderr
        assert service.get_projects() == []


# -- deployments ----------------------------------------------------------------------


class TestDeploymentsList:
    def test_table_shows_the_values(self, run, service):
        model_id = factories.make_model(service)
        dep = factories.make_deployment(
            service, model_id, version="2.0.1", is_live=True, image="registry.example.org/m:2.0.1"
        )
        lines = run("deployments", "list").stdout.splitlines()
        row = next(line for line in lines if line.startswith(f"{dep} "))
        assert row.split()[:4] == [str(dep), str(model_id), "2.0.1", "yes"]
        assert "registry.example.org/m:2.0.1" in row

    def test_filters_and_json(self, run, service):
        model_id = factories.make_model(service)
        idle = factories.make_deployment(service, model_id)
        live = factories.make_deployment(service, model_id, is_live=True)
        other = factories.make_deployment(service)

        def ids(*args: str) -> list[int]:
            data = load_json(run("deployments", "list", "--json", *args))
            return [DeploymentRecord.model_validate(d).deployment_id for d in data["items"]]

        assert ids() == [idle, live, other]
        assert ids("--model-id", str(model_id)) == [idle, live]
        assert ids("--model-id", str(model_id), "--live") == [live]
        assert ids("--model-id", str(model_id), "--not-live") == [idle]

    def test_pages_and_empty(self, run, service):
        assert run("deployments", "list").stdout.strip() == "No deployments match."
        deps = [factories.make_deployment(service) for _ in range(3)]
        page = load_json(run("deployments", "list", "--limit", "2", "--json"))
        assert page["next_after"] == deps[1]
        rest = load_json(run("deployments", "list", "--after", str(deps[1]), "--json"))
        assert [d["deployment_id"] for d in rest["items"]] == [deps[2]]


class TestDeploymentsShow:
    def test_shows_the_deployment_flow_and_project(self, run, service):
        dep = factories.make_deployment(service, version="3.1.4")
        project = factories.make_project(service, "injector")
        flow_id = factories.make_flow(service, dep, project)
        out = run("deployments", "show", str(dep)).stdout
        record = service.get_deployment(deployment_id=dep)
        for value in ("3.1.4", record.sha256, record.source, flow_id, "injector"):
            assert value in out
        data = load_json(run("deployments", "show", str(dep), "--json"))
        assert LoadedDeployment.model_validate(data) == service.load_deployment(
            model_id=record.model_id, deployment_id=dep
        )

    def test_unregistered_flow(self, run, service):
        dep = factories.make_deployment(service)
        assert "(not registered)" in run("deployments", "show", str(dep)).stdout

    def test_unknown_id_is_exit_1(self, run):
        result = run("deployments", "show", "424242", code=1)
        assert result.stderr.startswith("Error: No deployment matches deployment_id=424242;")


class TestDeploymentsSetLive:
    def test_demotes_the_previous_live_deployment(self, run, service):
        model_id = factories.make_model(service)
        old = factories.make_deployment(service, model_id, version="1.0.0", is_live=True)
        new = factories.make_deployment(service, model_id, version="1.1.0")
        out = run("deployments", "set-live", str(new)).stdout
        assert f"Deployment {new} (model {model_id}, version '1.1.0') is now live" in out
        assert f"deployment {old} (version '1.0.0') is no longer live" in out
        assert service.get_live_deployment(model_id).deployment_id == new
        assert service.get_deployment(deployment_id=old).is_live is False

    def test_json(self, run, service):
        model_id = factories.make_model(service)
        old = factories.make_deployment(service, model_id, is_live=True)
        new = factories.make_deployment(service, model_id)
        data = load_json(run("deployments", "set-live", str(new), "--json"))
        assert DeploymentRecord.model_validate(data["live"]) == service.get_deployment(deployment_id=new)
        assert DeploymentRecord.model_validate(data["demoted"]) == service.get_deployment(deployment_id=old)
        assert data["demoted"]["is_live"] is False

    def test_first_and_repeated(self, run, service):
        dep = factories.make_deployment(service)
        assert "no other deployment of the model was live" in run("deployments", "set-live", str(dep)).stdout
        assert "was already live; nothing changed" in run("deployments", "set-live", str(dep)).stdout
        assert load_json(run("deployments", "set-live", str(dep), "--json"))["demoted"] is None

    def test_other_models_are_untouched(self, run, service):
        other = factories.make_deployment(service, is_live=True)
        dep = factories.make_deployment(service)
        run("deployments", "set-live", str(dep))
        assert service.get_deployment(deployment_id=other).is_live is True

    def test_unknown_id_is_exit_1_in_a_subprocess(self, db_url):
        proc = run_exe("deployments", "set-live", "999999", env={"LUME_MODEL_DB__URL": db_url})
        assert proc.returncode == 1
        assert proc.stderr.startswith("Error: No deployment matches deployment_id=999999;")
        assert_clean(proc.stdout, proc.stderr, secrets_of(db_url))


# -- secrets --------------------------------------------------------------------------


class TestPasswords:
    @pytest.mark.server_only
    def test_no_command_prints_the_password(self, run, db_url, service):
        assert secrets_of(db_url)
        model_id = factories.make_model(service)
        dep = factories.make_deployment(service, model_id)
        for args, code in [
            (["db", "current"], 0),
            (["db", "upgrade", "--json"], 0),
            (["models", "list"], 0),
            (["models", "show", str(model_id), "--json"], 0),
            (["models", "show", "999999"], 1),
            (["deployments", "set-live", str(dep)], 0),
            (["projects", "list"], 0),
            (
                [
                    "models",
                    "create",
                    "--author",
                    "",
                    "--laboratory",
                    "l",
                    "--facility",
                    "f",
                    "--beampath",
                    "b",
                    "--description",
                    "d",
                ],
                1,
            ),
        ]:
            run(*args, code=code)  # run() fails on any secret in stdout or stderr
