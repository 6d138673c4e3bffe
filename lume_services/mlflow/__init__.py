"""The bridge to an MLflow model registry: import, sync, push-live (see README, "Coming from MLflow").

``client`` talks to MLflow's REST API over httpx (the ``mlflow`` package is
never imported), ``mapping`` is the mapping file, ``artifacts`` hashes and
reads a version's artifacts, ``importer`` imports and syncs, ``push`` sets the
MLflow alias from live changes made here. Every write goes through
:class:`~lume_services.services.models.service.ModelDBService`.
"""
