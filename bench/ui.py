"""Benchmark: the web UI's pages against the JSON API calls that return the same data, on one server.

One `lume-services serve` (SQLite, --workers 1) holds --models models (two
deployments each, the second live) spread over 20 facilities x 40 beampaths,
and one more model with --deployments deployments. A browser-like client
(httpx, keep-alive, signed in through the sign-in form) and an API client
(the same token as Bearer) take turns. Printed per page: the page's
requests per second and p50, the JSON calls' (all of them, one after the
other, as a client would make them), and the page's time over theirs
(goal: at most 2x).

  beamlines  GET /                         / GET /api/v1/beamlines
  beampath   GET /beamline?...             / GET /api/v1/live-models?...&limit=50 (the same 50 models with their
                                             live deployment; the page also shows since when and by whom)
  model      GET /models/{id} (5,000 deps) / model, deployments?limit=50, live, live/history,
                                             live-requests?state=pending, audit-events?limit=100, runs?limit=20

    .venv/bin/python bench/ui.py            # 10,000 models, a model with 5,000 deployments
    .venv/bin/python bench/ui.py --models 100000 --requests 40
    .venv/bin/python bench/ui.py --quick    # 2,000 models, 5,000 deployments, fewer requests
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from api import free_port, start, stop, wait_ready  # noqa: E402
from registry import build_ours, deployment_fields, lume_service  # noqa: E402


def signed_in(client: httpx.Client, token: str) -> httpx.Client:
    form = client.get("/sign-in")
    check = re.search(r'name="check" value="([^"]+)"', form.text).group(1)
    answer = client.post("/sign-in", data={"token": token, "check": check, "next": "/"})
    if "lume_session" not in client.cookies or answer.status_code >= 400:
        raise RuntimeError(f"signing in failed: {answer.status_code}")
    return client


def per_request(client: httpx.Client, paths: list[str], n: int) -> list[float]:
    """Seconds for each of ``n`` rounds of GETting every path in ``paths``, one after the other."""
    for path in paths:  # warm
        client.get(path).raise_for_status()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        for path in paths:
            answer = client.get(path)
            if answer.status_code != 200:
                raise RuntimeError(f"{path}: {answer.status_code} {answer.text[:200]}")
        times.append(time.perf_counter() - t)
    return sorted(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--deployments", type=int, default=5_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.models, args.requests = 2_000, 60
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        url = f"sqlite:///{work / 'registry.db'}"
        service = lume_service(url)
        t = time.perf_counter()
        ids = build_ours(service, 0, args.models)
        big = service.store_model(author="bench", laboratory="slac", facility="facility 0", beampath="beampath 0",
                                  description="a model with many deployments")  # fmt: skip
        deployments = service.store_deployments(deployment_fields(big, f"2.{i}.0") for i in range(args.deployments))
        service.set_live(deployments[-1], reason="bench")
        token = service.create_token("bench", scope="read").token.get_secret_value()
        print(f"registry: {len(ids) + 1} models, one with {args.deployments} deployments "
              f"(built in {time.perf_counter() - t:.1f} s)")  # fmt: skip
        beampath = service.get_model(model_id=big)
        place = f"laboratory=slac&facility={beampath.facility}&beampath={beampath.beampath}".replace(" ", "+")

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {"PATH": "/usr/bin:/bin", "LUME_HOME": str(work / "home"), "LUME_MODEL_DB__URL": url}
        cmd = [sys.executable, "-m", "lume_services.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1", "--no-deliver-events"]  # fmt: skip
        process = start(cmd, env, work / "serve.log")
        try:
            wait_ready(base, process, work / "serve.log")
            pages: dict[str, tuple[list[str], list[str]]] = {
                "beamlines": (["/"], ["/api/v1/beamlines"]),
                "beampath": ([f"/beamline?{place}"], [f"/api/v1/live-models?{place}&limit=50"]),
                f"model with {args.deployments} deployments": (
                    [f"/models/{big}"],
                    [f"/api/v1/models/{big}", f"/api/v1/deployments?model_id={big}&limit=50", f"/api/v1/models/{big}/live",
                     f"/api/v1/models/{big}/live/history", f"/api/v1/live-requests?model_id={big}&state=pending",
                     f"/api/v1/audit-events?model_id={big}&limit=100", f"/api/v1/runs?model_id={big}&limit=20"]),
            }  # fmt: skip
            print(f"{'page':<32} {'page p50 ms':>12} {'JSON p50 ms':>12} {'calls':>6} {'page/JSON':>10} (goal <= 2x)")
            with httpx.Client(base_url=base, timeout=60) as browser, httpx.Client(
                base_url=base, timeout=60, headers={"Authorization": f"Bearer {token}"}) as api:  # fmt: skip
                signed_in(browser, token)
                for name, (page, calls) in pages.items():
                    page_times: list[float] = []
                    json_times: list[float] = []
                    for _ in range(4):  # turns, so both see the same machine load
                        page_times += per_request(browser, page, args.requests // 4)
                        json_times += per_request(api, calls, args.requests // 4)
                    p, j = (sorted(x)[len(x) // 2] * 1000 for x in (page_times, json_times))
                    print(f"{name:<32} {p:>12.2f} {j:>12.2f} {len(calls):>6} {p / j:>9.2f}x")
        finally:
            stop(process)


if __name__ == "__main__":
    main()
