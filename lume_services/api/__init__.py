"""The REST API (FastAPI, under ``/api/v1``): :func:`lume_services.api.app.create_app`.

Importing this package is cheap; FastAPI is imported by :mod:`.app`.
"""
