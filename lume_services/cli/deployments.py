"""``lume-services deployments``: released versions of models, and which is live."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import click
from click.core import ParameterSource

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
from lume_services.cli.tags import describe_tags, tag_filters, tag_option

if TYPE_CHECKING:
    from lume_services.services.models.records import DeploymentRecord
    from lume_services.services.models.service import ModelDBService

DEPLOYMENT_COLUMNS: list[Column] = [
    ("ID", lambda d: d.deployment_id),
    ("Model", lambda d: d.model_id),
    ("Version", lambda d: d.version),
    ("Live", lambda d: d.is_live),
    ("Deployed (UTC)", lambda d: d.deploy_date),
    ("Package", lambda d: d.package_import_name),
    ("Image", lambda d: d.image),
]


@click.group()
def deployments() -> None:
    """List and show deployments, choose the live one (or request it) and see its history."""


@deployments.command("list")
@click.option("--model-id", type=ID, default=None, metavar="ID", help="Only deployments of this model.")
@click.option("--live/--not-live", "is_live", default=None, help="Only the live / only the not-live ones.")
@tag_option
@limit_option
@after_option("deployment")
@json_option
@handle_errors
def list_deployments(
    model_id: Optional[int], is_live: Optional[bool], tags: Any, limit: int, after: Optional[int], as_json: bool
) -> None:
    """List deployments in id order."""
    filters = {k: v for k, v in {"model_id": model_id, "is_live": is_live}.items() if v is not None}
    filters |= tag_filters(tags)
    page = get_service().list_deployments(limit=limit, after=after, **filters)
    if as_json:
        print_json({"items": [dump(d) for d in page.items], "next_after": page.next_after})
        return
    print_table(page.items, DEPLOYMENT_COLUMNS, empty="No deployments match.")
    print_next_page(page.next_after, "deployments")


def deployment_fields(d: DeploymentRecord) -> list[tuple[str, Any]]:
    return [
        ("Deployment id", d.deployment_id),
        ("Model id", d.model_id),
        ("Version", d.version),
        ("Live", d.is_live),
        ("Deployed (UTC)", d.deploy_date),
        ("Package", d.package_import_name),
        ("Source", d.source),
        ("sha256", d.sha256),
        ("Image", d.image),
        ("Asset dir", d.asset_dir),
        ("Tags", describe_tags(d.tags) or None),
    ]


@deployments.command("show")
@click.argument("deployment_id", type=ID)
@json_option
@handle_errors
def show_deployment(deployment_id: int, as_json: bool) -> None:
    """Show a deployment with its flow and project (once registered), and a flow of flows' steps."""
    service = get_service()
    model_id = service.get_deployment(deployment_id=deployment_id).model_id
    loaded = service.load_deployment(model_id=model_id, deployment_id=deployment_id)
    if as_json:
        print_json(dump(loaded))
        return
    flow, project = loaded.flow, loaded.project
    print_fields(
        [
            *deployment_fields(loaded.deployment),
            ("Flow id", flow.flow_id if flow else "(not registered)"),
            ("Flow name", flow.flow_name if flow else None),
            ("Project", project.project_name if project else None),
            *([("Steps", " -> ".join(f"{s.position}. {s.flow.flow_name}" for s in loaded.flow_of_flows))]
              if loaded.flow_of_flows else []),
            ("Variables", _variables_summary(loaded.variables)),
        ]
    )  # fmt: skip
    if loaded.variables.declared:
        from lume_services.cli.variables import variables_table

        click.echo(variables_table(loaded.variables))


def _variables_summary(variables: Any) -> str:
    if not variables.declared:
        return "(none declared)"
    return f"{len(variables.inputs)} input(s), {len(variables.outputs)} output(s) from {variables.source_file}"


def _live_of(service: ModelDBService, model_id: int) -> Optional[DeploymentRecord]:
    found = service.list_deployments(limit=1, model_id=model_id, is_live=True).items
    return found[0] if found else None


