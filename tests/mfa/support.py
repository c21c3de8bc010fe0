"""TOTP for the tests: RFC 6238 codes for moto's fixed secret, and turning MFA on over HTTP.

moto gives every user the secret ``ASDFASDFASDF`` (60 bits: pyotp refuses it as too short)
and accepts only the code of the current 30 s step, with no window either side. A code is
therefore computed only when at least ``MARGIN_S`` of its step is left.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import time
from typing import Any

from tests.helpers import Tokens

MOTO_SECRET = "ASDFASDFASDF"
STEP_S = 30
DIGITS = 6
MARGIN_S = 3.0

TOTP = "/v1/me/mfa/totp"
VERIFY = "/v1/me/mfa/totp/verify"
CHALLENGE = "/v1/auth/challenge"


def totp_at(secret: str, at: float) -> str:
    """RFC 6238: HMAC-SHA1 over the 30 s step counter, dynamic truncation, 6 digits."""
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(at // STEP_S)), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 10**DIGITS:0{DIGITS}d}"


def wait_for_fresh_step(margin: float = MARGIN_S) -> None:
    """Sleep out the end of the current step if less than ``margin`` seconds are left."""
    left = STEP_S - time.time() % STEP_S
    if left < margin:
        time.sleep(left + 0.05)


def current_code(secret: str = MOTO_SECRET, margin: float = MARGIN_S) -> str:
    """The code moto accepts now, with at least ``margin`` seconds left to use it."""
    wait_for_fresh_step(margin)
    return totp_at(secret, time.time())


def wrong_code(secret: str = MOTO_SECRET) -> str:
    """A well-formed code that is none of the codes of the steps around now."""
    now = time.time()
    near = {totp_at(secret, now + k * STEP_S) for k in (-2, -1, 0, 1, 2)}
    return next(
        c for c in ("000000", "111111", "222222", "333333", "444444", "555555") if c not in near
    )


def enable_totp(client: Any, tokens: Tokens) -> str:
    """Turn TOTP MFA on over the API; returns the secret the API handed out."""
    setup = client.post(TOTP, headers=tokens.bearer)
    assert setup.status_code == 200, setup.text
    secret = str(setup.json()["secret_code"])
    response = client.post(VERIFY, json={"code": current_code(secret)}, headers=tokens.bearer)
    assert response.status_code == 204, response.text
    return secret


def mfa_answer(email: str, session: str, code: str) -> dict[str, str]:
    return {"challenge": "SOFTWARE_TOKEN_MFA", "session": session, "email": email, "code": code}
