"""Adopt a predecessor lume-services database in place (``lume-services db adopt``).

The predecessor (lume-services on Prefect 1, SQLAlchemy 1.4) created five
tables with ``metadata.create_all``: ``model``, ``deployment``, ``project``,
``flow``, ``flow_of_flows``, and no ``alembic_version``. :func:`inspect_database`
tells such a database from an empty one, one of ours and anything else;
:func:`adopt` converts it to revision 0001 of our migrations, stamps it and
upgrades it to head, keeping every row and every id.

How: the five tables are renamed to ``lume_adopt_old_<name>`` (staging), the
tables of revision 0001 are created by 0001's own ``upgrade()`` (so their
types, lengths, constraint names and foreign-key actions are exactly ours),
the rows are copied with their ids, the database is stamped 0001 and upgraded
to head, the adoption is recorded, and the staging tables are dropped. This
is what Alembic's batch mode does on SQLite ("move and copy"), done the same
way on every dialect; on SQLite, children are always dropped before their
parents, so no foreign-key action deletes a row.

SQLite and PostgreSQL run all of it in one transaction: it happens completely
or not at all. MySQL/MariaDB commit every DDL statement, so there every step
can be re-run: the staging tables stay until the very end, and a second
``db adopt`` after an interruption starts again from what it finds (no
``alembic_version`` yet: drop the half-built new tables and copy again; a
revision stamped: upgrade, record, drop the staging tables).

Values our validation refuses are kept and resolved by these rules
(reported by the dry run, recorded as audit events by ``lume-services db adopt``):

* several live deployments of one model: the newest (deploy date, then id)
  stays live, the others become not live (``adopt.live_demoted``);
* a sha256 that is not 64 hex digits: kept as it is (``adopt.checksum_invalid``);
  one in upper case or with a ``sha256:`` prefix is normalised
  (``adopt.checksum_normalized``);
* several flows for one deployment: the one with the smallest flow id stays
  the deployment's flow, the others are kept unattached, deployment_id NULL
  (``adopt.flow_detached``);
* flow-of-flows positions that repeat or are below 1: renumbered 1..n per
  parent in their (position, id) order (``adopt.position_renumbered``);
* text longer than our columns (only possible on SQLite): kept, reported.

Times: the predecessor wrote ``now()`` of the database server. On MySQL/
MariaDB that is the server's local time: it is shifted to UTC by the server's
current UTC offset (0 for the predecessor's docker image, which runs in UTC).
PostgreSQL's ``timestamp with time zone`` is converted to UTC; SQLite's
``CURRENT_TIMESTAMP`` is UTC already.

Every flow row was registered with Prefect 1: it is kept, and recorded with
``adopt.prefect1_flow``; re-storing the deployment registers it with Prefect 3.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Optional

import sqlalchemy as sa
from sqlalchemy import Connection, inspect
from sqlalchemy.exc import DBAPIError

from lume_services.errors import AdoptionRefusedError, DatabaseError, driver_reason

if TYPE_CHECKING:
    from lume_services.services.models.db.db import ModelDB

ADOPT_REVISION = "0001"
"""The revision the predecessor's tables are converted to; the normal upgrade goes on from there."""

ACTOR = "lume-services db adopt"
"""The actor of the adoption's audit events."""

LIVE_ACTOR = "adopted"
"""The actor of the live intervals of adopted live deployments."""

STAGING = "lume_adopt_old_"
PARENTS_FIRST = ("model", "project", "deployment", "flow", "flow_of_flows")

