"""Cognito custom-auth triggers for directory sign-in: Define, Create and Verify.

authsvc checks the directory password, then answers the one custom challenge with a proof:
b64url(json {u, n, exp, p, c}) "." b64url(HMAC-SHA256(key, that)): Cognito username,
the challenge's nonce, expiry, pool and client. Inlined verbatim into infra/template.yaml
(a test checks it): stdlib and boto3 only, under CloudFormation's 4096-character limit.
"""

import base64
import hashlib
import hmac
import json
import os
import secrets
import time

MAX_TTL = 300
_keys = None


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_keys(raw):
    """One key, or JSON {"current": k, "previous": k} while a rotation is in progress."""
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    found = [data.get("current"), data.get("previous")] if isinstance(data, dict) else [raw]
    return [k for k in found if isinstance(k, str) and len(k) >= 32]


def sign(key, username, nonce, pool_id, client_id, exp):
    claims = {"u": username, "n": nonce, "exp": int(exp), "p": pool_id, "c": client_id}
    body = b64(json.dumps(claims, separators=(",", ":")).encode())
    mac = hmac.new(key.encode(), body.encode(), hashlib.sha256).digest()
    return body + "." + b64(mac)


def check(event, keys, now):
    """True when the answer is a proof for this user, challenge, pool and client."""
    req = event.get("request") or {}
    body, _, mac = str(req.get("challengeAnswer") or "").partition(".")
    try:
        given = unb64(mac)
        claims = json.loads(unb64(body))
    except ValueError:
        return False
    ok = any(
        hmac.compare_digest(hmac.new(k.encode(), body.encode(), hashlib.sha256).digest(), given)
        for k in keys
    )
    if not ok or not isinstance(claims, dict) or req.get("userNotFound"):
        return False
    nonce = (req.get("privateChallengeParameters") or {}).get("nonce")
    exp = claims.get("exp")
    return (
        bool(nonce)
        and claims.get("n") == nonce
        and claims.get("u") == event.get("userName")
        and claims.get("p") == event.get("userPoolId")
        and claims.get("c") == (event.get("callerContext") or {}).get("clientId")
        and isinstance(exp, int)
        and now < exp <= now + MAX_TTL
    )


def proof_keys(max_age=300):
    """The secret's keys, re-read after max_age seconds (a rotation reaches warm Lambdas)."""
    global _keys
    if _keys is None or time.time() - _keys[0] > max_age:
        import boto3

        sm = boto3.client("secretsmanager")
        raw = sm.get_secret_value(SecretId=os.environ["PROOF_KEY_SECRET_ARN"])["SecretString"]
        _keys = (time.time(), parse_keys(raw))
    return _keys[1]


def define(event, context=None):
    """One custom challenge; tokens only when it was answered correctly."""
    req, res = event["request"], event["response"]
    session = req.get("session") or []
    res.update(issueTokens=False, failAuthentication=True)
    if req.get("userNotFound") or len(session) > 1:
        return event
    if not session:
        res.update(challengeName="CUSTOM_CHALLENGE", failAuthentication=False)
    elif session[0].get("challengeName") == "CUSTOM_CHALLENGE" and session[0].get(
        "challengeResult"
    ):
        res.update(issueTokens=True, failAuthentication=False)
    return event


def create(event, context=None):
    """A fresh nonce for each challenge: a proof made for another one is refused."""
    nonce = secrets.token_urlsafe(24)
    event["response"].update(
        publicChallengeParameters={"nonce": nonce},
        privateChallengeParameters={"nonce": nonce},
        challengeMetadata="DIRECTORY_PROOF",
    )
    return event


def verify(event, context=None):
    now = int(time.time())
    ok = check(event, proof_keys(), now) or check(event, proof_keys(10), now)
    event["response"]["answerCorrect"] = ok
    return event
