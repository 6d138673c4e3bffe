"""ModelDBService: the model registry's storage API.

Verbs: ``store_x`` creates and returns the spec's id (storing an identical
row again returns the existing id; a contradicting one raises a
:class:`~lume_services.errors.ConflictError` and writes nothing), ``get_x``
returns exactly one record or raises ``XNotFoundError``, ``get_xs`` and
``list_xs`` may return empty results, ``update_x`` and ``delete_x`` change
one row. Every public method is one unit of work (one transaction). Input is
validated against the schema before any SQL runs, so SQLite, MariaDB and
PostgreSQL behave alike. Frozen records, never ORM rows, are returned.

Concurrency: writes that touch a model's deployments first lock the model
row (``SELECT ... FOR UPDATE``; on SQLite every write transaction is
``BEGIN IMMEDIATE``), so "at most one live deployment per model" and "one row
per (model, version)" hold under concurrent writers.
"""

from __future__ import annotations

from lume_services.services.models.bulk import BulkOps
from lume_services.services.models.deployment_ops import DeploymentOps
from lume_services.services.models.flow_ops import FlowOps
from lume_services.services.models.model_ops import ModelOps

__all__ = ["ModelDBService"]


class ModelDBService(ModelOps, DeploymentOps, FlowOps, BulkOps):
    """Store and query models, deployments, projects, flows and compositions."""
