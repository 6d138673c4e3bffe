"""Streaming downloads with every limit a registry needs.

Connect and read timeouts, an overall deadline (a server dripping one byte
at a time is still stopped), a byte cap, at most five redirects with the
scheme re-checked on every hop (never a downgrade to http unless allowed),
and the sha256 computed over exactly the bytes served while they are written
to a private temporary file.
"""

from __future__ import annotations

import hashlib
import os
import ssl
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from lume_services.environment.settings import EnvironmentSettings
from lume_services.errors import DownloadError

MAX_REDIRECTS = 5
Progress = Callable[[int, Optional[int]], None]


@dataclass(frozen=True)
class Downloaded:
    path: Path
    sha256: str
    size: int


def download(
    url: str,
    dest_dir: Path,
    settings: EnvironmentSettings,
    *,
    progress: Optional[Progress] = None,
) -> Downloaded:
    """Download ``url`` into a new temporary file in ``dest_dir``."""
    deadline = time.monotonic() + settings.download_deadline
    timeout = httpx.Timeout(
        connect=settings.connect_timeout, read=settings.read_timeout, write=settings.read_timeout, pool=5.0
    )
    headers = {"Accept-Encoding": "identity", "User-Agent": "lume-services"}
    transport = _deadline_transport(deadline)
    with httpx.Client(
        timeout=timeout, follow_redirects=False, headers=headers, transport=transport
    ) as client:
        for _hop in range(MAX_REDIRECTS + 1):
            _check_scheme(url, settings.allow_http)
            try:
                with client.stream("GET", url) as response:
                    if response.is_redirect:
                        url = _next_hop(url, response.headers.get("location", ""))
                        continue
                    if response.status_code != 200:
                        raise DownloadError(url, f"the server answered HTTP {response.status_code}")
                    return _save(response, url, dest_dir, settings, deadline, progress)
            except httpx.TimeoutException:
                if time.monotonic() >= deadline:
                    raise DownloadError(
                        url, f"it took longer than {settings.download_deadline:g} s"
                    ) from None
                raise DownloadError(url, "the server stopped sending (timeout)") from None
            except httpx.HTTPError as exc:
                raise DownloadError(url, f"{type(exc).__name__}: {exc}") from None
    raise DownloadError(url, f"more than {MAX_REDIRECTS} redirects")


def _deadline_transport(deadline: float) -> httpx.HTTPTransport:
    """httpx's transport over sockets that enforce ``deadline`` on every connect, read and write.

    httpx has no overall timeout and applies its read timeout per read, so a server
    dripping its *headers* byte by byte would never be stopped by a check in the body
    loop. httpx 0.28 takes no network backend, so the transport's connection pool is
    rebuilt with one (tests/environment/test_fetch.py covers a header drip).
    """
    context = httpx.create_ssl_context()  # verifies; honours SSL_CERT_FILE like httpx's default
    transport = httpx.HTTPTransport(verify=context)
    transport._pool = httpcore.ConnectionPool(ssl_context=context, network_backend=_DeadlineBackend(deadline))
    return transport


def _left(timeout: Optional[float], deadline: float, error: type[Exception]) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("the download deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, deadline: float) -> None:
        self._inner, self._deadline = inner, deadline

    def read(self, max_bytes: int, timeout: Optional[float] = None) -> bytes:
        return self._inner.read(max_bytes, _left(timeout, self._deadline, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: Optional[float] = None) -> None:
        self._inner.write(buffer, _left(timeout, self._deadline, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> httpcore.NetworkStream:
        left = _left(timeout, self._deadline, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, left), self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, deadline: float) -> None:
        self._inner, self._deadline = httpcore.SyncBackend(), deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: Optional[float] = None,
        local_address: Optional[str] = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        left = _left(timeout, self._deadline, httpcore.ConnectTimeout)
        stream = self._inner.connect_tcp(host, port, left, local_address, socket_options)
        return _DeadlineStream(stream, self._deadline)

    def connect_unix_socket(
        self, path: str, timeout: Optional[float] = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not download sources")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _next_hop(url: str, location: str) -> str:
    """The redirect target; an https download never continues over plain http."""
    target = urljoin(url, location)
    if urlsplit(url).scheme.lower() == "https" and urlsplit(target).scheme.lower() != "https":
        raise DownloadError(
            url, f"it redirected from https to {urlsplit(target).scheme or 'no'} scheme (a downgrade)"
        )
    return target


def _check_scheme(url: str, allow_http: bool) -> None:
    scheme = urlsplit(url).scheme.lower()
    if scheme == "https" or (scheme == "http" and allow_http):
        return
    raise DownloadError(url, f"redirected to a refused scheme {scheme!r} (only https is accepted)")


def _save(
    response: httpx.Response,
    url: str,
    dest_dir: Path,
    settings: EnvironmentSettings,
    deadline: float,
    progress: Optional[Progress],
) -> Downloaded:
    length = response.headers.get("content-length")
    total = int(length) if length and length.isdigit() else None
    if total is not None and total > settings.max_download_bytes:
        raise DownloadError(url, f"it is {total} bytes, over the {settings.max_download_bytes}-byte limit")
    dest_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=dest_dir, prefix=".part-")
    digest, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in response.iter_raw():
                size += len(chunk)
                if size > settings.max_download_bytes:
                    raise DownloadError(url, f"it exceeded the {settings.max_download_bytes}-byte limit")
                if time.monotonic() > deadline:
                    raise DownloadError(url, f"it took longer than {settings.download_deadline:g} s")
                digest.update(chunk)
                out.write(chunk)
                if progress is not None:
                    progress(size, total)
        if total is not None and size != total:
            raise DownloadError(url, f"the server sent {size} of {total} bytes")
        return Downloaded(path=Path(name), sha256=digest.hexdigest(), size=size)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
