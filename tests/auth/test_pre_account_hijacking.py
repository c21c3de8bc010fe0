"""Pre-account hijacking (issue 11, item 2).

An attacker registers the victim's address with the attacker's password (unconfirmed), before
or after the victim does. Whatever the order, once the holder of the mailbox confirms, no
password chosen by a registrant survives: a sign-up that meets an UNCONFIRMED account
replaces it and marks the address contested, and a contested confirmation ends in a password
reset with the code emailed to the mailbox (Cognito's AdminResetUserPassword). Only the
password the mailbox holder then sets signs in. An invitation for an address held by an
unconfirmed sign-up takes it over.

moto answers SignUp on an UNCONFIRMED user with UsernameExistsException like Cognito; its
gaps (no reset code, a RESET_REQUIRED password offered a NEW_PASSWORD_REQUIRED challenge, the
status left RESET_REQUIRED after the reset) are covered by the dev gateway.
"""

from __future__ import annotations

from sqlalchemy import select

from authsvc.auth.models import ContestedSignUp
from tests.helpers import (
    PASSWORD,
    assert_problem,
    latest_code,
    new_email,
    sign_in,
    sign_up,
)
from tests.invitations.support import accept, invite_and_link, make_admin, users_with_email

ATTACKER_PASSWORD = "Att4cker-Passw0rd!"
VICTIM_PASSWORD = "V1ctim-Passw0rd!"
CHOSEN_AT_RESET = "Own3r-Chosen-Passw0rd!"
CONFIRM = "/v1/auth/sign-up/confirm"


def sign_in_response(client, email: str, password: str):
    return client.post("/v1/auth/sign-in", json={"email": email, "password": password})


def confirm(client, outbox, email: str):
    code = latest_code(outbox, email, "sign_up_code")  # what the mailbox holder reads
    return client.post(CONFIRM, json={"email": email, "code": code})


def contested(client, email: str) -> bool:
    with client.app.state.authsvc.db.sessions() as session:
        return (
            session.scalar(select(ContestedSignUp).where(ContestedSignUp.email == email))
            is not None
        )


