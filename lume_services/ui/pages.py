"""The pages: beamlines, a beampath's models, search, a model with its deployments and history; sign-in.

Reads work without JavaScript. Every change is a form POST checked by
:meth:`.auth.Viewer.check_form` and answered with a redirect to the page it
came from (303), so reloading never sends it twice. Errors render as a page
with the library's message and the status the API gives the same error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Optional
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.responses import RedirectResponse, Response

from lume_services.api.problems import field_problems, status_of
from lume_services.api.routes.common import tag_filter
from lume_services.errors import (
    AuthenticationError,
    DeploymentNotFoundError,
    LUMEServicesError,
    ValidationError,
)
from lume_services.ui.auth import (
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    Viewer,
    new_sign_in_value,
    safe_next,
    same,
    viewer,
)
from lume_services.ui.render import page, static_file

MODEL_PATH = re.compile(r"/models/[0-9]{1,10}")
PAGE = 50  # models or deployments per page
Text = Annotated[Optional[str], Query(max_length=200)]
Seen = Annotated[Viewer, Depends(viewer)]
DeploymentField = Annotated[int, Form(ge=1, le=2**31 - 1)]
ExpectedField = Annotated[str, Form(max_length=20)]  # the live deployment the page showed, or "none"
CsrfField = Annotated[str, Form(max_length=100)]
ReasonField = Annotated[str, Form(max_length=1000)]
DONE = {  # what a redirect after a change says (fixed text: nothing from the request is echoed)
    "live": "The deployment is live now.",
    "requested": "The request to go live was recorded; another person must approve it.",
    "approved": "Approved: the deployment is live now.",
    "rejected": "The request was rejected.",
}


class PageRoute(APIRoute):
    """A route whose errors are pages: sign-in for a missing session, else the message and its status."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handle(request)
            except AuthenticationError as exc:
                if request.method == "GET":
                    target = urlencode({"next": request.url.path + (f"?{request.url.query}" if request.url.query else "")})
                    response: Response = RedirectResponse(f"/sign-in?{target}", status_code=303)
                    if request.cookies.get(SESSION_COOKIE):
                        response.delete_cookie(SESSION_COOKIE, path="/")
                    return response
                return page("error.html", 401, viewer=None, title="Sign in", message=str(exc))
            except RequestValidationError as exc:
                listed = "; ".join(f"{f['field']}: {f['problem']}" for f in field_problems(exc)[:10])
                return page("error.html", 422, viewer=None, title="Invalid request",
                            message=f"Invalid request: {listed}. Nothing was changed.")  # fmt: skip
            except LUMEServicesError as exc:
                status = status_of(exc)
                return page("error.html", status, viewer=None, title=type(exc).__name__, message=str(exc),
                            back=_page_of(request.url.path))  # fmt: skip

        return route


router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _page_of(path: str) -> str:
    """The page a form's path belongs to (a model's page for its forms), to go back to after an error."""
    found = MODEL_PATH.match(path)
    return found.group(0) if found else "/"