PREDECESSOR_COLUMNS: dict[str, tuple[str, ...]] = {
    "model": ("model_id", "created", "author", "laboratory", "facility", "beampath", "description"),
    "deployment": (
        "deployment_id", "version", "deploy_date", "package_import_name", "asset_dir",
        "source", "sha256", "image", "is_live", "model_id",
    ),
    "project": ("project_name", "description"),
    "flow": ("flow_id", "flow_name", "project_name", "deployment_id"),
    "flow_of_flows": ("_id", "parent_flow_id", "flow_id", "position"),
}  # fmt: skip
PREDECESSOR_UNIQUE = {
    "model": "_model_entry",
    "deployment": "_deployment_unique",
    "flow_of_flows": "_flow_of_flow_entry",
}
_SHA256_CHARS = set("0123456789abcdef")
_EVENTS = sa.table("audit_event", sa.column("action"), sa.column("entity_id"))
_FLOWS = sa.table("flow", sa.column("flow_id"), sa.column("deployment_id"))

# Test hook: called with each step's name once the step is done (a failure here
# is how the tests interrupt an adoption halfway).
after_step: Optional[Callable[[str], None]] = None


@dataclass
class Finding:
    """A predecessor value our rules refuse, and what the adoption does with it."""

    kind: str
    table: str
    key: Any
    detail: str
    resolution: str


@dataclass
class Report:
    """What ``db adopt`` found and did (or, in a dry run, would do)."""

    database: str
    state: str  # empty | ours | predecessor | interrupted | cleanup (only the staging tables left to drop)
    dry_run: bool = True
    revision_before: Optional[str] = None
    revision_after: Optional[str] = None
    rows: dict[str, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    utc_offset_seconds: int = 0
    prefect1_flows: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    adopted: bool = False

    def as_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=str))


# -- detection ------------------------------------------------------------------------


def inspect_database(conn: Connection) -> str:
    """``empty``, ``ours``, ``predecessor`` or ``interrupted``; anything else raises AdoptionRefusedError."""
    insp = inspect(conn)
    tables = set(insp.get_table_names())
    if "alembic_version" in tables and not any(t.startswith(STAGING) for t in tables):
        return "ours"
    if any(t.startswith(STAGING) for t in tables):
        missing = sorted(STAGING + t for t in PARENTS_FIRST if STAGING + t not in tables)
        if missing and _recorded(conn):
            return "cleanup"  # interrupted while dropping the staging tables: only that is left
        if missing:
            raise AdoptionRefusedError(
                str(conn.engine.url.render_as_string(hide_password=True)),
                [f"an interrupted adoption whose staging tables {missing!r} are missing"],
            )
        return "interrupted"
    if not tables:
        return "empty"
    problems = predecessor_problems(conn, tables)
    if problems:
        raise AdoptionRefusedError(conn.engine.url.render_as_string(hide_password=True), problems)
    return "predecessor"


def _recorded(conn: Connection) -> bool:
    """Whether the adoption's completion is recorded (its last step before dropping the staging tables)."""
    if not inspect(conn).has_table("audit_event"):
        return False
    done = sa.select(_EVENTS.c.action).where(_EVENTS.c.action == "adopt.completed").limit(1)
    return conn.execute(done).first() is not None


def predecessor_problems(conn: Connection, tables: set[str], prefix: str = "") -> list[str]:
    """What differs from the predecessor's five tables ([] if nothing does)."""
    insp = inspect(conn)
    wanted = {prefix + t for t in PREDECESSOR_COLUMNS}
    problems = []
    if tables - wanted:
        problems.append(f"unexpected tables {sorted(tables - wanted)!r}")
    if wanted - tables:
        problems.append(f"missing tables {sorted(wanted - tables)!r}")
    for name, columns in PREDECESSOR_COLUMNS.items():
        if prefix + name not in tables:
            continue
        found = {c["name"] for c in insp.get_columns(prefix + name)}
        if found != set(columns):
            extra, lacking = sorted(found - set(columns)), sorted(set(columns) - found)
            problems.append(f"table {name!r} has unexpected columns {extra!r} and lacks {lacking!r}")
        unique = PREDECESSOR_UNIQUE.get(name)
        if unique and not prefix and unique not in _unique_names(conn, name):
            problems.append(f"table {name!r} lacks the predecessor's unique constraint {unique!r}")
    return problems


