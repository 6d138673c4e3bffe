"""A small client of MLflow's REST API (model registry and proxied artifacts), over httpx.

Only what the bridge needs: search registered models and model versions
(paged), set and delete an alias, list and stream artifacts. The ``mlflow``
package is never imported (it is a large dependency of the tests and
benchmarks only). Credentials come from MLflow's own variables only
(``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``, or
``MLFLOW_TRACKING_TOKEN``): read when the client is made, held by httpx, never
stored, never part of a repr, a log line or an error message. Credentials
written into the URL (``https://user:pw@host``) are taken out of it the same way.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any, Optional
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from lume_services.errors import (
    MlflowAuthError,
    MlflowModelError,
    MlflowRequestError,
    MlflowUnreachableError,
    NotMlflowError,
)
from lume_services.mlflow.transport import quick_ack_transport

API = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
PAGE = 1000  # results per search page (MLflow allows up to 1000 registered models per page)
VERSIONS_PAGE = 10_000  # MlflowClient.search_model_versions' own page size
RETRIES = 3


def public_url(url: str) -> tuple[str, Optional[httpx.BasicAuth]]:
    """``url`` without credentials and without a trailing slash, and the credentials it held."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise NotMlflowError(url.split("@")[-1], "expected an http:// or https:// URL")
    auth = None
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    if parts.username is not None:
        auth = httpx.BasicAuth(parts.username, parts.password or "")
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", "")), auth


def _credentials(from_url: Optional[httpx.BasicAuth]) -> tuple[Optional[httpx.Auth], dict[str, str]]:
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    if token:
        return None, {"Authorization": f"Bearer {token}"}
    if user:
        return httpx.BasicAuth(user, os.environ.get("MLFLOW_TRACKING_PASSWORD", "")), {}
    return from_url, {}


