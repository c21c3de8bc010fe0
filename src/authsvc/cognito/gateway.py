"""The Cognito gateway: one method per Cognito operation, domain errors only.

No FastAPI here. Every call goes through ``_call``, which sends SECRET_HASH where the app
client has a secret, lets botocore's ``standard`` retry mode absorb throttling, and turns
every failure into a domain error through the one table in ``cognito/errors.py``.
"""

from __future__ import annotations

from typing import Any

from authsvc import errors
from authsvc.cognito.admin_ops import AdminOperations
from authsvc.cognito.attributes import (
    Attributes,
    SecretHasher,
    challenge_username,
    from_attribute_list,
    secret_hash,
    to_attribute_list,
    user_sub,
)
from authsvc.cognito.calls import _sent_values
from authsvc.cognito.clients import make_client, new_client

# The gateway's public names, wherever they are defined (importers use this module).
__all__ = [
    "Attributes",
    "CognitoGateway",
    "SecretHasher",
    "_sent_values",
    "challenge_username",
    "from_attribute_list",
    "make_client",
    "new_client",
    "secret_hash",
    "to_attribute_list",
    "user_sub",
]


class CognitoGateway(AdminOperations):
    """One method per Cognito operation. The plumbing is in ``GatewayCalls`` (calls.py),
    the admin operations in ``AdminOperations`` (admin_ops.py)."""

    # -- pool metadata ------------------------------------------------------------------

    def describe_user_pool(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "describe_user_pool", "describe_user_pool", UserPoolId=self.pool_id
        )["UserPool"]
        return result

    def readiness_probe(self) -> None:
        """DescribeUserPool for /readyz. Its own operation name keeps it out of the budget's
        categories (the user-facing budget is not spent on probes) and apart in /metrics;
        /readyz sends at most one per instance per cache period (health/endpoints.py)."""
        self._call("readiness_probe", "describe_user_pool", UserPoolId=self.pool_id)

    def describe_user_pool_client(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "describe_user_pool_client",
            "describe_user_pool_client",
            UserPoolId=self.pool_id,
            ClientId=self.client_id,
        )["UserPoolClient"]
        return result

    # -- sign-up ------------------------------------------------------------------------

    def sign_up(self, email: str, password: str, attributes: Attributes) -> dict[str, Any]:
        def took_effect() -> dict[str, Any] | None:
            user = self._user_status(email)
            if user is None:
                return None
            return {
                "UserConfirmed": user.get("UserStatus") == "CONFIRMED",
                "UserSub": user_sub(user),
            }

        return self._checked(
            "sign_up",
            "sign_up",
            took_effect,
            ClientId=self.client_id,
            Username=email,
            Password=password,
            UserAttributes=to_attribute_list({"email": email, **attributes}),
            **self._secret_kwarg(email),
        )

    def confirm_sign_up(self, email: str, code: str) -> None:
        def took_effect() -> dict[str, Any] | None:
            user = self._user_status(email)
            return {} if user is not None and user.get("UserStatus") == "CONFIRMED" else None

        self._checked(
            "confirm_sign_up",
            "confirm_sign_up",
            took_effect,
            ClientId=self.client_id,
            Username=email,
            ConfirmationCode=code,
            **self._secret_kwarg(email),
        )

    def resend_confirmation_code(self, email: str) -> dict[str, Any]:
        return self._call(
            "resend_confirmation_code",
            "resend_confirmation_code",
            ClientId=self.client_id,
            Username=email,
            **self._secret_kwarg(email),
        )

    # -- sign-in ------------------------------------------------------------------------

    def sign_in(self, email: str, password: str) -> dict[str, Any]:
        params = self._with_secret({"USERNAME": email, "PASSWORD": password}, email)
        return self._call(
            "sign_in",
            "initiate_auth",
            ClientId=self.client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters=params,
        )

    def respond_to_challenge(
        self, challenge: str, session: str, username: str, answers: Attributes
    ) -> dict[str, Any]:
        """Answer as ``username``: the user's actual username (``challenge_username``), never
        an alias. Cognito refuses an alias here, and the SECRET_HASH is over that name."""
        responses = self._with_secret({"USERNAME": username, **answers}, username)
        return self._call(
            "respond_to_challenge",
            "respond_to_auth_challenge",
            ClientId=self.client_id,
            ChallengeName=challenge,
            Session=session,
            ChallengeResponses=responses,
        )

    def refresh(self, refresh_token: str, username: str | None = None) -> dict[str, Any]:
        params = {"REFRESH_TOKEN": refresh_token}
        if username is not None:
            self._with_secret(params, username)
        return self._call(
            "refresh",
            "initiate_auth",
            ClientId=self.client_id,
            AuthFlow="REFRESH_TOKEN_AUTH",
            AuthParameters=params,
        )

    def global_sign_out(self, access_token: str) -> None:
        self._call("global_sign_out", "global_sign_out", AccessToken=access_token)

    def revoke_token(self, refresh_token: str) -> None:
        """RevokeToken: one refresh token (and the access tokens it issued), not the user's
        other sessions."""
        kwargs: dict[str, Any] = {"Token": refresh_token, "ClientId": self.client_id}
        if self.client_secret:
            kwargs["ClientSecret"] = self.client_secret
        self._call("revoke_token", "revoke_token", **kwargs)

    # -- password lifecycle -------------------------------------------------------------

    def forgot_password(self, email: str) -> dict[str, Any]:
        return self._call(
            "forgot_password",
            "forgot_password",
            ClientId=self.client_id,
            Username=email,
            **self._secret_kwarg(email),
        )

    def confirm_forgot_password(self, email: str, code: str, new_password: str) -> None:
        def took_effect() -> dict[str, Any] | None:
            # The new password works (tokens, or a further challenge): the reset happened.
            try:
                self.sign_in(email, new_password)
            except (errors.InvalidCredentialsError, errors.UserNotConfirmedError):
                return None
            return {}

        self._checked(
            "confirm_forgot_password",
            "confirm_forgot_password",
            took_effect,
            ClientId=self.client_id,
            Username=email,
            ConfirmationCode=code,
            Password=new_password,
            **self._secret_kwarg(email),
        )

    def change_password(self, access_token: str, current: str, new: str) -> None:
        def took_effect() -> dict[str, Any] | None:
            # The new password works: the change happened. (Unless it is the old one.)
            if new == current:
                return None
            user = self._call("get_user", "get_user", AccessToken=access_token)
            email = from_attribute_list(user.get("UserAttributes", [])).get("email")
            if not email:
                return None
            try:
                self.sign_in(email, new)
            except (errors.InvalidCredentialsError, errors.UserNotConfirmedError):
                return None
            return {}

        self._checked(
            "change_password",
            "change_password",
            took_effect,
            AccessToken=access_token,
            PreviousPassword=current,
            ProposedPassword=new,
        )

    # -- profile ------------------------------------------------------------------------

    def get_user(self, access_token: str) -> dict[str, Any]:
        return self._call("get_user", "get_user", AccessToken=access_token)

    def update_user_attributes(self, access_token: str, attributes: Attributes) -> None:
        self._call(
            "update_user_attributes",
            "update_user_attributes",
            AccessToken=access_token,
            UserAttributes=to_attribute_list(attributes),
        )

    def associate_software_token(self, access_token: str) -> str:
        result = self._call(
            "associate_software_token", "associate_software_token", AccessToken=access_token
        )
        return str(result["SecretCode"])

    def verify_software_token(self, access_token: str, code: str) -> str:
        result = self._call(
            "verify_software_token",
            "verify_software_token",
            AccessToken=access_token,
            UserCode=code,
            FriendlyDeviceName="authsvc",
        )
        return str(result.get("Status", ""))

    def set_totp_preference(self, access_token: str, *, enabled: bool) -> None:
        self._call(
            "set_user_mfa_preference",
            "set_user_mfa_preference",
            AccessToken=access_token,
            SoftwareTokenMfaSettings={"Enabled": enabled, "PreferredMfa": enabled},
        )