def _unique_names(conn: Connection, table: str) -> set[str]:
    insp = inspect(conn)
    names = {u["name"] for u in insp.get_unique_constraints(table)}
    return names | {i["name"] for i in insp.get_indexes(table) if i.get("unique")}


def is_predecessor(conn: Connection) -> Optional[str]:
    """Why this database needs ``db adopt`` (None if it does not): for the schema check."""
    tables = set(inspect(conn).get_table_names())
    if "alembic_version" in tables and not any(t.startswith(STAGING) for t in tables):
        return None
    if any(t.startswith(STAGING) for t in tables):
        return "an adoption of a predecessor database was interrupted"
    if tables and not predecessor_problems(conn, tables):
        return "it holds the tables of the predecessor lume-services (no schema revision)"
    return None


# -- reading the predecessor's rows ---------------------------------------------------


def _old_tables(conn: Connection, prefix: str) -> dict[str, sa.Table]:
    meta = sa.MetaData()
    return {name: sa.Table(prefix + name, meta, autoload_with=conn) for name in PARENTS_FIRST}


def _utc_offset(conn: Connection) -> int:
    """Seconds the server's local time is ahead of UTC (MySQL/MariaDB; 0 elsewhere)."""
    if conn.dialect.name not in ("mysql", "mariadb"):
        return 0
    seconds = conn.execute(sa.text("SELECT TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(), NOW())")).scalar_one()
    return int(round(seconds / 900.0)) * 900  # offsets are whole quarter hours


UNKNOWN_TIME = datetime(1970, 1, 1)
"""What a missing or unreadable predecessor time becomes (it sorts first: never the "latest")."""


def _to_utc(value: Any, offset: int) -> Optional[datetime]:
    """Naive UTC from a predecessor time (None: missing or unreadable, e.g. MySQL's zero date)."""
    if isinstance(value, str):  # text that the driver did not parse
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value - timedelta(seconds=offset)


def _times(rows: list[dict[str, Any]], table: str, key: str, column: str, offset: int,
           found: Callable[..., None]) -> list[dict[str, Any]]:  # fmt: skip
    out = []
    for row in rows:
        value = _to_utc(row[column], offset)
        if value is None:
            value = UNKNOWN_TIME
            found("time_missing", table, row[key], f"{column} is {row[column]!r}",
                  f"set to {UNKNOWN_TIME.isoformat()}Z (unknown; sorts first)", row.get("model_id"),
                  {column: None if row[column] is None else str(row[column])}, {column: UNKNOWN_TIME.isoformat()})  # fmt: skip
        out.append({**row, column: value})
    return out


def _refuse_orphans(rows: dict[str, list[dict[str, Any]]], database: str) -> None:
    """Rows whose parent is missing (possible only where the predecessor ran without foreign keys)."""
    have = {
        "model": {m["model_id"] for m in rows["model"]},
        "deployment": {d["deployment_id"] for d in rows["deployment"]},
        "project": {p["project_name"] for p in rows["project"]},
        "flow": {f["flow_id"] for f in rows["flow"]},
    }
    refs = [("deployment", "deployment_id", "model_id", "model"), ("flow", "flow_id", "deployment_id", "deployment"),
            ("flow", "flow_id", "project_name", "project"), ("flow_of_flows", "_id", "flow_id", "flow"),
            ("flow_of_flows", "_id", "parent_flow_id", "flow")]  # fmt: skip
    problems = [
        f"{table} {row[key]!r} refers to {parent} {row[column]!r}, which does not exist"
        for table, key, column, parent in refs
        for row in rows[table]
        if row[column] not in have[parent]
    ]
    if problems:
        raise AdoptionRefusedError(
            database, problems[:20] + ([f"and {len(problems) - 20} more"] if len(problems) > 20 else [])
        )


def _read(conn: Connection, prefix: str) -> dict[str, list[dict[str, Any]]]:
    tables = _old_tables(conn, prefix)
    keys = {"model": "model_id", "project": "project_name", "deployment": "deployment_id",
            "flow": "flow_id", "flow_of_flows": "_id"}  # fmt: skip
    return {
        name: [dict(r._mapping) for r in conn.execute(sa.select(t).order_by(t.c[keys[name]]))]
        for name, t in tables.items()
    }


