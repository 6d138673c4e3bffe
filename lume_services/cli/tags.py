"""Tags on the command line: ``--tag k=v`` filters, and ``models tag`` / ``deployments tag``."""

from __future__ import annotations

from typing import Any, Optional

import click

from lume_services.cli.output import ID, dump, get_service, handle_errors, json_option, print_json


class TagPair(click.ParamType):
    """``key=value`` (the value may be empty and may contain '=')."""

    name = "KEY=VALUE"

    def convert(self, value: Any, param: Optional[click.Parameter], ctx: Optional[click.Context]) -> Any:
        if isinstance(value, tuple):
            return value
        key, sep, text = str(value).partition("=")
        if not sep or not key:
            self.fail(f"{value!r} is not KEY=VALUE (e.g. stage=production)", param, ctx)
        return key, text


TAG = TagPair()
tag_option = click.option(
    "--tag", "tags", type=TAG, multiple=True,
    help="Only those with this tag (KEY=VALUE, exact); several: all of them.",
)  # fmt: skip


def tag_filters(tags: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """The read filter for ``--tag`` options ({} when none)."""
    return {"tags": dict(tags)} if tags else {}


def describe_tags(tags: dict[str, str], width: int = 60) -> str:
    """``k=v, ...`` for people; long values shortened (``--json`` has them whole)."""
    return ", ".join(f"{k}={v if len(v) <= width else v[: width - 3] + '...'}" for k, v in sorted(tags.items()))


def _tag_command(entity: str) -> click.Command:
    noun = "MODEL_ID" if entity == "model" else "DEPLOYMENT_ID"

    @click.command("tag", help=f"Set tags (KEY=VALUE ...) of {noun}, or --remove KEY; print its tags.\n\n"
                               "Every change is recorded in the audit trail.")  # fmt: skip
    @click.argument("entity_id", metavar=noun, type=ID)
    @click.argument("pairs", nargs=-1, type=TAG)
    @click.option("--remove", multiple=True, metavar="KEY", help="Remove this tag (repeatable).")
    @json_option
    @handle_errors
    def command(entity_id: int, pairs: tuple[tuple[str, str], ...], remove: tuple[str, ...], as_json: bool) -> None:
        if not pairs and not remove:
            raise click.UsageError("give KEY=VALUE pairs to set, or --remove KEY.")
        service = get_service()
        record = None
        if remove:
            remover = service.remove_model_tags if entity == "model" else service.remove_deployment_tags
            record = remover(entity_id, list(remove))
        if pairs:
            setter = service.set_model_tags if entity == "model" else service.set_deployment_tags
            record = setter(entity_id, dict(pairs))
        if as_json:
            print_json(dump(record))
            return
        click.echo(f"{entity.capitalize()} {entity_id} tags: {describe_tags(record.tags) or '(none)'}")

    return command


model_tag_command = _tag_command("model")
deployment_tag_command = _tag_command("deployment")
