"""API tokens in the service: shown once, stored hashed, one in use per name, revocation and expiry."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from factories import make_project
from sqlalchemy import func, select, update

from lume_services.errors import (
    AuthenticationError,
    ConflictError,
    ProjectNotFoundError,
    TokenNotFoundError,
    ValidationError,
)
from lume_services.services.models.db.schema import ApiToken, WebSession, utcnow

TOKENS = ApiToken.__table__


class TestCreateToken:
    def test_the_token_is_returned_once_and_only_its_digest_is_stored(self, service, model_db) -> None:
        new = service.create_token("jgarrahan", scope="write", expires_in=timedelta(days=90))
        token = new.token.get_secret_value()
        assert token.startswith("lume_") and len(token) == 48
        assert token not in repr(new) and token not in new.model_dump_json()
        with model_db.engine.connect() as conn:
            row = conn.execute(select(TOKENS)).one()
        assert token not in str(tuple(row)) and len(row.token_sha256) == 64
        assert new.record.scope == "write" and new.record.created_by == service.actor
        assert timedelta(days=89) < new.record.expires - new.record.created <= timedelta(days=90)
        [event] = service.list_audit_events(action="token.created").items
        assert event.after["name"] == "jgarrahan" and token not in str(event)
        assert service.authenticate(token).name == "jgarrahan"

    @pytest.mark.parametrize("dialect", ["sqlite"])
    @pytest.mark.parametrize("name", ["", "two words", "-dash-first", "x" * 101, "tab\t", 7])
    def test_bad_names_are_refused(self, service, name) -> None:
        with pytest.raises(ValidationError, match="token name"):
            service.create_token(name)
        assert service.list_tokens() == []

    @pytest.mark.parametrize("dialect", ["sqlite"])
    def test_scope_project_and_expiry_are_checked(self, service) -> None:
        with pytest.raises(ValidationError, match="expected one of read, write, admin"):
            service.create_token("a", scope="root")
        with pytest.raises(ProjectNotFoundError):
            service.create_token("a", scope="write", project_name="nowhere")
        project = make_project(service)
        with pytest.raises(ValidationError, match="only a write token"):
            service.create_token("a", scope="admin", project_name=project)
        with pytest.raises(ValidationError, match="positive duration"):
            service.create_token("a", expires_in=timedelta(0))
        assert service.list_tokens() == []
        assert service.create_token("a", scope="write", project_name=project).record.project_name == project

    def test_one_token_in_use_per_name_even_when_created_at_once(self, service) -> None:
        results: list[object] = []

        def create() -> None:
            try:
                results.append(service.create_token("racer"))
            except Exception as exc:  # the loser's error is the result
                results.append(exc)

        threads = [threading.Thread(target=create) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        created = [r for r in results if not isinstance(r, Exception)]
        assert len(created) == 1 and len(service.list_tokens()) == 1
        losers = [r for r in results if isinstance(r, Exception)]
        assert len(losers) == 3 and all(isinstance(r, ConflictError) for r in losers), losers


class TestRevokeAndExpiry:
    def test_a_revoked_token_is_refused_and_its_name_can_have_a_new_one(self, service) -> None:
        old = service.create_token("op").token.get_secret_value()
        revoked = service.revoke_token("op")
        assert revoked.revoked is not None and revoked.revoked_by == service.actor
        with pytest.raises(AuthenticationError, match="'op' was revoked") as caught:
            service.authenticate(old)
        assert old not in str(caught.value)
        with pytest.raises(TokenNotFoundError):
            service.revoke_token("op")
        new = service.create_token("op", scope="admin").token.get_secret_value()
        assert service.authenticate(new).scope == "admin"
        assert [t.revoked is None for t in service.list_tokens(include_revoked=True)] == [False, True]
        assert len(service.list_tokens()) == 1

    def test_an_expired_token_is_refused_and_replaced_on_create(self, service, model_db) -> None:
        token = service.create_token("late", expires_in=timedelta(hours=1)).token.get_secret_value()
        with model_db.engine.begin() as conn:
            conn.execute(update(TOKENS).values(expires=utcnow() - timedelta(seconds=1)))
        with pytest.raises(AuthenticationError, match="expired"):
            service.authenticate(token)
        again = service.create_token("late").token.get_secret_value()  # the expired one is revoked for it
        assert service.authenticate(again).name == "late"
        assert [e.action for e in service.list_audit_events(entity="token").items][:2] == [
            "token.created", "token.revoked"]  # fmt: skip

    @pytest.mark.parametrize("dialect", ["sqlite"])
    @pytest.mark.parametrize("token", ["", "lume_", "lume_unknown", "bearer-x", "lume_" + "x" * 300, None, 5])
    def test_unknown_or_malformed_tokens_are_refused_without_being_named(self, service, token) -> None:
        with pytest.raises(AuthenticationError) as caught:
            service.authenticate(token)
        assert (not isinstance(token, str) or len(token) < 6 or token not in str(caught.value))


class TestWebSessions:
    def test_a_session_finds_its_token_until_signed_out_and_keeps_only_a_digest(self, service, model_db) -> None:
        token = service.create_token("operator", scope="write").token.get_secret_value()
        opened = service.open_session(token, lifetime=timedelta(hours=2))
        session_id = opened.session.get_secret_value()
        assert session_id not in repr(opened) and opened.token.name == "operator"
        assert timedelta(hours=1, minutes=59) < opened.expires - utcnow() <= timedelta(hours=2)
        assert service.session_token(session_id).name == "operator"
        with model_db.engine.connect() as conn:
            rows = conn.execute(select(WebSession.__table__)).all()
        assert len(rows) == 1 and session_id not in str(rows)  # only its sha256
        assert service.close_session(session_id) and not service.close_session(session_id)
        with pytest.raises(AuthenticationError, match="sign in again"):
            service.session_token(session_id)

    def test_revoking_or_expiry_ends_sessions_and_a_session_never_outlives_its_token(self, service, model_db) -> None:
        token = service.create_token("shift", scope="read", expires_in=timedelta(days=1)).token.get_secret_value()
        opened = service.open_session(token, lifetime=timedelta(days=30))
        assert opened.expires <= service.authenticate(token).expires  # capped by the token's expiry
        other = service.open_session(token).session.get_secret_value()
        with model_db.engine.begin() as conn:  # one session's time is up
            conn.execute(update(WebSession.__table__)
                         .where(WebSession.__table__.c.expires == opened.expires)
                         .values(expires=utcnow() - timedelta(seconds=1)))  # fmt: skip
        with pytest.raises(AuthenticationError, match="expired"):
            service.session_token(opened.session.get_secret_value())
        assert service.session_token(other).name == "shift"
        service.revoke_token("shift")
        with pytest.raises(AuthenticationError, match="revoked"):
            service.session_token(other)
        service.open_session(service.create_token("next", scope="read").token.get_secret_value())
        with model_db.engine.connect() as conn:  # signing in removed the session whose time was up
            assert conn.execute(select(func.count()).select_from(WebSession.__table__)).scalar() == 2

    @pytest.mark.parametrize("dialect", ["sqlite"])
    def test_bad_input_is_refused_and_nothing_is_stored(self, service, model_db) -> None:
        token = service.create_token("x", scope="read").token.get_secret_value()
        for lifetime in (timedelta(0), timedelta(days=31), 3600):
            with pytest.raises(ValidationError, match="lifetime"):
                service.open_session(token, lifetime=lifetime)
        with pytest.raises(AuthenticationError, match="not known"):
            service.open_session("lume_unknown")
        for session_id in ("", "x" * 101, None):
            with pytest.raises(AuthenticationError, match="malformed"):
                service.session_token(session_id)
        with pytest.raises(AuthenticationError, match="not known"):
            service.session_token("never-issued")
        with model_db.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(WebSession.__table__)).scalar() == 0
