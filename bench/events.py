"""Benchmark: webhook delivery against bare POSTs with the same HTTP client, measured side by side.

Prints, in one run against an embedded SQLite registry (or --url) and a
loopback receiver in its own process that answers 204 at once:
  * events delivered per second by one Deliverer (the loop of
    `lume-services events deliver`: derive, claim, POST, record), next to
    the rate of bare POSTs of the same bodies with the same httpx client,
    and their ratio (goal: at least 0.5x);
  * the median time from the commit of a live change to its delivery
    (recorded as delivered), with a Deliverer polling every 50 ms in a
    thread, next to the median bare POST round trip;
  * the time one Deliverer takes to catch up 10,000 events queued while it
    was down (an outage), and the rate that makes.

The queued events are written through the one write path (Change.record
and flush, 1000 per transaction) as model.updated events of 100 models.

    .venv/bin/python bench/events.py [--events N] [--url URL]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECEIVER = (
    "import sys, time; sys.path.insert(0, sys.argv[1]); from receiver import Receiver; "
    "r = Receiver(); print(r.port, flush=True); time.sleep(10**6)"
)


def start_receiver() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-c", RECEIVER, str(ROOT / "tests")], stdout=subprocess.PIPE, text=True)
    port = int(proc.stdout.readline())
    return proc, f"http://127.0.0.1:{port}/hook"


def queue_events(svc, n: int) -> None:
    for start in range(0, n, 1000):

        def work(change, start=start, count=min(1000, n - start)):
            for i in range(count):
                m = 1 + (start + i) % 100
                change.record("model.updated", "model", m, model_id=m, before={"description": "a"},
                              after={"description": f"b{start + i}"})  # fmt: skip

        svc._write("bench events", work, core=True)


def delivered(svc) -> int:
    from sqlalchemy import func, select

    from lume_services.services.models.db.schema import WebhookDelivery

    t = WebhookDelivery.__table__
    with svc.model_db.connection(write=False) as c:
        return c.execute(select(func.count()).select_from(t).where(t.c.state == "delivered")).scalar_one()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2000, help="events for the rate measurement")
    parser.add_argument("--backlog", type=int, default=10_000, help="events queued during the outage")
    parser.add_argument("--url", default=None, help="a SQLAlchemy URL of an empty, migrated registry")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from lume_services.events.deliver import Deliverer
    from lume_services.events.settings import EventsSettings
    from lume_services.services.models.db.db import ModelDB, ModelDBConfig
    from lume_services.services.models.service import ModelDBService

    work = Path(tempfile.mkdtemp(prefix="lume-bench-events-"))
    url = args.url or f"sqlite:///{work / 'registry.db'}"
    svc = ModelDBService(ModelDB(ModelDBConfig(url=url, auto_migrate=True)), actor="bench")
    svc.events_settings = EventsSettings(allow_http=True, allow_private_targets="127.0.0.0/8", poll_interval=0.05)
    receiver, target = start_receiver()
    try:
        svc.add_webhook(target, event_types=["model.updated", "deployment.live_changed"])
        rows = []

        # 1. delivery rate against the bare POST rate
        queue_events(svc, args.events)
        with Deliverer(svc) as deliverer:
            svc.derive_deliveries(batch_size=args.events)
            bodies = [c.body for c in svc.claim_deliveries(worker="peek", limit=50)]
            with svc.model_db.connection() as c:  # give the peeked claims back
                from sqlalchemy import update

                from lume_services.services.models.db.schema import WebhookDelivery as D

                c.execute(update(D.__table__).values(claimed_until=None, claimed_by=None, attempts=0))
            t0 = time.perf_counter()
            deliverer.run(once=True)
            ours = args.events / (time.perf_counter() - t0)
            assert delivered(svc) >= args.events
            client, n, trips = deliverer.client, args.events, []
            headers = {"X-Lume-Signature": "sha256=" + "0" * 64}
            t0 = time.perf_counter()
            for i in range(n):
                s = time.perf_counter()
                client.post(target, content=bodies[i % len(bodies)].encode(), headers=headers)
                trips.append(time.perf_counter() - s)
            bare = n / (time.perf_counter() - t0)
        rows.append(("deliveries per second (1 process)", ours, bare, ours / bare, "goal >= 0.5x"))

        # 2. commit of a live change -> delivered
        from factories import make_deployment, make_model  # the tests' factories

        model_id = make_model(svc)
        deployments = [make_deployment(svc, model_id) for _ in range(21)]
        latencies = []
        with Deliverer(svc) as deliverer:
            thread = threading.Thread(target=deliverer.run, daemon=True)
            thread.start()
            for d in deployments:
                svc.set_live(d)
                committed = time.time()
                event = svc.list_events(types=["deployment.live_changed"], after=svc.list_events(
                    limit=1000).next_after - 5).items[-1]  # fmt: skip
                while True:
                    found = svc.list_deliveries(event_id=event.event_id).items
                    if found and found[0].state == "delivered":
                        break
                    time.sleep(0.001)
                latencies.append(found[0].finished.timestamp() - committed)
            deliverer.stopping.set()
            thread.join()
        ours, bare_trip = statistics.median(latencies), statistics.median(trips)
        rows.append(("median commit -> delivered (s, 50 ms poll)", ours, bare_trip, ours / bare_trip, ""))

        # 3. catch up a backlog after an outage
        queue_events(svc, args.backlog)
        before = delivered(svc)
        with Deliverer(svc) as deliverer:
            t0 = time.perf_counter()
            deliverer.run(once=True)
            catch_up = time.perf_counter() - t0
        assert delivered(svc) - before == args.backlog
        rows.append((f"catch up {args.backlog} queued events (s)", catch_up, args.backlog / bare, catch_up / (
            args.backlog / bare), "vs bare POSTs of as many"))  # fmt: skip
    finally:
        receiver.kill()
        receiver.wait()
    print(f"\n{'measurement':44} {'ours':>10} {'bare':>10} {'ratio':>7}")
    for label, ours, bare, ratio, note in rows:
        print(f"{label:44} {ours:10.4f} {bare:10.4f} {ratio:7.2f}  {note}")
    print(f"\nratio delivery rate / bare POST rate: {rows[0][3]:.2f}x (goal >= 0.5x)")
    print(f"catch-up rate: {args.backlog / rows[2][1]:.0f} events/s")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "tests"))
    main()
