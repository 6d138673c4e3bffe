"""Bulk import and export: many rows per transaction, validated like single stores.

Records are plain mappings with a ``kind`` (``header``, ``project``,
``model``, ``deployment``, ``deployment_variables``, ``flow``, ``flow_of_flows``) and the fields of
that kind, as :meth:`BulkOps.export_records` writes them. Ids and
timestamps are optional on import: given, they are kept (an export imported
into an empty registry reproduces it exactly); left out, they are assigned
as by ``store_model`` / ``store_deployment``.

Consecutive records of one kind form a batch of at most ``batch_size``;
each batch is validated completely before any SQL runs (with the same
checks as the single stores: :mod:`validation`) and then written in one
transaction with a constant number of statements, whatever its size
(:mod:`bulk_writes`). The
rules of the single stores hold per record, in order: an identical row again
is kept as it is, a contradicting one raises the same
:class:`~lume_services.errors.ConflictError` subclass and the batch writes
nothing; earlier batches stay committed. Within a batch, the last record
that makes a deployment live wins, as in a sequence of ``store_deployment``
calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import groupby, islice
from typing import Any, Optional

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lume_services.errors import ValidationError
from lume_services.services.models.bulk_writes import WRITERS
from lume_services.services.models.db.revision import SCHEMA_REVISION
from lume_services.services.models.db.schema import (
    Deployment,
    DeploymentVariables,
    Flow,
    FlowOfFlows,
    Model,
    Project,
    utcnow,
)
from lume_services.services.models.queries import MODEL_FIELDS, normalise_steps, variables_values
from lume_services.services.models.tags import check_tags
from lume_services.services.models.unit_of_work import ServiceBase
from lume_services.services.models.validation import check_value, check_values, normalize_sha256
from lume_services.services.models.writes import Change
from lume_services.variables import Variables
from lume_services.variables.types import KINDS as VARIABLE_KINDS

__all__ = ["BulkOps", "EXPORT_FORMAT", "EXPORT_VERSION", "KINDS"]

EXPORT_FORMAT = "lume-services-registry"
EXPORT_VERSION = 2  # 2 added deployment_variables records; version 1 files are read too
READ_VERSIONS = (1, 2)
DEFAULT_BATCH = 1000
MAX_BATCH = 5000  # 5 identity fields per model stay below every driver's parameter limit
KINDS = ("header", "project", "model", "deployment", "deployment_variables", "flow", "flow_of_flows")
FIELDS: dict[str, tuple[str, ...]] = {
    "header": ("format", "version", "schema_revision", "exported_at", "counts"),
    "project": ("project_name", "description"),
    "model": ("model_id", "created", *MODEL_FIELDS, "require_approval", "tags"),
    "deployment": (
        "deployment_id",
        "model_id",
        "version",
        "deploy_date",
        "package_import_name",
        "asset_dir",
        "source",
        "sha256",
        "image",
        "is_live",
        "tags",
    ),
    "deployment_variables": ("deployment_id", "source_file", "format", "inputs", "outputs"),
    "flow": ("flow_id", "flow_name", "project_name", "deployment_id"),
    "flow_of_flows": ("parent_flow_id", "flow_name", "project_name", "deployment_id", "composing_flows"),
}
Row = dict[str, Any]
Numbered = tuple[int, Mapping[str, Any]]


class BulkOps(ServiceBase):
    """Mixin of ModelDBService: store_models, store_deployments, import_records, export_records."""

    # -- public ---------------------------------------------------------------

    def store_models(
        self, models: Iterable[Mapping[str, Any]], *, batch_size: int = DEFAULT_BATCH
    ) -> list[int]:
        """Store many models (the five fields, optionally model_id and created); ids in input order.

        Each model is get-or-create, as with ``store_model``.
        """
        records = _of_kind("model", "models", models)
        return [i for _, ids in self._import(records, batch_size, None) for i in ids]

    def store_deployments(
        self, deployments: Iterable[Mapping[str, Any]], *, batch_size: int = DEFAULT_BATCH
    ) -> list[int]:
        """Store many deployments (``store_deployment``'s arguments); ids in input order."""
        records = _of_kind("deployment", "deployments", deployments)
        return [i for _, ids in self._import(records, batch_size, None) for i in ids]

    def import_records(
        self,
        records: Iterable[Mapping[str, Any]],
        *,
        batch_size: int = DEFAULT_BATCH,
        progress: Optional[Callable[[str, int], None]] = None,
    ) -> dict[str, int]:
        """Import records batch by batch; returns how many records of each kind were imported.

        ``progress(kind, n)`` is called after each committed batch of ``n``
        records. Validation errors name the record by its position (1 = first).
        """
        counts = {kind: 0 for kind in KINDS}
        for kind, ids in self._import(records, batch_size, progress):
            counts[kind] += len(ids)
        return counts

    def export_records(self, *, batch_size: int = DEFAULT_BATCH) -> Iterator[dict[str, Any]]:
        """The whole registry as records (header first), read in one consistent snapshot.

        Order: projects, models, deployments, flows, then flows of flows
        (each after the compositions it uses), so that importing the records
        in order never refers to a row that is not there yet.
        """
        _check_batch_size(batch_size)
        self._ensure_schema()
        with _snapshot(self._model_db) as session:
            counts = {kind: session.execute(stmt).scalar_one() for kind, stmt in _COUNTS.items()}
            yield {
                "kind": "header",
                "format": EXPORT_FORMAT,
                "version": EXPORT_VERSION,
                "schema_revision": SCHEMA_REVISION,
                "exported_at": datetime.now(UTC).isoformat(),
                "counts": counts,
            }
            for kind in ("project", "model", "deployment", "deployment_variables", "flow"):
                yield from _export_table(session, kind, batch_size)
            yield from _export_compositions(session)

    # -- plumbing -------------------------------------------------------------

    def _import(
        self,
        records: Iterable[Mapping[str, Any]],
        batch_size: int,
        progress: Optional[Callable[[str, int], None]],
    ) -> Iterator[tuple[str, list[Any]]]:
        _check_batch_size(batch_size)
        _check_iterable("records", records)
        if progress is not None and not callable(progress):
            raise ValidationError(
                "progress", progress, "expected a function progress(kind, n) or None", "Nothing was imported."
            )
        self._ensure_schema()
        for kind, batch in _batches(records, batch_size):
            rows = [_validate(number, kind, record) for number, record in batch]
            ids = self._write_batch(kind, rows)
            if progress is not None:
                progress(kind, len(rows))
            yield kind, ids

    def _write_batch(self, kind: str, rows: list[Row]) -> list[Any]:
        """One batch in one transaction, with one summary audit event (and one per live change)."""
        operation = f"import of {len(rows)} {kind} record(s)"

        def work(change: Change) -> list[Any]:
            ids = WRITERS[kind](change, rows)
            if kind != "header":
                change.record("import.completed", "import", kind, after={"kind": kind, "records": len(rows)})
            return ids

        # A concurrent writer may win a get-or-create race; its rows are visible on the retry.
        return self._write(operation, work, on_conflict=lambda: self._write(operation, work))


def _check_iterable(field: str, records: Any) -> None:
    """A list (or other iterable) of mappings; checked before anything is written."""
    if isinstance(records, (str, bytes, Mapping)) or not isinstance(records, Iterable):
        raise ValidationError(
            field,
            records,
            f"expected a list of mappings, got {type(records).__name__}",
            "Nothing was imported.",
        )


def _of_kind(kind: str, field: str, items: Any) -> Iterator[Mapping[str, Any]]:
    """``items`` (mappings of one kind's fields) as import records of ``kind``."""
    _check_iterable(field, items)

    def records() -> Iterator[Mapping[str, Any]]:
        for number, item in enumerate(items, start=1):
            if not isinstance(item, Mapping):
                raise ValidationError(
                    f"{field} (item {number})", item, f"expected a mapping of a {kind}'s fields"
                )
            yield {**item, "kind": kind}

    return records()


def _check_batch_size(batch_size: Any) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= MAX_BATCH:
        raise ValidationError("batch_size", batch_size, f"must be an integer from 1 to {MAX_BATCH}")


# -- batching and validation ------------------------------------------------------


def _batches(records: Iterable[Mapping[str, Any]], size: int) -> Iterator[tuple[str, list[Numbered]]]:
    """Consecutive records of one kind, at most ``size`` at a time, numbered from 1."""

    def kind_of(item: Numbered) -> str:
        number, record = item
        if not isinstance(record, Mapping):
            raise ValidationError(f"record {number}", record, "expected a mapping with a 'kind'")
        kind = record.get("kind")
        if kind not in KINDS:
            raise ValidationError(f"kind (record {number})", kind, f"expected one of {', '.join(KINDS)}")
        return kind

    for kind, group in groupby(enumerate(records, start=1), key=kind_of):
        while batch := list(islice(group, size)):
            yield kind, batch


def _validate(number: int, kind: str, record: Mapping[str, Any]) -> Row:
    unknown = set(record) - {"kind", *FIELDS[kind]}
    try:
        if unknown:
            raise ValidationError(
                "fields",
                sorted(unknown, key=repr),
                f"unknown for a {kind}; allowed: {', '.join(FIELDS[kind])}",
            )
        return VALIDATORS[kind](record)
    except ValidationError as exc:
        raise ValidationError(f"{exc.field} (record {number})", exc.value, exc.problem) from None


def _optional(row: Row, record: Mapping[str, Any], table: Any, field: str) -> None:
    if record.get(field) is not None:
        row[field] = check_value(table, field, record[field])


def _timestamp(row: Row, record: Mapping[str, Any], field: str) -> None:
    """A given timestamp (aware datetime or ISO 8601 text with an offset), else now."""
    value = record.get(field)
    if value is None:
        row[field] = utcnow()
        return
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValidationError(field, value, "expected an ISO 8601 timestamp") from None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValidationError(field, value, "expected a timestamp with a UTC offset, e.g. '...+00:00'")
    try:
        row[field] = value.astimezone(UTC)
    except OverflowError:
        raise ValidationError(
            field, value, "is out of range once converted to UTC (years 1 to 9999)"
        ) from None


def _header(record: Mapping[str, Any]) -> Row:
    if record.get("format") != EXPORT_FORMAT or record.get("version") not in READ_VERSIONS:
        raise ValidationError(
            "header",
            {"format": record.get("format"), "version": record.get("version")},
            f"this lume-services reads format {EXPORT_FORMAT!r} versions {READ_VERSIONS[0]} to {READ_VERSIONS[-1]}",
        )
    return {}


def _project(record: Mapping[str, Any]) -> Row:
    return check_values(Project, {f: record.get(f) for f in FIELDS["project"]})


def _model(record: Mapping[str, Any]) -> Row:
    row = check_values(Model, {f: record.get(f) for f in MODEL_FIELDS})
    _optional(row, record, Model, "model_id")
    _optional(row, record, Model, "require_approval")
    _timestamp(row, record, "created")
    _tags(row, record)
    return row


def _tags(row: Row, record: Mapping[str, Any]) -> None:
    """Given tags, checked as set_*_tags checks them (none: NULL, in every row of a batch alike)."""
    row["tags"] = check_tags(record["tags"]) if record.get("tags") else None


def _deployment(record: Mapping[str, Any]) -> Row:
    fields = ("model_id", "version", "source", "package_import_name", "image", "asset_dir")
    row = check_values(Deployment, {f: record.get(f) for f in fields})
    row["is_live"] = check_value(Deployment, "is_live", record.get("is_live", False))
    row["sha256"] = normalize_sha256(record.get("sha256"))
    _optional(row, record, Deployment, "deployment_id")
    _timestamp(row, record, "deploy_date")
    _tags(row, record)
    return row


def _deployment_variables(record: Mapping[str, Any]) -> Row:
    """A deployment's variables as exported (the stored JSON form), checked like a package's."""
    try:
        variables = Variables.from_stored({f: record.get(f) for f in FIELDS["deployment_variables"]})
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValidationError(
            "variables", {f: record.get(f) for f in ("source_file", "format")},
            f"inputs and outputs must be lists of variables with a name and a kind ({type(exc).__name__})",
        ) from None  # fmt: skip
    for variable in [*variables.inputs.values(), *variables.outputs.values()]:
        if variable.kind not in VARIABLE_KINDS:
            raise ValidationError("kind", variable.kind, f"variable {variable.name!r}: expected one of {VARIABLE_KINDS}")
        if variable.range is not None and variable.range[0] > variable.range[1]:
            raise ValidationError("range", list(variable.range), f"variable {variable.name!r}: its min is above its max")
    row = variables_values(variables)
    if row is None:
        raise ValidationError("source_file", None, "a value is required")
    return {**row, "deployment_id": check_value(Deployment, "deployment_id", record.get("deployment_id"))}


def _flow(record: Mapping[str, Any]) -> Row:
    if record.get("deployment_id") is None:
        raise ValidationError(
            "deployment_id",
            None,
            "a flow belongs to a deployment; composite flows are 'flow_of_flows' records",
        )
    return check_values(Flow, {f: record.get(f) for f in FIELDS["flow"]})


def _flow_of_flows(record: Mapping[str, Any]) -> Row:
    parent = check_values(
        Flow,
        {
            "flow_id": record.get("parent_flow_id"),
            "flow_name": record.get("flow_name"),
            "project_name": record.get("project_name"),
        },
    )
    raw = record.get("composing_flows")
    step_ids: list[Optional[int]] = []
    if isinstance(raw, list):  # exported steps carry their row id: keep it, check it like a store would
        raw = [dict(s) if isinstance(s, Mapping) else s for s in raw]
        for step in raw:
            sid = step.pop("id", None) if isinstance(step, dict) else None
            step_ids.append(None if sid is None else check_value(FlowOfFlows, "id", sid))
    steps = normalise_steps(raw)  # type: ignore[arg-type]
    if parent["flow_id"] in {s["flow_id"] for s in steps}:
        raise ValidationError("composing_flows", parent["flow_id"], "a flow of flows cannot contain itself")
    for step, sid in zip(steps, step_ids):
        if sid is not None:
            step["id"] = sid
    owner = record.get("deployment_id")  # a composition stored as a model version
    owner = None if owner is None else check_value(Flow, "deployment_id", owner)
    return {**parent, "deployment_id": owner, "steps": steps}


VALIDATORS: dict[str, Callable[[Mapping[str, Any]], Row]] = {
    "header": _header,
    "project": _project,
    "model": _model,
    "deployment": _deployment,
    "deployment_variables": _deployment_variables,
    "flow": _flow,
    "flow_of_flows": _flow_of_flows,
}


# -- export -------------------------------------------------------------------------

EXPORTED = {
    "project": Project.__table__,
    "model": Model.__table__,
    "deployment": Deployment.__table__,
    "deployment_variables": DeploymentVariables.__table__,
    "flow": Flow.__table__,
}
# How many records of each kind an export writes (one per line after the header).
_COUNTS = {
    **{kind: select(func.count()).select_from(table) for kind, table in EXPORTED.items()},
    "flow": select(func.count()).select_from(Flow).where(Flow.composite == False),  # noqa: E712
    "flow_of_flows": select(func.count()).select_from(Flow).where(Flow.composite == True),  # noqa: E712
}


@contextmanager
def _snapshot(model_db: Any) -> Iterator[Session]:
    """One read transaction that sees a single consistent state of the database."""
    with model_db.engine.connect() as conn:
        if model_db.dialect != "sqlite":  # SQLite (WAL) readers see a snapshot anyway
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with Session(bind=conn) as session, session.begin():
            yield session


def _jsonable(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}


def _export_table(session: Session, kind: str, batch_size: int) -> Iterator[dict[str, Any]]:
    """Keyset pages in primary-key order; flows here are the non-composite ones."""
    table = EXPORTED[kind]
    pk = next(iter(table.primary_key.columns))
    columns = [c for c in table.c if not (kind == "flow" and c.key == "composite")]
    stmt = select(*columns).order_by(pk).limit(batch_size)
    if kind == "flow":
        stmt = stmt.where(table.c.composite == False)  # noqa: E712 - SQL, not Python
    last = None
    while True:
        page = session.execute(stmt if last is None else stmt.where(pk > last)).mappings().all()
        for row in page:
            yield {"kind": kind, **_jsonable(row)}
        if len(page) < batch_size:
            return
        last = page[-1][pk.key]


def _export_compositions(session: Session) -> Iterator[dict[str, Any]]:
    """Composite flows with their steps, each after the composites it uses."""
    parents = {
        f.flow_id: f
        for f in session.execute(select(Flow).where(Flow.composite == True).order_by(Flow.flow_id)).scalars()  # noqa: E712
    }
    steps: dict[str, list[dict[str, Any]]] = {p: [] for p in parents}
    for step in session.execute(
        select(FlowOfFlows).order_by(FlowOfFlows.parent_flow_id, FlowOfFlows.position)
    ).scalars():
        steps[step.parent_flow_id].append(
            {"id": step.id, "flow_id": step.flow_id, "mapped_parameters": step.mapped_parameters}
        )
    done: set[str] = set()

    def emit(flow_id: str) -> Iterator[dict[str, Any]]:
        done.add(flow_id)
        for step in steps[flow_id]:
            if step["flow_id"] in parents and step["flow_id"] not in done:
                yield from emit(step["flow_id"])
        parent = parents[flow_id]
        yield {
            "kind": "flow_of_flows",
            "parent_flow_id": flow_id,
            "flow_name": parent.flow_name,
            "project_name": parent.project_name,
            "deployment_id": parent.deployment_id,
            "composing_flows": steps[flow_id],
        }

    for flow_id in parents:
        if flow_id not in done:
            yield from emit(flow_id)
