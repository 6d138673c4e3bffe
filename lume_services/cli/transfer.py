"""``lume-services export`` and ``lume-services import``: the registry as JSON lines.

One JSON object per line: a header, then projects, models, deployments,
flows and flows of flows, each with its ids and timestamps, so that an
export imported into an empty registry reproduces it exactly. Progress goes
to standard error; the data and the summary to standard output.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import IO, Any, Optional

import click

from lume_services.cli.output import (
    _mask_password,
    get_service,
    handle_errors,
    json_option,
    print_json,
    render_table,
)
from lume_services.errors import LUMEServicesError, ValidationError

MAX_BATCH = 5000  # bulk.MAX_BATCH, repeated so that --help needs no SQLAlchemy
KINDS = ("header", "project", "model", "deployment", "deployment_variables", "flow", "flow_of_flows")

batch_option = click.option(
    "--batch-size",
    type=click.IntRange(1, MAX_BATCH),
    default=1000,
    show_default=True,
    metavar="N",
    help="Records per transaction (import) or per query (export).",
)


class _Progress:
    """A progress bar on standard error, or nothing when the total is unknown."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar
        self.done = 0

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)


@contextmanager
def progress(total: Optional[int], label: str) -> Iterator[_Progress]:
    if total is None:
        yield _Progress(None)
        return
    with click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True) as bar:
        yield _Progress(bar)


# -- export ---------------------------------------------------------------------


@contextmanager
def _output(file: Optional[str]) -> Iterator[IO[str]]:
    """Standard output, or FILE written under a temporary name and renamed when complete."""
    if file is None or file == "-":
        yield sys.stdout
        return
    target = Path(file)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or Path("."))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            yield out
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise


@click.command("export")
@click.argument("file", required=False, type=click.Path(dir_okay=False, writable=True, allow_dash=True))
@batch_option
@handle_errors
def export_registry(file: Optional[str], batch_size: int) -> None:
    """Write the whole registry as JSON lines to FILE (standard output without FILE).

    The registry is read in one consistent snapshot. FILE appears only when
    the export is complete. `lume-services import FILE` reads it back.
    """
    started = time.monotonic()
    records = get_service().export_records(batch_size=batch_size)
    header = next(records)
    total = sum(header["counts"].values())
    step = max(1, total // 200)
    with closing(records), _output(file) as out, progress(total, "Exporting") as bar:
        out.write(_line(header))
        pending = 0
        for record in records:
            out.write(_line(record))
            pending += 1
            if pending == step:
                bar.update(pending)
                pending = 0
        bar.update(pending)
    summary = ", ".join(f"{n} {kind}" for kind, n in header["counts"].items())
    click.echo(f"Exported {total} records ({summary}) in {time.monotonic() - started:.1f} s.", err=True)


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


# -- import ---------------------------------------------------------------------


def _count_lines(path: str) -> int:
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


def _records(stream: IO[str]) -> Iterator[Any]:
    """One JSON object per line; line N is record N in the service's messages."""
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            raise ValidationError(f"line {number}", line, "is empty; every line must hold one JSON object")
        try:
            yield json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"line {number}", line.strip(), f"is not JSON ({exc.msg})") from None


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@batch_option
@json_option
@handle_errors
def import_registry(file: str, batch_size: int, as_json: bool) -> None:
    """Import models, deployments, projects and flows from FILE (JSON lines, `-` for stdin).

    FILE is what `lume-services export` writes; ids and timestamps in it are
    kept. Each batch of records is validated like a single store and written
    in one transaction. Rows already present and identical are kept; a
    contradicting row stops the import (the batches before it stay imported).
    """
    started = time.monotonic()
    service = get_service()
    total = None if file == "-" else _count_lines(file)
    with click.open_file(file, encoding="utf-8") as stream, progress(total, "Importing") as bar:
        try:
            counts = service.import_records(
                _records(stream), batch_size=batch_size, progress=lambda _kind, n: bar.update(n)
            )
        except LUMEServicesError as exc:
            done = (
                f"Lines 1 to {bar.done} were imported; nothing from line {bar.done + 1} on was written."
                if bar.done
                else "Nothing was imported."
            )
            raise click.ClickException(_mask_password(f"{exc} {done}")) from None
    imported = {kind: counts[kind] for kind in KINDS if kind != "header"}
    if as_json:
        print_json({"imported": imported})
    else:
        click.echo(render_table(["Kind", "Records"], [[k, str(n)] for k, n in imported.items()]))
    click.echo(f"Imported {sum(imported.values())} records in {time.monotonic() - started:.1f} s.", err=True)
