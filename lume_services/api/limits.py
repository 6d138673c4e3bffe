"""Refuse request bodies over the size limit (413) before they are read whole."""

from __future__ import annotations

import json
from typing import Any

PROBLEM_HEADERS = [(b"content-type", b"application/problem+json")]


class BodyLimit:
    """ASGI middleware: a Content-Length over ``max_bytes``, or a streamed body growing past it, gets 413."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await self._refuse(send)
            return
        seen = 0
        refused = False
        started = False

        async def counted() -> dict:
            """The app reads the body; past the limit it is answered 413 and told the client left."""
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    refused = True
                    if not started:
                        await self._refuse(send)
                    return {"type": "http.disconnect"}
            return message

        async def tracked(message: dict) -> None:
            nonlocal started
            if refused:
                return  # the 413 is the answer
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counted, tracked)

    async def _refuse(self, send: Any) -> None:
        body = json.dumps({"type": "about:blank", "title": "Content Too Large", "status": 413,
                           "detail": f"The request body is larger than {self.max_bytes} bytes "
                                     "(LUME_API__MAX_BODY_BYTES); nothing was read or stored.",
                           "error": "ValidationError"}).encode()  # fmt: skip
        await send({"type": "http.response.start", "status": 413,
                    "headers": PROBLEM_HEADERS + [(b"content-length", str(len(body)).encode())]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})
