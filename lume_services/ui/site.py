"""The whole web UI as one router: the pages, the administrator's pages and the run pages."""

from __future__ import annotations

from fastapi import APIRouter


def ui_router() -> APIRouter:
    from lume_services.ui import admin, runs  # noqa: F401 - importing them adds their pages to the router
    from lume_services.ui.pages import router

    return router
