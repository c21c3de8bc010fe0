"""No password, code, token or invitation link ever lands in the audit log.

One flow does everything that is audited (sign-up with a resent code and a wrong code,
confirm, sign-in ok and failed, refresh, a NEW_PASSWORD_REQUIRED challenge, change password,
forgot/reset, sign-out, invitation create/resend/revoke/accept, every admin action, with
failures on the way) and collects every secret it used or received. Then the WHOLE
``audit_event`` table (every column of every row, ``str()`` and JSON of ``detail``) and the
API's answers are searched for each of them.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from authsvc.cursors import aware
from tests.admin.support import (
    AUDIT,
    TEMPORARY_PASSWORD,
    created_by_admin,
    make_admin,
    user_path,
    username_of,
    walk,
)
from tests.audit.conftest import table_rows
from tests.helpers import Tokens, latest_code, new_email, sign_up
from tests.invitations.support import (
    LINK_PREFIX,
    accept,
    invite_and_link,
    lookup,
    next_token,
)

COLUMNS = (
    "id",
    "occurred_at",
    "actor",
    "action",
    "target",
    "target_email",
    "outcome",
    "ip",
    "user_agent",
    "request_id",
    "detail",
)


class Secrets:
    """Everything secret the flow touched. Six-digit codes are kept apart (see ``scan``)."""

    def __init__(self) -> None:
        self.long: set[str] = set()
        self.codes: set[str] = set()

    def password(self, value: str) -> str:
        self.long.add(value)
        return value

    def code(self, value: str) -> str:
        assert len(value) == 6 and value.isdigit()
        self.codes.add(value)
        return value

    def tokens(self, body: dict[str, Any]) -> Tokens:
        for name in ("access_token", "id_token", "refresh_token"):
            self.token(body[name])
        return Tokens(body["access_token"], body["id_token"], body["refresh_token"])

    def token(self, value: str) -> None:
        self.long.add(value)
        parts = value.split(".")
        if len(parts) == 3:  # a JWT: its claims and its signature must not leak alone either
            self.long.update(parts[1:])

    def invitation(self, token: str) -> str:
        self.long.update({token, LINK_PREFIX + token})
        return token

    def session(self, value: str) -> str:
        self.long.add(value)
        return value


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def scan(haystacks: dict[str, str], secrets: Secrets) -> list[str]:
    """``haystacks``: where → text. Six-digit codes are not searched in timestamps, whose
    microseconds are six digits of their own and cannot carry client input."""
    found = []
    for where, text in haystacks.items():
        for secret in secrets.long:
            if secret in text:
                found.append(f"{where}: {secret[:24]}…")
        if not where.endswith(".occurred_at"):
            for code in secrets.codes:
                if code in text:
                    found.append(f"{where}: code {code}")
    return found


def run_flow(client, outbox, cognito, secrets: Secrets) -> tuple[Tokens, set[str]]:
    """Everything audited, with secrets recorded. Returns the admin and the users' emails."""
    ok = {200, 201, 202, 204}

    def post(path: str, body: Any = None, *, expect: set[int] | int = ok, **kwargs: Any) -> Any:
        response = client.post(path, json=body, **kwargs)
        wanted = {expect} if isinstance(expect, int) else expect
        assert response.status_code in wanted, (path, response.text)
        return response

    _, admin = make_admin(client, outbox, cognito)
    for name in ("access_token", "id_token", "refresh_token"):
        secrets.token(getattr(admin, name))

    # -- sign-up, resend, confirm (a wrong code first) -----------------------------------
    email = new_email("secret")
    password = secrets.password("Sign-up-Secr3t!")
    assert sign_up(client, email, password).status_code == 202
    secrets.code(latest_code(outbox, email, "sign_up_code"))
    post("/v1/auth/sign-up/resend", {"email": email})
    code = secrets.code(latest_code(outbox, email, "sign_up_code"))
    post(
        "/v1/auth/sign-up/confirm",
        {"email": email, "code": secrets.code(other_code(code))},
        expect=400,
    )
    post("/v1/auth/sign-up/confirm", {"email": email, "code": code})
    username = username_of(cognito, email)

    # -- sign-in ok and failed, refresh, profile ------------------------------------------
    post(
        "/v1/auth/sign-in",
        {"email": email, "password": secrets.password("Wr0ng-Secr3t!")},
        expect=401,
    )
    user = secrets.tokens(post("/v1/auth/sign-in", {"email": email, "password": password}).json())
    secrets.tokens(post("/v1/auth/refresh", {"refresh_token": user.refresh_token}).json())
    response = client.patch("/v1/me", json={"given_name": "Ada"}, headers=user.bearer)
    assert response.status_code == 200

    # -- change password (a wrong current password first) ---------------------------------
    changed = secrets.password("Chang3d-Secr3t!")
    post(
        "/v1/me/password",
        {"current_password": secrets.password("Not-Curr3nt-Secr3t!"), "new_password": changed},
        headers=user.bearer,
        expect=400,
    )
    post(
        "/v1/me/password",
        {"current_password": password, "new_password": changed},
        headers=user.bearer,
    )
    user = secrets.tokens(post("/v1/auth/sign-in", {"email": email, "password": changed}).json())

    # -- forgot / reset (a wrong code first) ----------------------------------------------
    post("/v1/auth/password/forgot", {"email": email})
    reset_code = secrets.code(latest_code(outbox, email, "password_reset_code"))
    reset = secrets.password("R3set-Secr3t!")
    post(
        "/v1/auth/password/reset",
        {"email": email, "code": secrets.code(other_code(reset_code)), "new_password": reset},
        expect=400,
    )
    post("/v1/auth/password/reset", {"email": email, "code": reset_code, "new_password": reset})
    user = secrets.tokens(post("/v1/auth/sign-in", {"email": email, "password": reset}).json())

    # -- sign-out --------------------------------------------------------------------------
    post("/v1/auth/sign-out", headers=user.bearer)
    user = secrets.tokens(post("/v1/auth/sign-in", {"email": email, "password": reset}).json())

    # -- a NEW_PASSWORD_REQUIRED challenge ---------------------------------------------------
    forced = new_email("secretforced")
    created_by_admin(cognito, forced)
    secrets.password(TEMPORARY_PASSWORD)
    challenge = post("/v1/auth/sign-in", {"email": forced, "password": TEMPORARY_PASSWORD}).json()
    session = secrets.session(challenge["session"])
    answer = {"challenge": "NEW_PASSWORD_REQUIRED", "session": session, "email": forced}
    post(
        "/v1/auth/challenge", {**answer, "new_password": secrets.password("feeble-pw")}, expect=422
    )
    secrets.tokens(
        post(
            "/v1/auth/challenge", {**answer, "new_password": secrets.password("Ch0sen-Secr3t!")}
        ).json()
    )

    # -- invitations: create, resend, accept (and the dead token), create + revoke ----------
    invitee = new_email("secretinvitee")
    invitation, first = invite_and_link(client, admin, outbox, invitee, given_name="Ivy")
    secrets.invitation(first)
    post(f"/v1/invitations/{invitation['id']}/resend", headers=admin.bearer)
    second = secrets.invitation(next_token(outbox, invitee, first))
    assert lookup(client, second).status_code == 200
    assert accept(client, first, password=secrets.password("Dead-T0ken-Secr3t!")).status_code == 400
    accepted = accept(client, second, password=secrets.password("Inv1ted-Secr3t!"))
    assert accepted.status_code == 201, accepted.text
    secrets.tokens(accepted.json())

    revoked_email = new_email("secretrevoked")
    revoked, revoked_token = invite_and_link(client, admin, outbox, revoked_email)
    secrets.invitation(revoked_token)
    assert (
        client.delete(f"/v1/invitations/{revoked['id']}", headers=admin.bearer).status_code == 204
    )
    assert (
        accept(client, revoked_token, password=secrets.password("Rev0ked-Secr3t!")).status_code
        == 400
    )

    # -- every admin action, with failures ---------------------------------------------------
    group = f"staff-{uuid.uuid4().hex[:8]}"
    cognito.client.create_group(UserPoolId=cognito.pool.user_pool_id, GroupName=group)
    calls: list[tuple[str, str, Any, int]] = [
        ("PATCH", user_path(username), {"family_name": "Secret", "email_verified": True}, 200),
        ("PATCH", user_path(username), {"attributes": {"sub": "x"}}, 422),
        (
            "POST",
            user_path(username, "password"),
            {"password": secrets.password("Adm1n-Set-Secr3t!"), "permanent": True},
            204,
        ),
        (
            "POST",
            user_path(username, "password"),
            {"password": secrets.password("Adm1n-Temp-Secr3t!"), "permanent": False},
            204,
        ),
        (
            "POST",
            user_path(username, "password"),
            {"password": secrets.password("flimsy-pw"), "permanent": True},
            422,
        ),
        ("POST", user_path(username, "disable"), None, 204),
        ("POST", user_path(username, "enable"), None, 204),
        ("POST", user_path(username, "sign-out"), None, 204),
        ("PUT", user_path(username, "groups", group), None, 204),
        ("DELETE", user_path(username, "groups", group), None, 204),
        ("PUT", user_path(username, "groups", "no-such-group"), None, 404),
        ("DELETE", user_path(username, "mfa"), None, 204),
        ("DELETE", user_path(username), None, 204),
        ("DELETE", user_path(username), None, 404),
    ]
    for method, path, body, status in calls:
        kwargs = {"json": body} if body is not None else {}
        response = client.request(method, path, headers=admin.bearer, **kwargs)
        assert response.status_code == status, (method, path, response.text)
    return admin, {email, forced, invitee, revoked_email}