@dataclass
class _Plan:
    rows: dict[str, list[dict[str, Any]]]
    findings: list[Finding]
    events: list[dict[str, Any]]
    prefect1_flows: list[str]


def _plan(rows: dict[str, list[dict[str, Any]]], offset: int) -> _Plan:
    """The rows of revision 0001, the findings and their audit events, from the predecessor's rows."""
    from lume_services.services.models.db import schema

    findings: list[Finding] = []
    events: list[dict[str, Any]] = []
    model_of = {d["deployment_id"]: d["model_id"] for d in rows["deployment"]}

    def found(kind: str, table: str, key: Any, detail: str, resolution: str, model_id: Any = None,
              before: Any = None, after: Any = None) -> None:  # fmt: skip
        findings.append(Finding(kind, table, key, detail, resolution))
        events.append(dict(action=f"adopt.{kind}", entity=table, entity_id=str(key), model_id=model_id,
                           before=before, after=after))  # fmt: skip

    models = _times(rows["model"], "model", "model_id", "created", offset, found)
    deployments = [{**d, "is_live": bool(d["is_live"])}
                   for d in _times(rows["deployment"], "deployment", "deployment_id", "deploy_date", offset, found)]  # fmt: skip
    _resolve_live(deployments, found)
    _resolve_checksums(deployments, found)
    parents = {s["parent_flow_id"] for s in rows["flow_of_flows"]}
    flows = [{**f, "composite": f["flow_id"] in parents} for f in rows["flow"]]
    by_deployment: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for f in flows:
        by_deployment[f["deployment_id"]].append(f)
    for deployment_id, group in by_deployment.items():
        for extra in sorted(group, key=lambda f: f["flow_id"])[1:]:
            extra["deployment_id"] = None
            found("flow_detached", "flow", extra["flow_id"],
                  f"deployment {deployment_id!r} has {len(group)} flows; one flow per deployment",
                  "kept, no longer attached to the deployment (deployment_id NULL)",
                  model_of.get(deployment_id), {"deployment_id": deployment_id}, {"deployment_id": None})  # fmt: skip
    steps = _renumber(rows["flow_of_flows"], found)
    out = {"model": models, "project": rows["project"], "deployment": deployments, "flow": flows,
           "flow_of_flows": steps}  # fmt: skip
    _check_lengths(out, schema, found)
    prefect1 = [f["flow_id"] for f in flows]
    return _Plan(out, findings, events, prefect1)


def _resolve_live(deployments: list[dict[str, Any]], found: Callable[..., None]) -> None:
    live: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for d in deployments:
        if d["is_live"]:
            live[d["model_id"]].append(d)
    for model_id, group in live.items():
        newest = max(group, key=lambda d: (d["deploy_date"], d["deployment_id"]))
        for d in group:
            if d is not newest:
                d["is_live"] = False
                found("live_demoted", "deployment", d["deployment_id"],
                      f"model {model_id!r} has {len(group)} live deployments",
                      f"not live any more; deployment {newest['deployment_id']!r} (the newest) stays live",
                      model_id, {"is_live": True}, {"is_live": False})  # fmt: skip


def _resolve_checksums(deployments: list[dict[str, Any]], found: Callable[..., None]) -> None:
    for d in deployments:
        value = d["sha256"]
        if isinstance(value, str) and len(value) == 64 and set(value) <= _SHA256_CHARS:
            continue
        digest = value.strip().lower() if isinstance(value, str) else ""
        digest = digest.removeprefix("sha256:")
        if len(digest) == 64 and set(digest) <= _SHA256_CHARS:
            d["sha256"] = digest
            found("checksum_normalized", "deployment", d["deployment_id"], f"sha256 {value!r}",
                  f"normalised to {digest!r}", d["model_id"], {"sha256": value}, {"sha256": digest})  # fmt: skip
        else:
            found("checksum_invalid", "deployment", d["deployment_id"],
                  f"sha256 {value!r} is not 64 hexadecimal digits",
                  "kept as it is; re-store the deployment to record its real checksum",
                  d["model_id"], {"sha256": value}, None)  # fmt: skip