class ExpectedLive(click.ParamType):
    """A deployment id (a positive int) or the word ``none`` ("nothing is live"), which becomes None."""

    name = "ID|none"

    def convert(self, value: Any, param: Optional[click.Parameter], ctx: Optional[click.Context]) -> Any:
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        text = str(value).strip()
        if text.lower() == "none":
            return None
        try:
            return ID.convert(text, param, ctx)
        except click.BadParameter:
            self.fail(f"{value!r} is neither a deployment id (a positive integer) nor 'none'.", param, ctx)


expect_live_option = click.option(
    "--expect-live",
    type=ExpectedLive(),
    default=None,
    metavar="ID|none",
    help="Change it only if this deployment (or, with 'none', no deployment) is live now; "
    "otherwise nothing changes and the command fails.",
)


def expectation(ctx: click.Context, expect_live: Optional[int]) -> dict[str, Any]:
    """``{"expected_live": ...}`` when --expect-live was given, else {} (the service's UNSET)."""
    source = ctx.get_parameter_source("expect_live")
    given = source is not None and source is not ParameterSource.DEFAULT
    return {"expected_live": expect_live} if given else {}


def describe(d: DeploymentRecord) -> str:
    return f"deployment {d.deployment_id} (model {d.model_id}, version {d.version!r})"


@deployments.command("set-live")
@click.argument("deployment_id", type=ID)
@expect_live_option
@click.option("--reason", default=None, help="Why; recorded in the live history and audit trail.")
@json_option
@click.pass_context
@handle_errors
def set_live(
    ctx: click.Context, deployment_id: int, expect_live: Optional[int], reason: Optional[str], as_json: bool
) -> None:
    """Make a deployment its model's live one, demoting the previous one.

    With --expect-live this is a compare-and-swap: if someone else changed
    the live deployment meanwhile, nothing changes and the command exits 1.
    A protected model's live deployment changes only through an approved
    request (`deployments request-live`).
    """
    service = get_service()
    expected = expectation(ctx, expect_live)
    if expected:  # the swap succeeds only if the expected one was live
        previous_id = expected["expected_live"]
    else:  # read before the change: good enough to say what was demoted
        previous = _live_of(service, service.get_deployment(deployment_id=deployment_id).model_id)
        previous_id = previous.deployment_id if previous is not None else None
    live = service.set_live(deployment_id, reason=reason, **expected)
    was_live = previous_id == deployment_id
    demoted = None
    if previous_id is not None and not was_live:
        demoted = service.get_deployment(deployment_id=previous_id)
    if as_json:
        print_json({"live": dump(live), "demoted": dump(demoted)})
        return
    click.echo(_set_live_message(live, demoted, already=was_live))


def _set_live_message(live: DeploymentRecord, demoted: Optional[DeploymentRecord], already: bool) -> str:
    head = f"Deployment {live.deployment_id} (model {live.model_id}, version {live.version!r})"
    if already:
        return f"{head} was already live; nothing changed."
    if demoted is None:
        return f"{head} is now live; no other deployment of the model was live."
    return (
        f"{head} is now live; deployment {demoted.deployment_id} "
        f"(version {demoted.version!r}) is no longer live."
    )


@deployments.command("request-live")
@click.argument("deployment_id", type=ID)
@click.option("--reason", required=True, help="Why it should go live (shown to whoever approves it).")
@expect_live_option
@json_option
@click.pass_context
@handle_errors
def request_live(
    ctx: click.Context, deployment_id: int, reason: str, expect_live: Optional[int], as_json: bool
) -> None:
    """Ask for a deployment to become live; another person approves it with `requests approve`.

    This is how the live deployment of a protected model changes. The request
    replaces the deployment live now (checked against --expect-live if given);
    if that changes before the approval, approving it fails.
    """
    service = get_service()
    request = service.request_live(deployment_id, reason=reason, **expectation(ctx, expect_live))
    if as_json:
        print_json(dump(request))
        return
    target = service.get_deployment(deployment_id=request.deployment_id)
    if request.expected_live is None:
        replaces = "no deployment of the model is live now"
    else:
        replaced = service.get_deployment(deployment_id=request.expected_live)
        replaces = f"it replaces deployment {replaced.deployment_id} (version {replaced.version!r})"
    click.echo(
        f"Live request {request.request_id} is pending. Approving it makes {describe(target)} live; "
        f"{replaces}. Another person approves it with "
        f"`lume-services requests approve {request.request_id}`."
    )