def _back(path: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?done={done}", status_code=303)


def _seconds_until(when: datetime) -> int:
    return max(1, int((when - datetime.now(UTC)).total_seconds()))


def _expected(value: str) -> Optional[int]:
    if value == "none":
        return None
    if not value.isdigit():
        raise ValidationError("expected_live", value, 'expected a deployment id or "none"', "Nothing was changed.")
    return int(value)


# -- static files and sign-in ---------------------------------------------------------------


@router.get("/ui/static/{name}")
def static(name: str) -> Response:
    try:
        body, media = static_file(name)
    except KeyError:
        return Response("Not found", status_code=404, media_type="text/plain")
    return Response(body, media_type=media, headers={"Cache-Control": "public, max-age=3600",
                                                     "X-Content-Type-Options": "nosniff"})  # fmt: skip


@router.get("/sign-in")
def sign_in_form(request: Request, next: Annotated[Optional[str], Query(max_length=2000)] = None) -> Response:
    value = new_sign_in_value()
    response = page("sign_in.html", viewer=None, title="Sign in", next=safe_next(next), sign_in=value)
    response.set_cookie(SIGN_IN_COOKIE, value, max_age=3600, path="/sign-in", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")  # fmt: skip
    return response


@router.post("/sign-in")
def sign_in(request: Request, token: Annotated[str, Form(max_length=200)], check: Annotated[str, Form(max_length=100)],
            next: Annotated[str, Form(max_length=2000)] = "/") -> Response:  # fmt: skip
    if not same(request.cookies.get(SIGN_IN_COOKIE), check):
        return page("sign_in.html", 403, viewer=None, title="Sign in", next=safe_next(next),
                    sign_in=check, message="The sign-in form is not this site's page; reload it and sign in again.")  # fmt: skip
    context = request.app.state.context
    service = context.model_db_service()
    lifetime = timedelta(hours=context.settings.api.session_hours)
    try:
        session = service.open_session(token.strip(), lifetime=lifetime)
    except AuthenticationError as exc:
        return page("sign_in.html", 401, viewer=None, title="Sign in", next=safe_next(next), sign_in=check,
                    message=str(exc))  # fmt: skip
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(SESSION_COOKIE, session.session.get_secret_value(), max_age=_seconds_until(session.expires),
                        path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https")  # fmt: skip
    response.delete_cookie(SIGN_IN_COOKIE, path="/sign-in")
    return response


@router.post("/sign-out")
def sign_out(request: Request, seen: Seen, csrf: CsrfField) -> Response:
    seen.check_form(csrf, needed="read")
    seen.service.close_session(request.cookies[SESSION_COOKIE])
    response = RedirectResponse("/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# -- reading -------------------------------------------------------------------------------------


@router.get("/")
def beamlines(seen: Seen, laboratory: Text = None) -> Response:
    """Every beampath, grouped by laboratory and facility, with its models and how many are live."""
    lines = seen.service.list_beamlines(laboratory=laboratory)
    return page("beamlines.html", viewer=seen, title="Beamlines", beamlines=lines, laboratory=laboratory)


def _models_page(seen: Viewer, template: str, title: str, after: Optional[int], query: dict[str, Any],
                 filters: dict[str, Any], **context: Any) -> Response:  # fmt: skip
    models = seen.service.list_models(limit=PAGE, after=after, **filters)
    live = seen.service.get_live_of([m.model_id for m in models.items])
    following = None
    if models.next_after is not None:
        following = "?" + urlencode({**{k: v for k, v in query.items() if v}, "after": models.next_after}, doseq=True)
    return page(template, viewer=seen, title=title, models=models.items, live=live, following=following, **context)


@router.get("/beamline")
def beamline(seen: Seen, laboratory: Annotated[str, Query(max_length=100)],
             facility: Annotated[str, Query(max_length=100)], beampath: Annotated[str, Query(max_length=100)],
             after: Annotated[Optional[int], Query(ge=0)] = None) -> Response:  # fmt: skip
    """A beampath's models, each with its live deployment, since when and who set it."""
    place = {"laboratory": laboratory, "facility": facility, "beampath": beampath}
    return _models_page(seen, "beamline.html", f"{facility} / {beampath}", after, place, place, place=place)


@router.get("/models")
def search(seen: Seen, q: Text = None, tag: Annotated[list[str], Query(max_length=20)] = (),
           after: Annotated[Optional[int], Query(ge=0)] = None) -> Response:  # fmt: skip
    """Models whose fields contain ``q`` and that carry every ``tag`` (key=value)."""
    filters: dict[str, Any] = {"search": q or None, **tag_filter(tag)}
    return _models_page(seen, "models.html", "Models", after, {"q": q, "tag": list(tag)}, filters,
                        q=q or "", tags=list(tag))  # fmt: skip


@router.get("/models/{model_id}")
def model_page(seen: Seen, model_id: int, after: Annotated[Optional[int], Query(ge=0)] = None,
               done: Annotated[Optional[str], Query(max_length=20)] = None) -> Response:  # fmt: skip
    """A model: its fields and tags, its deployments (the live one marked), its live history and requests."""
    service = seen.service
    model = service.get_model(model_id=model_id)
    deployments = service.list_deployments(model_id=model_id, limit=PAGE, after=after)
    try:
        live = service.get_live_deployment(model_id)
    except DeploymentNotFoundError:
        live = None
    history = service.get_live_history(model_id)
    pending = service.list_live_requests(model_id=model_id, state="pending", limit=100).items
    audit = service.list_audit_events(model_id=model_id, limit=100)
    runs = service.list_runs(model_id=model_id, limit=20)
    ids = [d.deployment_id for d in deployments.items]
    return page("model.html", flows=service.get_flows_of(ids), variables=service.get_variables_of(ids), viewer=seen, title=f"Model {model_id}", model=model, deployments=deployments.items,
                runs=runs.items, following=deployments.next_after, live=live, history=list(reversed(history)), pending=pending,
                audit=audit.items, audit_more=audit.next_after is not None, done=DONE.get(done or ""),
                expected="none" if live is None else str(live.deployment_id))  # fmt: skip


@router.get("/models/{model_id}/deployments/{deployment_id}")
def deployment_page(seen: Seen, model_id: int, deployment_id: int) -> Response:
    """A deployment: its fields, variables, flow and project, a composite's steps, and its runs."""
    loaded = seen.service.load_deployment(model_id=model_id, deployment_id=deployment_id)
    runs = seen.service.list_runs(deployment_id=deployment_id, limit=50)
    return page("deployment.html", viewer=seen, title=f"Deployment {deployment_id} (version "
                f"{loaded.deployment.version})", loaded=loaded, d=loaded.deployment, runs=runs.items)  # fmt: skip


# -- changing the live deployment ---------------------------------------------------------------


def _live_form(seen: Viewer, csrf: str, model_id: int, deployment_id: int, expected_live: str) -> Optional[int]:
    """Check a live form (CSRF, scope, the deployment is the model's and in the token's project); its expectation."""
    from lume_services.api.routes.live import owned

    seen.check_form(csrf)
    owned(seen.access, model_id, deployment_id)
    return _expected(expected_live)


@router.post("/models/{model_id}/live")
def make_live(seen: Seen, model_id: int, deployment_id: DeploymentField, expected_live: ExpectedField,
              csrf: CsrfField, reason: ReasonField = "") -> Response:  # fmt: skip
    """Make a deployment live if the live one is still the one the page showed (compare-and-swap)."""
    expected = _live_form(seen, csrf, model_id, deployment_id, expected_live)
    seen.service.set_live(deployment_id, expected_live=expected, reason=reason.strip() or None)
    return _back(f"/models/{model_id}", "live")


@router.post("/models/{model_id}/live-requests")
def request_live(seen: Seen, model_id: int, deployment_id: DeploymentField, expected_live: ExpectedField,
                 csrf: CsrfField, reason: ReasonField = "") -> Response:  # fmt: skip
    """Ask for a deployment of a protected model to go live (another person approves it)."""
    expected = _live_form(seen, csrf, model_id, deployment_id, expected_live)
    seen.service.request_live(deployment_id, reason=reason.strip(), expected_live=expected)
    return _back(f"/models/{model_id}", "requested")


@router.post("/live-requests/{request_id}/{decision}")
def decide(seen: Seen, request_id: int, decision: str, csrf: CsrfField, reason: ReasonField = "") -> Response:
    """Approve or reject another person's request to go live."""
    seen.check_form(csrf)
    if decision not in ("approve", "reject"):
        raise ValidationError("decision", decision, "expected approve or reject", "Nothing was changed.")
    request = seen.service.get_live_request(request_id)
    seen.access.require_project_of(request.deployment_id)
    if decision == "approve":
        seen.service.approve_live(request_id, reason=reason.strip() or None)
        return _back(f"/models/{request.model_id}", "approved")
    if not reason.strip():
        raise ValidationError("reason", reason, "a rejection needs a reason", "Nothing was changed.")
    seen.service.reject_live(request_id, reason=reason.strip())
    return _back(f"/models/{request.model_id}", "rejected")


__all__ = ["router"]
