"""A real `mlflow server` on a loopback port (SQLite backend, local artifact root), for the test session.

Started with subprocess.Popen in its own session (never a shell background
job), stopped with SIGTERM then SIGKILL and waited for. ``register`` creates
a registered model and its versions through MLflow's own client the way
lume-model's ``register_to_mlflow`` does: a run with the model's artifacts
(MLmodel, the LUME YAML config, weights), the registered model with its tags
(email, repo, beam_path, description, stage), versions with
``ready_to_deploy`` and the ``champion`` alias.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

STARTUP_TIMEOUT = 300.0  # a loaded 2-core machine took 100 s
CONFIG_YAML = """\
model_class: TorchModel
input_variables:
  energy:
    variable_class: ScalarVariable
    default_value: 1.0
    value_range: [0.0, 10.0]
    unit: GeV
output_variables:
  sigma_x:
    variable_class: ScalarVariable
    unit: mm
"""
MLMODEL = """\
artifact_path: model
flavors:
  python_function:
    loader_module: mlflow.pyfunc.model
    python_version: 3.11.0
  pytorch:
    pytorch_version: 2.3.0
mlflow_version: 3.17.0
"""


class MlflowServerError(RuntimeError):
    pass


@dataclass
class MlflowServer:
    url: str
    process: subprocess.Popen
    home: Path

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout=5)
                return
            except subprocess.TimeoutExpired:
                continue

    def client(self) -> Any:
        import mlflow

        return mlflow.MlflowClient(tracking_uri=self.url, registry_uri=self.url)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mlflow_executable() -> Optional[Path]:
    path = Path(sys.executable).parent / "mlflow"
    return path if path.exists() else None


def launch_mlflow_server(home: Path, workers: int = 1) -> MlflowServer:
    """Start ``mlflow server`` on a free loopback port without waiting for it (see ``wait_ready``)."""
    executable = mlflow_executable()
    if executable is None:
        raise MlflowServerError(f"mlflow is not installed next to {sys.executable} (pip install 'mlflow>=3.17,<4')")
    home.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "LUME_"))}
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # no job runner processes (not needed by the registry)
    cmd = [
        str(executable), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}", "--artifacts-destination", str(home / "artifacts"),
    ]  # fmt: skip
    with open(home / "server.log", "wb") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=home, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return MlflowServer(url=f"http://127.0.0.1:{port}", process=proc, home=home)


def wait_ready(server: MlflowServer) -> MlflowServer:
    """Wait until the server answers /health; MlflowServerError (and the server stopped) if it does not."""
    log = server.home / "server.log"
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise MlflowServerError(f"mlflow server exited with {server.process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=2) as response:
                if response.status == 200:
                    return server
        except OSError:
            time.sleep(0.3)
    server.stop()
    raise MlflowServerError(f"mlflow server did not answer within {STARTUP_TIMEOUT:g} s:\n{log.read_text()[-3000:]}")


def start_mlflow_server(home: Path, workers: int = 1) -> MlflowServer:
    """``mlflow server`` on a free loopback port, answering; MlflowServerError if it does not."""
    return wait_ready(launch_mlflow_server(home, workers))


def log_model_run(client: Any, experiment_id: str, workdir: Path, *, weights: bytes = b"w" * 1000,
                  config: str = CONFIG_YAML) -> tuple[str, str]:
    """A run holding a model's artifacts under ``model/``; returns (the artifact URI of ``model``, the run id)."""
    run = client.create_run(experiment_id)
    files = workdir / run.info.run_id / "model"
    files.mkdir(parents=True)
    (files / "MLmodel").write_text(MLMODEL)
    (files / "config.yaml").write_text(config)
    (files / "data").mkdir()
    (files / "data" / "model.pt").write_bytes(weights)
    client.log_artifacts(run.info.run_id, str(files), "model")
    client.set_terminated(run.info.run_id)
    return f"{run.info.artifact_uri}/model", run.info.run_id


def register(client: Any, name: str, workdir: Path, *, versions: int = 2, champion: Optional[int] = 1,
             tags: Optional[dict[str, str]] = None, experiment_id: str = "0", source: Optional[tuple[str, str]] = None,
             description: Optional[str] = None) -> list[Any]:
    """A registered model with ``versions`` versions as register_to_mlflow makes them.

    Each version logs its own run, unless ``source`` (artifact URI, run id) is
    shared by all of them (faster, for tests that do not look at artifacts).
    """
    model_tags = {"email": "jane@slac.stanford.edu", "repo": "https://github.com/slac/lcls-cu-inj",
                  "beam_path": "cu_inj", "description": f"{name} surrogate", "stage": "production"}
    client.create_registered_model(name, tags={**model_tags, **(tags or {})},
                                   description=description or f"{name} (LUME model)")
    made = []
    for _ in range(versions):
        source_uri, run_id = source or log_model_run(client, experiment_id, workdir)
        made.append(client.create_model_version(name, source_uri, run_id=run_id, tags={"ready_to_deploy": "true"}))
    if champion is not None:
        client.set_registered_model_alias(name, "champion", str(champion))
    return made