HISTORY_COLUMNS: list[Column] = [
    ("Deployment", lambda i: i.deployment_id),
    ("Version", lambda i: i.version),
    ("Live from (UTC)", lambda i: i.live_from),
    ("Live until (UTC)", lambda i: "now" if i.live_until is None else i.live_until),
    ("Set by", lambda i: i.set_by),
    ("Approved by", lambda i: i.approved_by),
    ("Ended by", lambda i: i.ended_by),
    ("Reason", lambda i: i.reason),
]


@deployments.command("history")
@click.argument("model_id", type=ID)
@json_option
@handle_errors
def history(model_id: int, as_json: bool) -> None:
    """Show which deployment of a model was live when, and who changed it, oldest first."""
    intervals = get_service().get_live_history(model_id)
    if as_json:
        print_json([dump(i) for i in intervals])
        return
    print_table(intervals, HISTORY_COLUMNS, empty=f"No deployment of model {model_id} has been live yet.")


@deployments.command("create")
@click.argument("source")
@click.option("--model-id", type=ID, required=True, metavar="ID", help="The model this is a release of.")
@click.option("--project", "project_name", required=True, help="The project (see `projects list`).")
@click.option("--image", default=None, help="Container image that runs the flow (default: from the package).")
@click.option(
    "--sha256", "expected_sha256", default=None, help="Refuse the artifact unless it has this sha256."
)
@click.option(
    "--live/--not-live", "is_live", default=True, show_default=True, help="Make it the live deployment."
)
@json_option
@handle_errors
def create(
    source: str, model_id: int, project_name: str, image: Optional[str], expected_sha256: Optional[str],
    is_live: bool, as_json: bool,
) -> None:  # fmt: skip
    """Register SOURCE (https/file URL, .tar.gz/.whl path or project directory) as a deployment.

    The package is fetched, inspected without running it, installed into its
    own environment, its flow loaded there and registered with Prefect; the
    deployment and flow rows are written only if every step succeeds.
    """
    from lume_services.models import Model

    get_service()  # configures; errors here are configuration errors
    model = Model(model_id=model_id)
    record = model.store_deployment(
        source, project_name=project_name, is_live=is_live, image=image,
        expected_sha256=expected_sha256, progress=_Progress(),
    )  # fmt: skip
    if as_json:
        print_json({"deployment": dump(record), "flow": dump(model.deployment.flow)})
        return
    flow = model.deployment.flow
    click.echo(
        f"Deployment {record.deployment_id}: model {record.model_id} version {record.version!r} "
        f"(sha256 {record.sha256[:12]}...), flow {flow.flow_name!r} registered as {flow.flow_id}"
        f"{' and live' if record.is_live else ''}."
    )


class _Progress:
    """Step lines on stderr, and download progress when stderr is a terminal."""

    def __init__(self) -> None:
        self.tty = click.get_text_stream("stderr").isatty()
        self.last = ""

    def __call__(self, step: str, done: Optional[int], total: Optional[int]) -> None:
        if done is None:
            if self.tty and self.last == "fetch-bytes":
                click.echo(err=True)
            click.echo(f"-> {step}", err=True)
            self.last = step
        elif self.tty:
            size = f"{done / 1e6:.1f} MB" + (f" of {total / 1e6:.1f} MB" if total else "")
            click.echo(f"\r   downloaded {size}", err=True, nl=False)
            self.last = "fetch-bytes"
