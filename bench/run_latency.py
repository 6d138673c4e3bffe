"""Benchmark: Model.run_and_return latency against calling the flow directly.

Prints, measured side by side in one run against one local `prefect server
start` (loopback):
  * the median time of Model.run_and_return for the sample deployment on a
    warm system (inline executor: the run executes in the deployment's own
    environment), the median time of calling the same flow directly with
    that environment's python (`python -c "from my_model.flow import flow;
    flow(...)"`, the floor), and their ratio (goal: at most 1.5x);
  * the same for a two-step flow of flows against running the two flows
    back to back directly;
  * the same two through a real `lume-services worker` process (executor
    `worker`: the registry only creates the run), woken by the server's
    flow-run events, against the inline executor (goal: at most 1.1x), and,
    with --poll, a worker that only polls at Prefect's default interval.

Inline and worker samples are taken in alternating blocks (a worker must not
run while the inline executor claims runs of its pool).

    .venv/bin/python bench/run_latency.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
    parser.add_argument("--poll", action="store_true", help="also time a worker that only polls (slow)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lume-bench-run-"))
    from prefect_server import start_prefect_server

    server = start_prefect_server(work / "prefect-server")
    try:
        rows = measure(work, server.url, args.repeat, args.poll)
    finally:
        server.stop()
    print(f"\n{'measurement':58} {'ours (s)':>9} {'floor (s)':>10} {'ratio':>6}  goal")
    for label, ours, floor, goal in rows:
        print(f"{label:58} {ours:9.2f} {floor:10.2f} {ours / floor:6.2f}  {goal}")
    print()
    for label, ours, floor, goal in rows:
        print(f"ratio {label}: {ours / floor:.2f}x ({goal})")


@contextmanager
def worker_process(wake: bool = True) -> Iterator[None]:
    """A real `lume-services worker` serving the pool until the block ends (stopped with SIGTERM)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    cmd = [str(Path(sys.executable).parent / "lume-services"), "worker"] + ([] if wake else ["--no-wake"])
    worker = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              start_new_session=True, text=True)  # fmt: skip
    try:
        ready = "Listening for scheduled" if wake else "started!"
        for line in worker.stdout:  # type: ignore[union-attr]
            if ready in line:
                break
        else:
            raise RuntimeError(f"the worker exited with code {worker.wait()}")
        threading.Thread(target=worker.stdout.read, daemon=True).start()  # type: ignore[union-attr]
        time.sleep(1.0)  # its first poll and its sync with the server are done
        yield
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)


def use_executor(name: str) -> None:
    from lume_services import config

    os.environ["LUME_PREFECT__EXECUTOR"] = name
    config.configure()


def measure(work: Path, api_url: str, repeat: int, poll: bool) -> list[tuple[str, float, float, str]]:
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
    # The same composition stored for a worker (its steps then also run on the worker, not in the parent).
    use_executor("worker")
    spec = (ROOT / "examples" / "two-step.yaml").read_text().replace("name: two-step", "name: two-step-worker")
    (work / "two-step-worker.yaml").write_text(spec)
    by_worker = compose(work / "two-step-worker.yaml")
    composite_w = lambda: run_flow_of_flows(by_worker, {"my-model": INPUTS}, timeout=900)  # noqa: E731
    samples: dict[str, list[float]] = {k: [] for k in ("single", "direct", "double", "direct2", "w1", "w2", "p1", "p2")}
    n1, n2 = max(2, repeat // 2), max(2, repeat // 3)

    def block(single: str, double: str) -> None:
        for _ in range(n1):
            samples[single].append(timed(ours))
            if single == "single":
                samples["direct"].append(timed(direct))
        for _ in range(n2):
            samples[double].append(timed(composite if double == "double" else composite_w))
            if double == "double":
                samples["direct2"].append(timed(direct) + timed(direct))

    for _ in range(2):  # alternate blocks, so that both executors see the same load
        use_executor("inline")
        block("single", "double")
        use_executor("worker")
        with worker_process():
            ours()  # warm the worker's first submission
            composite_w()
            block("w1", "w2")
    if poll:
        with worker_process(wake=False):
            block("p1", "p2")
    use_executor("inline")
    med = {k: statistics.median(v) for k, v in samples.items() if v}
    rows = [
        ("Model.run_and_return (inline) vs direct flow call", med["single"], med["direct"], "goal <= 1.5x"),
        ("two-step flow of flows (inline) vs two direct calls", med["double"], med["direct2"], "goal <= 1.5x"),
        ("Model.run_and_return, worker woken by events vs inline", med["w1"], med["single"], "goal <= 1.1x"),
        ("two-step flow of flows, worker woken by events vs inline", med["w2"], med["double"], "goal <= 1.1x"),
    ]
    if poll:
        rows += [
            ("Model.run_and_return, polling worker (10 s) vs inline", med["p1"], med["single"], "no goal"),
            ("two-step flow of flows, polling worker (10 s) vs inline", med["p2"], med["double"], "no goal"),
        ]
    return rows


if __name__ == "__main__":
    main()
