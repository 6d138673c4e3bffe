"""The predecessor lume-services' schema and sample rows, for the adoption tests.

``METADATA`` is the predecessor's ORM (reference.md 1.1) as plain SQLAlchemy
tables: what its ``metadata.create_all`` creates on each dialect (no naming
convention, its three named unique constraints, foreign keys without
actions, ``DateTime(timezone=True)`` with ``now()`` defaults). ``ROWS`` are
sample rows including the values our rules refuse.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

METADATA = sa.MetaData()

sa.Table(
    "model", METADATA,
    sa.Column("model_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created", sa.DateTime(timezone=True), server_default=sa.func.now()),
    *(sa.Column(name, sa.String(50), nullable=False) for name in ("author", "laboratory", "facility", "beampath")),
    sa.Column("description", sa.String(255), nullable=False),
    sa.UniqueConstraint("author", "laboratory", "facility", "beampath", "description", name="_model_entry"),
)  # fmt: skip
sa.Table(
    "deployment", METADATA,
    sa.Column("deployment_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("version", sa.String(10), nullable=False),
    sa.Column("deploy_date", sa.DateTime(timezone=True), server_default=sa.func.now()),
    sa.Column("package_import_name", sa.String(50), nullable=False),
    sa.Column("asset_dir", sa.String(255), nullable=True),
    sa.Column("source", sa.String(255), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("image", sa.String(100), nullable=True),
    sa.Column("is_live", sa.Boolean, nullable=False),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("model.model_id"), nullable=False),
    sa.UniqueConstraint("model_id", "version", name="_deployment_unique"),
)  # fmt: skip
sa.Table(
    "project", METADATA,
    sa.Column("project_name", sa.String(50), primary_key=True),
    sa.Column("description", sa.String(255), nullable=False),
)  # fmt: skip
sa.Table(
    "flow", METADATA,
    sa.Column("flow_id", sa.String(255), primary_key=True),
    sa.Column("flow_name", sa.String(50), nullable=False),
    sa.Column("project_name", sa.String(50), sa.ForeignKey("project.project_name"), nullable=False),
    sa.Column("deployment_id", sa.Integer, sa.ForeignKey("deployment.deployment_id"), nullable=False),
)  # fmt: skip
sa.Table(
    "flow_of_flows", METADATA,
    sa.Column("_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("parent_flow_id", sa.String(255), sa.ForeignKey("flow.flow_id"), nullable=False),
    sa.Column("flow_id", sa.String(255), sa.ForeignKey("flow.flow_id"), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.UniqueConstraint("parent_flow_id", "flow_id", name="_flow_of_flow_entry"),
)  # fmt: skip

GOOD_SHA = "ab" * 32


def _t(day: int) -> datetime:
    return datetime(2022, 5, day, 12, 30, 15, tzinfo=UTC)


def _model(model_id: int, description: str) -> dict[str, Any]:
    return dict(model_id=model_id, created=_t(1), author="Jackie Garrahan", laboratory="slac",
                facility="lcls", beampath="cu_hxr", description=description)  # fmt: skip


def _deployment(
    deployment_id: int, model_id: int, version: str, day: int, sha256: str, live: bool
) -> dict[str, Any]:
    return dict(deployment_id=deployment_id, model_id=model_id, version=version, deploy_date=_t(day),
                package_import_name="my_model", asset_dir=None, source=f"https://example.org/my_model-{version}.tar.gz",
                sha256=sha256, image="placeholder", is_live=live)  # fmt: skip


ROWS: dict[str, list[dict[str, Any]]] = {
    "model": [_model(1, "test_model"), _model(2, "other model"), _model(5, "no deployments")],
    "project": [
        dict(project_name="my_project", description="placeholder"),
        dict(project_name="other", description="placeholder"),
    ],  # fmt: skip
    "deployment": [
        _deployment(1, 1, "v0.0", 2, GOOD_SHA, True),  # two live deployments of model 1:
        _deployment(2, 1, "v0.1", 3, "cd" * 32, True),  # the newest (this one) stays live
        _deployment(3, 1, "v0.2", 4, "ef" * 32, False),
        _deployment(7, 2, "v1.0", 5, "placeholder", True),  # not a checksum: kept, flagged
        _deployment(8, 2, "v1.1", 6, "AB" * 32, False),  # upper case: normalised
    ],
    "flow": [
        dict(flow_id="test", flow_name="my_test_flow", project_name="my_project", deployment_id=1),
        dict(flow_id="uuid-a", flow_name="flow_a", project_name="my_project", deployment_id=2),
        dict(flow_id="uuid-b", flow_name="flow_b", project_name="other", deployment_id=2),  # a 2nd flow
        dict(flow_id="parent", flow_name="parent_flow", project_name="my_project", deployment_id=3),
        dict(flow_id="child", flow_name="child_flow", project_name="other", deployment_id=7),
    ],
    "flow_of_flows": [  # positions 1, 1, 0: renumbered 2, 3, 1 in (position, _id) order
        dict(_id=1, parent_flow_id="parent", flow_id="test", position=1),
        dict(_id=2, parent_flow_id="parent", flow_id="child", position=1),
        dict(_id=4, parent_flow_id="parent", flow_id="uuid-a", position=0),
    ],
}
ORDER = ("model", "project", "deployment", "flow", "flow_of_flows")


def create(engine: sa.Engine, rows: dict[str, list[dict[str, Any]]] = ROWS) -> None:
    """The predecessor's ``create_all`` and the sample rows (times written as the server's naive now())."""
    with engine.begin() as conn:
        METADATA.create_all(conn)
        for name in ORDER:
            table = METADATA.tables[name]
            if rows[name]:
                conn.execute(table.insert(), [_naive(r) for r in rows[name]])


def _naive(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.replace(tzinfo=None) if isinstance(v, datetime) else v for k, v in row.items()}


def dump(engine: sa.Engine) -> dict[str, Any]:
    """Every table's columns, constraints and rows: compares a whole database before and after."""
    out: dict[str, Any] = {}
    with engine.connect() as conn:
        insp = sa.inspect(conn)
        for name in sorted(insp.get_table_names()):
            table = sa.Table(name, sa.MetaData(), autoload_with=conn)
            out[name] = {
                "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(name)],
                "fks": sorted(str(fk) for fk in insp.get_foreign_keys(name)),
                "unique": sorted(str(u) for u in insp.get_unique_constraints(name)),
                "rows": sorted(repr(tuple(r)) for r in conn.execute(sa.select(table))),
            }
    return out
