"""The FastAPI application: ``create_app(context)`` serves the registry under /api/v1.

Routes are synchronous (``def``): FastAPI runs them in its thread pool, each
on the service's pooled connections. The server holds the database
credentials; clients hold a token (see :mod:`.deps`). Every error goes
through :mod:`.problems`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Optional

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from lume_services import __version__
from lume_services.api import problems
from lume_services.api.limits import BodyLimit
from lume_services.api.routes import deployments, jobs, live, models, registry, runs, tokens
from lume_services.services.models.db.revision import SCHEMA_REVISION

PREFIX = "/api/v1"
DESCRIPTION = """The lume-services model registry.

Send a token as `Authorization: Bearer <token>` (an administrator creates one
with `lume-services tokens create NAME --scope read|write|admin`). Errors are
`application/problem+json`, with the library's message in `detail` and its
exception class in `error`.
"""


def create_app(context: Optional[Any] = None) -> FastAPI:
    """The API for ``context`` (default: ``lume_services.config.get_context()`` from LUME_* settings)."""
    if context is None:
        from lume_services.config import get_context

        context = get_context()
    settings = context.settings.api

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """Each server process runs LUME_API__JOB_THREADS job runners while it serves."""
        runner = None
        if settings.job_threads:
            from lume_services.api.jobs import JobRunner

            runner = JobRunner(context, threads=settings.job_threads, lease=settings.job_lease)
            runner.start()
        app.state.job_runner = runner
        yield
        if runner is not None:
            runner.stop()

    app = FastAPI(title="lume-services", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  openapi_url=f"{PREFIX}/openapi.json", docs_url=f"{PREFIX}/docs", redoc_url=None)  # fmt: skip
    app.state.context = context
    for module in (models, deployments, live, registry, jobs, runs, tokens):
        app.include_router(module.router, prefix=PREFIX, responses=problems.RESPONSES)
    problems.install(app)
    from lume_services.ui.site import ui_router

    app.include_router(ui_router())  # the web UI, outside the API's document
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, max_upload_bytes=settings.max_upload_bytes)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """The process is up (nothing else is checked)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses={503: problems.RESPONSES[503]})
    def readyz() -> JSONResponse:
        """The database answers and its schema is the one this server expects."""
        try:
            current = context.model_db().schema_revision()
        except Exception as exc:  # any failure to reach the database: not ready
            return problems.problem(503, f"The database is not reachable ({type(exc).__name__}).", "NotReady")
        if current != SCHEMA_REVISION:
            return problems.problem(503, f"The database schema is at {current!r}, not {SCHEMA_REVISION!r}; "
                                    "run `lume-services db upgrade`.", "NotReady")  # fmt: skip
        return JSONResponse({"status": "ready", "schema_revision": current})

    return app