EXPECTED_ACTIONS = {
    "sign_up",
    "sign_up_code_resent",
    "sign_up_confirmed",
    "sign_in",
    "sign_in_failed",
    "profile_updated",
    "password_changed",
    "password_reset_requested",
    "password_reset",
    "signed_out",
    "challenge_answered",
    "challenge_failed",
    "invitation_created",
    "invitation_resent",
    "invitation_revoked",
    "invitation_accepted",
    "user_updated",
    "user_password_set",
    "user_disabled",
    "user_enabled",
    "user_signed_out",
    "user_added_to_group",
    "user_removed_from_group",
    "user_mfa_disabled",
    "user_deleted",
}


def test_no_secret_in_the_audit_log_or_its_api(client, outbox, cognito):
    started = datetime.now(UTC) - timedelta(seconds=1)
    secrets = Secrets()
    admin, emails = run_flow(client, outbox, cognito, secrets)
    assert len(secrets.long) > 40 and len(secrets.codes) >= 4

    # The flow was audited (the scan below would be vacuous otherwise).
    rows = table_rows(client)
    mine = [r for r in rows if aware(r.occurred_at) >= started]
    assert {r.action for r in mine} >= EXPECTED_ACTIONS
    assert {"success", "failure"} == {r.outcome for r in mine}
    assert emails <= {r.target_email for r in mine}

    # The whole table, every column.
    haystacks: dict[str, str] = {}
    for row in rows:
        for column in COLUMNS:
            value = getattr(row, column)
            haystacks[f"{row.id}.{column}"] = str(value)
        haystacks[f"{row.id}.detail.json"] = json.dumps(row.detail)
    leaks = scan(haystacks, secrets)
    assert not leaks, "\n".join(leaks)

    # What the API shows (every page since the flow started, and the raw page bodies).
    pages = walk(client, admin, AUDIT, since=started.isoformat(), limit=100)
    api: dict[str, str] = {}
    for page in pages:
        for item in page:
            for key, value in item.items():
                api[f"api.{item['id']}.{key}"] = json.dumps(value)
    assert {item["action"] for page in pages for item in page} >= EXPECTED_ACTIONS
    leaks = scan(api, secrets)
    assert not leaks, "\n".join(leaks)


def test_the_scan_finds_what_it_looks_for():
    secrets = Secrets()
    secrets.password("Sign-up-Secr3t!")
    secrets.code("123456")
    secrets.token("aaa.bbbbbbbb.cccccccc")
    assert scan({"x.detail": "{'password': 'Sign-up-Secr3t!'}"}, secrets)
    assert scan({"x.target": "code 123456"}, secrets)
    assert scan({"x.detail.json": '{"claims": "bbbbbbbb"}'}, secrets)
    assert not scan({"x.occurred_at": "2026-01-01 00:00:00.123456+00:00"}, secrets)
    assert not scan({"x.target": "someone@example.com"}, secrets)