def assert_only_the_owner_gets_in(client, outbox, email: str, response) -> None:
    """A contested confirmation: 200 naming the reset; then only the password set with the
    emailed reset code signs in."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["next"] == "reset_password"
    assert body["delivery"]["medium"] == "EMAIL"
    for password in (ATTACKER_PASSWORD, VICTIM_PASSWORD):
        refused = sign_in_response(client, email, password)
        assert refused.status_code in (401, 403), refused.text
        assert refused.json()["code"] in {"password_reset_required", "invalid_credentials"}
    code = latest_code(outbox, email, "password_reset_code")
    reset = client.post(
        "/v1/auth/password/reset",
        json={"email": email, "code": code, "new_password": CHOSEN_AT_RESET},
    )
    assert reset.status_code == 204, reset.text
    sign_in(client, email, CHOSEN_AT_RESET)
    for password in (ATTACKER_PASSWORD, VICTIM_PASSWORD):
        assert_problem(sign_in_response(client, email, password), 401, "invalid_credentials")
    assert not contested(client, email)


class TestBothOrders:
    def test_attacker_registers_first(self, client, outbox):
        email = new_email("victim")
        assert sign_up(client, email, ATTACKER_PASSWORD).status_code == 202
        assert sign_up(client, email, VICTIM_PASSWORD).status_code == 202
        assert contested(client, email)
        assert_only_the_owner_gets_in(client, outbox, email, confirm(client, outbox, email))

    def test_attacker_registers_after_the_owner_before_confirmation(self, client, outbox):
        email = new_email("victim")
        assert sign_up(client, email, VICTIM_PASSWORD).status_code == 202
        assert sign_up(client, email, ATTACKER_PASSWORD).status_code == 202
        assert_only_the_owner_gets_in(client, outbox, email, confirm(client, outbox, email))

    def test_the_answers_do_not_tell_a_replaced_registration_apart(self, client, outbox):
        fresh = sign_up(client, new_email("victim"), VICTIM_PASSWORD)
        email = new_email("victim")
        first = sign_up(client, email, ATTACKER_PASSWORD)
        second = sign_up(client, email, VICTIM_PASSWORD)
        assert fresh.status_code == first.status_code == second.status_code == 202
        assert fresh.json()["delivery"]["medium"] == second.json()["delivery"]["medium"]

    def test_one_registration_confirms_as_before(self, client, outbox):
        email = new_email("single")
        assert sign_up(client, email, VICTIM_PASSWORD).status_code == 202
        response = confirm(client, outbox, email)
        assert response.status_code == 204, response.text
        sign_in(client, email, VICTIM_PASSWORD)

    def test_a_confirmed_account_is_never_replaced(self, client, outbox):
        email = new_email("owner")
        assert sign_up(client, email, VICTIM_PASSWORD).status_code == 202
        assert confirm(client, outbox, email).status_code == 204
        assert sign_up(client, email, ATTACKER_PASSWORD).status_code == 202
        assert not contested(client, email)
        sign_in(client, email, VICTIM_PASSWORD)
        assert_problem(
            sign_in_response(client, email, ATTACKER_PASSWORD), 401, "invalid_credentials"
        )

    def test_tokens_from_the_attackers_password_die_at_the_reset(self, client, outbox):
        """Were the attacker's password to sign in between confirmation and reset (real
        Cognito: a few ms), its tokens are revoked with every other session."""
        email = new_email("victim")
        assert sign_up(client, email, VICTIM_PASSWORD).status_code == 202
        assert sign_up(client, email, ATTACKER_PASSWORD).status_code == 202
        state = client.app.state.authsvc
        state.gateway.confirm_sign_up(email, latest_code(outbox, email, "sign_up_code"))
        stolen = sign_in(client, email, ATTACKER_PASSWORD)  # the window, made wide
        assert client.get("/v1/auth/session", headers=stolen.bearer).status_code == 200
        state.auth._reset_contested(email)
        assert client.get("/v1/auth/session", headers=stolen.bearer).status_code == 401
        refresh = client.post("/v1/auth/refresh", json={"refresh_token": stolen.refresh_token})
        assert refresh.status_code == 401, refresh.text


class TestFaults:
    def test_database_down_at_a_second_sign_up_replaces_nothing(self, client, outbox):
        """The contest must be recorded before the old registration goes: without the
        database, 503 and the first registration stays as it was."""
        from sqlalchemy.exc import OperationalError

        email = new_email("victim")
        assert sign_up(client, email, VICTIM_PASSWORD).status_code == 202
        state = client.app.state.authsvc
        real = state.db.sessions

        def down():
            raise OperationalError("SELECT 1", {}, Exception("database down"))

        state.db.sessions = down
        try:
            response = sign_up(client, email, ATTACKER_PASSWORD)
        finally:
            state.db.sessions = real
        assert_problem(response, 503, "upstream_unavailable")
        assert confirm(client, outbox, email).status_code == 204
        sign_in(client, email, VICTIM_PASSWORD)

    def test_reset_that_fails_at_confirmation_is_finished_by_the_repair_loop(self, client, outbox):
        """Cognito fails right after confirming: the answer still says the confirmation took
        effect, and the row (noted as confirming, in the database) lets any instance's
        repair loop make the reset later, even if this one stopped meanwhile."""
        from botocore.exceptions import ClientError

        email = new_email("victim")
        assert sign_up(client, email, VICTIM_PASSWORD).status_code == 202
        assert sign_up(client, email, ATTACKER_PASSWORD).status_code == 202
        state = client.app.state.authsvc
        boto = state.gateway.client
        real = boto.admin_reset_user_password

        def failing(**_kwargs):
            raise ClientError(
                {"Error": {"Code": "InternalErrorException", "Message": "boom"}},
                "AdminResetUserPassword",
            )

        boto.admin_reset_user_password = failing
        try:
            response = confirm(client, outbox, email)
            assert response.status_code == 200, response.text
            assert state.auth.repair_contested(grace_seconds=0) == 0  # still failing
        finally:
            boto.admin_reset_user_password = real
        assert contested(client, email)
        assert state.auth.repair_contested(grace_seconds=0) == 1
        assert_only_the_owner_gets_in(client, outbox, email, response)

    def test_a_wrong_code_leaves_nothing_to_repair(self, client, outbox):
        email = new_email("victim")
        assert sign_up(client, email, ATTACKER_PASSWORD).status_code == 202
        assert sign_up(client, email, VICTIM_PASSWORD).status_code == 202
        code = latest_code(outbox, email, "sign_up_code")
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        bad = client.post(CONFIRM, json={"email": email, "code": wrong})
        assert_problem(bad, 400, "invalid_code")
        assert client.app.state.authsvc.auth.repair_contested(grace_seconds=0) == 0
        assert_only_the_owner_gets_in(client, outbox, email, confirm(client, outbox, email))


class TestInvitationTakesOverAnUnconfirmedSignUp:
    def test_invitation_for_an_unconfirmed_address_is_created_and_accepted(
        self, client, outbox, cognito
    ):
        admin = make_admin(client, outbox, cognito)
        email = new_email("invited")
        assert sign_up(client, email, ATTACKER_PASSWORD).status_code == 202
        _invitation, token = invite_and_link(client, admin, outbox, email)
        accepted = accept(client, token)
        assert accepted.status_code == 201, accepted.text
        assert len(users_with_email(cognito, email)) == 1
        assert_problem(
            sign_in_response(client, email, ATTACKER_PASSWORD), 401, "invalid_credentials"
        )

    def test_invitation_for_a_confirmed_address_is_still_a_conflict(self, client, outbox, cognito):
        admin = make_admin(client, outbox, cognito)
        email = new_email("invited")
        assert sign_up(client, email, PASSWORD).status_code == 202
        assert confirm(client, outbox, email).status_code == 204
        response = client.post(
            "/v1/invitations", json={"email": email, "family_name": "X"}, headers=admin.bearer
        )
        assert_problem(response, 409, "conflict")
