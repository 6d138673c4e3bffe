"""The REST API over a real server: records, compare-and-swap, approvals, tokens, bad input, errors."""

from __future__ import annotations

import httpx
import pytest
from factories import make_deployment, make_flow, make_model, make_project, registry_snapshot

MODEL = dict(author="Jackie Garrahan", laboratory="slac", facility="lcls", beampath="cu_hxr", description="api")


class TestModels:
    def test_a_model_created_over_http_is_recorded_as_the_tokens_name(self, api, service, principals) -> None:
        response = api.post("/api/v1/models", json=MODEL, headers=principals.headers("write"))
        assert response.status_code == 201, response.text
        model = response.json()
        assert response.headers["location"] == f"/api/v1/models/{model['model_id']}"
        assert service.get_model(model_id=model["model_id"]).description == "api"
        events = service.list_audit_events(model_id=model["model_id"]).items
        assert [(e.action, e.actor) for e in events] == [("model.created", "writer")]
        again = api.post("/api/v1/models", json=MODEL, headers=principals.headers("write"))
        assert again.json()["model_id"] == model["model_id"]  # storing the same model is idempotent

    def test_listing_filters_searches_and_pages(self, api, service, principals) -> None:
        ids = [make_model(service, beampath="sc_diag0" if i % 2 else "cu_hxr") for i in range(5)]
        service.set_model_tags(ids[1], {"stage": "production"})
        h = principals.headers("read")
        page = api.get("/api/v1/models", params={"limit": 2}, headers=h).json()
        assert [m["model_id"] for m in page["items"]] == ids[:2] and page["next_after"] == ids[1]
        rest = api.get("/api/v1/models", params={"limit": 10, "after": page["next_after"]}, headers=h).json()
        assert [m["model_id"] for m in rest["items"]] == ids[2:] and rest["next_after"] is None
        diag = api.get("/api/v1/models", params={"beampath": "sc_diag0"}, headers=h).json()["items"]
        assert [m["model_id"] for m in diag] == [ids[1], ids[3]]
        tagged = api.get("/api/v1/models", params={"tag": "stage=production"}, headers=h).json()["items"]
        assert [m["model_id"] for m in tagged] == [ids[1]] and tagged[0]["tags"] == {"stage": "production"}

    def test_models_with_their_live_deployment(self, api, service, principals) -> None:
        first, second = make_model(service), make_model(service)
        live = make_deployment(service, first)
        service.set_live(live)
        items = api.get("/api/v1/live-models", headers=principals.headers("read")).json()["items"]
        assert [(i["model"]["model_id"], (i["live_deployment"] or {}).get("deployment_id")) for i in items] == [
            (first, live), (second, None)]  # fmt: skip

    def test_pages_are_the_records_every_field_as_json(self, api, service, principals) -> None:
        """The pages' bodies (serialized by the routes themselves) hold every field of the records."""
        first, _ = make_model(service), make_model(service)
        service.set_model_tags(first, {"stage": "production"})
        service.set_live(make_deployment(service, first))
        h = principals.headers("read")
        for path, read in (("/api/v1/live-models", service.list_models_with_live), ("/api/v1/models", service.list_models)):
            response = api.get(path, params={"limit": 1}, headers=h)
            assert response.status_code == 200 and response.headers["content-type"] == "application/json"
            assert response.json() == read(limit=1).model_dump(mode="json") and response.json()["next_after"] == first
            bad = api.get(path, params={"limit": 0}, headers=h)
            assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"

    def test_an_unknown_model_is_a_404_problem(self, api, principals) -> None:
        response = api.get("/api/v1/models/999999", headers=principals.headers("read"))
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["error"] == "ModelNotFoundError" and "model_id=999999" in body["detail"]


