"""Benchmark: Model.run_and_return latency against calling the flow directly.

Prints, measured side by side in one run against one local `prefect server
start` (loopback):
  * the median time of Model.run_and_return for the sample deployment on a
    warm system (inline executor: the run executes in the deployment's own
    environment), the median time of calling the same flow directly with
    that environment's python (`python -c "from my_model.flow import flow;
    flow(...)"`, the floor), and their ratio (goal: at most 1.5x);
  * the same for a two-step flow of flows against running the two flows
    back to back directly.

    .venv/bin/python bench/run_latency.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the throwaway Prefect server used by the tests

INPUTS = {"input1": 1.0, "input2": 2.0}
DIRECT = "from my_model.flow import flow; flow(input1=1.0, input2=2.0)"


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lume-bench-run-"))
    from prefect_server import start_prefect_server

    server = start_prefect_server(work / "prefect-server")
    try:
        rows = measure(work, server.url, args.repeat)
    finally:
        server.stop()
    print(f"\n{'measurement':44} {'ours (s)':>9} {'direct (s)':>11} {'ratio':>6}")
    for label, ours, floor in rows:
        print(f"{label:44} {ours:9.2f} {floor:11.2f} {ours / floor:6.2f}")
    print()
    for label, ours, floor in rows:
        print(f"ratio {label}: {ours / floor:.2f}x (goal <= 1.5x)")


def measure(work: Path, api_url: str, repeat: int) -> list[tuple[str, float, float]]:
    os.environ.update(
        LUME_HOME=str(work / "home"), LUME_PREFECT__API_URL=api_url, LUME_PREFECT__EXECUTOR="inline",
        PREFECT_HOME=str(work / "prefect-client"),
    )  # fmt: skip
    from lume_services import config
    from lume_services.flows.compose import compose, run_flow_of_flows
    from lume_services.models import Model

    ctx = config.configure()
    model = Model.create_model(
        author="bench", laboratory="slac", facility="lcls", beampath="b", description="run"
    )
    ctx.model_db_service().store_project(project_name="test", description="bench")
    record = model.store_deployment(str(ROOT / "examples" / "my-model"), project_name="test")
    python = ctx.environment_manager().get(record.sha256).python
    env = {**os.environ, "PREFECT_API_URL": api_url}
    direct = lambda: subprocess.run([str(python), "-c", DIRECT], env=env, check=True, capture_output=True)  # noqa: E731
    ours = lambda: model.run_and_return(INPUTS, timeout=600)  # noqa: E731
    parent = compose(ROOT / "examples" / "two-step.yaml")
    composite = lambda: run_flow_of_flows(parent, {"my-model": INPUTS}, timeout=900)  # noqa: E731
    for warm in (ours, direct, composite):
        warm()
    single = [(timed(ours), timed(direct)) for _ in range(repeat)]
    double = [(timed(composite), timed(direct) + timed(direct)) for _ in range(max(3, repeat // 2))]
    med = lambda pairs, i: statistics.median(p[i] for p in pairs)  # noqa: E731
    return [
        ("Model.run_and_return vs direct flow call", med(single, 0), med(single, 1)),
        ("two-step flow of flows vs two direct calls", med(double, 0), med(double, 1)),
    ]


if __name__ == "__main__":
    main()
