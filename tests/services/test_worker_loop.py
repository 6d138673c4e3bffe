"""Which flow-run events wake the registry's worker (the wake-up itself runs end to end in tests/models/test_runs.py)."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from lume_services.services.scheduling.worker_loop import SCHEDULED, concerns_pool


def scheduled(*related: dict) -> Any:
    from prefect.events.schemas.events import Event  # not at collection: Prefect reads its settings on import

    return Event(event=SCHEDULED, resource={"prefect.resource.id": f"prefect.flow-run.{uuid4()}"}, related=list(related))


def pool(name: str) -> dict:
    return {"prefect.resource.id": f"prefect.work-pool.{uuid4()}", "prefect.resource.role": "work-pool",
            "prefect.resource.name": name}  # fmt: skip


def test_a_run_of_this_pool_wakes_it_and_one_of_another_pool_does_not():
    queue = {"prefect.resource.id": f"prefect.work-queue.{uuid4()}", "prefect.resource.role": "work-queue",
             "prefect.resource.name": "lume-services"}  # fmt: skip
    assert concerns_pool(scheduled(pool("lume-services"), queue), "lume-services")
    assert not concerns_pool(scheduled(pool("other-pool"), queue), "lume-services")


def test_an_event_naming_no_pool_wakes_it_to_look():
    assert concerns_pool(scheduled(), "lume-services")
