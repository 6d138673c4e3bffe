"""``lume-services mlflow``: import, sync and push-live against an MLflow tracking server."""

from __future__ import annotations

import time
from typing import Any, Optional

import click

from lume_services.cli.output import get_service, handle_errors, json_option, print_json, render_table

uri_option = click.option(
    "--tracking-uri", required=True, envvar="MLFLOW_TRACKING_URI", metavar="URL",
    help="The MLflow tracking server (default: $MLFLOW_TRACKING_URI). Credentials: MLFLOW_TRACKING_USERNAME "
         "and MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN.",
)  # fmt: skip
mapping_option = click.option(
    "--mapping", type=click.Path(dir_okay=False), default=None,
    help="A YAML mapping file: which MLflow tags feed author, laboratory, facility, beampath, description, "
         "and the alias (default: SLAC's conventions).",
)  # fmt: skip


@click.group("mlflow")
def mlflow() -> None:
    """Mirror an MLflow model registry: registered models become models, versions deployments."""


def _importer(tracking_uri: str, mapping: Optional[str], verify: bool) -> Any:
    from lume_services.mlflow.client import MlflowClient
    from lume_services.mlflow.importer import Importer
    from lume_services.mlflow.mapping import load_mapping

    chosen = load_mapping(mapping)
    return Importer(get_service(), MlflowClient(tracking_uri), chosen, verify=verify)


def _print_report(report: Any, as_json: bool) -> None:
    if as_json:
        print_json(report.as_dict())
        return
    rows = [
        [m.name, str(m.model_id or "-"), m.action, ",".join(m.new_versions) or "-", m.live or "-",
         ",".join(m.deleted) or "-", str(len(m.conflicts))]
        for m in report.models
    ]  # fmt: skip
    if rows:
        click.echo(render_table(["MLFLOW MODEL", "MODEL", "ACTION", "NEW VERSIONS", "LIVE", "DELETED", "CONFLICTS"], rows))
    totals = report.totals()
    click.echo(", ".join(f"{k}: {v}" for k, v in totals.items()) or "No registered models.")
    for m in report.models:
        for conflict in m.conflicts:
            click.echo(f"Conflict in {m.name!r} {conflict}", err=True)
        if m.error:
            click.echo(f"Error: {m.error}", err=True)


def _finish(report: Any) -> None:
    if report.failed:
        raise click.exceptions.Exit(1)


model_option = click.option("--model", "names", multiple=True, metavar="NAME",
                            help="Only this registered model (repeatable).")


@mlflow.command("import")
@uri_option
@mapping_option
@model_option
@click.option("--dry-run", is_flag=True, help="Read everything and say what would be written; write nothing.")
@json_option
@handle_errors
def import_command(tracking_uri: str, mapping: Optional[str], names: tuple[str, ...], dry_run: bool,
                   as_json: bool) -> None:  # fmt: skip
    """Import registered models and versions; re-running imports only what changed.

    Each model is written in one transaction: a model that fails is reported
    (exit code 1) and nothing of it is written. Artifacts of every version
    are hashed, so a changed artifact is reported as a conflict.
    """
    report = _importer(tracking_uri, mapping, True).run(list(names) or None, dry_run=dry_run)
    _print_report(report, as_json)
    _finish(report)


@mlflow.command("sync")
@uri_option
@mapping_option
@model_option
@click.option("--interval", type=click.FloatRange(min=1), default=None, metavar="SECONDS",
              help="Keep following: sync again every SECONDS (stop with Ctrl-C).")
@click.option("--verify-artifacts", is_flag=True, help="Also re-hash the artifacts of versions already imported.")
@json_option
@handle_errors
def sync_command(tracking_uri: str, mapping: Optional[str], names: tuple[str, ...], interval: Optional[float],
                 verify_artifacts: bool, as_json: bool) -> None:  # fmt: skip
    """Bring in new versions, tag changes, alias moves (live history, actor 'mlflow') and deletions."""
    from lume_services.errors import MlflowError

    importer = _importer(tracking_uri, mapping, verify_artifacts)
    while True:
        try:
            report = importer.run(list(names) or None)
        except MlflowError as exc:
            if interval is None:
                raise
            click.echo(f"Error: {exc} Trying again in {interval:g} s.", err=True)  # a follower keeps following
        else:
            _print_report(report, as_json)
            if interval is None:
                _finish(report)
                return
        time.sleep(interval)


@mlflow.command("push-live")
@uri_option
@click.option("--alias", default="champion", show_default=True, help="The MLflow alias that follows the live deployment.")
@click.option("--interval", type=click.FloatRange(min=1), default=None, metavar="SECONDS",
              help="Keep pushing: look again every SECONDS (stop with Ctrl-C).")
@json_option
@handle_errors
def push_live_command(tracking_uri: str, alias: str, interval: Optional[float], as_json: bool) -> None:
    """Set the MLflow alias of each mirrored model whose live deployment changed here."""
    from lume_services.mlflow.client import MlflowClient
    from lume_services.mlflow.push import push_live

    service, client = get_service(), MlflowClient(tracking_uri)
    while True:
        report = push_live(service, client, alias=alias)
        if as_json:
            print_json(report.as_dict())
        else:
            rows = [[m.name, str(m.model_id), m.action, m.version or "-", m.detail or ""] for m in report.models]
            click.echo(render_table(["MLFLOW MODEL", "MODEL", "ACTION", "VERSION", "DETAIL"], rows) if rows
                       else "Nothing to push: every alias is where the live deployment is.")  # fmt: skip
        if interval is None:
            if any(m.action in ("failed", "conflict") for m in report.models):
                raise click.exceptions.Exit(1)
            return
        time.sleep(interval)
