"""Sealed challenge sessions (auth/sealing.py): authenticated, expiring, rotatable."""

from __future__ import annotations

import pytest

from authsvc import errors
from authsvc.auth.sealing import ChallengeSealer, SealedChallenge

KEY = "current-secret-key-0123456789"
OLD = "previous-secret-key-0123456789"
SEALED = SealedChallenge(
    session="cognito-session-" + "x" * 900,
    username="5b0f5e8e-1b7b-4a4c-9c36-2b5f0d4f6f11",
    email="bob@example.com",
    challenge="SOFTWARE_TOKEN_MFA",
)


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_round_trip_and_opaque() -> None:
    sealer = ChallengeSealer(KEY, ttl_seconds=180)
    token = sealer.seal(SEALED)
    assert sealer.open(token) == SEALED
    # Neither Cognito's session nor the user's names can be read from it.
    for secret in (SEALED.session[:20], SEALED.username, SEALED.email):
        assert secret not in token


def test_altered_session_is_invalid_session() -> None:
    sealer = ChallengeSealer(KEY, ttl_seconds=180)
    token = sealer.seal(SEALED)
    middle = len(token) // 2
    altered = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
    with pytest.raises(errors.InvalidSessionError):
        sealer.open(altered)


@pytest.mark.parametrize("token", ["", "forged", "gAAAAA" + "x" * 100, "é" * 10, "a.b.c"])
def test_forged_session_is_invalid_session(token: str) -> None:
    with pytest.raises(errors.InvalidSessionError):
        ChallengeSealer(KEY, ttl_seconds=180).open(token)


def test_another_key_cannot_open_it() -> None:
    token = ChallengeSealer(OLD, ttl_seconds=180).seal(SEALED)
    with pytest.raises(errors.InvalidSessionError):
        ChallengeSealer(KEY, ttl_seconds=180).open(token)


def test_previous_key_still_opens_during_rotation() -> None:
    token = ChallengeSealer(OLD, ttl_seconds=180).seal(SEALED)
    rotated = ChallengeSealer(KEY, ttl_seconds=180, previous=[OLD])
    assert rotated.open(token) == SEALED
    # ... and what the rotated service seals uses the new key.
    assert ChallengeSealer(KEY, ttl_seconds=180).open(rotated.seal(SEALED)) == SEALED


def test_expires_with_cognitos_session() -> None:
    clock = Clock()
    sealer = ChallengeSealer(KEY, ttl_seconds=180, clock=clock)
    token = sealer.seal(SEALED)
    clock.now += 179
    assert sealer.open(token) == SEALED
    clock.now += 2
    with pytest.raises(errors.InvalidSessionError):
        sealer.open(token)


def test_not_the_outbox_key() -> None:
    # The same AUTHSVC_SECRET_KEY encrypts outbox payloads: a payload sealed for the
    # outbox is not a challenge session.
    from authsvc.email.crypto import PayloadCipher

    payload = PayloadCipher(KEY).seal({"s": "x", "u": "y", "e": "z", "c": "SMS_MFA"})
    with pytest.raises(errors.InvalidSessionError):
        ChallengeSealer(KEY, ttl_seconds=180).open(payload)
