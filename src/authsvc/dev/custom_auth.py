"""CUSTOM_AUTH for the embedded emulator, routed through authsvc's own Lambda triggers.

moto (pinned: 5.2.5) does not run Cognito's Lambda triggers, and its admin_initiate_auth
refuses ``AuthFlow=CUSTOM_AUTH``. ``install`` wraps two moto functions,
``moto.cognitoidp.models.CognitoIdpBackend.admin_initiate_auth`` and
``CognitoIdpBackend.admin_respond_to_auth_challenge``: a CUSTOM_AUTH call on a client that
allows it runs ``authsvc.directory.triggers`` (Define, Create, Verify) with the event
shapes Cognito documents, and every other call goes to moto unchanged. Tokens are issued
by moto's own ``_log_user_in``. Used by `authsvc dev` (AUTHSVC_DEV_DIRECTORY=1) and the
tests; real Cognito runs the same handlers as Lambda functions (infra/template.yaml).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from authsvc.directory import triggers

PINNED_MOTO = "5.2.5"

_lock = threading.Lock()
_installed: dict[str, Any] = {}
_sessions: dict[str, dict[str, Any]] = {}
_keys: list[str] = []


def _event(
    source: str, user_pool: Any, client_id: str, user: Any, request: dict[str, Any]
) -> dict[str, Any]:
    attributes = {a["Name"]: a["Value"] for a in (user.attributes if user else [])}
    return {
        "version": "1",
        "region": user_pool.region,
        "userPoolId": user_pool.id,
        "userName": user.username if user else None,
        "callerContext": {"awsSdkVersion": "authsvc-dev", "clientId": client_id},
        "triggerSource": source,
        "request": {"userAttributes": attributes, "userNotFound": user is None, **request},
        "response": {},
    }


def _not_authorized(message: str) -> Exception:
    from moto.cognitoidp.exceptions import NotAuthorizedError

    return NotAuthorizedError(message)


def _initiate(backend: Any, pool_id: str, client_id: str, params: dict[str, str]) -> Any:
    from moto.cognitoidp.exceptions import ResourceNotFoundError

    user_pool = backend.describe_user_pool(pool_id)
    client = user_pool.clients.get(client_id)
    if not client:
        raise ResourceNotFoundError(client_id)
    if "ALLOW_CUSTOM_AUTH" not in (client.extended_config.get("ExplicitAuthFlows") or []):
        raise _not_authorized("Auth flow not enabled for this client")
    user = user_pool._get_user(params.get("USERNAME", ""))
    if user is not None and not user.enabled:
        raise _not_authorized("User is disabled.")
    defined = triggers.define(
        _event("DefineAuthChallenge_Authentication", user_pool, client_id, user, {"session": []})
    )["response"]
    if defined.get("failAuthentication") or defined.get("challengeName") != "CUSTOM_CHALLENGE":
        raise _not_authorized("Incorrect username or password.")
    created = triggers.create(
        _event(
            "CreateAuthChallenge_Authentication",
            user_pool,
            client_id,
            user,
            {"challengeName": "CUSTOM_CHALLENGE", "session": []},
        )
    )["response"]
    session = str(uuid.uuid4())
    with _lock:
        _sessions[session] = {
            "pool": user_pool,
            "client_id": client_id,
            "username": user.username,
            "private": created["privateChallengeParameters"],
            "expires": time.monotonic() + 180,  # the client's AuthSessionValidity (3 min)
        }
    return {
        "ChallengeName": "CUSTOM_CHALLENGE",
        "Session": session,
        "ChallengeParameters": {"USERNAME": user.username, **created["publicChallengeParameters"]},
    }


def _respond(backend: Any, session: str, client_id: str, responses: dict[str, str]) -> Any:
    with _lock:
        state = _sessions.pop(session, None)  # one answer per session, as in Cognito
    if state is None or state["expires"] < time.monotonic() or state["client_id"] != client_id:
        raise _not_authorized("Invalid session for the user.")
    user_pool = state["pool"]
    if responses.get("USERNAME") != state["username"]:
        raise _not_authorized("Incorrect username or password.")
    user = user_pool._get_user(state["username"])
    if user is None or not user.enabled:
        raise _not_authorized("User is disabled.")
    request = {
        "privateChallengeParameters": state["private"],
        "challengeAnswer": responses.get("ANSWER", ""),
    }
    event = _event(
        "VerifyAuthChallengeResponse_Authentication", user_pool, client_id, user, request
    )
    with _lock:
        keys = list(_keys)
    correct = bool(triggers.check(event, keys, int(time.time())))
    history = [
        {"challengeName": "CUSTOM_CHALLENGE", "challengeResult": correct, "challengeMetadata": ""}
    ]
    defined = triggers.define(
        _event(
            "DefineAuthChallenge_Authentication", user_pool, client_id, user, {"session": history}
        )
    )["response"]
    if not defined.get("issueTokens"):
        raise _not_authorized("Incorrect username or password.")
    client = user_pool.clients[client_id]
    return backend._log_user_in(user_pool, client, user.username)


def set_keys(keys: list[str]) -> None:
    """The proof keys the emulated Verify trigger accepts (current first)."""
    with _lock:
        _keys[:] = keys


def install(keys: list[str]) -> None:
    """Route CUSTOM_AUTH through the triggers in this process's moto (idempotent)."""
    set_keys(keys)
    from moto.cognitoidp.models import CognitoIdpBackend

    with _lock:
        if _installed:
            return
        initiate: Callable[..., Any] = CognitoIdpBackend.admin_initiate_auth
        respond: Callable[..., Any] = CognitoIdpBackend.admin_respond_to_auth_challenge

        def admin_initiate_auth(
            self: Any, user_pool_id: str, client_id: str, auth_flow: str, auth_parameters: Any
        ) -> Any:
            if auth_flow == "CUSTOM_AUTH":
                return _initiate(self, user_pool_id, client_id, auth_parameters or {})
            return initiate(self, user_pool_id, client_id, auth_flow, auth_parameters)

        def admin_respond_to_auth_challenge(
            self: Any,
            session: str,
            client_id: str,
            challenge_name: str,
            challenge_responses: dict[str, str],
        ) -> Any:
            if challenge_name == "CUSTOM_CHALLENGE":
                return _respond(self, session, client_id, challenge_responses or {})
            return respond(self, session, client_id, challenge_name, challenge_responses)

        CognitoIdpBackend.admin_initiate_auth = admin_initiate_auth  # type: ignore[method-assign]
        CognitoIdpBackend.admin_respond_to_auth_challenge = admin_respond_to_auth_challenge  # type: ignore[method-assign]
        _installed.update(initiate=initiate, respond=respond)
