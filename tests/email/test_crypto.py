"""PayloadCipher: outbox payloads are sealed with AUTHSVC_SECRET_KEY (DESIGN §4)."""

from __future__ import annotations

import pytest

from authsvc.email.crypto import PayloadCipher

DATA = {"subject": "You're invited", "text": "Open https://x/#token=abc", "link": None}


def test_round_trip():
    cipher = PayloadCipher("a-secret-key-of-16+")
    sealed = cipher.seal(DATA)
    assert "token=abc" not in sealed and "invited" not in sealed
    assert cipher.open(sealed) == DATA
    # A new cipher from the same key (another process) opens it too.
    assert PayloadCipher("a-secret-key-of-16+").open(sealed) == DATA


def test_sealing_is_randomised():
    cipher = PayloadCipher("a-secret-key-of-16+")
    assert cipher.seal(DATA) != cipher.seal(DATA)


def test_wrong_key_fails_with_value_error():
    sealed = PayloadCipher("a-secret-key-of-16+").seal(DATA)
    with pytest.raises(ValueError, match="cannot be decrypted"):
        PayloadCipher("another-key-of-16+!").open(sealed)


def test_tampered_payload_fails_with_value_error():
    cipher = PayloadCipher("a-secret-key-of-16+")
    sealed = cipher.seal(DATA)
    tampered = sealed[:-6] + ("A" if sealed[-6] != "A" else "B") + sealed[-5:]
    with pytest.raises(ValueError):
        cipher.open(tampered)
    with pytest.raises(ValueError):
        cipher.open("not a token at all")


def test_short_key_is_refused():
    with pytest.raises(ValueError, match="16"):
        PayloadCipher("too-short")
