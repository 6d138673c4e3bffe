"""The one mapping of errors onto HTTP: statuses and application/problem+json bodies (RFC 9457).

The body's ``detail`` is the library's message (which never holds a
secret), ``error`` the exception's class name, so the remote client raises
the same class with the same message. Request-shape errors (FastAPI's) are
422 with each field's problem but never the value sent.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any, Optional

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from lume_services import errors

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"
UNREADABLE_BODY = "There was an error parsing the body"  # FastAPI's 400: malformed input, answered as 422

# Most specific first: the first class an error is an instance of decides.
STATUS: list[tuple[type[BaseException], int]] = [
    (errors.AuthenticationError, 401),
    (errors.PermissionDeniedError, 403),
    (errors.NotFoundError, 404),
    (errors.ConflictError, 409),
    (errors.ValidationError, 422),
    (errors.SourceError, 422),  # a source the server does not accept (a local path, plain http)
    (errors.DatabaseError, 503),
    (errors.SchemaNotCurrentError, 503),
    (errors.SchedulingNotConfiguredError, 503),  # the server's Prefect settings
    (errors.SchedulingError, 502),  # Prefect, behind the server, failed
    (errors.LUMEServicesError, 500),
]


class FieldProblem(BaseModel):
    field: str
    problem: str


class Problem(BaseModel):
    """An error answer (application/problem+json, RFC 9457)."""

    type: str
    title: str
    status: int
    detail: str  # the library's message
    error: str  # the exception's class name
    fields: Optional[list[FieldProblem]] = None  # 422 for a request FastAPI refused: each field's problem
    attributes: Optional[dict[str, Any]] = None  # the library error's plain attributes (ids, fields, step)


def _declared(status: int, when: str) -> dict[str, Any]:
    content = {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    answer: dict[str, Any] = {"description": f"{HTTPStatus(status).phrase}: {when}", "content": content}
    if status == 401:
        answer["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}}
    return answer


# The error answers every /api/v1 route declares (the routers' ``responses=``), so the document
# names each status the mapping above can give, with its problem+json body.
RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _declared(401, "no token, or a revoked, expired or unknown one."),
    403: _declared(403, "the token's scope or project does not allow this."),
    404: _declared(404, "no such model, deployment, project, flow, request or token."),
    409: _declared(409, "the change conflicts with the stored state (e.g. the live deployment moved)."),
    413: _declared(413, "the request body is larger than LUME_API__MAX_BODY_BYTES (an upload: MAX_UPLOAD_BYTES)."),
    422: _declared(422, "the request or a value in it is invalid; nothing was stored."),
    502: _declared(502, "Prefect, behind the server, failed."),
    503: _declared(503, "the database is unreachable, its schema is not current, or no Prefect server is set."),
}


def status_of(exc: BaseException) -> int:
    return next(code for cls, code in STATUS if isinstance(exc, cls))


def _plain(value: Any, depth: int = 0) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return not isinstance(value, str) or len(value) <= 1000  # never a large value sent back
    if depth < 2 and isinstance(value, (list, tuple)):
        return len(value) <= 100 and all(_plain(v, depth + 1) for v in value)
    if depth < 2 and isinstance(value, dict):
        return len(value) <= 100 and all(isinstance(k, str) and _plain(v, depth + 1) for k, v in value.items())
    return False


def attributes(exc: BaseException) -> dict[str, Any]:
    """The error's plain attributes (ids, fields, the failed step), so the client's copy carries them too.

    Errors never hold secrets (a secret's value is kept as "***").
    """
    return {k: v for k, v in vars(exc).items() if not k.startswith("_") and _plain(v)}


def problem(status: int, detail: str, error: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status,
            "detail": detail, "error": error, **extra}  # fmt: skip
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def field_problems(exc: RequestValidationError) -> list[dict[str, str]]:
    return [{"field": ".".join(str(p) for p in e.get("loc", ())), "problem": str(e.get("msg", ""))}
            for e in exc.errors()]  # fmt: skip


def install(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        """FastAPI's document, with the Problem schema that RESPONSES refer to."""
        if app.openapi_schema is None:
            schemas = generate().setdefault("components", {}).setdefault("schemas", {})
            schemas["FieldProblem"] = FieldProblem.model_json_schema()
            schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas["Problem"].pop("$defs", None)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(errors.LUMEServicesError)
    async def library_error(request: Request, exc: errors.LUMEServicesError) -> JSONResponse:
        status = status_of(exc)
        if status >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, exc)
        return problem(status, str(exc), type(exc).__name__, attributes=attributes(exc))

    @app.exception_handler(RequestValidationError)
    async def request_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = field_problems(exc)
        listed = "; ".join(f"{f['field']}: {f['problem']}" for f in fields[:10])
        return problem(422, f"Invalid request: {listed}. Nothing was stored.", "ValidationError", fields=fields)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 400 and detail == UNREADABLE_BODY:  # e.g. bytes that are not UTF-8
            return problem(422, "The request body could not be read as UTF-8 JSON. Nothing was stored.",
                           "ValidationError")  # fmt: skip
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"No endpoint {request.url.path!r}; the API is described at /api/v1/openapi.json."
        return problem(exc.status_code, detail, "HTTPError")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed unexpectedly", request.method, request.url.path)
        return problem(500, "The server failed unexpectedly; the error is in its log. Nothing is known to be "
                       "stored; read the state back before retrying.", "UnexpectedError")  # fmt: skip
