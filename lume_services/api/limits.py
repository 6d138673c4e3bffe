"""Refuse request bodies over the size limit (413) before they are read whole."""

from __future__ import annotations

import json
from typing import Any

PROBLEM_HEADERS = [(b"content-type", b"application/problem+json")]


class BodyLimit:
    """ASGI middleware: a Content-Length over the limit, or a streamed body growing past it, gets 413.

    The limit is ``max_bytes``, or ``max_upload_bytes`` for paths ending in
    ``/upload`` (package archives).
    """

    def __init__(self, app: Any, max_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_upload_bytes if scope.get("path", "").endswith("/upload") else self.max_bytes
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await self._refuse(send, limit)
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
                if seen > limit:
                    refused = True
                    if not started:
                        await self._refuse(send, limit)
                    return {"type": "http.disconnect"}
            return message

        async def tracked(message: dict) -> None:
            nonlocal started
            if refused:
                return  # the 413 is the answer
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counted, tracked)

    async def _refuse(self, send: Any, limit: int) -> None:
        setting = "LUME_API__MAX_UPLOAD_BYTES" if limit == self.max_upload_bytes else "LUME_API__MAX_BODY_BYTES"
        body = json.dumps({"type": "about:blank", "title": "Content Too Large", "status": 413,
                           "detail": f"The request body is larger than {limit} bytes ({setting}); "
                                     "nothing was read or stored.",
                           "error": "ValidationError"}).encode()  # fmt: skip
        await send({"type": "http.response.start", "status": 413,
                    "headers": PROBLEM_HEADERS + [(b"content-length", str(len(body)).encode())]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})
