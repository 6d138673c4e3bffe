"""``lume-services audit``, ``live`` and ``requests``: the registry's change history and approvals.

``audit`` lists the audit trail (every change, who made it, before and
after), ``live`` says which deployment of each model of a beampath was live
at a time, and ``requests`` lists, approves and rejects the requests to
change the live deployment of protected models.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Optional

import click

from lume_services.cli.deployments import describe
from lume_services.cli.output import (
    ID,
    Column,
    after_option,
    cell,
    dump,
    get_service,
    handle_errors,
    json_option,
    limit_option,
    print_json,
    print_next_page,
    print_table,
)
from lume_services.errors import DeploymentNotFoundError

if TYPE_CHECKING:
    from lume_services.services.models.records import LiveRequestRecord
    from lume_services.services.models.service import ModelDBService

CHANGE_WIDTH = 100  # the Change column of `audit`, in characters
VALUE_WIDTH = 40  # one value in it


class AwareTime(click.ParamType):
    """An ISO 8601 time with a zone (``2026-11-30T03:12Z``, ``...+01:00``), as an aware UTC datetime."""

    name = "TIME"

    def convert(self, value: Any, param: Optional[click.Parameter], ctx: Optional[click.Context]) -> Any:
        if isinstance(value, datetime):
            parsed = value
        else:
            text = str(value).strip()
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                self.fail(
                    f"{value!r} is not an ISO 8601 time; write e.g. 2026-11-30T03:12Z or "
                    "2026-11-30T03:12:00+01:00.",
                    param,
                    ctx,
                )
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            self.fail(
                f"{value!r} has no time zone; add Z for UTC or an offset, e.g. "
                f"{parsed.strftime('%Y-%m-%dT%H:%M')}Z or {parsed.strftime('%Y-%m-%dT%H:%M')}+01:00.",
                param,
                ctx,
            )
        return parsed.astimezone(UTC)


TIME = AwareTime()


# -- audit ------------------------------------------------------------------------------


def _value(value: Any) -> str:
    if value is None:
        text = "none"
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 3] + "..."


def change_summary(before: Optional[dict[str, Any]], after: Optional[dict[str, Any]]) -> str:
    """One line saying what an event changed: ``field: old -> new``, ``new: ...``, ``deleted: ...``.

    Fields only in ``after`` read ``field=value`` (details such as the version), those with no
    value are left out; the line is cut to CHANGE_WIDTH characters.
    """
    if before is None and after is None:
        return "-"
    if before is None or after is None:
        label, values = ("new", after) if before is None else ("deleted", before)
        text = f"{label}: " + ", ".join(f"{k}={_value(v)}" for k, v in (values or {}).items())
    else:
        parts = []
        for key in dict.fromkeys([*before, *after]):
            if key not in before and after[key] is None:
                continue  # a detail that is not there (no reason given...)
            old = _value(before[key]) if key in before else "-"
            new = _value(after[key]) if key in after else "-"
            parts.append(f"{key}: {old} -> {new}" if key in before else f"{key}={new}")
        text = ", ".join(parts)
    return text if len(text) <= CHANGE_WIDTH else text[: CHANGE_WIDTH - 3] + "..."


AUDIT_COLUMNS: list[Column] = [
    ("Event", lambda e: e.event_id),
    ("Time (UTC)", lambda e: e.time),
    ("Actor", lambda e: e.actor),
    ("Action", lambda e: e.action),
    ("Entity", lambda e: f"{e.entity} {e.entity_id}"),
    ("Model", lambda e: e.model_id),
    ("Change", lambda e: change_summary(e.before, e.after)),
]


@click.command("audit")
@click.option("--model-id", type=ID, default=None, metavar="ID", help="Only events of this model.")
@click.option("--actor", default=None, help="Only events of this actor (exact, as LUME_ACTOR was).")
@click.option(
    "--action",
    default=None,
    help="Only this action (e.g. deployment.live_changed), or a prefix ending in .* (deployment.*).",
)
@click.option(
    "--entity", default=None, help="Only events of this kind of row (model, deployment, live_request...)."
)
@click.option(
    "--since", type=TIME, default=None, help="Only events at or after this time (with Z or an offset)."
)
@click.option("--until", type=TIME, default=None, help="Only events before this time (with Z or an offset).")
@limit_option
@after_option("event")
@json_option
@handle_errors
def audit(
    model_id: Optional[int], actor: Optional[str], action: Optional[str], entity: Optional[str],
    since: Optional[datetime], until: Optional[datetime], limit: int, after: Optional[int], as_json: bool,
) -> None:  # fmt: skip
    """List the audit trail, oldest first: every change of the registry, who made it and what changed.

    Times are ISO 8601 with a zone, e.g. 2026-11-30T03:12Z; the table shows UTC.
    """
    filters = dict(model_id=model_id, actor=actor, action=action, entity=entity, since=since, until=until)
    page = get_service().list_audit_events(
        limit=limit, after=after, **{k: v for k, v in filters.items() if v is not None}
    )
    if as_json:
        print_json({"items": [dump(e) for e in page.items], "next_after": page.next_after})
        return
    print_table(page.items, AUDIT_COLUMNS, empty="No events match.")
    print_next_page(page.next_after, "events")


# -- live at a time ---------------------------------------------------------------------

LIVE_COLUMNS: list[Column] = [
    ("Model", lambda r: r.model.model_id),
    ("Laboratory", lambda r: r.model.laboratory),
    ("Deployment", lambda r: r.deployment.deployment_id),
    ("Version", lambda r: r.deployment.version),
    ("Live since (UTC)", lambda r: r.interval.live_from),
    ("Set by", lambda r: r.interval.set_by),
    ("Approved by", lambda r: r.interval.approved_by),
]


@click.command("live")
@click.option("--facility", required=True, help="Facility, e.g. lcls.")
@click.option("--beampath", required=True, help="Beampath, e.g. cu_hxr.")
@click.option("--laboratory", default=None, help="Only models of this laboratory.")
@click.option(
    "--at", type=TIME, default=None, help="What was live at this time (with Z or an offset); default: now."
)
@json_option
@handle_errors
def live(
    facility: str, beampath: str, laboratory: Optional[str], at: Optional[datetime], as_json: bool
) -> None:
    """Show, for each model of a beampath, the deployment live now or at a past time."""
    found = get_service().get_live_deployments(
        facility=facility, beampath=beampath, laboratory=laboratory, at=at
    )
    if as_json:
        print_json([dump(r) for r in found])
        return
    where = f"facility {facility!r}, beampath {beampath!r}"
    if laboratory is not None:
        where += f", laboratory {laboratory!r}"
    when = "now" if at is None else f"at {cell(at)} UTC"
    print_table(found, LIVE_COLUMNS, empty=f"Nothing was live on {where} {when}.")


# -- requests ---------------------------------------------------------------------------

REQUEST_COLUMNS: list[Column] = [
    ("Request", lambda r: r.request_id),
    ("Model", lambda r: r.model_id),
    ("Deployment", lambda r: r.deployment_id),
    ("Replaces", lambda r: r.expected_live),
    ("State", lambda r: r.state),
    ("Requested by", lambda r: r.requested_by),
    ("Requested (UTC)", lambda r: r.requested_at),
    ("Reason", lambda r: r.reason),
    ("Decided by", lambda r: r.decided_by),
]


@click.group()
def requests() -> None:
    """List, approve and reject requests to change the live deployment of protected models."""


@requests.command("list")
@click.option("--pending", is_flag=True, help="Only the requests still waiting for a decision.")
@click.option("--model-id", type=ID, default=None, metavar="ID", help="Only requests for this model.")
@limit_option
@after_option("request")
@json_option
@handle_errors
def list_requests(
    pending: bool, model_id: Optional[int], limit: int, after: Optional[int], as_json: bool
) -> None:
    """List live requests in id order."""
    page = get_service().list_live_requests(
        model_id=model_id, state="pending" if pending else None, limit=limit, after=after
    )
    if as_json:
        print_json({"items": [dump(r) for r in page.items], "next_after": page.next_after})
        return
    print_table(
        page.items, REQUEST_COLUMNS, empty="No pending requests." if pending else "No requests match."
    )
    print_next_page(page.next_after, "requests")


@requests.command("approve")
@click.argument("request_id", type=ID)
@click.option("--reason", default=None, help="Why it is approved (recorded with the decision).")
@json_option
@handle_errors
def approve(request_id: int, reason: Optional[str], as_json: bool) -> None:
    """Approve another person's pending request: its deployment becomes live.

    If the live deployment changed since the request was made, nothing
    changes, the request stays pending and the command exits 1.
    """
    service = get_service()
    request = service.approve_live(request_id, reason=reason)
    live_now = service.get_deployment(deployment_id=request.deployment_id)
    demoted = _deployment_or_none(service, request.expected_live)
    if as_json:
        print_json({"request": dump(request), "live": dump(live_now), "demoted": dump(demoted)})
        return
    if request.expected_live is None:
        replaced = "no other deployment of the model was live"
    elif demoted is None:  # deleted since
        replaced = f"deployment {request.expected_live} is no longer live"
    else:
        replaced = f"deployment {demoted.deployment_id} (version {demoted.version!r}) is no longer live"
    click.echo(
        f"Live request {request.request_id} is approved by {request.decided_by}: "
        f"{describe(live_now)} is now live (requested by {request.requested_by}); {replaced}."
    )


@requests.command("reject")
@click.argument("request_id", type=ID)
@click.option("--reason", required=True, help="Why it is rejected (shown to the requester).")
@json_option
@handle_errors
def reject(request_id: int, reason: str, as_json: bool) -> None:
    """Reject a pending request (its requester may withdraw it this way); nothing goes live."""
    request = get_service().reject_live(request_id, reason=reason)
    if as_json:
        print_json(dump(request))
        return
    click.echo(_rejected_message(request))


def _rejected_message(request: LiveRequestRecord) -> str:
    return (
        f"Live request {request.request_id} (deployment {request.deployment_id} of model "
        f"{request.model_id}, requested by {request.requested_by}) is rejected by {request.decided_by}; "
        "the live deployment is unchanged."
    )


def _deployment_or_none(service: ModelDBService, deployment_id: Optional[int]) -> Any:
    """The deployment, or None when there is no id or it was deleted since."""
    if deployment_id is None:
        return None
    try:
        return service.get_deployment(deployment_id=deployment_id)
    except DeploymentNotFoundError:
        return None
