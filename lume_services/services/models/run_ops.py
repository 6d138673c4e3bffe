"""The record of every run submitted through the registry: who ran which deployment with what, and the outcome.

A run is recorded when it is submitted (``submitted``) and finished when its
outcome is known (``completed`` with its result as JSON, ``failed`` or
``cancelled`` with the error). A result that is not JSON is kept as its
``repr`` (``{"repr": ...}``), cut to 100,000 characters.
"""

from __future__ import annotations

import json
import math
from typing import Any, Optional

from sqlalchemy import insert, select, update

from lume_services.errors import RunNotFoundError, ValidationError
from lume_services.services.models.db.schema import RUN_STATES, FlowRun
from lume_services.services.models.job_records import RunRecord
from lume_services.services.models.queries import make_page
from lume_services.services.models.records import Page
from lume_services.services.models.unit_of_work import ServiceBase
from lume_services.services.models.validation import check_page, check_value
from lume_services.services.models.writes import Change

RUNS = FlowRun.__table__
MAX_REPR = 100_000
MAX_JSON = 16 * 1024 * 1024


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_finite(v) for v in value)
    return True


def as_json(value: Any) -> Any:
    """``value`` if it is JSON (finite numbers, at most 16 MiB), else ``{"repr": ...}``."""
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        text = None
    if text is not None and len(text) <= MAX_JSON and _finite(value):
        return json.loads(text)
    return {"repr": repr(value)[:MAX_REPR]}


class RunOps(ServiceBase):
    def record_run(self, *, prefect_run_id: str, model_id: int, deployment_id: int, flow_id: str,
                   parameters: dict[str, Any]) -> RunRecord:  # fmt: skip
        """Record a run just submitted, as this service's actor."""
        for column, value in (("prefect_run_id", prefect_run_id), ("flow_id", flow_id), ("model_id", model_id),
                              ("deployment_id", deployment_id)):  # fmt: skip
            check_value(FlowRun, column, value)
        if not isinstance(parameters, dict):
            raise ValidationError("parameters", parameters, "expected a mapping of parameter names to values")

        def work(change: Change) -> RunRecord:
            row = dict(prefect_run_id=prefect_run_id, model_id=model_id, deployment_id=deployment_id,
                       flow_id=flow_id, parameters=as_json(parameters), actor=change.actor, state="submitted",
                       result=None, error=None, created=change.now, finished=None)  # fmt: skip
            run_id = change.execute(insert(RUNS), row).inserted_primary_key[0]
            return RunRecord(run_id=run_id, **row)

        return self._write("record_run", work, core=True)

    def finish_run(self, run_id: int, *, state: str, result: Any = None, error: Optional[str] = None) -> RunRecord:
        """Record a run's outcome (``state`` completed, failed or cancelled; or running)."""
        check_value(FlowRun, "run_id", run_id, as_filter=True)
        if not isinstance(state, str) or state not in RUN_STATES or state == "submitted":
            raise ValidationError("run state", state, f"expected one of {', '.join(RUN_STATES[1:])}")
        values: dict[str, Any] = {"state": state}
        if state != "running":
            values.update(result=None if state != "completed" else as_json(result),
                          error=None if error is None else str(error)[:MAX_REPR])  # fmt: skip

        def work(change: Change) -> RunRecord:
            if state != "running":
                values["finished"] = change.now
            done = change.execute(update(RUNS).where(RUNS.c.run_id == run_id).values(**values)).rowcount
            if not done:
                raise RunNotFoundError({"run_id": run_id})
            return RunRecord.model_validate(change.execute(select(RUNS).where(RUNS.c.run_id == run_id)).one())

        return self._write("finish_run", work, core=True)

    def get_run(self, run_id: int) -> RunRecord:
        check_value(FlowRun, "run_id", run_id, as_filter=True)
        row = self._read("get_run", lambda c: c.execute(select(RUNS).where(RUNS.c.run_id == run_id)).first(),
                         core=True)  # fmt: skip
        if row is None:
            raise RunNotFoundError({"run_id": run_id})
        return RunRecord.model_validate(row)

    def list_runs(self, *, model_id: Optional[int] = None, deployment_id: Optional[int] = None,
                  state: Optional[str] = None, limit: int = 100, after: Optional[int] = None) -> Page[RunRecord]:  # fmt: skip
        """Runs newest first, of a model or a deployment (``after``: the previous page's ``next_after``)."""
        limit = check_page(limit)
        stmt = select(RUNS).order_by(RUNS.c.run_id.desc()).limit(limit + 1)
        for column, value in (("model_id", model_id), ("deployment_id", deployment_id), ("state", state)):
            if value is not None:
                stmt = stmt.where(RUNS.c[column] == check_value(FlowRun, column, value, as_filter=True))
        if after is not None:
            stmt = stmt.where(RUNS.c.run_id < check_value(FlowRun, "run_id", after, as_filter=True))
        rows = self._read("list_runs", lambda c: c.execute(stmt).all(), core=True)
        return make_page([RunRecord.model_validate(r) for r in rows], limit, lambda r: r.run_id)
