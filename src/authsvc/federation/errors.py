"""Federation errors (DESIGN §3 "Federation and AWS credentials"), rendered like every other."""

from __future__ import annotations

from authsvc.errors import AuthSvcError


class UnknownProviderError(AuthSvcError):
    status, code, title = 404, "unknown_provider", "Unknown identity provider"
    default_detail = "No identity provider of that name is configured."


class RedirectUriNotAllowedError(AuthSvcError):
    status, code, title = 400, "redirect_uri_not_allowed", "Redirect URI not allowed"
    default_detail = "The redirect_uri is not on AUTHSVC_FEDERATION_REDIRECT_URIS."


class InvalidStateError(AuthSvcError):
    status, code, title = 400, "invalid_state", "Invalid state"
    default_detail = (
        "The sign-in state is unknown, already used, expired or was started in another"
        " browser; start the sign-in again."
    )


class ProviderDeniedError(AuthSvcError):
    status, code, title = 400, "provider_denied", "Sign-in denied or cancelled"
    default_detail = "The identity provider did not sign the user in (denied or cancelled)."


class InvalidHandoffCodeError(AuthSvcError):
    status, code, title = 400, "invalid_handoff_code", "Invalid handoff code"
    default_detail = "The handoff code is unknown, already used or expired; sign in again."


class InvalidGrantError(AuthSvcError):
    status, code, title = 400, "invalid_grant", "Authorization code refused"
    default_detail = (
        "The authorization code, code_verifier or redirect_uri was refused by the"
        " authorization server."
    )


class IdentityPoolRefusedError(AuthSvcError):
    status, code, title = 403, "identity_pool_refused", "Identity pool refused"
    default_detail = "The identity pool refused to issue AWS credentials for this user."


class FederationNotConfiguredError(AuthSvcError):
    status, code, title = 404, "federation_not_configured", "Not configured"
    default_detail = "This deployment has no federation or identity pool configured."


FEDERATION_ERRORS: tuple[type[AuthSvcError], ...] = (
    UnknownProviderError,
    RedirectUriNotAllowedError,
    InvalidStateError,
    ProviderDeniedError,
    InvalidHandoffCodeError,
    InvalidGrantError,
    IdentityPoolRefusedError,
    FederationNotConfiguredError,
)
