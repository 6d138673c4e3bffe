"""`serve`'s HTTP protocol: httptools when installed (else h11), TCP_NODELAY on every TCP connection."""

from __future__ import annotations

import importlib
import socket

import pytest

from lume_services.api import protocol


class FakeTransport:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def get_extra_info(self, name: str, default: object = None) -> object:
        return self.sock if name == "socket" else default


def test_serve_uses_httptools_when_installed() -> None:
    pytest.importorskip("httptools")
    module, _, name = protocol.protocol_path().partition(":")
    chosen = getattr(importlib.import_module(module), name)
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    assert issubclass(chosen, HttpToolsProtocol)


def test_no_delay_is_set_on_tcp_sockets_only() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
        assert tcp.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        protocol._no_delay(FakeTransport(tcp))  # type: ignore[arg-type]
        assert tcp.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    a, b = socket.socketpair()  # a Unix socket has no such option: left alone, no error
    with a, b:
        protocol._no_delay(FakeTransport(a))  # type: ignore[arg-type]
