"""Real delivery processes (`lume-services events deliver`) on every dialect: SIGKILL, restart, two at once.

The processes run with short timeouts and a one-second lease against a
loopback receiver (tests/receiver.py) in this test process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from factories import make_deployment, make_model
from procs import gone
from receiver import Receiver

from lume_services.events.settings import EventsSettings

DELIVER = [sys.executable, "-c", "from lume_services.cli import main; main()", "events", "deliver"]
SETTINGS = dict(ALLOW_HTTP="true", ALLOW_PRIVATE_TARGETS="127.0.0.0/8", TIMEOUT="0.3", CONNECT_TIMEOUT="0.2",
                LEASE="0.6", POLL_INTERVAL="0.05", BACKOFF_INITIAL="0.05", BACKOFF_MAX="0.2", BATCH_SIZE="2")  # fmt: skip


@pytest.fixture
def env(lume_home, model_db):
    values = {**os.environ, "LUME_HOME": str(lume_home), "LUME_ACTOR": "deliverer",
              "LUME_MODEL_DB__URL": model_db.url.render_as_string(hide_password=False)}  # fmt: skip
    return values | {f"LUME_EVENTS__{k}": v for k, v in SETTINGS.items()}


@pytest.fixture
def svc(service):
    service.events_settings = EventsSettings(allow_http=True, allow_private_targets="127.0.0.0/8")
    return service


class Deliverers:
    """Delivery processes started by a test; every one is stopped at the end."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs, self.procs = env, logs, []

    def start(self) -> subprocess.Popen:
        log = open(self.logs / f"deliver-{len(self.procs)}.log", "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(DELIVER, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append((proc, log))
        return proc

    def wait_ready(self, proc: subprocess.Popen, timeout: float = 30.0) -> None:
        path = self.logs / f"deliver-{[p for p, _ in self.procs].index(proc)}.log"
        deadline = time.monotonic() + timeout
        while "Delivering events as" not in path.read_text():
            assert proc.poll() is None, path.read_text()
            assert time.monotonic() < deadline, "the delivery process did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        for proc, _log in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, log in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


@pytest.fixture
def deliverers(env, tmp_path):
    d = Deliverers(env, tmp_path)
    yield d
    d.stop()


def wait_all_delivered(svc, expected: int, timeout: float = 30.0) -> list:
    deadline = time.monotonic() + timeout
    while True:
        items = svc.list_deliveries(limit=1000).items
        if len(items) == expected and all(d.state == "delivered" for d in items):
            return items
        assert time.monotonic() < deadline, Counter(d.state for d in items)
        time.sleep(0.05)


def workers_of(svc) -> set[str]:
    """The pids of the processes that recorded attempts (a worker is host:pid:random)."""
    items = svc.list_deliveries(limit=1000).items
    return {a.worker.split(":")[1] for d in items if d.attempts for a in svc.get_delivery(d.delivery_id).attempt_log}


def wait_both_working(svc, pids: list[int], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not {str(p) for p in pids} <= workers_of(svc):
        assert time.monotonic() < deadline, f"not both of {pids} delivered: {workers_of(svc)}"
        time.sleep(0.02)


def first_arrivals_in_order(receiver: Receiver) -> None:
    """Per model, the first receipt of each event follows event order."""
    firsts: dict[int, list[int]] = {}
    for body in receiver.bodies():
        ids = firsts.setdefault(body["model_id"], [])
        if body["id"] not in ids:
            ids.append(body["id"])
    for ids in firsts.values():
        assert ids == sorted(ids), firsts


def test_two_deliverers_one_sigkilled_mid_post_and_restarted(svc, deliverers):
    """Two processes share the work; one is killed with a POST in flight and started again.

    Every event arrives at least once, all deliveries end delivered, no
    (delivery, attempt) is ever sent twice (a killed attempt's delivery is
    claimed again after its lease, as the next attempt), and per model the
    events arrive in order.
    """
    with Receiver(mode="hang", hang_seconds=0.06) as receiver:
        svc.add_webhook(receiver.url, event_types=["deployment.created"])
        killed, other = deliverers.start(), deliverers.start()
        for proc in (killed, other):
            deliverers.wait_ready(proc)
        models = [make_model(svc) for _ in range(6)]
        for _ in range(4):
            for m in models:
                make_deployment(svc, m)
        events = {e.event_id for e in svc.list_events(types=["deployment.created"])}
        wait_both_working(svc, [killed.pid, other.pid])
        killed.send_signal(signal.SIGKILL)  # busy: most likely with a POST in flight
        assert gone([killed.pid], 5)
        deliverers.start()  # the restart
        wait_all_delivered(svc, len(events))
        assert {b["id"] for b in receiver.bodies()} == events  # every event, at least once
        sent = Counter((r.headers["x-lume-delivery-id"], r.headers["x-lume-attempt"]) for r in receiver.requests)
        assert max(sent.values()) == 1, [k for k, n in sent.items() if n > 1]
        first_arrivals_in_order(receiver)
