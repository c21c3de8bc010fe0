"""/metrics and /readyz (issue 11, items 4 and 5): what they expose, and what they cost.

- Outside dev mode /metrics answers only with ``Authorization: Bearer $AUTHSVC_METRICS_TOKEN``
  (404 while the setting is unset); dev mode keeps it open.
- Its Cognito outcome labels are classes (ok, client_error, throttled, unavailable): a
  sign-up for an existing address is counted like one for a new address.
- /readyz re-probes each dependency at most once per cache period, so a flood of probes
  sends one DescribeUserPool to Cognito (moto over HTTP here), not one per request.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from authsvc import metrics
from authsvc.main import create_app
from tests.conftest import make_settings
from tests.helpers import new_email, sign_up

TOKEN = "metrics-token-for-this-test-0123456789"


def _cognito_calls(operation: str) -> dict[str, float]:
    """This process's Cognito call counters for ``operation``, by outcome label."""
    metrics.flush()
    out: dict[str, float] = {}
    for family in REGISTRY.collect():
        for sample in family.samples:
            named = sample.name == "authsvc_cognito_calls_total"
            if named and sample.labels.get("operation") == operation:
                outcome = sample.labels["outcome"]
                out[outcome] = out.get(outcome, 0.0) + sample.value
    return out


@pytest.fixture
def serve_app(cognito: Any, database_url: str) -> Iterator[TestClient]:
    """The app as `authsvc serve` builds it (not dev mode), with a metrics token."""
    settings = make_settings(cognito, database_url, dev_mode=False, metrics_token=TOKEN)
    with TestClient(create_app(settings)) as client:
        yield client


class TestMetricsAccess:
    def test_serve_mode_without_a_token_setting_has_no_metrics(
        self, cognito: Any, database_url: str
    ) -> None:
        settings = make_settings(cognito, database_url, dev_mode=False)
        with TestClient(create_app(settings)) as client:
            for headers in ({}, {"Authorization": "Bearer anything"}):
                response = client.get("/metrics", headers=headers)
                assert response.status_code == 404, response.text
                assert response.json()["code"] == "not_found"
                assert "authsvc_requests_total" not in response.text

    def test_serve_mode_refuses_a_missing_token(self, serve_app: TestClient) -> None:
        response = serve_app.get("/metrics")
        assert response.status_code == 401, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "not_authenticated"

    @pytest.mark.parametrize(
        "authorization", [f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", "Bearer "]
    )
    def test_serve_mode_refuses_a_wrong_token(
        self, serve_app: TestClient, authorization: str
    ) -> None:
        response = serve_app.get("/metrics", headers={"Authorization": authorization})
        assert response.status_code == 401, response.text
        assert response.json()["code"] in {"invalid_token", "not_authenticated"}
        assert "authsvc_requests_total" not in response.text

    def test_serve_mode_answers_the_token(self, serve_app: TestClient) -> None:
        serve_app.get("/healthz")
        response = serve_app.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain")
        assert 'authsvc_requests_total{method="GET",route="/healthz",status="200"}' in (
            response.text
        )

    def test_dev_mode_keeps_metrics_open(self, client: TestClient) -> None:
        response = client.get("/metrics")
        assert response.status_code == 200, response.text
        assert "# TYPE authsvc_requests_total counter" in response.text


class TestMetricLabelsHideWhatTheApiHides:
    def test_existing_and_new_sign_ups_count_alike(self, client: TestClient) -> None:
        email = new_email("metricsoracle")
        assert sign_up(client, email).status_code == 202  # a new account
        before = _cognito_calls("sign_up")
        response = sign_up(client, email)  # the same address again: UsernameExistsException
        assert response.status_code == 202, response.text
        after = _cognito_calls("sign_up")
        # The address is unconfirmed, so the second sign-up replaces the first registration
        # (issue 11, pre-account hijacking): more sign_up calls, every one of them "ok".
        assert after.get("ok", 0) > before.get("ok", 0), (before, after)
        assert after.get("client_error", 0) == before.get("client_error", 0), (before, after)
        assert set(after) <= {"ok", "client_error", "throttled", "unavailable"}, after
        text = client.get("/metrics").text
        assert "Exception" not in text, "a Cognito error code leaked into /metrics"

    def test_sign_in_failures_are_one_class(self, client: TestClient) -> None:
        before = _cognito_calls("sign_in")
        for email in (new_email("metricsnobody"), "admin@example.com"):
            body = {"email": email, "password": "Wrong-passw0rd!"}
            assert client.post("/v1/auth/sign-in", json=body).status_code == 401
        after = _cognito_calls("sign_in")
        assert after.get("client_error", 0) - before.get("client_error", 0) == 2, (before, after)
        assert set(after) <= {"ok", "client_error", "throttled", "unavailable"}, after


class TestReadinessCache:
    def test_a_flood_of_probes_sends_one_cognito_call(
        self, cognito: Any, database_url: str
    ) -> None:
        # A long cache period so that the whole flood falls inside one (no timing involved).
        settings = make_settings(cognito, database_url, readiness_cache_seconds=300)
        with TestClient(create_app(settings)) as client:
            before = _cognito_calls("readiness_probe")
            pool_reads = _cognito_calls("describe_user_pool")
            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(lambda _: client.get("/readyz"), range(40)))
            assert {a.status_code for a in answers} == {200}, answers[0].text
            names = [c["name"] for c in answers[-1].json()["checks"]]
            assert names[:2] == ["database", "cognito"], names
            after = _cognito_calls("readiness_probe")
            assert sum(after.values()) - sum(before.values()) == 1, (before, after)
            assert _cognito_calls("describe_user_pool") == pool_reads

    def test_probes_are_outside_the_user_facing_budget(
        self, cognito: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Serve mode signs its calls like for AWS: moto accepts any credentials.
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        settings = make_settings(cognito, database_url, dev_mode=False, cognito_budget_user_read=1)
        with TestClient(create_app(settings)) as client:
            budget = client.app.state.authsvc.gateway.budget  # type: ignore[attr-defined]
            budget.take("get_user")  # this second's one UserRead unit, as /v1/me would
            response = client.get("/readyz")
            checks = {c["name"]: c["status"] for c in response.json()["checks"]}
            assert checks["cognito"] == "ok", response.text
            assert budget.refused == 0
