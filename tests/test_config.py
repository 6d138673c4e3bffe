"""Settings from LUME_* variables, configure(), and the service context."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lume_services import config
from lume_services.errors import EnvironmentNotConfiguredError
from lume_services.services.models.db.db import ModelDBConfig

SECRET = "p@ss:w/o%rd#with?chars"


class TestConfigure:
    def test_defaults_to_embedded_sqlite_under_lume_home(self, lume_home):
        ctx = config.configure()
        assert ctx.settings.home == lume_home
        assert ctx.model_db().url.database == str(lume_home / "registry.db")
        assert not lume_home.exists()  # nothing written until first use
        ctx.model_db_service().get_models()
        assert (lume_home / "registry.db").exists()

    def test_home_expands_user(self, lume_home, monkeypatch, tmp_path):
        monkeypatch.setenv("HOME", str(tmp_path))
        monkeypatch.setenv("LUME_HOME", "~/registry-home")
        assert config.configure().settings.home == tmp_path / "registry-home"

    def test_predecessor_variables_build_a_mysql_url(self, lume_home, monkeypatch):
        for name, value in dict(
            HOST=" db.example.org", PORT="3306", USER="lume", PASSWORD=SECRET, DATABASE="lume_services_models"
        ).items():
            monkeypatch.setenv(f"LUME_MODEL_DB__{name}", value)
        monkeypatch.setenv("LUME_MODEL_DB__CONNECTION__POOL_SIZE", "3")
        db = config.configure().model_db()
        assert db.url.drivername == "mysql+pymysql"
        assert (db.url.host, db.url.port, db.url.password) == ("db.example.org", 3306, SECRET)
        assert db.config.connection.pool_size == 3
        assert SECRET not in repr(db) and SECRET not in repr(config.context)
        assert SECRET not in repr(config._settings) and SECRET not in str(config._settings)

    def test_url_variable(self, lume_home, monkeypatch, tmp_path):
        monkeypatch.setenv("LUME_MODEL_DB__URL", f"sqlite:///{tmp_path / 'x.db'}")
        assert config.configure().model_db().dialect == "sqlite"

    def test_partial_server_settings_name_the_missing_variables(self, lume_home, monkeypatch):
        monkeypatch.setenv("LUME_MODEL_DB__HOST", "db")
        monkeypatch.setenv("LUME_MODEL_DB__PASSWORD", SECRET)
        with pytest.raises(EnvironmentNotConfiguredError) as info:
            config.configure()
        message = str(info.value)
        assert "database, port, user missing" in message
        assert "LUME_MODEL_DB__USER" in message and SECRET not in message
        assert info.value.__cause__ is None and info.value.__suppress_context__

    def test_bad_backend_and_port(self, lume_home, monkeypatch):
        monkeypatch.setenv("LUME_BACKEND", "slurm")
        with pytest.raises(EnvironmentNotConfiguredError, match="LUME_BACKEND"):
            config.configure()
        monkeypatch.setenv("LUME_BACKEND", "docker")
        monkeypatch.setenv("LUME_MODEL_DB__URL", "sqlite://")
        monkeypatch.setenv("LUME_MODEL_DB__PORT", "99999")
        with pytest.raises(EnvironmentNotConfiguredError, match="LUME_MODEL_DB__PORT"):
            config.configure()

    def test_unconfigured_use_says_to_configure(self):
        config.context = None
        with pytest.raises(EnvironmentNotConfiguredError, match="configure()"):
            config.get_context()

    def test_scheduling_and_environment_services_live_under_lume_home(self, lume_home):
        ctx = config.configure()
        assert ctx.scheduling_service().pool_name == "lume-services"
        assert ctx.environment_manager().root == lume_home / "envs"
        assert ctx.artifact_store().root == lume_home / "store"
        assert not lume_home.exists()  # nothing written until used

    def test_services_are_singletons(self, lume_home):
        ctx = config.configure()
        assert ctx.model_db_service() is ctx.model_db_service()


class TestModelDBConfig:
    def test_url_escapes_any_password(self):
        cfg = ModelDBConfig(host="h", port=1, user="u@x", password=SECRET, database="d")
        url = cfg.sqlalchemy_url()
        assert (url.username, url.password) == ("u@x", SECRET)
        assert SECRET not in cfg.safe_url() and SECRET not in repr(cfg)

    @pytest.mark.parametrize(
        "kwargs", [{}, {"url": "sqlite://", "sqlite_path": "x.db"}, {"host": "h", "url": "sqlite://"}]
    )
    def test_exactly_one_location(self, kwargs):
        with pytest.raises(ValueError):
            ModelDBConfig(**kwargs)


def test_env_var_table_covers_the_predecessor_names():
    groups = config.get_env_vars()
    names = {n for group in groups.values() for n in group}
    assert {
        "LUME_MODEL_DB__HOST",
        "LUME_MODEL_DB__PORT",
        "LUME_MODEL_DB__USER",
        "LUME_MODEL_DB__PASSWORD",
        "LUME_MODEL_DB__DATABASE",
        "LUME_MODEL_DB__DIALECT_STR",
        "LUME_MODEL_DB__CONNECTION__POOL_SIZE",
        "LUME_MODEL_DB__URL",
        "LUME_HOME",
        "LUME_BACKEND",
    } <= names
    assert all(description for *_, description in config.iter_settings(config.LUMEServicesSettings))


def test_importing_the_package_is_light():
    code = (
        "import sys, lume_services, lume_services.errors; "
        "print(sorted(m for m in ('sqlalchemy', 'prefect', 'pydantic', 'pymysql') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


def test_database_operations_never_import_prefect(tmp_path):
    code = (
        "import sys\n"
        "from lume_services import config\n"
        "from lume_services.models import Model\n"
        "config.configure()\n"
        "m = Model.create_model(author='a', laboratory='b', facility='c', beampath='d', description='e')\n"
        "config.context.model_db_service().store_project(project_name='p', description='d')\n"
        "m.deployments; m.load_deployment if False else None\n"
        "print(sorted(x for x in ('prefect', 'httpx', 'uv') if x in sys.modules))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUME_")}
    env["LUME_HOME"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.stdout.strip().splitlines()[-1:] == ["[]"], out.stderr


def test_a_model_kept_across_configure_still_writes(lume_home):
    """configure() again closes the old context's database; objects made before it (a notebook's
    Model, a service) keep working, their first call after it a write included (runs get recorded)."""
    from factories import deployment_fields

    from lume_services.models import Model

    config.configure()
    model = Model.create_model(author="a", laboratory="b", facility="c", beampath="d", description="kept")
    old = config.get_context().model_db_service()
    config.configure()
    first = old.store_deployment(**deployment_fields(model.model_id, version="1.0.0"))
    config.configure()
    second = model.model_db_service.store_deployment(**deployment_fields(model.model_id, version="2.0.0"))
    new = config.get_context().model_db_service()
    stored = new.get_deployments(model_id=model.model_id)
    assert [(d.deployment_id, d.version) for d in stored] == [(first, "1.0.0"), (second, "2.0.0")]