class TestLive:
    def test_set_live_with_if_match_is_a_compare_and_swap(self, api, service, principals) -> None:
        model_id = make_model(service)
        a, b = make_deployment(service, model_id), make_deployment(service, model_id)
        h = principals.headers("write")
        seen = api.get(f"/api/v1/models/{model_id}/live", headers=h)
        assert seen.json()["deployment"] is None and seen.headers["etag"] == '"none"'
        moved = api.put(f"/api/v1/models/{model_id}/live", json={"deployment_id": a, "reason": "first"},
                        headers={**h, "If-Match": seen.headers["etag"]})  # fmt: skip
        assert moved.status_code == 200 and moved.headers["etag"] == f'"{a}"'
        # someone else's view is now stale: their swap is refused and nothing moves
        stale = api.put(f"/api/v1/models/{model_id}/live", json={"deployment_id": b},
                        headers={**h, "If-Match": seen.headers["etag"]})  # fmt: skip
        assert stale.status_code == 409 and stale.json()["error"] == "LiveDeploymentChangedError"
        assert service.get_live_deployment(model_id).deployment_id == a
        by_body = api.put(f"/api/v1/models/{model_id}/live", json={"deployment_id": b, "expected_live": a},
                          headers=h)  # fmt: skip
        assert by_body.status_code == 200 and by_body.json()["deployment"]["deployment_id"] == b
        history = api.get(f"/api/v1/models/{model_id}/live/history", headers=h).json()
        assert [(i["deployment_id"], i["set_by"], i["reason"]) for i in history] == [
            (a, "writer", "first"), (b, "writer", None)]  # fmt: skip

    def test_a_deployment_of_another_model_is_refused(self, api, service, principals) -> None:
        model_id, other = make_model(service), make_deployment(service)
        response = api.put(f"/api/v1/models/{model_id}/live", json={"deployment_id": other},
                           headers=principals.headers("write"))  # fmt: skip
        assert response.status_code == 422 and "belongs to model" in response.json()["detail"]

    def test_request_and_approval_take_two_people(self, api, service, principals) -> None:
        model_id = make_model(service)
        service.update_model(model_id, require_approval=True)
        deployment_id = make_deployment(service, model_id)
        make_flow(service, deployment_id, make_project(service))
        writer, admin = principals.headers("write"), principals.headers("admin")
        direct = api.put(f"/api/v1/models/{model_id}/live", json={"deployment_id": deployment_id}, headers=writer)
        assert direct.status_code == 403 and direct.json()["error"] == "ApprovalRequiredError"
        request = api.post(f"/api/v1/models/{model_id}/live-requests",
                           json={"deployment_id": deployment_id, "reason": "tested on the injector"}, headers=writer)
        assert request.status_code == 201 and request.json()["requested_by"] == "writer"
        request_id = request.json()["request_id"]
        own = api.post(f"/api/v1/live-requests/{request_id}/approve", json={}, headers=writer)
        assert own.status_code == 403 and own.json()["error"] == "SelfApprovalError"
        approved = api.post(f"/api/v1/live-requests/{request_id}/approve", json={"reason": "ok"}, headers=admin)
        assert approved.status_code == 200 and approved.json()["state"] == "approved"
        assert approved.json()["decided_by"] == "admin"
        [interval] = service.get_live_history(model_id)
        assert (interval.deployment_id, interval.approved_by) == (deployment_id, "admin")


class TestTokens:
    def test_a_token_is_shown_once_and_revocation_holds_at_once(self, api, service, principals) -> None:
        admin = principals.headers("admin")
        created = api.post("/api/v1/tokens", json={"name": "jgarrahan", "scope": "write", "expires_in_days": 90},
                           headers=admin)  # fmt: skip
        assert created.status_code == 201, created.text
        token = created.json()["token"]
        assert created.json()["record"]["scope"] == "write" and created.json()["record"]["expires"] is not None
        listed = api.get("/api/v1/tokens", headers=admin)
        assert "jgarrahan" in listed.text and token not in listed.text
        mine = {"Authorization": f"Bearer {token}"}
        assert api.get("/api/v1/models", headers=mine).status_code == 200
        assert api.delete("/api/v1/tokens/jgarrahan", headers=admin).status_code == 200
        for _ in range(4):  # every worker process refuses it from now on
            refused = api.get("/api/v1/models", headers=mine)
            assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
            assert token not in refused.text and refused.headers["www-authenticate"] == "Bearer"
        actions = [(e.action, e.actor) for e in service.list_audit_events(entity="token").items]
        assert ("token.created", "admin") in actions and ("token.revoked", "admin") in actions
        assert token not in str(service.list_audit_events().items)

    def test_tokens_never_reach_the_servers_log(self, api, principals) -> None:
        for who in ("read", "write", "admin", "revoked"):
            api.get("/api/v1/models", headers=principals.headers(who))
        api.get("/api/v1/models", headers={"Authorization": "Bearer lume_not-a-real-token"})
        api.get("/api/v1/models", headers={"Authorization": "Basic dXNlcjpwYXNz"})
        log = api.server.log_text()
        assert "GET /api/v1/models" in log  # the access log is on
        for token in principals.tokens.values():
            assert token is None or token not in log
        assert "lume_not-a-real-token" not in log and "dXNlcjpwYXNz" not in log

    @pytest.mark.parametrize("dialect", ["sqlite"])
    def test_a_second_token_for_a_name_in_use_is_refused(self, api, principals) -> None:
        response = api.post("/api/v1/tokens", json={"name": "writer"}, headers=principals.headers("admin"))
        assert response.status_code == 409 and "revoke it first" in response.json()["detail"]


