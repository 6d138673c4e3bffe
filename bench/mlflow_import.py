"""Import from a loopback MLflow server: versions imported per second next to MLflow's own listing rate.

One run: start ``mlflow server`` (SQLite backend, local artifact root) on a
loopback port, create ``--models`` registered models with ``--versions``
versions each (every model logs one run with an MLmodel, a LUME YAML config
and a weights file; its versions point at that run), then:

1. list every version with MLflow's own client (``MlflowClient.search_model_versions``,
   paged as the client pages) and time it: the listing floor;
2. ``lume-services mlflow import`` of all of them into a fresh SQLite registry
   (every version's artifacts listed, streamed and hashed; one transaction per
   model) and time it;
3. print versions/s of both and their ratio (goal: import >= 0.5x the listing);
4. count the SQL statements of a sync that finds nothing changed, at two sizes
   (a tenth of the models, and all of them): they must be equal.

Usage: python bench/mlflow_import.py [--models 1000] [--versions 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # mlflowserver: the loopback server of the test suite

import httpx  # noqa: E402
from mlflowserver import CONFIG_YAML, MLMODEL, start_mlflow_server  # noqa: E402
from sqlalchemy import event  # noqa: E402

from lume_services import migrations  # noqa: E402
from lume_services.mlflow.client import MlflowClient  # noqa: E402
from lume_services.mlflow.importer import Importer  # noqa: E402
from lume_services.mlflow.transport import quick_ack_transport  # noqa: E402
from lume_services.services.models.db.db import ModelDB, ModelDBConfig  # noqa: E402
from lume_services.services.models.service import ModelDBService  # noqa: E402

API = "/api/2.0/mlflow"


def create_model(http: httpx.Client, index: int, versions: int) -> str:
    """One registered model as register_to_mlflow leaves it, through MLflow's REST API."""
    name = f"bench-model-{index:05d}"
    run = http.post(f"{API}/runs/create", json={"experiment_id": "0"}).raise_for_status().json()["run"]
    root = run["info"]["artifact_uri"].removeprefix("mlflow-artifacts:/")
    files = {"MLmodel": MLMODEL, "config.yaml": CONFIG_YAML, "data/model.pt": "w" * 4096}
    for path, text in files.items():
        http.put(f"/api/2.0/mlflow-artifacts/artifacts/{root}/model/{path}", content=text).raise_for_status()
    tags = [{"key": "email", "value": "bench@slac.stanford.edu"}, {"key": "beam_path", "value": f"bp{index}"},
            {"key": "description", "value": name}, {"key": "stage", "value": "production"}]  # fmt: skip
    http.post(f"{API}/registered-models/create", json={"name": name, "tags": tags}).raise_for_status()
    source = f"{run['info']['artifact_uri']}/model"
    for _ in range(versions):
        body = {"name": name, "source": source, "run_id": run["info"]["run_id"],
                "tags": [{"key": "ready_to_deploy", "value": "true"}]}  # fmt: skip
        http.post(f"{API}/model-versions/create", json=body).raise_for_status()
    http.post(f"{API}/registered-models/alias", json={"name": name, "alias": "champion", "version": str(versions)})
    return name


def listing_rate(url: str) -> tuple[int, float]:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=url, registry_uri=url)
    started = time.perf_counter()
    found, token = 0, None
    while True:
        page = client.search_model_versions(max_results=10_000, page_token=token)
        found += len(page)
        token = page.token
        if not token:
            break
    return found, time.perf_counter() - started


def registry(path: Path) -> ModelDBService:
    db = ModelDB(ModelDBConfig(url=f"sqlite:///{path}"))
    migrations.upgrade(db)
    return ModelDBService(db, actor="bench")


def sync_statements(service: ModelDBService, client: MlflowClient, names: list[str]) -> int:
    Importer(service, client).run(names)
    seen: list[str] = []
    engine = service.model_db.engine
    listener = lambda conn, cursor, sql, *rest: seen.append(sql)  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        report = Importer(service, client, verify=False).run(names)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert all(m.action == "unchanged" for m in report.models), report.totals()
    return len([s for s in seen if not s.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK"))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-mlflow-") as tmp:
        base = Path(tmp)
        server = start_mlflow_server(base / "mlflow", workers=2)
        try:
            run(server.url, base, args.models, args.versions)
        finally:
            server.stop()


def run(url: str, base: Path, models: int, versions: int) -> None:
    started = time.perf_counter()
    with httpx.Client(base_url=url, timeout=60, transport=quick_ack_transport()) as http, ThreadPoolExecutor(4) as pool:
        names = list(pool.map(lambda i: create_model(http, i, versions), range(models)))
    print(f"created {models} registered models x {versions} versions in {time.perf_counter() - started:.1f} s")
    listed, list_seconds = listing_rate(url)
    with MlflowClient(url) as client:
        service = registry(base / "import.db")
        importer, hashing = Importer(service, client), [0.0]
        inspect = importer._inspect

        def timed_inspect(*args: object) -> object:  # how much of the import is reading artifacts
            began = time.perf_counter()
            try:
                return inspect(*args)
            finally:
                hashing[0] += time.perf_counter() - began

        importer._inspect = timed_inspect  # type: ignore[method-assign]
        started = time.perf_counter()
        report = importer.run()
        import_seconds = time.perf_counter() - started
        imported = report.totals()["versions"]
        assert not report.failed, report.failed[0].error
        started = time.perf_counter()
        Importer(service, client, verify=False).run()
        sync_seconds = time.perf_counter() - started
        small = sync_statements(registry(base / "small.db"), client, names[: max(1, models // 10)])
        large = sync_statements(service, client, names)
    list_rate, import_rate = listed / list_seconds, imported / import_seconds
    print(f"MLflow search_model_versions (paged): {listed} versions in {list_seconds:.2f} s = {list_rate:,.0f} versions/s")
    print(f"lume-services mlflow import:          {imported} versions in {import_seconds:.2f} s = {import_rate:,.0f} versions/s")
    print(f"  of which listing, streaming and hashing artifacts: {hashing[0]:.2f} s; the rest (registry listing,"
          f" one transaction per model): {import_seconds - hashing[0]:.2f} s")
    print(f"ratio import / listing: {import_rate / list_rate:.2f}x (goal >= 0.5x)")
    print(f"no-change sync of {models} models: {sync_seconds:.2f} s")
    print(f"SQL statements of a no-change sync: {small} at {max(1, models // 10)} models, {large} at {models} models"
          f" ({'constant' if small == large else 'NOT constant'})")


if __name__ == "__main__":
    main()
