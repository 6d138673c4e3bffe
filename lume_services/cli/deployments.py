"""``lume-services deployments``: released versions of models, and which is live."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

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
    """List and show deployments, and choose the live one."""


@deployments.command("list")
@click.option("--model-id", type=ID, default=None, metavar="ID", help="Only deployments of this model.")
@click.option("--live/--not-live", "is_live", default=None, help="Only the live / only the not-live ones.")
@limit_option
@after_option("deployment")
@json_option
@handle_errors
def list_deployments(
    model_id: Optional[int], is_live: Optional[bool], limit: int, after: Optional[int], as_json: bool
) -> None:
    """List deployments in id order."""
    filters = {k: v for k, v in {"model_id": model_id, "is_live": is_live}.items() if v is not None}
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
        ]
    )  # fmt: skip


def _live_of(service: ModelDBService, model_id: int) -> Optional[DeploymentRecord]:
    found = service.list_deployments(limit=1, model_id=model_id, is_live=True).items
    return found[0] if found else None


@deployments.command("set-live")
@click.argument("deployment_id", type=ID)
@json_option
@handle_errors
def set_live(deployment_id: int, as_json: bool) -> None:
    """Make a deployment its model's live one, demoting the previous one."""
    service = get_service()
    target = service.get_deployment(deployment_id=deployment_id)
    previous = _live_of(service, target.model_id)
    live = service.set_live(deployment_id)
    was_live = previous is not None and previous.deployment_id == deployment_id
    demoted = None
    if previous is not None and not was_live:
        demoted = service.get_deployment(deployment_id=previous.deployment_id)
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
