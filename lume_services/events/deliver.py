"""The delivery process: derive deliveries from the feed, claim them, POST them, record the outcome.

``Deliverer(service).run()`` is what ``lume-services events deliver`` runs
(and what the REST server will run beside itself). Each POST:

* goes to the address the target check just resolved (the check runs again
  before every POST; the Host header and TLS name stay the URL's host);
* carries the exact stored body, ``Content-Type: application/json`` and
  the headers ``X-Lume-Event-Id``, ``X-Lume-Event-Type``,
  ``X-Lume-Delivery-Id``, ``X-Lume-Attempt`` and ``X-Lume-Signature``
  (``sha256=<hex>``, HMAC-SHA256 of the body with the webhook's secret);
* never follows a redirect: only a 2xx answer is a delivery.

Logs name deliveries, events and URLs without their query, never secrets.
"""

from __future__ import annotations

import copy
import ipaddress
import logging
import os
import secrets
import socket
import threading
import time
from datetime import UTC, datetime
from typing import Any, Optional

import httpx

from lume_services import __version__
from lume_services.errors import DatabaseError, UnsafeTargetError
from lume_services.events import signing
from lume_services.events.settings import EventsSettings
from lume_services.events.targets import check_target

log = logging.getLogger(__name__)


def worker_name() -> str:
    """``host:pid:random``: unique per delivery process (a restarted one is another worker)."""
    return f"{socket.gethostname()[:120]}:{os.getpid()}:{secrets.token_hex(4)}"


class Deliverer:
    """One delivery process (or thread) over a ModelDBService."""

    def __init__(self, service: Any, settings: Optional[EventsSettings] = None, *, worker: Optional[str] = None):
        if settings is not None:  # the service's rules (leases, retries) follow the same settings
            service = copy.copy(service)
            service.events_settings = settings
        self.service = service
        self.settings = service.events_settings
        self.worker = worker or worker_name()
        self.stopping = threading.Event()
        timeout = httpx.Timeout(self.settings.timeout, connect=self.settings.connect_timeout)
        self.client = httpx.Client(
            timeout=timeout, follow_redirects=False, trust_env=False,
            headers={"User-Agent": f"lume-services/{__version__}", "Content-Type": "application/json"},
        )  # fmt: skip

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Deliverer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- the loop ---------------------------------------------------------------------

    def run(self, *, once: bool = False, webhook_id: Optional[int] = None) -> int:
        """Deliver until stopped (``once``: until nothing is due now); returns the attempts made.

        A failed round (the database unreachable) is logged and tried again
        after the poll interval; claims it held expire with their lease.
        """
        attempts = 0
        while not self.stopping.is_set():
            try:
                made = self.round(webhook_id=webhook_id)
            except DatabaseError as exc:  # the database restarting, a lost connection: try again later
                if once:
                    raise
                log.warning("delivery round failed, retrying in %.1f s: %s", self.settings.poll_interval, exc)
                made = 0
            attempts += made
            if made == 0:
                if once:
                    break
                self.stopping.wait(self.settings.poll_interval)
        return attempts

    def round(self, *, webhook_id: Optional[int] = None) -> int:
        """Derive, then claim a batch and deliver it; returns the attempts made."""
        size = self.settings.batch_size
        self.service.derive_deliveries(batch_size=size * 5)  # catch the cursors up first
        wave = self.service.claim_deliveries(worker=self.worker, limit=size, webhook_id=webhook_id)
        made = 0
        while wave:  # then the next ones of the same webhooks and models, claimed on finishing
            outcomes, left = self.attempt_all(wave)
            made += len(outcomes)
            self.service._release_deliveries(left, worker=self.worker)
            chain = not self.stopping.is_set() and not left
            wave = self.service._finish_deliveries(outcomes, worker=self.worker, chain=chain)
        return made

    def attempt_all(self, wave: list[Any]) -> tuple[list[Any], list[Any]]:
        """POST each claimed delivery while its lease allows a whole POST; (outcomes, those left)."""
        from lume_services.services.models.delivery_ops import Outcome

        s = self.settings
        latest_start = time.monotonic() + s.lease - (s.timeout + s.connect_timeout)
        outcomes = []
        for i, claimed in enumerate(wave):
            if time.monotonic() > latest_start or self.stopping.is_set():
                return outcomes, wave[i:]
            outcomes.append(Outcome(claimed, *self._post_timed(claimed)))
        return outcomes, []

    def attempt(self, claimed: Any, *, chain: bool = True) -> Any:
        """POST one claimed delivery and record the outcome; returns the next one claimed, if any."""
        started, duration, status, error = self._post_timed(claimed)
        return self.service._finish_delivery(
            claimed, worker=self.worker, started=started, duration=duration, status_code=status, error=error,
            chain=chain,
        )  # fmt: skip

    def _post_timed(self, claimed: Any) -> tuple[datetime, float, Optional[int], Optional[str]]:
        started = datetime.now(UTC)
        t0 = time.perf_counter()
        status, error = self.post(claimed)
        duration = time.perf_counter() - t0
        if error is not None or not (200 <= (status or 0) < 300):
            log.info("delivery %s (event %s) attempt %s failed: %s", claimed.delivery_id, claimed.event_id,
                     claimed.attempt, error or f"HTTP {status}")  # fmt: skip
        return started, duration, status, None if error is None else error[:2000]

    def post(self, claimed: Any) -> tuple[Optional[int], Optional[str]]:
        """(status code, None) or (None, what went wrong)."""
        try:
            target = check_target(claimed.url, self.settings, consequence="The delivery was not attempted.")
        except UnsafeTargetError as exc:
            return None, str(exc)
        body = claimed.body.encode()
        address = target.address
        host = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
        default_port = 443 if target.scheme == "https" else 80
        netloc = host if target.port == default_port else f"{host}:{target.port}"
        header_host = target.host if target.port == default_port else f"{target.host}:{target.port}"
        headers = {
            "Host": header_host,
            signing.EVENT_ID_HEADER: str(claimed.event_id),
            signing.EVENT_TYPE_HEADER: claimed.event_type,
            signing.DELIVERY_ID_HEADER: str(claimed.delivery_id),
            signing.ATTEMPT_HEADER: str(claimed.attempt),
            signing.SIGNATURE_HEADER: signing.sign(claimed.secret.get_secret_value(), body),
        }
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        try:
            response = self.client.post(
                f"{target.scheme}://{netloc}{target.path}", content=body, headers=headers, extensions=extensions
            )
        except httpx.TimeoutException as exc:
            return None, f"timed out ({type(exc).__name__})"
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {str(exc)[:300] or 'no detail'}"
        return response.status_code, None
