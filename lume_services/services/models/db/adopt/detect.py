"""What a database is (empty, ours, the predecessor's, a half-done adoption), and the report's records."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Optional

import sqlalchemy as sa
from sqlalchemy import Connection, inspect

from lume_services.errors import AdoptionRefusedError

if TYPE_CHECKING:
    pass

ADOPT_REVISION = "0001"
"""The revision the predecessor's tables are converted to; the normal upgrade goes on from there."""

ACTOR = "lume-services db adopt"
"""The actor of the adoption's audit events."""

LIVE_ACTOR = "adopted"
"""The actor of the live intervals of adopted live deployments."""

PREFECT1_TAG = "lume-services.prefect1_flow"
"""The deployment tag naming the Prefect 1 flow an adopted deployment still has (removed by a re-store)."""

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
SHA256_CHARS = set("0123456789abcdef")
EVENTS = sa.table("audit_event", sa.column("action"), sa.column("entity_id"))
FLOWS = sa.table("flow", sa.column("flow_id"), sa.column("deployment_id"))


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
    done = sa.select(EVENTS.c.action).where(EVENTS.c.action == "adopt.completed").limit(1)
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


