"""A real loopback HTTP receiver for webhook tests, told what to answer.

``Receiver()`` listens on 127.0.0.1 (a free port) in a thread of the test
process. ``mode`` says how it answers each POST: ``"ok"`` (204), ``"fail"``
(500), ``"hang"`` (answers after ``hang_seconds``, past the client's
timeout) or a status code; ``script`` is a list of modes used one per
request before falling back to ``mode``. Every request received is kept
(``requests``: method, path, headers, body). ``closed_port()`` is a port
nothing listens on (connection refused).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple, Union

Mode = Union[str, int]


class Received(NamedTuple):
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    def __init__(self, mode: Mode = "ok", hang_seconds: float = 3.0) -> None:
        self.mode: Mode = mode
        self.script: list[Mode] = []
        self.hang_seconds = hang_seconds
        self.requests: list[Received] = []
        self.arrived = 0  # requests begun (a hung one counts at once)
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.arrived += 1
                    if len(body) < length:  # the sender died mid-request (SIGKILL): nothing was delivered,
                        self.close_connection = True  # and a real receiver would neither answer nor record it
                        return
                    mode = receiver.script.pop(0) if receiver.script else receiver.mode
                if mode == "hang":
                    time.sleep(receiver.hang_seconds)
                status = 204 if mode in ("ok", "hang") else 500 if mode == "fail" else int(mode)
                with receiver._lock:  # recorded once answered (a hung request counts when it ends)
                    receiver.requests.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                if 300 <= status < 400:
                    self.send_header("Location", "http://127.0.0.1:1/elsewhere")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    def bodies(self) -> list[Any]:
        with self._lock:
            return [r.json() for r in self.requests]

    def wait_for(self, count: int, timeout: float = 20.0, *, arrived: bool = False) -> list[Received]:
        """Wait until ``count`` requests were answered (``arrived``: begun); returns the answered ones."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if (self.arrived if arrived else len(self.requests)) >= count:
                    return list(self.requests)
            time.sleep(0.01)
        raise AssertionError(f"the receiver got {len(self.requests)} requests, not {count}, in {timeout} s")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
