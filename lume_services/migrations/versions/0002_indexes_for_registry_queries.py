"""Indexes for the registry's remaining query predicates.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

0001 already indexes most predicates: model identity (unique on the five
fields, so also lookups by author), deployments by model and deploy date,
the live deployment per model, (model, version), sha256, flows by
deployment (unique) and project, and compositions by parent and position
(unique) and by subflow. Two predicates were left to full scans or sorts:

* ``ix_deployment_model_id`` (model_id, deployment_id): a model's
  deployments in id order, the keyset page of ``list_deployments(model_id=)``
  (the (model_id, deploy_date, ...) index gives date order, not id order);
* ``ix_model_facility_beampath`` (facility, beampath, laboratory): models of
  a machine, ``list_models(facility=..., beampath=...)`` (the identity index
  starts with author and cannot serve them).

Self-contained on purpose, like 0001.
"""

from collections.abc import Sequence
from typing import Union

from alembic import op

revision: str = "0002"
down_revision: Union[str, Sequence[str], None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_index("ix_deployment_model_id", "deployment", ["model_id", "deployment_id"])
    op.create_index("ix_model_facility_beampath", "model", ["facility", "beampath", "laboratory"])


def downgrade() -> None:
    op.drop_index("ix_model_facility_beampath", table_name="model")
    op.drop_index("ix_deployment_model_id", table_name="deployment")