def _renumber(steps: list[dict[str, Any]], found: Callable[..., None]) -> list[dict[str, Any]]:
    by_parent: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for s in steps:
        by_parent[s["parent_flow_id"]].append(dict(s))  # mapped_parameters: SQL NULL (never JSON null)
    out = []
    for parent, group in by_parent.items():
        group.sort(key=lambda s: (s["position"], s["_id"]))
        positions = [s["position"] for s in group]
        if positions != list(range(1, len(group) + 1)):
            for n, s in enumerate(group, 1):
                if s["position"] != n:
                    found("position_renumbered", "flow_of_flows", s["_id"],
                          f"parent flow {parent!r} has positions {positions!r}",
                          f"position {s['position']!r} becomes {n!r} (order kept)",
                          None, {"position": s["position"]}, {"position": n})  # fmt: skip
                    s["position"] = n
        out.extend(group)
    return sorted(out, key=lambda s: s["_id"])


def _check_lengths(rows: dict[str, list[dict[str, Any]]], schema: Any, found: Callable[..., None]) -> None:
    for name, table_rows in rows.items():
        table = schema.Base.metadata.tables[name]
        limits = {c.name: c.type.length for c in table.columns if getattr(c.type, "length", None)}
        key = table.primary_key.columns.keys()[0]
        key = "_id" if key == "id" else key
        for row in table_rows:
            for column, limit in limits.items():
                value = row.get(column)
                if isinstance(value, str) and len(value) > limit:
                    found("too_long", name, row[key], f"{column} has {len(value)} characters, more than {limit}",
                          "kept as it is (SQLite does not enforce lengths); shorten it by an update")  # fmt: skip


# -- the conversion -------------------------------------------------------------------


def _step(report: Report, name: str) -> None:
    report.steps.append(name)
    if after_step is not None:
        after_step(name)


def _alembic_ops(conn: Connection) -> Any:
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    return Operations(MigrationContext.configure(conn))


def _rename_to_staging(conn: Connection) -> None:
    if conn.dialect.name in ("mysql", "mariadb"):  # one atomic statement
        pairs = ", ".join(f"`{t}` TO `{STAGING}{t}`" for t in PARENTS_FIRST)
        conn.execute(sa.text(f"RENAME TABLE {pairs}"))
        return
    op = _alembic_ops(conn)
    for t in PARENTS_FIRST:
        op.rename_table(t, STAGING + t)
    if conn.dialect.name == "postgresql":  # constraint and sequence names are schema-wide there
        for t, unique in PREDECESSOR_UNIQUE.items():
            conn.execute(
                sa.text(f'ALTER TABLE {STAGING}{t} RENAME CONSTRAINT "{unique}" TO "{STAGING}{unique}"')
            )
        for t, key in (("model", "model_id"), ("deployment", "deployment_id"), ("flow_of_flows", "_id")):
            seq = conn.execute(sa.text(f"SELECT pg_get_serial_sequence('{STAGING}{t}', '{key}')")).scalar()
            if seq:
                conn.execute(sa.text(f'ALTER SEQUENCE {seq} RENAME TO "{STAGING}{t}_seq"'))


def _create_revision_tables(conn: Connection) -> None:
    """Drop what an interrupted run left of the new tables, then create revision 0001's."""
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from lume_services.migrations import alembic_config

    existing = set(inspect(conn).get_table_names())
    for t in reversed(PARENTS_FIRST):
        if t in existing:
            conn.execute(sa.text(f"DROP TABLE {conn.dialect.identifier_preparer.quote(t)}"))
    module = ScriptDirectory.from_config(alembic_config()).get_revision(ADOPT_REVISION).module
    with Operations.context(MigrationContext.configure(conn)):
        module.upgrade()


