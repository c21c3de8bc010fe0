"""The OpenAPI document a generator can trust (issue 13).

- camelCase ``operationId`` for every route: the route function's name in camelCase, unless
  ``OPERATION_IDS`` names a better one (one central table: endpoint files stay untouched);
- one tag per domain, described;
- request examples that work as written (a real-looking email, a password that meets the
  template's policy);
- the package version as ``info.version``.

Error responses (problem documents and their examples) are completed in ``problems.py``.
Regenerate the committed ``docs/openapi.json`` with ``make openapi-json``.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi.routing import APIRoute

# Route function name -> operationId, where the name in camelCase would say less.
OPERATION_IDS: dict[str, str] = {
    "resend_code": "resendSignUpCode",
    "challenge": "answerChallenge",
    "refresh": "refreshTokens",
    "session": "getSession",
    "start_totp": "setUpTotp",
    "set_password": "setUserPassword",
    "sign_out_user": "signOutUser",
    "add_to_group": "addUserToGroup",
    "remove_from_group": "removeUserFromGroup",
    "disable_mfa": "disableUserMfa",
    "healthz": "getHealth",
    "readyz": "getReadiness",
    "metrics_endpoint": "getMetrics",
    "outbox": "listDevOutbox",
}

CAMEL_CASE = re.compile(r"^[a-z][a-zA-Z0-9]*$")


def camel(name: str) -> str:
    head, *rest = [part for part in name.split("_") if part]
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def operation_id(route: APIRoute) -> str:
    """FastAPI's ``generate_unique_id_function``."""
    return OPERATION_IDS.get(route.name) or camel(route.name)


def package_version() -> str:
    try:
        return version("authsvc")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


# Tags: one per domain, in the order /docs shows them. Paths under a prefix get its tag.
TAGS: list[dict[str, str]] = [
    {"name": "auth", "description": "Self-service sign-up, sign-in, challenges, tokens."},
    {
        "name": "federation",
        "description": "Sign-in through identity providers (hosted UI, PKCE); AWS credentials.",
    },
    {"name": "profile", "description": "The signed-in user's profile and password."},
    {"name": "mfa", "description": "TOTP multi-factor authentication for the signed-in user."},
    {"name": "invitations", "description": "Invite people (admin); look up and accept."},
    {"name": "admin", "description": "User administration (admin group)."},
    {"name": "audit", "description": "The audit log (admin group)."},
    {"name": "health", "description": "Liveness, readiness and metrics."},
    {"name": "dev", "description": "Dev mode only (`authsvc dev`): the dev outbox."},
]
_TAG_BY_PREFIX = (("/v1/me/mfa", "mfa"), ("/v1/admin/audit-events", "audit"))

# Request examples that work as written against `authsvc dev` (component schema -> example).
PASSWORD_EXAMPLE = "Correct-Horse-7"
REQUEST_EXAMPLES: dict[str, dict[str, Any]] = {
    "SignUpRequest": {
        "email": "bob@example.com",
        "password": PASSWORD_EXAMPLE,
        "given_name": "Bob",
        "family_name": "Builder",
    },
    "ConfirmSignUpRequest": {"email": "bob@example.com", "code": "123456"},
    "EmailRequest": {"email": "bob@example.com"},
    "SignInRequest": {"email": "bob@example.com", "password": PASSWORD_EXAMPLE},
    "ResetPasswordRequest": {
        "email": "bob@example.com",
        "code": "123456",
        "new_password": "Another-Horse-8",
    },
    "ChangePasswordRequest": {
        "current_password": PASSWORD_EXAMPLE,
        "new_password": "Another-Horse-8",
    },
    "InvitationCreate": {
        "email": "carol@example.com",
        "given_name": "Carol",
        "family_name": "Jones",
        "groups": [],
    },
    "TokenRequest": {"token": "the-token-after-#token=-in-the-invitation-link"},
    "AcceptRequest": {
        "token": "the-token-after-#token=-in-the-invitation-link",
        "password": PASSWORD_EXAMPLE,
    },
    "SetPasswordRequest": {"password": "Temporary-Pass-9", "permanent": False},
    "TotpVerify": {"code": "123456"},
    "ProfileUpdate": {"given_name": "Robert", "attributes": {"test_attribute1": "hello"}},
}


# New passwords: the pool's minimum length, from infra/template.yaml's PasswordPolicy
# (tests/test_openapi.py checks they agree). The server checks it with the pool's other rules
# and answers 422 `invalid_password` naming each rule missed; the document states the length.
PASSWORD_MIN_LENGTH = 8
_NEW_PASSWORDS = {
    "SignUpRequest": "password",
    "ResetPasswordRequest": "new_password",
    "ChangePasswordRequest": "new_password",
    "AcceptRequest": "password",
    "SetPasswordRequest": "password",
}
_POLICY_NOTE = (
    "A new password: at least {n} characters, with the pool's other rules (upper and lower"
    " case, a number, a symbol); a password that misses one is refused with 422"
    " `invalid_password`, whose detail names it."
)


def _state_password_policy(schemas: dict[str, Any]) -> None:
    targets = [(name, field) for name, field in _NEW_PASSWORDS.items() if name in schemas]
    # The challenge body, whatever shape it has (one model, or one per challenge).
    targets += [(name, "new_password") for name in schemas if name.startswith("Challenge")]
    for name, field in targets:
        prop = schemas[name].get("properties", {}).get(field)
        if prop is None:
            continue
        for option in prop.get("anyOf", [prop]):
            if option.get("type") == "string":
                option["minLength"] = max(option.get("minLength", 0), PASSWORD_MIN_LENGTH)
        prop["description"] = _POLICY_NOTE.format(n=PASSWORD_MIN_LENGTH)


def _close_pattern_maps(node: Any) -> None:
    """pydantic states a dict's key pattern as ``patternProperties``, which lets any other key
    through; the server refuses them, so the document says so (``additionalProperties``)."""
    if isinstance(node, dict):
        if "patternProperties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _close_pattern_maps(value)
    elif isinstance(node, list):
        for value in node:
            _close_pattern_maps(value)


def finish(document: dict[str, Any]) -> dict[str, Any]:
    """Tags, request examples and the password policy's length (idempotent)."""
    document["tags"] = TAGS
    for path, path_item in document.get("paths", {}).items():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            for prefix, tag in _TAG_BY_PREFIX:
                if path.startswith(prefix):
                    operation["tags"] = [tag]
    schemas = document.get("components", {}).get("schemas", {})
    for name, example in REQUEST_EXAMPLES.items():
        if name in schemas:
            schemas[name]["examples"] = [example]
    _state_password_policy(schemas)
    _close_pattern_maps(document.get("components", {}))
    _close_pattern_maps(document.get("paths", {}))
    return document
