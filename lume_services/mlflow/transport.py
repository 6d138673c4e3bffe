"""An httpx transport that acknowledges every response segment at once (Linux ``TCP_QUICKACK``).

``mlflow server --workers N`` (uvicorn with several processes) leaves Nagle's
algorithm on: it writes a response's headers, then holds its body until the
client has acknowledged them, and a Linux client delays that
acknowledgement by up to 40 ms. Every request then takes about 44 ms
however small (measured on loopback against MLflow 3.17 with two workers:
44 ms per artifact read, 2.6 ms with quick acknowledgements; 1.8 ms with
one worker, which sets ``TCP_NODELAY``). The importer reads several
artifact files per model version, so this is most of its time. Linux resets
``TCP_QUICKACK`` by itself, so it is set again before every read. Elsewhere
(no ``TCP_QUICKACK``), or if httpcore's internals change, this is httpx's
own transport.
"""

from __future__ import annotations

import socket
from typing import Any, Optional

import httpcore
import httpx

QUICKACK: Optional[int] = getattr(socket, "TCP_QUICKACK", None)


class _QuickAckStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream
        self._sock = stream.get_extra_info("socket")

    def read(self, max_bytes: int, timeout: Optional[float] = None) -> bytes:
        if self._sock is not None:
            try:
                self._sock.setsockopt(socket.IPPROTO_TCP, QUICKACK, 1)
            except OSError:
                self._sock = None  # not a TCP socket after all: leave it alone
        return self._stream.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: Optional[float] = None) -> None:
        self._stream.write(buffer, timeout)

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: Any, server_hostname: Optional[str] = None,
                  timeout: Optional[float] = None) -> httpcore.NetworkStream:  # fmt: skip
        return _QuickAckStream(self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _QuickAckBackend(httpcore.NetworkBackend):
    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(self, host: str, port: int, timeout: Optional[float] = None,
                    local_address: Optional[str] = None, socket_options: Any = None) -> httpcore.NetworkStream:  # fmt: skip
        return _QuickAckStream(self._backend.connect_tcp(host, port, timeout, local_address, socket_options))

    def connect_unix_socket(self, path: str, timeout: Optional[float] = None,
                            socket_options: Any = None) -> httpcore.NetworkStream:  # fmt: skip
        return self._backend.connect_unix_socket(path, timeout, socket_options)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def quick_ack_transport(**kwargs: Any) -> httpx.HTTPTransport:
    """``httpx.HTTPTransport(**kwargs)`` whose TCP connections acknowledge at once where Linux allows it."""
    transport = httpx.HTTPTransport(**kwargs)
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if QUICKACK is not None and isinstance(backend, httpcore.NetworkBackend):
        pool._network_backend = _QuickAckBackend(backend)  # type: ignore[union-attr]
    return transport


def acknowledges_at_once(transport: httpx.BaseTransport) -> bool:
    """Whether ``transport`` acknowledges at once (one from :func:`quick_ack_transport`, on Linux)."""
    pool = getattr(transport, "_pool", None)
    return isinstance(getattr(pool, "_network_backend", None), _QuickAckBackend)