def _copy(conn: Connection, plan: _Plan) -> None:
    meta = sa.MetaData()
    for name in PARENTS_FIRST:
        rows = plan.rows[name]
        if rows:
            table = sa.Table(name, meta, autoload_with=conn)
            conn.execute(table.insert(), rows)
    if conn.dialect.name == "postgresql":  # explicit ids do not move the sequences
        for t, key in (("model", "model_id"), ("deployment", "deployment_id"), ("flow_of_flows", "_id")):
            conn.execute(sa.text(
                f"SELECT setval(pg_get_serial_sequence('{t}', '{key}'), "
                f"COALESCE((SELECT MAX({key}) FROM {t}), 0) + 1, false)"
            ))  # fmt: skip


def _stamp(conn: Connection, revision: str) -> None:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from lume_services.migrations import alembic_config

    MigrationContext.configure(conn).stamp(ScriptDirectory.from_config(alembic_config()), revision)


def _upgrade(conn: Connection) -> None:
    from alembic import command

    from lume_services.migrations import alembic_config

    command.upgrade(alembic_config(connection=conn), "head")


def _record(conn: Connection, plan: _Plan, report: Report) -> None:
    """Live intervals by ``adopted`` and the audit events of the adoption (once)."""
    events = sa.table("audit_event", sa.column("event_id"), sa.column("time"), sa.column("actor"),
                      sa.column("action"), sa.column("entity"), sa.column("entity_id"), sa.column("model_id"),
                      sa.column("before", sa.JSON()), sa.column("after", sa.JSON()))  # fmt: skip
    done = conn.execute(sa.select(events.c.event_id).where(events.c.action == "adopt.completed")).first()
    if done is not None:
        return
    changes = sa.table("live_change", sa.column("actor"))
    conn.execute(changes.update().where(changes.c.actor == "unknown").values(actor=LIVE_ACTOR))
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = list(plan.events)
    rows += [dict(action="adopt.prefect1_flow", entity="flow", entity_id=f, model_id=None, before=None,
                  after={"orchestrator": "prefect1"}) for f in plan.prefect1_flows]  # fmt: skip
    rows.append(dict(action="adopt.completed", entity="database", entity_id="model_db", model_id=None,
                     before=None, after={"rows": report.rows, "findings": len(plan.findings),
                                         "utc_offset_seconds": report.utc_offset_seconds}))  # fmt: skip
    for n, row in enumerate(rows):
        row.update(time=now + timedelta(microseconds=n), actor=ACTOR)
    conn.execute(events.insert(), rows)


def _drop_staging(conn: Connection) -> None:
    existing = set(inspect(conn).get_table_names())
    for t in reversed(PARENTS_FIRST):  # children first: no foreign-key action fires
        if STAGING + t in existing:
            conn.execute(sa.text(f"DROP TABLE {STAGING}{t}"))


def _revision(conn: Connection) -> Optional[str]:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def adopt(model_db: ModelDB, *, dry_run: bool = False) -> Report:
    """Report on (``dry_run``) or adopt the predecessor database of ``model_db``; see the module docstring.

    A database failure is a DatabaseError saying what it left: nothing (SQLite,
    PostgreSQL, or a dry run), or a state that a second ``db adopt`` resumes from.
    """
    try:
        return _adopt(model_db, dry_run=dry_run)
    except DBAPIError as exc:
        resumable = model_db.dialect in ("mysql", "mariadb") and not dry_run
        consequence = (
            "MySQL/MariaDB cannot roll back DDL: the adoption stopped halfway, its old tables are kept; "
            "run `lume-services db adopt` again to finish it."
            if resumable
            else "Nothing was changed."
        )
        raise DatabaseError("db adopt", driver_reason(exc, secret=model_db.url.password),
                            consequence=consequence) from None  # fmt: skip


