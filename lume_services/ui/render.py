"""Templates (Jinja2, autoescaped: user text is always text) and the headers every page carries."""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from importlib.resources import files
from typing import Any, Optional

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.responses import HTMLResponse

from lume_services import __version__

# Pages load only this site's own files; they may not be framed; forms post only here.
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # a page shows one person's view of changing state
}  # fmt: skip
STATIC = {"ui.css": "text/css; charset=utf-8", "ui.js": "text/javascript; charset=utf-8"}


def utc(value: Any) -> Markup:
    """A time as UTC text, with the machine-readable time for the local time shown on hover (ui.js)."""
    if not isinstance(value, datetime):
        return Markup("&ndash;")
    iso = value.isoformat()
    text = value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(iso, text, text)


def as_json(value: Any) -> str:
    return json.dumps(value, indent=1, sort_keys=True, default=str)


def short(value: Any, n: int = 12) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= n else text[:n] + "\u2026"


def default_text(variable: Any) -> Optional[str]:
    """A variable's default as a form field's value (an array's as JSON)."""
    if variable.default is None:
        return None
    return str(variable.default) if variable.kind == "scalar" else json.dumps(variable.default)


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=PackageLoader("lume_services.ui", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True))  # fmt: skip
    env.filters.update(utc=utc, as_json=as_json, short=short)
    env.globals.update(version=__version__, default_text=default_text)
    return env


def page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = environment().get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def static_file(name: str) -> tuple[bytes, str]:
    """The bytes and media type of a static asset (KeyError for anything else)."""
    media = STATIC[name]
    return files("lume_services.ui").joinpath("static", name).read_bytes(), media


__all__ = ["page", "static_file", "utc"]
