"""One HTTP connection pool to a registry server: the token, timeouts, retries and errors.

Reads (GET) are retried after a connection failure or a 502/503/504 with a
short backoff; changes never are (the server may have applied one whose
answer was lost; the error says to read the state back). A problem+json
answer is raised as the library's own exception class with the server's
message and attributes, so ``except ModelNotFoundError`` works remotely.
The token is sent in the Authorization header only and never appears in a
repr or a message.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Optional

import httpx

from lume_services import __version__, errors
from lume_services.client.settings import RegistrySettings

RETRIED_STATUSES = (502, 503, 504)


def _error_classes() -> dict[str, type[errors.LUMEServicesError]]:
    found: dict[str, type[errors.LUMEServicesError]] = {}
    pending: list[type[errors.LUMEServicesError]] = [errors.LUMEServicesError]
    while pending:
        cls = pending.pop()
        found[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return found


def rebuild_error(name: Optional[str], detail: str, attributes: Any = None,
                  *, server_error: bool = False) -> errors.LUMEServicesError:  # fmt: skip
    """The library exception ``name`` with the server's message and attributes (class unknown: the nearest)."""
    cls = _error_classes().get(name or "")
    if cls is None:
        cls = errors.UnexpectedError if server_error else errors.LUMEServicesError
    exc = cls.__new__(cls)
    Exception.__init__(exc, detail)
    for key, value in (attributes or {}).items() if isinstance(attributes, dict) else ():
        try:
            setattr(exc, key, value)
        except (AttributeError, TypeError):
            pass
    return exc


def raise_problem(response: httpx.Response) -> None:
    """Raise the library exception a problem+json answer stands for."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    detail = body.get("detail")
    if not isinstance(detail, str):
        detail = f"The registry server answered {response.status_code} {response.reason_phrase}."
    name = "ValidationError" if response.status_code == 413 else body.get("error")
    raise rebuild_error(name, detail, body.get("attributes"), server_error=response.status_code >= 500)


class RegistryConnection:
    """httpx connections to one registry server, shared by the remote services (thread-safe)."""

    def __init__(self, settings: RegistrySettings) -> None:
        if settings.url is None:
            raise errors.ConfigurationError("LUME_REGISTRY__URL is not set; no registry server to talk to.")
        self.url = settings.url
        self.retries = settings.retries
        headers = {"User-Agent": f"lume-services/{__version__}"}
        if settings.token is not None:
            headers["Authorization"] = f"Bearer {settings.token.get_secret_value()}"
        self._client = httpx.Client(base_url=self.url, headers=headers, timeout=settings.timeout)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RegistryConnection({self.url!r})"

    def close(self) -> None:
        self._client.close()

    def request(self, method: str, path: str, *, params: Optional[dict[str, Any]] = None,
                json: Any = None, files: Any = None, data: Any = None,
                headers: Optional[dict[str, str]] = None) -> httpx.Response:  # fmt: skip
        """The answer to one request (2xx), or the library's exception."""
        attempts = 1 + (self.retries if method == "GET" else 0)
        params = {k: v for k, v in (params or {}).items() if v is not None}
        for attempt in range(attempts):
            try:
                response = self._client.request(method, f"/api/v1{path}", params=params, json=json, files=files,
                                                data=data, headers=headers)  # fmt: skip
            except httpx.TransportError as exc:
                if attempt + 1 < attempts:
                    time.sleep(0.2 * 2**attempt)
                    continue
                raise errors.RegistryUnreachableError(self.url, f"{type(exc).__name__}: {exc}",
                                                      change=method != "GET") from None  # fmt: skip
            if response.status_code in RETRIED_STATUSES and attempt + 1 < attempts:
                time.sleep(0.2 * 2**attempt)
                continue
            if response.status_code >= 400:
                raise_problem(response)
            return response
        raise AssertionError("unreachable")

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params).json()

    def send(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.request(method, path, json=body, **kwargs).json()
