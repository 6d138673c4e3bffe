"""uvicorn's HTTP protocols with TCP_NODELAY on every connection.

With ``--workers N`` uvicorn binds the listening socket itself with protocol
0, and asyncio then leaves Nagle's algorithm on for the accepted sockets:
each keep-alive request after the first waited ~40 ms for the client's
delayed ACK (uvicorn issue #3149; measured here: 46 ms against 2.4 ms for
one worker). Setting the option per connection fixes both paths.

``serve`` uses httptools (a C parser, in the ``server`` extra) when it is
installed, else h11 (pure Python): the same requests and answers, parsed at
a fraction of the cost (``protocol_path``).
"""

from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol


def _no_delay(transport: asyncio.Transport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


class NoDelayH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        _no_delay(transport)
        super().connection_made(transport)


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is not installed
    HttpToolsProtocol = None  # type: ignore[assignment,misc]
else:

    class NoDelayHttpToolsProtocol(HttpToolsProtocol):  # type: ignore[misc,valid-type]
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            _no_delay(transport)
            super().connection_made(transport)


def protocol_path() -> str:
    """The ``http=`` of uvicorn.run: httptools when installed, else h11, both with TCP_NODELAY."""
    name = "NoDelayHttpToolsProtocol" if HttpToolsProtocol is not None else "NoDelayH11Protocol"
    return f"{__name__}:{name}"
