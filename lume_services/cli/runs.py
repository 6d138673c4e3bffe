"""``lume-services runs``: the runs submitted through the registry (who ran what, with what, and the outcome)."""

from __future__ import annotations

import json
from typing import Optional

import click

from lume_services.cli.output import (
    ID,
    Column,
    after_option,
    dump,
    get_service,
    handle_errors,
    json_option,
    limit_option,
    print_fields,
    print_json,
    print_next_page,
    print_table,
)

STATES = ["submitted", "running", "completed", "failed", "cancelled"]


def _short(value: object, width: int = 40) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


RUN_COLUMNS: list[Column] = [
    ("Run", lambda r: r.run_id),
    ("Model", lambda r: r.model_id),
    ("Deployment", lambda r: r.deployment_id),
    ("State", lambda r: r.state),
    ("By", lambda r: r.actor),
    ("Submitted (UTC)", lambda r: r.created),
    ("Parameters", lambda r: _short(r.parameters)),
    ("Result", lambda r: _short(r.result) if r.result is not None else (r.error or "")[:40]),
]


@click.group()
def runs() -> None:
    """Runs submitted through the registry (Model.run, run_and_return, the server's /runs)."""


@runs.command("list")
@click.option("--model-id", type=ID, default=None, metavar="N", help="Only this model's runs.")
@click.option("--deployment-id", type=ID, default=None, metavar="N", help="Only this deployment's runs.")
@click.option("--state", type=click.Choice(STATES), default=None, help="Only runs in this state.")
@limit_option
@after_option("run")
@json_option
@handle_errors
def list_runs(model_id: Optional[int], deployment_id: Optional[int], state: Optional[str], limit: int,
              after: Optional[int], as_json: bool) -> None:  # fmt: skip
    """List runs, newest first."""
    page = get_service().list_runs(model_id=model_id, deployment_id=deployment_id, state=state, limit=limit,
                                   after=after)  # fmt: skip
    if as_json:
        print_json({"items": [dump(r) for r in page.items], "next_after": page.next_after})
        return
    print_table(page.items, RUN_COLUMNS, empty="No runs.")
    print_next_page(page.next_after, "run")


@runs.command("show")
@click.argument("run_id", type=ID)
@json_option
@handle_errors
def show(run_id: int, as_json: bool) -> None:
    """Show one run: its parameters, and its result or error."""
    run = get_service().get_run(run_id)
    if as_json:
        print_json(dump(run))
        return
    print_fields([("Run", run.run_id), ("Prefect flow run", run.prefect_run_id), ("Model", run.model_id),
                  ("Deployment", run.deployment_id), ("Flow", run.flow_id), ("State", run.state),
                  ("By", run.actor), ("Submitted (UTC)", run.created), ("Finished (UTC)", run.finished),
                  ("Parameters", json.dumps(run.parameters, indent=2)),
                  ("Result", json.dumps(run.result, indent=2) if run.result is not None else None),
                  ("Error", run.error)])  # fmt: skip
