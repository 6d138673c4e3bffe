"""Fixtures for store_deployment end to end: real packages, a loopback HTTP
server, a real Prefect server and the registry on each database dialect."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import pytest
from packages import TASKS, build, write_project

from lume_services import config

LONG_FLOW_NAME = "x" * 300  # Prefect accepts it; the registry's flow_name column does not


@pytest.fixture(params=["sqlite"])
def dialect(request: pytest.FixtureRequest) -> str:
    """SQLite unless a test is marked with e2e_marks.on_every_dialect (see there)."""
    return request.param


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real package archives, built once per session."""
    root = tmp_path_factory.mktemp("packages")
    out = root / "dist"
    image = 'from my_model import __version__\nIMAGE = f"registry.example.org/slac/my-model:v{__version__}"\n'
    good = write_project(root, dist="my-model", package="my_model", image_module=image)
    changed = write_project(
        root / "changed", dist="my-model", package="my_model", flow_name="fixture-flow-changed"
    )
    return {
        "sdist": build(good, out, "sdist"),
        "wheel": build(good, out, "wheel"),
        "directory": good,
        "legacy": build(
            write_project(
                root, dist="legacy-model", package="legacy_model", version="0.0.9", backend="legacy"
            ),
            out,
        ),
        "changed": build(changed, out),
        "no_flow": build(write_project(root, dist="no-flow", package="no_flow", entry_points={}), out),
        "bad_deps": build(
            write_project(
                root,
                dist="bad-deps",
                package="bad_deps",
                dependencies=("lume-services-no-such-package-xyz==1.0",),
            ),
            out,
        ),  # fmt: skip
        "long_name": build(
            write_project(root, dist="long-name", package="long_name", flow_name=LONG_FLOW_NAME), out
        ),
    }


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="session")
def http_base(artifacts: dict[str, Path]):
    """A loopback HTTP server over the artifacts' directory; yields its base URL."""
    directory = artifacts["sdist"].parent.parent
    handler = functools.partial(_Quiet, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", directory
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def shared_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One LUME_HOME (artifact store and environments) for all end-to-end tests."""
    return tmp_path_factory.mktemp("lume-home")


@pytest.fixture
def registry(model_db, prefect_server, shared_home, monkeypatch):
    """configure() against this test's database, the Prefect server and the shared home."""
    for name in ("LUME_MODEL_DB__HOST", "LUME_MODEL_DB__PORT", "LUME_MODEL_DB__USER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LUME_HOME", str(shared_home))
    monkeypatch.setenv("LUME_MODEL_DB__URL", model_db.url.render_as_string(hide_password=False))
    monkeypatch.setenv("LUME_PREFECT__API_URL", prefect_server.url)
    monkeypatch.setenv("LUME_ENVIRONMENT__ALLOW_HTTP", "true")
    return config.configure()


RUNNER_FLOW = (
    "import time\n"
    + TASKS
    + """

@prefect_flow(name="runner-flow")
def flow(input1: float = 1.0, input2: float = 2.0, sleep: float = 0.0, fail: bool = False) -> dict:
    if fail:
        raise RuntimeError("the model refused these inputs")
    time.sleep(sleep)
    return {"sum": add(double(input1), input2), "inputs": [input1, input2]}
"""
)


RUNNER_VARIABLES = """\
input_variables:
  input1: {name: input1, type: scalar, default: 1.0, range: [-100, 100], units: A}
  input2: {name: input2, type: scalar, default: 2.0, range: [-100, 100], units: A}
output_variables:
  sum: {name: sum, type: scalar}
"""


@pytest.fixture(scope="session")
def runner_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A package whose flow can sleep or fail on request."""
    root = tmp_path_factory.mktemp("runner-package")
    project = write_project(
        root, dist="runner-model", package="runner_model", flow_source=RUNNER_FLOW,
        files={"variables.yml": RUNNER_VARIABLES},
    )  # fmt: skip
    return build(project, root / "dist")
