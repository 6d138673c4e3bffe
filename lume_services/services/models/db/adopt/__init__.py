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

from lume_services.services.models.db.adopt.convert import adopt, describe
from lume_services.services.models.db.adopt.detect import (
    ACTOR,
    ADOPT_REVISION,
    LIVE_ACTOR,
    PREFECT1_TAG,
    STAGING,
    Finding,
    Report,
    inspect_database,
    is_predecessor,
    predecessor_problems,
)
from lume_services.services.models.db.adopt.plan import UNKNOWN_TIME
from lume_services.services.models.db.adopt.restore import (
    is_prefect1_flow,
    prefect1_flow_ids,
    release_prefect1_flow,
    unverified_checksum,
)

__all__ = [
    "ACTOR", "ADOPT_REVISION", "LIVE_ACTOR", "PREFECT1_TAG", "STAGING", "UNKNOWN_TIME", "Finding", "Report", "adopt", "describe",
    "inspect_database", "is_predecessor", "is_prefect1_flow", "predecessor_problems", "prefect1_flow_ids",
    "release_prefect1_flow", "unverified_checksum",
]  # fmt: skip
