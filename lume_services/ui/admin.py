"""The administrator's pages (admin scope): API tokens and webhooks with their deliveries.

A token or a webhook secret just made is shown on the answer to the form
that made it, once (the page is never cached), and never again. Every change
goes through the service acting as the administrator, so it is audited like
the same change made with the CLI.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Optional

from fastapi import Form, Query
from starlette.responses import RedirectResponse, Response

from lume_services.errors import ValidationError
from lume_services.ui.auth import Viewer
from lume_services.ui.pages import CsrfField as Csrf
from lume_services.ui.pages import Seen, router
from lume_services.ui.render import page


def _tokens_page(seen: Viewer, status: int = 200, **context: object) -> Response:
    return page("admin_tokens.html", status, viewer=seen, title="API tokens",
                tokens=seen.service.list_tokens(include_revoked=True), **context)  # fmt: skip


@router.get("/admin/tokens")
def tokens(seen: Seen) -> Response:
    seen.require("admin", "see the administrator's pages")
    return _tokens_page(seen)


@router.post("/admin/tokens")
def create_token(seen: Seen, csrf: Csrf, name: Annotated[str, Form(max_length=100)],
                 scope: Annotated[str, Form(max_length=16)],
                 project_name: Annotated[str, Form(max_length=100)] = "",
                 expires_in_days: Annotated[str, Form(max_length=6)] = "") -> Response:  # fmt: skip
    """Create a token; the answer shows it, this once."""
    seen.check_form(csrf, needed="admin")
    days: Optional[timedelta] = None
    if expires_in_days.strip():
        if not expires_in_days.strip().isdigit() or not 1 <= int(expires_in_days) <= 3650:
            raise ValidationError("expires_in_days", expires_in_days, "expected a whole number of days from 1 to 3650",
                                  "No token was created.")  # fmt: skip
        days = timedelta(days=int(expires_in_days))
    new = seen.service.create_token(name.strip(), scope=scope, project_name=project_name.strip() or None,
                                    expires_in=days)  # fmt: skip
    return _tokens_page(seen, 201, new=new)


@router.post("/admin/tokens/{name}/revoke")
def revoke_token(seen: Seen, name: str, csrf: Csrf) -> Response:
    seen.check_form(csrf, needed="admin")
    seen.service.revoke_token(name)
    return RedirectResponse("/admin/tokens", status_code=303)


def _webhooks_page(seen: Viewer, status: int = 200, **context: object) -> Response:
    return page("admin_webhooks.html", status, viewer=seen, title="Webhooks", webhooks=seen.service.list_webhooks(),
                **context)  # fmt: skip


@router.get("/admin/webhooks")
def webhooks(seen: Seen) -> Response:
    seen.require("admin", "see the administrator's pages")
    return _webhooks_page(seen)


@router.post("/admin/webhooks")
def add_webhook(seen: Seen, csrf: Csrf, url: Annotated[str, Form(max_length=2000)],
                event_types: Annotated[str, Form(max_length=1000)],
                model_id: Annotated[str, Form(max_length=10)] = "") -> Response:  # fmt: skip
    """Add a webhook (its URL is checked: https, never an internal address); the answer shows its secret once."""
    seen.check_form(csrf, needed="admin")
    if model_id.strip() and not model_id.strip().isdigit():
        raise ValidationError("model_id", model_id, "expected a model id, or nothing for every model",
                              "No webhook was added.")  # fmt: skip
    types = [t for t in event_types.replace(",", " ").split() if t]
    new = seen.service.add_webhook(url.strip(), event_types=types,
                                   model_id=int(model_id) if model_id.strip() else None)  # fmt: skip
    return _webhooks_page(seen, 201, new=new)


@router.post("/admin/webhooks/{webhook_id}/remove")
def remove_webhook(seen: Seen, webhook_id: int, csrf: Csrf) -> Response:
    seen.check_form(csrf, needed="admin")
    seen.service.remove_webhook(webhook_id)
    return RedirectResponse("/admin/webhooks", status_code=303)


@router.get("/admin/webhooks/{webhook_id}")
def webhook(seen: Seen, webhook_id: int, after: Annotated[Optional[int], Query(ge=0)] = None,
            done: Annotated[Optional[str], Query(max_length=20)] = None) -> Response:  # fmt: skip
    """A webhook's deliveries, newest page first in id order, each replayable."""
    seen.require("admin", "see the administrator's pages")
    hook = seen.service.get_webhook(webhook_id)
    deliveries = seen.service.list_deliveries(webhook_id=webhook_id, limit=50, after=after)
    return page("admin_webhook.html", viewer=seen, title=f"Webhook {webhook_id}", hook=hook,
                deliveries=deliveries.items, following=deliveries.next_after,
                done="The delivery is queued again." if done == "replayed" else None)  # fmt: skip


@router.post("/admin/deliveries/{delivery_id}/replay")
def replay(seen: Seen, delivery_id: int, csrf: Csrf) -> Response:
    seen.check_form(csrf, needed="admin")
    delivery = seen.service.replay_delivery(delivery_id)
    return RedirectResponse(f"/admin/webhooks/{delivery.webhook_id}?done=replayed", status_code=303)
