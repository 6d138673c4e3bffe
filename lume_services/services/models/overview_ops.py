"""Overviews for people (the web UI): the beamlines and their model counts, the live state of a page of models.

Each is one statement however much data there is.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import and_, func, select, true

from lume_services.errors import ValidationError
from lume_services.services.models.db.schema import Deployment, Flow, Model
from lume_services.services.models.live_ops import LIVE_AT, _live_at
from lume_services.services.models.records import BeamlineRecord, FlowRecord, LiveAt
from lume_services.services.models.unit_of_work import ServiceBase
from lume_services.services.models.validation import check_time, check_value, check_values

MAX_IDS = 1000  # the largest page

MODELS, DEPLOYMENTS, FLOWS = Model.__table__, Deployment.__table__, Flow.__table__
PLACE = (MODELS.c.laboratory, MODELS.c.facility, MODELS.c.beampath)


class OverviewOps(ServiceBase):
    def list_beamlines(self, *, laboratory: Optional[str] = None, facility: Optional[str] = None) -> list[BeamlineRecord]:
        """Every (laboratory, facility, beampath) with models, in that order: its models and live ones."""
        where = {k: v for k, v in (("laboratory", laboratory), ("facility", facility)) if v is not None}
        check_values(Model, where)
        stmt = (
            select(*PLACE, func.count().label("models"), func.count(DEPLOYMENTS.c.deployment_id).label("live"))
            .select_from(MODELS)
            .outerjoin(DEPLOYMENTS, and_(DEPLOYMENTS.c.model_id == MODELS.c.model_id, DEPLOYMENTS.c.is_live == true()))
            .where(*(MODELS.c[k] == v for k, v in where.items()))
            .group_by(*PLACE)
            .order_by(*PLACE)
        )
        rows = self._read("list_beamlines", lambda c: c.execute(stmt).mappings().all(), core=True)
        return [BeamlineRecord.model_validate(dict(row)) for row in rows]

    def get_flows_of(self, deployment_ids: Any) -> dict[int, FlowRecord]:
        """The flow of each of ``deployment_ids`` that has one (a deployment has at most one)."""
        ids = _ids(Deployment, "deployment_id", "deployment_ids", deployment_ids)
        if not ids:
            return {}
        stmt = select(FLOWS).where(FLOWS.c.deployment_id.in_(ids))
        rows = self._read("get_flows_of", lambda c: c.execute(stmt).mappings().all(), core=True)
        return {row["deployment_id"]: FlowRecord.model_validate(dict(row)) for row in rows}

    def get_live_of(self, model_ids: Any, *, at: Optional[datetime] = None) -> dict[int, LiveAt]:
        """For each of ``model_ids`` with a deployment live now (or at ``at``): it, since when and who set it."""
        ids = _ids(Model, "model_id", "model_ids", model_ids)
        if not ids:
            return {}
        at = check_time("at", at) if at is not None else datetime.now().astimezone()
        stmt = LIVE_AT.where(MODELS.c.model_id.in_(ids))
        rows = self._read("get_live_of", lambda c: c.execute(stmt, {"_at": at}).all(), core=True)
        return {live.model.model_id: live for live in map(_live_at, rows)}


def _ids(table: Any, column: str, field: str, values: Any) -> list[int]:
    """At most one page of ids of ``table``'s ``column``, checked, without repeats."""
    if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__iter__"):
        raise ValidationError(field, values, f"expected a list of {column}s")
    ids = sorted({check_value(table, column, i, as_filter=True) for i in values})
    if len(ids) > MAX_IDS:
        raise ValidationError(field, f"{len(ids)} ids", f"expected at most {MAX_IDS} (one page)")
    return ids
