"""A password reset that took effect never answers an error (issue 11, item 6).

The user is resolved before ``confirm_forgot_password``: a lookup that fails fails the request
with nothing changed (the code still works). Once the new password is set, the local
revocation and the Cognito sign-out cannot turn the answer into an error: what could not be
done is queued (the revocation in memory until the database is back, the sign-out for the
retry loop).
"""

from __future__ import annotations

from botocore.exceptions import ClientError
from sqlalchemy.exc import OperationalError

from tests.helpers import PASSWORD, assert_problem, latest_code, sign_in, signed_in_user

NEW_PASSWORD = "N3w-Passw0rd!"


def forgot(client, outbox, email: str) -> str:
    assert client.post("/v1/auth/password/forgot", json={"email": email}).status_code == 202
    return latest_code(outbox, email, "password_reset_code")


def reset(client, email: str, code: str):
    return client.post(
        "/v1/auth/password/reset",
        json={"email": email, "code": code, "new_password": NEW_PASSWORD},
    )


def failing(operation: str):
    def call(**_kwargs):
        raise ClientError({"Error": {"Code": "InternalErrorException", "Message": "x"}}, operation)

    return call


def test_lookup_failure_changes_nothing(client, outbox):
    email, _tokens = signed_in_user(client, outbox)
    code = forgot(client, outbox, email)
    boto = client.app.state.authsvc.gateway.client
    real = boto.admin_get_user
    boto.admin_get_user = failing("AdminGetUser")
    try:
        response = reset(client, email, code)
    finally:
        boto.admin_get_user = real
    assert_problem(response, 503, "upstream_unavailable")
    sign_in(client, email, PASSWORD)  # the old password still works: no reset happened
    assert reset(client, email, code).status_code == 204  # and the code is still good
    sign_in(client, email, NEW_PASSWORD)


def test_cognito_sign_out_failure_after_the_reset_is_queued(client, outbox):
    email, tokens = signed_in_user(client, outbox)
    code = forgot(client, outbox, email)
    state = client.app.state.authsvc
    boto = state.gateway.client
    real = boto.admin_user_global_sign_out
    boto.admin_user_global_sign_out = failing("AdminUserGlobalSignOut")
    try:
        response = reset(client, email, code)
        assert response.status_code == 204, response.text
        assert client.get("/v1/auth/session", headers=tokens.bearer).status_code == 401
        assert state.auth._pending_sign_outs
    finally:
        boto.admin_user_global_sign_out = real
    state.auth.retry_pending_sign_outs()
    refresh = client.post("/v1/auth/refresh", json={"refresh_token": tokens.refresh_token})
    assert refresh.status_code == 401, refresh.text


def test_database_down_after_the_reset_still_answers_204(client, outbox):
    email, tokens = signed_in_user(client, outbox)
    code = forgot(client, outbox, email)
    state = client.app.state.authsvc
    real = state.db.sessions

    def down():
        raise OperationalError("SELECT 1", {}, Exception("database down"))

    state.db.sessions = down
    try:
        response = reset(client, email, code)
        assert response.status_code == 204, response.text
        # Refused here at once; written to the ledger once the database is back.
        assert client.get("/v1/auth/session", headers=tokens.bearer).status_code == 401
        assert state.revocations.unsaved_count() >= 1
    finally:
        state.db.sessions = real
    sign_in(client, email, NEW_PASSWORD)
