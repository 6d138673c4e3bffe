"""The conversion itself, step by step, and ``adopt()``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Optional

import sqlalchemy as sa
from sqlalchemy import Connection, inspect
from sqlalchemy.exc import DBAPIError

from lume_services.errors import DatabaseError, driver_reason
from lume_services.services.models.db.adopt.detect import (
    ACTOR,
    ADOPT_REVISION,
    LIVE_ACTOR,
    PARENTS_FIRST,
    PREDECESSOR_UNIQUE,
    PREFECT1_TAG,
    STAGING,
    Finding,
    Report,
    inspect_database,
)
from lume_services.services.models.db.adopt.plan import Plan, make_plan, read_rows, refuse_orphans, utc_offset

if TYPE_CHECKING:
    from lume_services.services.models.db.db import ModelDB

# Test hook: called with each step's name once the step is done (a failure here
# is how the tests interrupt an adoption halfway).
after_step: Optional[Callable[[str], None]] = None


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


def _copy(conn: Connection, plan: Plan) -> None:
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


def _record(conn: Connection, plan: Plan, report: Report) -> None:
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
    _tag_prefect1_deployments(conn, plan)


def _tag_prefect1_deployments(conn: Connection, plan: Plan) -> None:
    """Tag each deployment whose flow is a Prefect 1 one, so that loading it says so at no cost."""
    from lume_services.services.models.tags import DEPLOYMENT_TAGS

    attached = {f["deployment_id"]: f["flow_id"] for f in plan.rows["flow"] if f["deployment_id"] is not None}
    if not attached:
        return
    tags = [{"_id": d, "tags": {PREFECT1_TAG: flow}} for d, flow in attached.items()]
    table = DEPLOYMENT_TAGS.table
    conn.execute(
        table.update().where(table.c.deployment_id == sa.bindparam("_id")).values(tags=sa.bindparam("tags")), tags
    )
    rows = [{"deployment_id": t["_id"], "tags": t["tags"]} for t in tags]
    conn.execute(DEPLOYMENT_TAGS.index.insert(), DEPLOYMENT_TAGS.index_rows(rows))


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
            report.utc_offset_seconds = utc_offset(conn)
            rows = read_rows(conn, prefix)
            refuse_orphans(rows, report.database)
            plan = make_plan(rows, report.utc_offset_seconds)
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


def _adopt_steps(conn: Connection, plan: Plan, report: Report, prefix: str, *, per_step: bool) -> None:
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


