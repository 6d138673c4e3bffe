"""The event feed and webhooks on every dialect: cursor, outbox, targets, signed and retried delivery.

Deliveries go to a real loopback receiver (tests/receiver.py) from an
in-process Deliverer with short timeouts and backoffs; the delivery
processes (SIGKILL, two at once) are in test_event_processes.py.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from factories import make_deployment, make_model
from receiver import Receiver, closed_port
from sqlalchemy import func, insert, select

from lume_services.errors import (
    DeliveryNotFoundError,
    ModelNotFoundError,
    UnsafeTargetError,
    ValidationError,
    WebhookNotFoundError,
)
from lume_services.events import signing
from lume_services.events.deliver import Deliverer
from lume_services.events.settings import EventsSettings
from lume_services.events.targets import check_target
from lume_services.services.models.db.schema import Deployment, Webhook, WebhookDelivery

FAST = dict(allow_http=True, allow_private_targets="127.0.0.0/8", backoff_initial=0.01, backoff_max=0.05,
            backoff_jitter=0.0, connect_timeout=0.3, timeout=0.4, lease=1.0, poll_interval=0.02)  # fmt: skip


def settings(**overrides) -> EventsSettings:
    return EventsSettings(**{**FAST, **overrides})


@pytest.fixture
def svc(service):
    service.events_settings = settings()
    return service.with_actor("alice")


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


def count(model_db, table) -> int:
    with model_db.session(write=False) as s:
        return s.execute(select(func.count()).select_from(table)).scalar_one()


def deliver_until(svc, done, within: float = 15.0, **overrides) -> None:
    """Run delivery rounds (retries included) until ``done()``."""
    deadline = time.monotonic() + within
    with Deliverer(svc, settings(**overrides)) as deliverer:
        while not done():
            assert time.monotonic() < deadline, "deliveries did not finish in time"
            if deliverer.round() == 0:
                time.sleep(0.01)


def states(svc, **filters) -> list[str]:
    return [d.state for d in svc.list_deliveries(limit=1000, **filters).items]


def all_finished(svc):
    return lambda: (s := states(svc)) and all(x in ("delivered", "dead") for x in s)


# -- the feed ------------------------------------------------------------------------------


class TestListEvents:
    def test_the_cursor_resumes_where_it_stopped(self, svc):
        for _ in range(5):
            make_model(svc)
        first = svc.list_events(limit=2)
        assert len(first) == 2 and first.next_after == first.items[-1].event_id
        rest = svc.list_events(after=first.next_after, limit=100)
        ids = [e.event_id for e in first.items + rest.items]
        assert ids == sorted(set(ids)) and len(ids) == 5
        empty = svc.list_events(after=rest.next_after)
        assert empty.items == [] and empty.next_after == rest.next_after  # the cursor stays, never None
        make_model(svc)
        assert [e.action for e in svc.list_events(after=empty.next_after)] == ["model.created"]

    def test_filters_by_type_prefix_and_model(self, svc):
        m1, m2 = make_model(svc), make_model(svc)
        d = make_deployment(svc, m1)
        svc.set_live(d)
        assert [e.action for e in svc.list_events(types=["deployment.live_changed"])] == ["deployment.live_changed"]
        assert [e.action for e in svc.list_events(types=["deployment.*"])] == [
            "deployment.created", "deployment.live_changed"]  # fmt: skip
        assert {e.model_id for e in svc.list_events(model_id=m2)} == {m2}
        assert len(svc.list_events(types=["*"]).items) == 4

    @pytest.mark.parametrize("bad", [["deployment.exploded"], ["nothing.*"], "model.created", [7]])
    def test_unknown_types_are_refused(self, svc, bad):
        with pytest.raises(ValidationError, match="event type|types"):
            svc.list_events(types=bad)

    def test_concurrent_writers_never_slip_behind_the_cursor(self, svc):
        """Readers poll while writers commit: every event is seen once (ids follow commit order)."""
        writers, per_writer, seen, stop = 4, 8, [], threading.Event()

        def write():
            for _ in range(per_writer):
                make_model(svc)

        def read():
            cursor = None
            while True:
                last_round = stop.is_set()
                page = svc.list_events(after=cursor, limit=1000)
                seen.extend(e.event_id for e in page.items)
                cursor = page.next_after
                if last_round:
                    return

        reader = threading.Thread(target=read)
        reader.start()
        threads = [threading.Thread(target=write) for _ in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stop.set()
        reader.join()
        assert len(seen) == len(set(seen)) == writers * per_writer


class TestOutbox:
    def test_a_write_that_fails_after_its_event_was_written_leaves_neither(self, svc, model_db, receiver):
        svc.add_webhook(receiver.url, event_types=["*"])
        svc.derive_deliveries()  # its own webhook.created event
        before, delivered_before = svc.list_events().next_after, count(model_db, WebhookDelivery)

        def work(change):
            model_id = change.execute(insert(svc_models()), dict(
                author="a", laboratory="l", facility="f", beampath="b", description="doomed",
                created=change.now)).inserted_primary_key[0]  # fmt: skip
            change.record("model.created", "model", model_id, model_id=model_id, after={"description": "doomed"})
            change.flush()  # the event is written (and the feed locked) ...
            change.execute(insert(Deployment.__table__), dict(  # ... then a foreign key fails
                model_id=10**9, version="1", source="s", sha256="0" * 64, package_import_name="p",
                is_live=False, deploy_date=change.now))  # fmt: skip

        with pytest.raises(Exception, match="conflicts|foreign|constraint|violat"):
            svc._write("doomed write", work, core=True)
        assert svc.list_events(after=before).items == []
        assert svc.derive_deliveries() == 0 and count(model_db, WebhookDelivery) == delivered_before
        assert svc.get_models(description="doomed") == []

    def test_deliveries_are_derived_from_committed_events_only_once(self, svc, receiver):
        svc.add_webhook(receiver.url, event_types=["model.created"])
        make_model(svc)
        assert svc.derive_deliveries() == 1
        assert svc.derive_deliveries() == 0
        assert states(svc) == ["pending"]


    def test_one_call_catches_up_past_events_that_match_nothing(self, svc, receiver):
        svc.add_webhook(receiver.url, event_types=["deployment.created"])
        models = [make_model(svc) for _ in range(12)]
        make_deployment(svc, models[0])
        assert svc.derive_deliveries(batch_size=5) == 1  # three batches of model events, then the deployment


def svc_models():
    from lume_services.services.models.db.schema import Model

    return Model.__table__


# -- webhooks ------------------------------------------------------------------------------


class TestAddWebhook:
    def test_the_secret_is_returned_once_and_never_shown_again(self, svc, receiver):
        new = svc.add_webhook(receiver.url, event_types=["deployment.live_changed"])
        secret = new.secret.get_secret_value()
        assert len(secret) == 64
        assert secret not in repr(new) and secret not in str(new.model_dump(mode="json"))
        assert secret not in repr(svc.list_webhooks()) and secret not in repr(svc.get_webhook(new.webhook.webhook_id))
        assert secret not in repr(svc.list_audit_events().items)
        assert svc.list_events(types=["webhook.created"]).items[0].after["url"] == receiver.url

    def test_a_given_secret_is_used(self, svc, receiver):
        new = svc.add_webhook(receiver.url, event_types=["model.*"], secret="s" * 20)
        assert new.secret.get_secret_value() == "s" * 20
        make_model(svc)
        deliver_until(svc, all_finished(svc))
        request = receiver.requests[0]
        assert signing.verify("s" * 20, request.body, request.headers["x-lume-signature"])

    @pytest.mark.parametrize(
        "url, match",
        [
            ("ftp://example.org/x", "https"),
            ("not a url", "printable|https"),
            ("https://", "no host"),
            ("https://user:pw@example.org/", "credentials"),
            ("https://example.org:99999/", "valid URL"),
        ],
    )
    def test_malformed_urls_store_nothing(self, svc, model_db, url, match):
        with pytest.raises(UnsafeTargetError, match=match):
            svc.add_webhook(url, event_types=["*"])
        assert count(model_db, Webhook) == 0

    def test_http_needs_the_setting(self, svc, model_db, receiver):
        svc.events_settings = settings(allow_http=False)
        with pytest.raises(UnsafeTargetError, match="LUME_EVENTS__ALLOW_HTTP"):
            svc.add_webhook(receiver.url, event_types=["*"])
        assert count(model_db, Webhook) == 0

    def test_private_targets_need_the_setting(self, svc, model_db, receiver):
        svc.events_settings = settings(allow_private_targets="")
        with pytest.raises(UnsafeTargetError, match="loopback address '127.0.0.1'.*ALLOW_PRIVATE_TARGETS"):
            svc.add_webhook(receiver.url, event_types=["*"])
        assert count(model_db, Webhook) == 0

    @pytest.mark.parametrize("types, match", [(["deployment.exploded"], "unknown event type"), ([], "at least")])
    def test_bad_event_types_store_nothing(self, svc, model_db, receiver, types, match):
        with pytest.raises(ValidationError, match=match):
            svc.add_webhook(receiver.url, event_types=types)
        assert count(model_db, Webhook) == 0

    def test_unknown_model_and_bad_secret_store_nothing(self, svc, model_db, receiver):
        with pytest.raises(ModelNotFoundError):
            svc.add_webhook(receiver.url, event_types=["*"], model_id=4242)
        with pytest.raises(ValidationError, match="secret") as info:
            svc.add_webhook(receiver.url, event_types=["*"], secret="short pw")
        assert "short pw" not in str(info.value)
        assert count(model_db, Webhook) == 0

    def test_unknown_ids(self, svc):
        with pytest.raises(WebhookNotFoundError, match="webhooks list"):
            svc.remove_webhook(999)
        with pytest.raises(DeliveryNotFoundError, match="webhooks deliveries"):
            svc.get_delivery(999)
        with pytest.raises(DeliveryNotFoundError):
            svc.replay_delivery(999)

    def test_remove_takes_the_deliveries_along(self, svc, model_db, receiver):
        hook = svc.add_webhook(receiver.url, event_types=["*"]).webhook
        make_model(svc)
        svc.derive_deliveries()
        svc.remove_webhook(hook.webhook_id)
        assert count(model_db, WebhookDelivery) == 0 and svc.list_webhooks() == []
        assert svc.list_events(types=["webhook.deleted"]).items[0].entity_id == str(hook.webhook_id)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1/", "http://10.1.2.3/", "http://169.254.169.254/latest/", "http://[::1]/",
     "http://0.0.0.0/", "http://224.0.0.1/", "http://192.168.1.1/", "http://[::ffff:127.0.0.1]/",
     "http://localhost:8080/"],
)  # fmt: skip
def test_ssrf_targets_are_refused_unless_allowed(url):
    with pytest.raises(UnsafeTargetError, match="may not reach"):
        check_target(url, EventsSettings(allow_http=True))
    check_target(url, EventsSettings(allow_http=True, allow_private_targets="0.0.0.0/0,::/0"))


# -- delivery ------------------------------------------------------------------------------


class TestDelivery:
    def test_a_live_change_is_posted_signed_with_its_model_and_deployments(self, svc, receiver):
        new = svc.add_webhook(receiver.url, event_types=["deployment.live_changed"])
        model_id = make_model(svc, laboratory="slac", facility="lcls", beampath="cu_hxr")
        d1, d2 = make_deployment(svc, model_id, is_live=True), make_deployment(svc, model_id)
        svc.set_live(d2)
        deliver_until(svc, all_finished(svc))
        assert states(svc) == ["delivered", "delivered"]
        request = receiver.requests[-1]
        body = request.json()
        assert body["type"] == "deployment.live_changed" and body["actor"] == "alice"
        assert body["model"]["laboratory"] == "slac" and body["model"]["beampath"] == "cu_hxr"
        assert body["live_deployment"]["deployment_id"] == d2 and body["previous_deployment"]["deployment_id"] == d1
        assert body["before"] == {"live_deployment_id": d1} and body["after"]["live_deployment_id"] == d2
        h = request.headers
        assert h["x-lume-event-id"] == str(body["id"]) and h["x-lume-attempt"] == "1"
        assert h["x-lume-event-type"] == "deployment.live_changed" and h["content-type"] == "application/json"
        assert signing.verify(new.secret.get_secret_value(), request.body, h["x-lume-signature"])
        assert not signing.verify("another secret here", request.body, h["x-lume-signature"])
        delivery = svc.get_delivery(int(h["x-lume-delivery-id"]))
        assert [(a.attempt, a.status_code) for a in delivery.attempt_log] == [(1, 204)]

    def test_failures_timeouts_and_refusals_are_retried_then_delivered(self, svc, receiver):
        svc.add_webhook(receiver.url, event_types=["model.created"])
        receiver.script = ["fail", "hang", "ok"]
        receiver.hang_seconds = 0.4
        make_model(svc)
        deliver_until(svc, all_finished(svc), timeout=0.2)
        (delivery,) = svc.list_deliveries().items
        log = svc.get_delivery(delivery.delivery_id).attempt_log
        assert [a.status_code for a in log] == [500, None, 204]
        assert "timed out" in log[1].error and log[1].duration >= 0.15
        assert delivery.state == "delivered" and delivery.attempts == 3

    def test_a_refused_target_dies_after_max_attempts_and_can_be_replayed(self, svc, receiver):
        port = closed_port()
        svc.add_webhook(f"http://127.0.0.1:{port}/x", event_types=["model.created"])
        make_model(svc)
        deliver_until(svc, all_finished(svc), max_attempts=3)
        (dead,) = svc.list_deliveries(failed=True).items
        assert dead.state == "dead" and dead.attempts == 3 and "ConnectError" in dead.last_error
        replayed = svc.replay_delivery(dead.delivery_id)
        assert replayed.replay_of == dead.delivery_id and replayed.state == "pending"
        assert replayed.event_id == dead.event_id

    def test_a_redirect_is_not_followed(self, svc, receiver):
        svc.add_webhook(receiver.url, event_types=["model.created"])
        receiver.mode = 302
        make_model(svc)
        deliver_until(svc, all_finished(svc), max_attempts=1)
        assert len(receiver.requests) == 1  # the Location (another port) was never asked
        assert svc.list_deliveries().items[0].last_status == 302 and states(svc) == ["dead"]

    def test_the_target_is_checked_again_at_delivery(self, svc, receiver):
        svc.add_webhook(receiver.url, event_types=["model.created"])
        make_model(svc)
        deliver_until(svc, all_finished(svc), allow_private_targets="", max_attempts=1)
        assert receiver.requests == []
        assert "may not reach" in svc.list_deliveries().items[0].last_error

    def test_events_of_one_model_arrive_in_order_despite_failures(self, svc, receiver):
        svc.add_webhook(receiver.url, event_types=["deployment.created"])
        m1, m2 = make_model(svc), make_model(svc)
        for _ in range(3):
            make_deployment(svc, m1)
            make_deployment(svc, m2)
        receiver.script = ["fail", "fail", "fail"]
        deliver_until(svc, all_finished(svc))
        assert states(svc) == ["delivered"] * 6
        for m in (m1, m2):
            ok = [r.json()["id"] for r in receiver.requests if r.json()["model_id"] == m]
            assert ok == sorted(ok)  # attempts of one model never overtake (a retry repeats its id)

    def test_model_filter_and_test_events(self, svc, receiver):
        m1, m2 = make_model(svc), make_model(svc)
        only = svc.add_webhook(receiver.url, event_types=["deployment.*"], model_id=m1).webhook
        other = svc.add_webhook(receiver.url, event_types=["*"]).webhook
        make_deployment(svc, m1)
        make_deployment(svc, m2)
        svc.test_webhook(only.webhook_id)
        deliver_until(svc, all_finished(svc))
        assert [d.event_type for d in svc.list_deliveries(webhook_id=only.webhook_id).items] == [
            "deployment.created", "webhook.tested"]  # fmt: skip
        assert "webhook.tested" not in [d.event_type for d in svc.list_deliveries(webhook_id=other.webhook_id)]

    def test_replay_since_sends_the_matching_events_again(self, svc, receiver):
        hook = svc.add_webhook(receiver.url, event_types=["model.created"]).webhook
        since = datetime.now(UTC)
        make_model(svc), make_model(svc)
        deliver_until(svc, all_finished(svc))
        assert svc.replay_since(hook.webhook_id, since=since) == 2
        deliver_until(svc, all_finished(svc))
        ids = [r.json()["id"] for r in receiver.requests]
        assert len(ids) == 4 and ids[:2] == ids[2:]
        with pytest.raises(WebhookNotFoundError):
            svc.replay_since(999, since=since)

    def test_a_crashed_claim_expires_and_is_attempted_again(self, svc, receiver):
        svc.add_webhook(receiver.url, event_types=["model.created"])
        make_model(svc)
        svc.derive_deliveries()
        svc.events_settings = settings(lease=0.3, timeout=0.1, connect_timeout=0.1)
        (lost,) = svc.claim_deliveries(worker="dead-worker")  # then "killed": never finished
        assert svc.claim_deliveries(worker="other") == []  # leased
        time.sleep(0.32)
        (again,) = svc.claim_deliveries(worker="other")
        assert (again.delivery_id, again.attempt) == (lost.delivery_id, 2)
        # the dead worker's late finish is recorded but decides nothing
        assert svc._finish_delivery(lost, worker="dead-worker", started=datetime.now(UTC), duration=0.1,
                                   status_code=500) is None  # fmt: skip
        assert svc.list_deliveries().items[0].state == "pending"
