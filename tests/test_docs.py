"""Generated documentation and deployment files stay true."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
        assert "healthcheck" in service
    assert services["prefect-server"]["image"].startswith("prefecthq/prefect:3")
    assert all(port.startswith("127.0.0.1:") for s in services.values() for port in s.get("ports", []))