def _adopt(model_db: ModelDB, *, dry_run: bool) -> Report:
    engine = model_db.engine.execution_options(lume_write=True)
    with engine.connect() as conn:
        with conn.begin():
            report = Report(database=model_db.safe_url(), state=inspect_database(conn), dry_run=dry_run)
            report.revision_before = report.revision_after = _revision(conn)
            if report.state in ("empty", "ours"):
                return report
            if report.state == "cleanup":
                if not dry_run:
                    _drop_staging(conn)
                    report.steps.append("drop")
                return report
            prefix = STAGING if report.state == "interrupted" else ""
            report.utc_offset_seconds = _utc_offset(conn)
            rows = _read(conn, prefix)
            _refuse_orphans(rows, report.database)
            plan = _plan(rows, report.utc_offset_seconds)
            report.rows = {name: len(rows) for name, rows in plan.rows.items()}
            report.findings, report.prefect1_flows = plan.findings, plan.prefect1_flows
        if dry_run:
            return report
        if conn.dialect.name in ("mysql", "mariadb"):
            _adopt_steps(conn, plan, report, prefix, per_step=True)
        else:
            with conn.begin():
                _adopt_steps(conn, plan, report, prefix, per_step=False)
        with conn.begin():
            report.revision_after = _revision(conn)
    report.adopted = True
    return report


def _adopt_steps(conn: Connection, plan: _Plan, report: Report, prefix: str, *, per_step: bool) -> None:
    def run(name: str, work: Callable[[], None]) -> None:
        if per_step:
            with conn.begin():
                work()
        else:
            work()
        _step(report, name)

    if not prefix:
        run("rename", lambda: _rename_to_staging(conn))
    stamped = _in_tx(conn, per_step, lambda: _revision(conn))
    if stamped is None:
        run("create", lambda: _create_revision_tables(conn))
        run("copy", lambda: (_copy(conn, plan), _stamp(conn, ADOPT_REVISION)) and None)
    run("upgrade", lambda: _upgrade(conn))
    run("record", lambda: _record(conn, plan, report))
    run("drop", lambda: _drop_staging(conn))


def _in_tx(conn: Connection, per_step: bool, work: Callable[[], Any]) -> Any:
    if not per_step:
        return work()
    with conn.begin():
        return work()


def describe(findings: Iterable[Finding]) -> list[str]:
    """One line per finding, for people."""
    return [f"{f.table} {f.key!r}: {f.detail}; {f.resolution}." for f in findings]


# -- after the adoption: what a re-store replaces -------------------------------------------


def unverified_checksum(sha256: str) -> bool:
    """True for a stored sha256 that is not 64 lowercase hex digits (kept by the adoption)."""
    return not (len(sha256) == 64 and set(sha256) <= _SHA256_CHARS)


def is_prefect1_flow(change: Any, flow_id: str) -> bool:
    """Whether ``flow_id`` is a flow the adoption found registered with Prefect 1."""
    marked = sa.select(_EVENTS.c.action).where(
        _EVENTS.c.action == "adopt.prefect1_flow", _EVENTS.c.entity_id == flow_id
    )
    return change.execute(marked.limit(1)).first() is not None


def release_prefect1_flow(change: Any, taken: dict[int, str], deployment_id: int, *, model_id: int) -> None:
    """A re-store registers a new flow for an adopted deployment: its Prefect 1 flow is kept, unattached."""
    old = taken.get(deployment_id)
    if old is None or not is_prefect1_flow(change, old):
        return
    change.execute(_FLOWS.update().where(_FLOWS.c.flow_id == old).values(deployment_id=None))
    change.record("flow.detached", "flow", old, model_id=model_id,
                  before={"deployment_id": deployment_id}, after={"deployment_id": None})  # fmt: skip
    del taken[deployment_id]


def prefect1_flow_ids(model_db: ModelDB) -> set[str]:
    """The flows the adoption found registered with Prefect 1 (attached or not)."""
    marked = sa.select(_EVENTS.c.entity_id).where(_EVENTS.c.action == "adopt.prefect1_flow")
    with model_db.connection(write=False) as conn:
        return set(conn.execute(marked).scalars())
