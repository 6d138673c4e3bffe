"""Benchmark: the registry's REST API against `mlflow server`, side by side, over loopback HTTP.

Both servers run here on SQLite files with the same number of worker
processes, and are loaded with the same registry: --models models, each with
two versions, the second live (MLflow: its ``champion`` alias), built with
each system's bulk path. Clients are threads with one keep-alive HTTP
connection each (httpx), at 1 and 8 concurrent clients; the systems take
turns per operation so both see the same machine load. Printed per
operation: requests per second, p50 and p95 latency, and our rate over
MLflow's. Also the remote client's ``Model(model_id=...)`` next to the local
service's, the HTTP requests it sends, and the floor for any remote call: one
bare GET /healthz on a reused connection.

Operations (lume-services / MLflow REST):
  get a model          GET /api/v1/models/{id}            / GET registered-models/get?name=
  get its live version GET /api/v1/models/{id}/live       / GET registered-models/alias?alias=champion
  page of 100 models   GET /api/v1/live-models?limit=100  / GET registered-models/search?max_results=100
  set live             PUT /api/v1/models/{id}/live       / POST registered-models/alias

    .venv/bin/python bench/api.py                 # 1,000 models, 2 server workers each
    .venv/bin/python bench/api.py --quick         # 200 models, fewer requests
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from registry import build_mlflow, build_ours, lume_service, mlflow_store  # noqa: E402

from lume_services.mlflow.transport import quick_ack_transport  # noqa: E402

Request = Callable[[httpx.Client, int], httpx.Response]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen, log: Path, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up: {log.read_text()[-2000:]}")


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=15)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def timed(base: str, headers: dict[str, str], request: Request, total: int, clients: int) -> dict[str, float]:
    """``total`` requests over ``clients`` threads: requests per second, p50 and p95 in ms."""
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(total))
    barrier = threading.Barrier(clients + 1)
    failures: list[str] = []

    def client() -> None:
        # Acknowledging at once spares MLflow's server (Nagle on under --workers N) a delayed-ACK
        # stall per request that is the client's, not the server's; ours sets TCP_NODELAY anyway.
        with httpx.Client(base_url=base, headers=headers, timeout=60, transport=quick_ack_transport()) as http:
            request(http, 0)  # connect and warm up outside the timing
            barrier.wait()
            mine = []
            for i in counter:
                t = time.perf_counter()
                response = request(http, i)
                mine.append(time.perf_counter() - t)
                if response.status_code >= 400:
                    failures.append(f"{response.status_code} {response.text[:200]}")
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed, e.g. {failures[0]}")
    latencies.sort()
    return {"rps": len(latencies) / elapsed, "p50": statistics.median(latencies) * 1000,
            "p95": latencies[int(len(latencies) * 0.95) - 1] * 1000}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2, help="server processes of each system")
    parser.add_argument("--requests", type=int, default=400, help="requests per operation and concurrency")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.models, args.requests = 200, 150
    work = Path(tempfile.mkdtemp(prefix="lume-bench-api-"))
    print(f"{args.models} models x 2 versions; {args.workers} server workers each; {args.requests} requests "
          f"per operation; load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)  # fmt: skip

    ours_url, theirs_url = f"sqlite:///{work / 'lume.db'}", f"sqlite:///{work / 'mlflow.db'}"
    service = lume_service(ours_url)
    ids = build_ours(service, 0, args.models)
    live = {m: service.get_live_deployment(m).deployment_id for m in ids[:50]}
    others = {m: d.deployment_id for m in ids[:50] for d in service.get_deployments(model_id=m) if d.deployment_id != live[m]}
    token = service.create_token("bench", scope="write").token.get_secret_value()
    store = mlflow_store(theirs_url)
    names = build_mlflow(store, 0, args.models)
    with store.engine.begin() as conn:  # the predecessor's alias is "live"; LUME's deployers load "champion"
        from sqlalchemy import text

        conn.execute(text("UPDATE registered_model_aliases SET alias = 'champion'"))
    store.engine.dispose()
    service.model_db.dispose()

    env = {k: v for k, v in os.environ.items() if not k.startswith(("LUME_", "MLFLOW_"))}
    ours_port, theirs_port = free_port(), free_port()
    ours = start([sys.executable, "-m", "lume_services.cli", "serve", "--port", str(ours_port), "--workers",
                  str(args.workers), "--no-deliver-events"],
                 {**env, "LUME_HOME": str(work / "home"), "LUME_MODEL_DB__URL": ours_url,
                  "LUME_API__JOB_THREADS": "0", "PYTHONPATH": str(ROOT)}, work / "ours.log")  # fmt: skip
    theirs = start([str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri", theirs_url,
                    "--default-artifact-root", (work / "artifacts").as_uri(), "--host", "127.0.0.1", "--port",
                    str(theirs_port), "--workers", str(args.workers)], env, work / "mlflow.log")  # fmt: skip
    try:
        ours_base, theirs_base = f"http://127.0.0.1:{ours_port}", f"http://127.0.0.1:{theirs_port}"
        wait_ready(f"{ours_base}/readyz", ours, work / "ours.log")
        wait_ready(f"{theirs_base}/health", theirs, work / "mlflow.log")
        run(args, ours_base, theirs_base, token, ids, names, live, others)
        remote_client_latency(work, ours_url, ours_base, token, ids)
    finally:
        stop(ours)
        stop(theirs)


def run(args: Any, ours_base: str, theirs_base: str, token: str, ids: list[int], names: list[str],
        live: dict[int, int], others: dict[int, int]) -> None:  # fmt: skip
    mlflow = "/api/2.0/mlflow/registered-models"
    flip = list(live)

    def our_set_live(http: httpx.Client, i: int) -> httpx.Response:
        m = flip[i % len(flip)]
        target = others[m] if (i // len(flip)) % 2 == 0 else live[m]
        return http.put(f"/api/v1/models/{m}/live", json={"deployment_id": target})

    def their_set_live(http: httpx.Client, i: int) -> httpx.Response:
        name = names[i % len(flip)]
        return http.post(f"{mlflow}/alias", json={"name": name, "alias": "champion",
                                                  "version": "1" if (i // len(flip)) % 2 == 0 else "2"})  # fmt: skip

    operations: list[tuple[str, Request, Request]] = [
        ("get a model", lambda h, i: h.get(f"/api/v1/models/{ids[i % len(ids)]}"),
         lambda h, i: h.get(f"{mlflow}/get", params={"name": names[i % len(names)]})),
        ("get its live version", lambda h, i: h.get(f"/api/v1/models/{ids[i % len(ids)]}/live"),
         lambda h, i: h.get(f"{mlflow}/alias", params={"name": names[i % len(names)], "alias": "champion"})),
        ("page of 100 models + live", lambda h, i: h.get("/api/v1/live-models", params={"limit": 100}),
         lambda h, i: h.get(f"{mlflow}/search", params={"max_results": 100})),
        ("set live", our_set_live, their_set_live),
    ]  # fmt: skip
    auth = {"Authorization": f"Bearer {token}"}
    print(f"\n{'operation':<28}{'clients':>8}  {'ours req/s':>11} {'p50 ms':>7} {'p95 ms':>7}  "
          f"{'MLflow req/s':>12} {'p50 ms':>7} {'p95 ms':>7}  {'ratio':>6}")  # fmt: skip
    short: list[tuple[str, int, float]] = []  # (operation, clients, 10x MLflow's rate) where the goal is not met
    for name, ours_request, theirs_request in operations:
        for clients in (1, 8):
            total = args.requests if name != "page of 100 models + live" else max(40, args.requests // 4)
            ours = timed(ours_base, auth, ours_request, total, clients)
            theirs = timed(theirs_base, {}, theirs_request, total, clients)
            print(f"{name:<28}{clients:>8}  {ours['rps']:>11.1f} {ours['p50']:>7.1f} {ours['p95']:>7.1f}  "
                  f"{theirs['rps']:>12.1f} {theirs['p50']:>7.1f} {theirs['p95']:>7.1f}  "
                  f"{ours['rps'] / theirs['rps']:>5.1f}x", flush=True)  # fmt: skip
            if ours["rps"] < 10 * theirs["rps"]:
                short.append((name, clients, 10 * theirs["rps"]))
    # The most any endpoint can do here: a bare GET through the same server, client and machine
    # (no token, no database, no code of ours beyond the route).
    bare = {}
    for clients in (1, 8):
        bare[clients] = timed(ours_base, {}, lambda h, i: h.get("/healthz"), args.requests, clients)
        print(f"{'floor: bare GET /healthz':<28}{clients:>8}  {bare[clients]['rps']:>11.1f} "
              f"{bare[clients]['p50']:>7.1f} {bare[clients]['p95']:>7.1f}", flush=True)  # fmt: skip
    print("(ratio: our requests per second over MLflow's; goal >= 10x)")
    for name, clients, needed in short:
        floor = bare[clients]["rps"]
        print(f"{name} at {clients} client(s): 10x MLflow is {needed:,.0f} req/s; the bare floor here gives "
              f"{floor:,.0f} req/s ({'beyond the floor' if needed > floor else 'below the floor'})")  # fmt: skip


def remote_client_latency(work: Path, db_url: str, base: str, token: str, ids: list[int]) -> None:
    """``Model(model_id=...)`` through the server against the same call on the local service."""
    from lume_services.client.http import RegistryConnection
    from lume_services.client.registry import RemoteModelDBService
    from lume_services.client.settings import RegistrySettings
    from lume_services.models import Model

    local = lume_service(db_url)
    connection = RegistryConnection(RegistrySettings(url=base, token=token))
    remote = RemoteModelDBService(connection)
    results = {}
    for label, service in (("local service", local), ("remote client", remote)):
        Model(model_id=ids[0], model_db_service=service)
        samples = []
        for i in range(300):
            t = time.perf_counter()
            Model(model_id=ids[i % len(ids)], model_db_service=service)
            samples.append(time.perf_counter() - t)
        results[label] = statistics.median(samples) * 1000
    requests: list[str] = []  # what one remote Model(model_id=...) sends
    connection._client.event_hooks["request"].append(lambda r: requests.append(f"{r.method} {r.url.path}"))
    Model(model_id=ids[1], model_db_service=remote)
    connection._client.event_hooks["request"].clear()
    floor = []  # one bare round trip through uvicorn: no token, no database, no client code of ours
    with httpx.Client(base_url=base) as http:
        http.get("/healthz")
        for _ in range(300):
            t = time.perf_counter()
            http.get("/healthz")
            floor.append(time.perf_counter() - t)
    bare = statistics.median(floor) * 1000
    print(f"\nModel(model_id=...): local {results['local service']:.2f} ms, remote {results['remote client']:.2f} ms "
          f"({results['remote client'] / results['local service']:.1f}x; goal <= 3x) in {len(requests)} HTTP "
          f"request(s) ({', '.join(requests)})")  # fmt: skip
    print(f"floor: one bare httpx GET /healthz on a reused connection {bare:.2f} ms "
          f"({bare / results['local service']:.1f}x the local service; remote {results['remote client'] / bare:.2f}x "
          f"the floor)")  # fmt: skip


if __name__ == "__main__":
    main()
