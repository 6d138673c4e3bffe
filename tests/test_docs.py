"""Generated documentation and deployment files stay true."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "lume_services" / "docker" / "files" / "docker-compose.yml"


def test_readme_configuration_table_is_current():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "render_config_table.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_readme_quickstart_is_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    assert "    make demo" in readme and "    make test" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "\nmake test\n" in ci


def test_compose_file_runs_mysql_with_the_init_sql_and_a_prefect_3_server():
    spec = yaml.safe_load(COMPOSE.read_text())
    services = spec["services"]
    assert {"mysql", "prefect-server", "prefect-db"} <= set(services)
    mounts = services["mysql"]["volumes"]
    assert any(m.startswith("./model-db-init.sql:/docker-entrypoint-initdb.d/") for m in mounts)
    assert (COMPOSE.parent / "model-db-init.sql").exists()
    for name, service in services.items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name} image {image} is not pinned"
        if service.get("restart") != "no":  # one-shot services (migrate) exit; every other one is checked
            assert "healthcheck" in service, name
    assert services["prefect-server"]["image"].startswith("prefecthq/prefect:3")
    assert all(port.startswith("127.0.0.1:") for s in services.values() for port in s.get("ports", []))


REGISTRY_SERVICES = {"migrate": ["db", "upgrade"], "registry": ["serve"], "events": ["events", "deliver"],
                     "worker": ["worker"]}  # fmt: skip


def test_compose_runs_the_registry_from_the_dockerfile_after_the_migration():
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    images = {services[name]["image"] for name in REGISTRY_SERVICES}
    assert len(images) == 1, f"one image for every registry process, not {images}"
    for name, command in REGISTRY_SERVICES.items():
        service = services[name]
        assert (COMPOSE.parent / service["build"]["context"]).resolve() == ROOT, name
        assert service["build"]["dockerfile"] == "Dockerfile" and service["command"][:len(command)] == command
        env = service["environment"]
        assert env["LUME_MODEL_DB__HOST"] == "mysql" and env["LUME_PREFECT__API_URL"].startswith(
            "http://prefect-server:4200"), name  # fmt: skip
        if name != "migrate":
            assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
    assert services["registry"]["healthcheck"]["test"][-1].count("/readyz") == 1
    assert "lume-home:/home/lume/.lume-services" in services["worker"]["volumes"]  # the registry's environments
    assert set(services["worker"]["volumes"]) == set(services["registry"]["volumes"])


@pytest.mark.parametrize("name", sorted(REGISTRY_SERVICES))
def test_every_command_the_compose_file_runs_in_the_image_exists(name):
    command = yaml.safe_load(COMPOSE.read_text())["services"][name]["command"]
    result = subprocess.run([sys.executable, "-m", "lume_services.cli", *command, "--help"], capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dockerfile_installs_the_lock_in_stages_and_runs_as_an_unprivileged_user():
    text = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2
    syncs = re.findall(r"uv sync (.*)", text)
    assert syncs and all("--locked" in line for line in syncs)
    user = re.findall(r"^USER (\S+)", text, re.M)[-1]
    assert user.split(":")[0] not in ("0", "root")
    assert re.search(r'^ENTRYPOINT \["lume-services"\]', text, re.M) and 'CMD ["serve"]' in text
    ignored = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if not line.startswith("#")]
    assert ignored[0] == "*" and {"!pyproject.toml", "!uv.lock", "!README.md", "!lume_services/"} <= set(ignored)
    uv = re.search(r"ARG UV_VERSION=(\S+)", text).group(1)
    locked = re.search(r'name = "uv"\nversion = "([^"]+)"', (ROOT / "uv.lock").read_text()).group(1)
    assert uv == locked, f"the Dockerfile's UV_VERSION {uv} is not uv.lock's {locked}: keep them in step"


def uv_lock_check(*extra: str) -> subprocess.CompletedProcess:
    from uv import find_uv_bin

    return subprocess.run([find_uv_bin(), "lock", "--check", *extra], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def test_uv_lock_is_current():
    """uv.lock matches pyproject.toml; checked offline first (no network needed when it is current)."""
    result = uv_lock_check("--offline")
    if result.returncode != 0:  # out of date, or offline could not tell (metadata not cached): ask the index
        result = uv_lock_check()
    assert result.returncode == 0, ("uv.lock is not current: run `make lock` and commit it.\n"
                                    + result.stdout + result.stderr)  # fmt: skip