class MlflowClient:
    """The REST API of one MLflow tracking server (``url`` is what MLFLOW_TRACKING_URI holds)."""

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        self.url, url_auth = public_url(url)
        auth, headers = _credentials(url_auth)
        self._http = httpx.Client(base_url=self.url, auth=auth, headers=headers, timeout=timeout,
                                  transport=quick_ack_transport())  # fmt: skip

    def __repr__(self) -> str:
        return f"MlflowClient({self.url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> MlflowClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- requests ---------------------------------------------------------------

    def _send(self, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
        """One request, retried on connection errors and 5xx answers; errors named without secrets."""
        for attempt in range(RETRIES):
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                if attempt + 1 == RETRIES:
                    raise MlflowUnreachableError(self.url, type(exc).__name__) from None
            else:
                if response.status_code < 500 or attempt + 1 == RETRIES:
                    return self._checked(response, what)
            time.sleep(0.2 * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _checked(self, response: httpx.Response, what: str) -> httpx.Response:
        status = response.status_code
        if status in (401, 403):
            raise MlflowAuthError(self.url, status)
        if status == 404 and "mlflow" not in response.headers.get("content-type", "") and not _is_json(response):
            raise NotMlflowError(self.url, f"HTTP 404 for {what}")
        if status >= 400:
            raise MlflowRequestError(self.url, what, status, _error_text(response))
        return response

    def _json(self, method: str, path: str, what: str, **kwargs: Any) -> dict[str, Any]:
        response = self._send(method, path, what, **kwargs)
        try:
            body = response.json()
        except ValueError:
            raise NotMlflowError(self.url, f"{what} answered {response.headers.get('content-type')!r}, not JSON") from None
        if not isinstance(body, dict):
            raise NotMlflowError(self.url, f"{what} answered {type(body).__name__}, not a JSON object")
        return body

    def _pages(self, path: str, key: str, what: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        token = None
        while True:
            body = self._json("GET", path, what, params={**params, **({"page_token": token} if token else {})})
            if key not in body and body and "next_page_token" not in body:
                raise NotMlflowError(self.url, f"{what} answered without {key!r}")
            yield from body.get(key, [])
            token = body.get("next_page_token")
            if not token:
                return

    # -- the registry ------------------------------------------------------------

    def registered_models(self, names: Optional[list[str]] = None) -> Iterator[dict[str, Any]]:
        """Registered models (with tags and aliases); ``names``: only those."""
        if names:
            for name in names:
                try:
                    body = self._json("GET", f"{API}/registered-models/get", f"registered model {name!r}",
                                      params={"name": name})  # fmt: skip
                except MlflowRequestError as exc:
                    if exc.status != 404:
                        raise
                    raise MlflowModelError(
                        name, f"the tracking server {self.url!r} has no registered model of that name",
                        "Check the --model names (names are case-sensitive).",
                    ) from None  # fmt: skip
                yield body["registered_model"]
            return
        yield from self._pages(f"{API}/registered-models/search", "registered_models", "the registered models",
                               {"max_results": PAGE})  # fmt: skip

    def model_versions(self, name: Optional[str] = None) -> Iterator[dict[str, Any]]:
        """Every model version (of ``name``, else of all registered models), paged."""
        params: dict[str, Any] = {"max_results": VERSIONS_PAGE}
        if name is not None:
            params["filter"] = "name='{}'".format(name.replace("'", "\\'"))
        yield from self._pages(f"{API}/model-versions/search", "model_versions", "the model versions", params)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self._json("POST", f"{API}/registered-models/alias", f"setting alias {alias!r} of {name!r}",
                   json={"name": name, "alias": alias, "version": version})  # fmt: skip

    def delete_alias(self, name: str, alias: str) -> None:
        self._json("DELETE", f"{API}/registered-models/alias", f"deleting alias {alias!r} of {name!r}",
                   params={"name": name, "alias": alias})  # fmt: skip

    def download_uri(self, name: str, version: str) -> str:
        body = self._json("GET", f"{API}/model-versions/get-download-uri", f"version {version!r} of {name!r}",
                          params={"name": name, "version": version})  # fmt: skip
        return body["artifact_uri"]

    # -- artifacts (served by the tracking server: mlflow-artifacts:/ URIs) ---------

    def list_files(self, root: str) -> Iterator[tuple[str, int]]:
        """(path relative to ``root``, size) of every file under the artifact path ``root``, recursively."""
        pending = [""]
        while pending:
            sub = pending.pop()
            body = self._json("GET", ARTIFACTS, f"the artifacts under {root!r}",
                              params={"path": f"{root}/{sub}".rstrip("/")})  # fmt: skip
            for entry in body.get("files", []):
                rel = f"{sub}/{entry['path'].rsplit('/', 1)[-1]}".lstrip("/")
                if entry.get("is_dir"):
                    pending.append(rel)
                else:
                    yield rel, int(entry.get("file_size") or 0)

    def stream(self, path: str) -> Iterator[bytes]:
        """The bytes of one artifact file, in chunks."""
        what = f"artifact {path!r}"
        try:
            with self._http.stream("GET", f"{ARTIFACTS}/{quote(path)}") as response:
                if response.status_code >= 400:
                    response.read()
                self._checked(response, what)
                yield from response.iter_bytes(1 << 16)
        except httpx.TransportError as exc:
            raise MlflowUnreachableError(self.url, type(exc).__name__) from None


def artifact_path(uri: str) -> Optional[str]:
    """The path under the server's artifact root of an ``mlflow-artifacts:`` URI (None: another scheme)."""
    if not uri.startswith("mlflow-artifacts:"):
        return None
    parts = urlsplit(uri)
    return parts.path.lstrip("/")


def _is_json(response: httpx.Response) -> bool:
    try:
        response.json()
        return True
    except ValueError:
        return False


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
        return str(body.get("message") or body.get("error_code") or body)
    except (ValueError, AttributeError):
        return response.text[:300] or response.reason_phrase
