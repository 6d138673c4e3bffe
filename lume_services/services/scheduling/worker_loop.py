"""The registry's worker: Prefect's process worker, woken by flow-run events instead of its poll alone.

A Prefect worker finds runs by polling its pool every
``PREFECT_WORKER_QUERY_SECONDS`` (10 s by default): a run waits 5 s on
average before it starts, and a flow of flows pays that once per step.
Polling faster costs one query per interval per worker, run or no run.
This worker runs Prefect's own ``ProcessWorker`` (same polling, heartbeats,
cancellation and job execution) and also subscribes to the server's event
stream (one websocket) for ``prefect.flow-run.Scheduled`` events of its pool:
each one makes it query the pool at once. So a submitted run starts within
the event's delivery time (milliseconds on loopback), and the API sees one
extra query per scheduled run, not one per fraction of a second. The poll
stays as the fallback (runs scheduled while the stream was down, or for a
later time); a lost stream is reconnected.

    python -m lume_services.services.scheduling.worker_loop --pool NAME [--limit N] [--no-wake]

(``lume-services worker`` runs this in a supervised process group.)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any, Optional

SCHEDULED = "prefect.flow-run.Scheduled"
READY = "Listening for scheduled flow runs of pool {pool!r}"
RECONNECT_SECONDS = 2.0  # first pause before reconnecting a lost event stream; doubled up to the max
MAX_RECONNECT_SECONDS = 60.0

log = logging.getLogger("lume_services.worker")


def concerns_pool(event: Any, pool: str) -> bool:
    """Whether a flow-run event names ``pool`` as its work pool (an event naming none counts)."""
    pools = [r.name for r in event.related if r.role == "work-pool"]
    return not pools or pool in pools


async def listen(pool: str, wake: asyncio.Event, ready: asyncio.Event) -> None:
    """Set ``wake`` for every Scheduled event of ``pool``; reconnect whenever the stream drops."""
    from prefect.events.clients import get_events_subscriber
    from prefect.events.filters import EventFilter, EventNameFilter

    only_scheduled = EventFilter(event=EventNameFilter(name=[SCHEDULED]))
    pause = RECONNECT_SECONDS
    while True:
        try:
            async with get_events_subscriber(filter=only_scheduled, reconnect_on_clean_close=True) as events:
                if not ready.is_set():
                    ready.set()
                    print(READY.format(pool=pool), flush=True)
                pause = RECONNECT_SECONDS
                wake.set()  # runs scheduled while we were not listening
                async for event in events:
                    if event.event == SCHEDULED and concerns_pool(event, pool):
                        wake.set()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # server restarting, network: the poll covers the gap
            log.warning("flow-run event stream lost (%s); reconnecting in %g s", exc, pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, MAX_RECONNECT_SECONDS)


async def submit_when_woken(worker: Any, wake: asyncio.Event) -> None:
    """Query the pool and submit its scheduled runs each time ``wake`` is set (bursts coalesce)."""
    while True:
        await wake.wait()
        while getattr(worker, "client", None) is None or not getattr(worker, "_has_successfully_synced", True):
            await asyncio.sleep(0.05)  # not started yet: it would skip the query
        wake.clear()
        try:
            await worker.get_and_submit_flow_runs()
        except Exception as exc:
            log.warning("woken query of the pool failed (%s); the next poll retries", exc)


async def serve(pool: str, *, limit: Optional[int] = None, wake: bool = True) -> None:
    """Run a process worker on ``pool`` (at most ``limit`` runs at once), woken by events unless ``wake`` is false."""
    from prefect.workers.process import ProcessWorker

    worker = ProcessWorker(work_pool_name=pool, limit=limit)
    if not wake:
        await worker.start()
        return
    woken = asyncio.Event()
    tasks = [
        asyncio.create_task(worker.start()),
        asyncio.create_task(listen(pool, woken, asyncio.Event())),
        asyncio.create_task(submit_when_woken(worker, woken)),
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()  # the worker stopped: say why
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pool", required=True)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--no-wake", dest="wake", action="store_false", help="poll only, like `prefect worker start`")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(args.pool, limit=args.limit, wake=args.wake))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
