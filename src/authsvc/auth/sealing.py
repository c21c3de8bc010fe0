"""Sealed challenge sessions (DESIGN §5).

The ``session`` a client receives with a challenge is not Cognito's: it is Cognito's session
sealed together with the user's actual username (Cognito's ``USER_ID_FOR_SRP``), the email
the sign-in used and the challenge's name, encrypted and authenticated (Fernet: AES-CBC +
HMAC-SHA256) with a key derived from ``AUTHSVC_SECRET_KEY``. The answer is then sent as the
user Cognito named, whatever the client claims, and a client cannot point a session at
another user. A sealed session expires with Cognito's (``AuthSessionValidity``, 3 minutes
by default). Key rotation: sessions sealed with ``AUTHSVC_SECRET_KEY_PREVIOUS`` still open,
so a rolling deploy that changes the key does not break challenges in flight.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from authsvc import errors

# A distinct key for this purpose: the same secret also encrypts outbox payloads.
_PURPOSE = b"authsvc/challenge-session/v1\x00"


def _fernet(secret: str) -> Fernet:
    digest = hashlib.sha256(_PURPOSE + secret.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


@dataclass(frozen=True, slots=True)
class SealedChallenge:
    session: str  # Cognito's
    username: str  # the actual username: what ChallengeResponses.USERNAME must be
    email: str
    challenge: str


class ChallengeSealer:
    def __init__(
        self,
        secret: str,
        *,
        ttl_seconds: int,
        previous: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._fernet = MultiFernet([_fernet(secret), *(_fernet(p) for p in previous)])
        self.ttl_seconds = ttl_seconds
        self._clock = clock

    def seal(self, sealed: SealedChallenge) -> str:
        data = {"s": sealed.session, "u": sealed.username, "e": sealed.email, "c": sealed.challenge}
        plain = json.dumps(data, separators=(",", ":")).encode()
        return self._fernet.encrypt_at_time(plain, int(self._clock())).decode()

    def open(self, token: str) -> SealedChallenge:
        """The sealed challenge, or ``invalid_session`` (forged, altered, expired, foreign)."""
        try:
            plain = self._fernet.decrypt_at_time(
                token.encode("ascii"), self.ttl_seconds, int(self._clock())
            )
            data = json.loads(plain)
            sealed = SealedChallenge(
                session=data["s"], username=data["u"], email=data["e"], challenge=data["c"]
            )
        except (InvalidToken, UnicodeEncodeError, ValueError, KeyError, TypeError):
            raise errors.InvalidSessionError() from None
        if not all(isinstance(v, str) and v for v in (sealed.session, sealed.username)):
            raise errors.InvalidSessionError()
        return sealed