@pytest.mark.parametrize("dialect", ["sqlite"])
class TestBadInput:
    @pytest.mark.parametrize("content, problem", [
        (b'{"author": "a",', "JSON decode error"),
        (b'{"author": 1, "laboratory": "l", "facility": "f", "beampath": "b", "description": "d"}',
         "body.author"),
        (b'{"author": "a", "laboratory": "l", "facility": "f", "beampath": "b", "description": "d", "x": 1}',
         "body.x: Extra inputs are not permitted"),
        (b'{"author": "' + b"a" * 3000 + b'", "laboratory": "l", "facility": "f", "beampath": "b", '
         b'"description": "d"}', "at most 2000 characters"),
        (b'[]', "body"),
    ])  # fmt: skip
    def test_malformed_bodies_are_422_and_store_nothing(self, api, service, model_db, principals, content,
                                                       problem) -> None:  # fmt: skip
        before = registry_snapshot(model_db)
        response = api.post("/api/v1/models", content=content, headers={**principals.headers("write"),
                                                                         "content-type": "application/json"})
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "ValidationError" and problem in response.json()["detail"]
        assert "a" * 100 not in response.text  # the value sent is not echoed
        assert registry_snapshot(model_db) == before

    def test_a_value_the_column_refuses_gets_the_librarys_message(self, api, model_db, principals) -> None:
        before = registry_snapshot(model_db)
        response = api.post("/api/v1/models", json={**MODEL, "author": "x" * 101}, headers=principals.headers("write"))
        assert response.status_code == 422 and "at most 100 fit" in response.json()["detail"]
        assert registry_snapshot(model_db) == before

    def test_an_oversized_body_is_413_before_it_is_read(self, api, model_db, principals) -> None:
        before = registry_snapshot(model_db)
        huge = b'{"tags": {"k": "' + b"v" * 2_000_000 + b'"}}'
        response = api.post("/api/v1/models/1/tags", content=huge, headers={**principals.headers("write"),
                                                                            "content-type": "application/json"})
        assert response.status_code == 413 and "LUME_API__MAX_BODY_BYTES" in response.json()["detail"]

        def chunks():
            yield b'{"tags": {"k": "'
            for _ in range(40):
                yield b"v" * 65536
            yield b'"}}'

        streamed = api.post("/api/v1/models/1/tags", content=chunks(), headers={**principals.headers("write"),
                                                                                "content-type": "application/json"})
        assert streamed.status_code == 413
        assert registry_snapshot(model_db) == before

    def test_bad_filters_and_unknown_paths(self, api, principals) -> None:
        h = principals.headers("read")
        assert api.get("/api/v1/models", params={"limit": 0}, headers=h).status_code == 422
        assert api.get("/api/v1/models", params={"tag": "no-equals"}, headers=h).status_code == 422
        assert api.get("/api/v1/models", params={"after": "x"}, headers=h).status_code == 422
        missing = api.get("/api/v1/nothing-here", headers=h)
        assert missing.status_code == 404 and "openapi.json" in missing.json()["detail"]
        assert api.delete("/api/v1/models", headers=h).status_code == 405


@pytest.mark.parametrize("dialect", ["sqlite"])
def test_health_and_readiness(api: httpx.Client) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz").json()
    assert ready["status"] == "ready" and ready["schema_revision"]



@pytest.mark.parametrize("dialect", ["sqlite"])
def test_the_served_openapi_document_is_the_committed_one(api: httpx.Client) -> None:
    import json
    from pathlib import Path

    committed = json.loads((Path(__file__).parents[2] / "docs" / "openapi.json").read_text())
    assert api.get("/api/v1/openapi.json").json() == committed, "run `make openapi` and commit docs/openapi.json"
