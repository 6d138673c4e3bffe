"""After the adoption: what a re-store of an adopted deployment replaces."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from lume_services.services.models.db.adopt.detect import EVENTS, FLOWS, PREFECT1_TAG, SHA256_CHARS

if TYPE_CHECKING:
    from lume_services.services.models.db.db import ModelDB

# -- after the adoption: what a re-store replaces -------------------------------------------


def unverified_checksum(sha256: str) -> bool:
    """True for a stored sha256 that is not 64 lowercase hex digits (kept by the adoption)."""
    return not (len(sha256) == 64 and set(sha256) <= SHA256_CHARS)


def is_prefect1_flow(change: Any, flow_id: str) -> bool:
    """Whether ``flow_id`` is a flow the adoption found registered with Prefect 1."""
    marked = sa.select(EVENTS.c.action).where(
        EVENTS.c.action == "adopt.prefect1_flow", EVENTS.c.entity_id == flow_id
    )
    return change.execute(marked.limit(1)).first() is not None


def release_prefect1_flow(change: Any, taken: dict[int, str], deployment_id: int, *, model_id: int) -> None:
    """A re-store registers a new flow for an adopted deployment: its Prefect 1 flow is kept, unattached."""
    old = taken.get(deployment_id)
    if old is None or not is_prefect1_flow(change, old):
        return
    change.execute(FLOWS.update().where(FLOWS.c.flow_id == old).values(deployment_id=None))
    _untag(change, deployment_id)
    change.record("flow.detached", "flow", old, model_id=model_id,
                  before={"deployment_id": deployment_id}, after={"deployment_id": None})  # fmt: skip
    del taken[deployment_id]


def prefect1_flow_ids(model_db: ModelDB) -> set[str]:
    """The flows the adoption found registered with Prefect 1 (attached or not)."""
    marked = sa.select(EVENTS.c.entity_id).where(EVENTS.c.action == "adopt.prefect1_flow")
    with model_db.connection(write=False) as conn:
        return set(conn.execute(marked).scalars())



def _untag(change: Any, deployment_id: int) -> None:
    """The deployment no longer has a Prefect 1 flow: remove the adoption's tag from it."""
    from lume_services.services.models.tags import DEPLOYMENT_TAGS

    table = DEPLOYMENT_TAGS.table
    row = change.execute(sa.select(table.c.tags).where(table.c.deployment_id == deployment_id)).first()
    before = dict((row.tags if row is not None else None) or {})
    after = {k: v for k, v in before.items() if k != PREFECT1_TAG}
    if after != before:
        DEPLOYMENT_TAGS.replace(change.unit, deployment_id, before, after)
