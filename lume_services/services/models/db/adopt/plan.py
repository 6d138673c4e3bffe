"""Reading the predecessor's rows and deciding what the adoption does with each (the plan)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Optional

import sqlalchemy as sa
from sqlalchemy import Connection

from lume_services.errors import AdoptionRefusedError
from lume_services.services.models.db.adopt.detect import PARENTS_FIRST, SHA256_CHARS, Finding

if TYPE_CHECKING:
    pass

# -- reading the predecessor's rows ---------------------------------------------------


def _old_tables(conn: Connection, prefix: str) -> dict[str, sa.Table]:
    meta = sa.MetaData()
    return {name: sa.Table(prefix + name, meta, autoload_with=conn) for name in PARENTS_FIRST}


def utc_offset(conn: Connection) -> int:
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


def refuse_orphans(rows: dict[str, list[dict[str, Any]]], database: str) -> None:
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


def read_rows(conn: Connection, prefix: str) -> dict[str, list[dict[str, Any]]]:
    tables = _old_tables(conn, prefix)
    keys = {"model": "model_id", "project": "project_name", "deployment": "deployment_id",
            "flow": "flow_id", "flow_of_flows": "_id"}  # fmt: skip
    return {
        name: [dict(r._mapping) for r in conn.execute(sa.select(t).order_by(t.c[keys[name]]))]
        for name, t in tables.items()
    }


@dataclass
class Plan:
    rows: dict[str, list[dict[str, Any]]]
    findings: list[Finding]
    events: list[dict[str, Any]]
    prefect1_flows: list[str]


def make_plan(rows: dict[str, list[dict[str, Any]]], offset: int) -> Plan:
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
    return Plan(out, findings, events, prefect1)


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
        if isinstance(value, str) and len(value) == 64 and set(value) <= SHA256_CHARS:
            continue
        digest = value.strip().lower() if isinstance(value, str) else ""
        digest = digest.removeprefix("sha256:")
        if len(digest) == 64 and set(digest) <= SHA256_CHARS:
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


