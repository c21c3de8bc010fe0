"""Refresh (success and failure) and the use of a revoked token are audited (issue 11)."""

from __future__ import annotations

from tests.admin.support import sub_of
from tests.audit.conftest import events, one
from tests.helpers import signed_in_user


def test_refresh_success_is_audited_with_the_user(client, outbox, audit_admin):
    _email, tokens = signed_in_user(client, outbox)
    response = client.post("/v1/auth/refresh", json={"refresh_token": tokens.refresh_token})
    assert response.status_code == 200, response.text
    item = one(events(client, audit_admin, actor=sub_of(tokens)), "token_refreshed")
    assert item["detail"] == {"transport": "body"}
    assert item["ip"] == "testclient" and item["request_id"]


def test_refresh_failure_is_audited(client, audit_admin):
    response = client.post(
        "/v1/auth/refresh",
        json={"refresh_token": "not-a-refresh-token"},
        headers={"X-Request-ID": "audit-refresh-failure-1"},
    )
    assert response.status_code == 401, response.text
    found = [
        i
        for i in events(client, audit_admin, action="token_refresh_failed")
        if i["request_id"] == "audit-refresh-failure-1"
    ]
    assert len(found) == 1, found
    assert found[0]["outcome"] == "failure"
    assert found[0]["detail"]["code"] == "invalid_token"


def test_use_of_a_revoked_token_is_audited(client, outbox, audit_admin):
    _email, tokens = signed_in_user(client, outbox)
    assert client.post("/v1/auth/sign-out", headers=tokens.bearer).status_code == 204
    assert client.get("/v1/me", headers=tokens.bearer).status_code == 401
    # Retried at once: still refused, not recorded again (once a minute per token).
    assert client.get("/v1/auth/session", headers=tokens.bearer).status_code == 401
    item = one(events(client, audit_admin, actor=sub_of(tokens)), "revoked_token_used", "failure")
    assert item["detail"] == {"code": "invalid_token", "path": "/v1/me"}
    assert item["ip"] == "testclient"
