"""ModelDBService: the model registry's storage API.

Verbs: ``store_x`` creates and returns the spec's id (storing an identical
row again returns the existing id; a contradicting one raises a
:class:`~lume_services.errors.ConflictError` and writes nothing), ``get_x``
returns exactly one record or raises ``XNotFoundError``, ``get_xs`` and
``list_xs`` may return empty results, ``update_x`` and ``delete_x`` change
one row. Every public method is one unit of work (one transaction). Input is
validated against the schema before any SQL runs, so SQLite, MariaDB and
PostgreSQL behave alike. Frozen records, never ORM rows, are returned.

Every write goes through one write path (:mod:`.writes`): it locks the
owning model, applies the rules (one live deployment, approval on
protected models, one flow per deployment) and writes the row changes with
their audit event and live history in the same transaction.

Concurrency: writes that touch a model's deployments first lock the model
row (``SELECT ... FOR UPDATE``; on SQLite every write transaction is
``BEGIN IMMEDIATE``), so "at most one live deployment per model" and "one row
per (model, version)" hold under concurrent writers.
"""

from __future__ import annotations

from lume_services.services.models.audit_ops import AuditOps
from lume_services.services.models.bulk import BulkOps
from lume_services.services.models.delivery_ops import DeliveryOps
from lume_services.services.models.deployment_ops import DeploymentOps
from lume_services.services.models.event_ops import EventOps
from lume_services.services.models.flow_ops import FlowOps
from lume_services.services.models.job_ops import JobOps
from lume_services.services.models.live_ops import LiveOps
from lume_services.services.models.mirror_ops import MirrorOps
from lume_services.services.models.model_ops import ModelOps
from lume_services.services.models.overview_ops import OverviewOps
from lume_services.services.models.run_ops import RunOps
from lume_services.services.models.session_ops import SessionOps
from lume_services.services.models.tag_ops import TagOps
from lume_services.services.models.token_ops import TokenOps
from lume_services.services.models.webhook_ops import WebhookOps

__all__ = ["ModelDBService"]


class ModelDBService(
    ModelOps, DeploymentOps, LiveOps, FlowOps, TagOps, BulkOps, MirrorOps, AuditOps, EventOps, WebhookOps,
    DeliveryOps, TokenOps, SessionOps, JobOps, RunOps, OverviewOps,
):
    """Store and query models, deployments, projects, flows and compositions, and their history.

    ``ModelDBService(model_db, actor="jgarrahan")`` records its changes as
    that actor (default: ``<os user>@<hostname>``); ``with_actor(name)`` is
    the same service acting for someone else (the REST server's principal).
    ``list_events`` is the event feed; webhooks and their deliveries are
    ``add_webhook`` ... ``replay_since`` (the delivery process: ``lume_services.events``);
    REST API tokens are ``create_token`` ... ``authenticate``; the server's jobs
    ``submit_job`` ... ``finish_job``; runs submitted through the registry
    ``record_run`` ... ``list_runs``; the web UI's sessions ``open_session`` ...
    ``close_session`` and its overviews ``list_beamlines``, ``get_live_of`` and ``get_flows_of``.
    """
