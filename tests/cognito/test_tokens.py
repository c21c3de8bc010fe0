"""Local verification of access tokens (DESIGN §5), through GET /v1/auth/session.

Tokens are minted with moto's own private key (kid "dummy"), so they are validly signed and
only the claim or header under test is wrong. Every bad token must give 401 invalid_token,
never a 5xx.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json
import random
import string
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import moto
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from authsvc import errors
from authsvc.cognito import tokens as tokens_module
from authsvc.cognito.tokens import JWKSCache, TokenVerifier
from tests.helpers import PASSWORD, assert_problem, new_email, signed_in_user

MOTO_RESOURCES = Path(moto.__file__).parent / "cognitoidp" / "resources"


def _moto_resource(name: str) -> dict[str, Any]:
    plain = MOTO_RESOURCES / name
    if plain.is_file():
        return json.loads(plain.read_text())
    return json.loads(gzip.decompress((MOTO_RESOURCES / f"{name}.gz").read_bytes()))


MOTO_PRIVATE_JWK = _moto_resource("jwks-private.json")
MOTO_PUBLIC_JWKS = _moto_resource("jwks-public.json")
MOTO_PRIVATE_KEY = jwt.PyJWK(MOTO_PRIVATE_JWK, algorithm="RS256").key
MOTO_PUBLIC_KEY = MOTO_PRIVATE_KEY.public_key()
ATTACKER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def app_settings(client):
    return client.app.state.authsvc.settings


@pytest.fixture
def claims(app_settings) -> dict[str, Any]:
    """The claims of a valid access token for the app's pool and client."""
    now = int(time.time())
    sub = str(uuid.uuid4())
    return {
        "iss": app_settings.issuer,
        "sub": sub,
        "client_id": app_settings.cognito_client_id,
        "token_use": "access",
        "scope": "aws.cognito.signin.user.admin",
        "auth_time": now,
        "iat": now,
        "exp": now + 600,
        "jti": str(uuid.uuid4()),
        "username": sub,
    }


def mint(claims: dict[str, Any], *, key: Any = None, headers: dict[str, Any] | None = None) -> str:
    return jwt.encode(
        claims,
        MOTO_PRIVATE_KEY if key is None else key,
        algorithm="RS256",
        headers={"kid": "dummy", **(headers or {})},
    )


def session(client, token: str):
    # Bytes: a malformed token may hold non-ASCII octets, and they must reach the server.
    authorization = f"Bearer {token}".encode()
    return client.get("/v1/auth/session", headers={"Authorization": authorization})


def refused(client, token: str) -> dict[str, Any]:
    response = session(client, token)
    body = assert_problem(response, 401, "invalid_token")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    return body


class _Recorder(BaseHTTPRequestHandler):
    requests: list[str]
    jwks: bytes

    def do_GET(self) -> None:  # noqa: N802
        self.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.jwks)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def attacker_server() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server that serves the attacker's JWKS and records every request."""
    public = json.loads(RSAAlgorithm.to_jwk(ATTACKER_KEY.public_key()))
    jwks = {"keys": [{**public, "kid": "dummy", "alg": "RS256", "use": "sig"}]}
    received: list[str] = []
    handler = type(
        "Recorder", (_Recorder,), {"requests": received, "jwks": json.dumps(jwks).encode()}
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


# --------------------------------------------------------------------------- positive controls


def test_minted_token_with_moto_key_is_accepted(client, claims) -> None:
    # The control for every test below: only what each one changes makes it fail.
    response = session(client, mint(claims))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["sub"] == claims["sub"]
    assert body["client_id"] == claims["client_id"]
    assert body["scopes"] == ["aws.cognito.signin.user.admin"]


def test_real_access_token_is_accepted(client, outbox) -> None:
    _, tokens = signed_in_user(client, outbox)
    response = session(client, tokens.access_token)
    assert response.status_code == 200, response.text
    assert response.json()["client_id"] == client.app.state.authsvc.settings.cognito_client_id


# --------------------------------------------------------------------------- claims


def test_other_client_id(client, claims) -> None:
    claims["client_id"] = "someotherclientid"
    refused(client, mint(claims))


def test_other_issuer(client, claims, app_settings) -> None:
    claims["iss"] = app_settings.issuer.rsplit("/", 1)[0] + "/us-east-1_OtherPool1"
    refused(client, mint(claims))


def test_issuer_in_another_region(client, claims, app_settings) -> None:
    claims["iss"] = claims["iss"].replace(app_settings.cognito_region, "eu-west-1")
    refused(client, mint(claims))


def test_token_use_id(client, claims) -> None:
    claims["token_use"] = "id"
    refused(client, mint(claims))


def test_real_id_token_used_as_access_token(client, outbox) -> None:
    _, tokens = signed_in_user(client, outbox)
    refused(client, tokens.id_token)


@pytest.fixture
def cleanup(cognito) -> Iterator[list[Any]]:
    """Undo-callbacks for what a test creates in moto (its state is shared by the run)."""
    undo: list[Any] = []
    yield undo
    for action in reversed(undo):
        action()


def test_real_token_of_another_client_of_the_same_pool(client, cognito, cleanup) -> None:
    # Signed by the same key, same issuer: only client_id tells it apart.
    other = cognito.client.create_user_pool_client(
        UserPoolId=cognito.pool.user_pool_id,
        ClientName=f"other-{uuid.uuid4().hex[:6]}",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    pool_id = cognito.pool.user_pool_id
    cleanup.append(
        lambda: cognito.client.delete_user_pool_client(UserPoolId=pool_id, ClientId=other)
    )
    email = new_email("otherclient")
    _admin_user(cognito.client, pool_id, email)
    cleanup.append(lambda: cognito.client.admin_delete_user(UserPoolId=pool_id, Username=email))
    token = cognito.client.initiate_auth(
        ClientId=other,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": PASSWORD},
    )["AuthenticationResult"]["AccessToken"]
    assert jwt.decode(token, options={"verify_signature": False})["client_id"] == other
    refused(client, token)


def test_real_token_of_another_pool(client, cognito, cleanup) -> None:
    # moto signs every pool's tokens with the same key: only iss tells them apart.
    pool_id = cognito.client.create_user_pool(
        PoolName=f"other-pool-{uuid.uuid4().hex[:6]}", UsernameAttributes=["email"]
    )["UserPool"]["Id"]
    cleanup.append(lambda: cognito.client.delete_user_pool(UserPoolId=pool_id))
    client_id = cognito.client.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="other",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    email = new_email("otherpool")
    _admin_user(cognito.client, pool_id, email)
    token = cognito.client.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": PASSWORD},
    )["AuthenticationResult"]["AccessToken"]
    assert jwt.get_unverified_header(token)["kid"] == "dummy"
    refused(client, token)


def _admin_user(boto, pool_id: str, email: str) -> None:
    boto.admin_create_user(
        UserPoolId=pool_id,
        Username=email,
        MessageAction="SUPPRESS",
        UserAttributes=[
            {"Name": "email", "Value": email},
            {"Name": "family_name", "Value": "Other"},
        ],
    )
    boto.admin_set_user_password(
        UserPoolId=pool_id, Username=email, Password=PASSWORD, Permanent=True
    )


def test_expired(client, claims) -> None:
    claims["iat"] -= 3600
    claims["exp"] = int(time.time()) - 5
    body = refused(client, mint(claims))
    assert "expired" in body["detail"].lower()


def test_not_yet_valid(client, claims) -> None:
    claims["nbf"] = int(time.time()) + 600
    refused(client, mint(claims))


def test_issued_in_the_future(client, claims) -> None:
    claims["iat"] = int(time.time()) + 3600
    claims["exp"] = claims["iat"] + 600
    refused(client, mint(claims))


@pytest.mark.parametrize("missing", ["exp", "iat", "iss", "sub", "token_use", "client_id"])
def test_missing_claim(client, claims, missing: str) -> None:
    del claims[missing]
    refused(client, mint(claims))


@pytest.mark.parametrize(
    ("claim", "value"),
    [("exp", "tomorrow"), ("iat", "now"), ("sub", None), ("client_id", ["a", "b"])],
)
def test_claim_of_the_wrong_type(client, claims, claim: str, value: Any) -> None:
    claims[claim] = value
    refused(client, mint(claims))


# --------------------------------------------------------------------------- attacks


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none(client, claims, alg: str) -> None:
    token = f"{b64json({'alg': alg, 'kid': 'dummy', 'typ': 'JWT'})}.{b64json(claims)}."
    refused(client, token)


def test_alg_none_with_a_signature_segment(client, claims) -> None:
    token = f"{b64json({'alg': 'none', 'kid': 'dummy'})}.{b64json(claims)}.{b64url(b'x' * 32)}"
    refused(client, token)


@pytest.mark.parametrize(
    "pem_format",
    [serialization.PublicFormat.SubjectPublicKeyInfo, serialization.PublicFormat.PKCS1],
)
def test_hs256_signed_with_the_public_key(client, claims, pem_format) -> None:
    # RS/HS confusion: the pool's public key (which anyone can fetch) as an HMAC secret.
    secret = MOTO_PUBLIC_KEY.public_bytes(serialization.Encoding.PEM, pem_format)
    signing_input = f"{b64json({'alg': 'HS256', 'kid': 'dummy', 'typ': 'JWT'})}.{b64json(claims)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    refused(client, f"{signing_input}.{b64url(signature)}")


def test_hs256_signed_with_the_jwks_json(client, claims) -> None:
    secret = json.dumps(MOTO_PUBLIC_JWKS["keys"][0]).encode()
    signing_input = f"{b64json({'alg': 'HS256', 'kid': 'dummy'})}.{b64json(claims)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    refused(client, f"{signing_input}.{b64url(signature)}")


def test_rs512_with_the_right_key(client, claims) -> None:
    # Validly signed by the pool's key, but only RS256 is accepted.
    token = jwt.encode(claims, MOTO_PRIVATE_KEY, algorithm="RS512", headers={"kid": "dummy"})
    refused(client, token)


@pytest.mark.parametrize("kid", ["dummy", "attacker"])
def test_rs256_signed_with_another_key(client, claims, kid: str) -> None:
    refused(client, mint(claims, key=ATTACKER_KEY, headers={"kid": kid}))


def test_signature_of_another_token(client, claims) -> None:
    good = mint(claims).split(".")
    tampered = dict(claims, sub=str(uuid.uuid4()))
    refused(client, f"{good[0]}.{b64json(tampered)}.{good[2]}")


@pytest.mark.parametrize("kid", ["dummy", "attacker-kid"])
@pytest.mark.parametrize("header", ["jku", "x5u", "jwk", "all"])
def test_key_location_headers_are_ignored(
    client, claims, attacker_server, header: str, kid: str
) -> None:
    url, received = attacker_server
    public_jwk = json.loads(RSAAlgorithm.to_jwk(ATTACKER_KEY.public_key()))
    values = {
        "jku": f"{url}/jwks.json",
        "x5u": f"{url}/cert.pem",
        "jwk": {**public_jwk, "kid": kid, "alg": "RS256", "jku": f"{url}/nested.json"},
    }
    headers: dict[str, Any] = dict(values) if header == "all" else {header: values[header]}
    headers["kid"] = kid
    token = mint(claims, key=ATTACKER_KEY, headers=headers)
    refused(client, token)
    time.sleep(0.2)  # a fetch in the background would have arrived by now
    assert received == [], f"the service fetched {received} from a token header"


def test_jku_with_the_right_signature_fetches_nothing(client, claims, attacker_server) -> None:
    # A genuine token carrying jku is judged on the pool's keys alone: accepted, no fetch.
    url, received = attacker_server
    token = mint(claims, headers={"jku": f"{url}/jwks.json", "x5u": f"{url}/c.pem"})
    assert session(client, token).status_code == 200
    assert received == []


@pytest.mark.parametrize(
    "token",
    [
        "onlyonesegment",
        "two.segments",
        "a.b.c.d",
        "!!!.@@@.###",
        "....",
        "eyJhbGciOiJSUzI1NiJ9.\u00e9\u00e8.abc",
        "%00%00.%00.%00",
        b64json({"alg": "RS256", "kid": "dummy"}) + ".bm90IGpzb24." + b64url(b"sig"),
    ],
    ids=["one", "two", "four", "punctuation", "dots", "non-ascii", "percent", "payload-not-json"],
)
def test_malformed(client, token: str) -> None:
    refused(client, token)


def test_two_segments_of_a_real_token(client, claims) -> None:
    header, payload, _ = mint(claims).split(".")
    refused(client, f"{header}.{payload}")


@pytest.mark.parametrize("kid", [None, 12345, "", "k" * 10_000, ["dummy"], {"a": 1}])
def test_unusable_kid(client, claims, kid: Any) -> None:
    header = {"alg": "RS256"} if kid is None else {"alg": "RS256", "kid": kid}
    signing_input = f"{b64json(header)}.{b64json(claims)}"
    token = jwt.encode(claims, MOTO_PRIVATE_KEY, algorithm="RS256", headers={"kid": "dummy"})
    refused(client, f"{signing_input}.{token.split('.')[2]}")


def test_ten_kilobyte_token(client, claims) -> None:
    claims["padding"] = "".join(random.choices(string.ascii_letters, k=10_000))
    token = mint(claims)
    assert len(token) > 10_000
    refused(client, token)


def test_header_not_json(client, claims) -> None:
    good = mint(claims).split(".")
    refused(client, f"{b64url(b'not json')}.{good[1]}.{good[2]}")


# --------------------------------------------------------------------------- JWKS cache


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingFetch:
    def __init__(self, document: dict[str, Any] | None = None) -> None:
        self.document = document if document is not None else MOTO_PUBLIC_JWKS
        self.calls = 0
        self.fail = False

    def __call__(self, url: str) -> dict[str, Any]:
        self.calls += 1
        if self.fail:
            raise ConnectionError(f"{url} is unreachable")
        return self.document


def test_unknown_kids_refetch_at_most_once_per_ten_seconds() -> None:
    clock, fetch = FakeClock(), CountingFetch()
    cache = JWKSCache("http://jwks.invalid", fetch=fetch, clock=clock)
    rng = random.Random(1234)
    start = clock.now
    for i in range(1000):
        clock.now = start + i * 0.00999  # 1,000 lookups spread over 9.99 s
        with pytest.raises(errors.InvalidTokenError):
            cache.get(uuid.UUID(int=rng.getrandbits(128)).hex)
    assert fetch.calls == 1
    clock.now = start + 10.0
    with pytest.raises(errors.InvalidTokenError):
        cache.get("yet-another-kid")
    assert fetch.calls == 2
    for i in range(100):
        clock.now = start + 10.0 + i * 0.05
        with pytest.raises(errors.InvalidTokenError):
            cache.get(f"kid-{i}")
    assert fetch.calls == 2
    # The known key never costs a fetch.
    assert cache.get("dummy") is not None
    assert fetch.calls == 2


def test_prefetched_keys_need_no_fetch_and_throttle_counts_from_prefetch() -> None:
    clock, fetch = FakeClock(), CountingFetch()
    cache = JWKSCache("http://jwks.invalid", fetch=fetch, clock=clock)
    cache.prefetch()
    assert fetch.calls == 1
    clock.now += 5
    assert cache.get("dummy") is not None
    with pytest.raises(errors.InvalidTokenError):
        cache.get("unknown")
    assert fetch.calls == 1


def test_a_rotated_key_is_picked_up_after_the_gap() -> None:
    clock, fetch = FakeClock(), CountingFetch()
    cache = JWKSCache("http://jwks.invalid", fetch=fetch, clock=clock)
    assert cache.get("dummy") is not None
    new_public = json.loads(RSAAlgorithm.to_jwk(ATTACKER_KEY.public_key()))
    fetch.document = {
        "keys": [*MOTO_PUBLIC_JWKS["keys"], {**new_public, "kid": "rotated", "alg": "RS256"}]
    }
    clock.now += 3
    with pytest.raises(errors.InvalidTokenError):
        cache.get("rotated")  # too soon after the last fetch
    clock.now += 7
    assert cache.get("rotated") is not None
    assert fetch.calls == 2


def test_unreachable_jwks_keeps_serving_cached_keys() -> None:
    clock, fetch = FakeClock(), CountingFetch()
    cache = JWKSCache("http://jwks.invalid", fetch=fetch, clock=clock)
    key = cache.get("dummy")
    fetch.fail = True
    for step in range(5):
        clock.now += 11
        # An unknown kid triggers a (failing) refetch: the token is refused, not a 503.
        with pytest.raises(errors.InvalidTokenError):
            cache.get(f"unknown-{step}")
        assert cache.get("dummy") is key
    assert fetch.calls == 6


def test_no_keys_and_fetch_failing_is_upstream_unavailable() -> None:
    clock, fetch = FakeClock(), CountingFetch()
    fetch.fail = True
    cache = JWKSCache("http://jwks.invalid", fetch=fetch, clock=clock)
    cache.prefetch()  # must not raise at start-up
    with pytest.raises(errors.UpstreamUnavailableError) as caught:
        cache.get("dummy")
    assert caught.value.status == 503
    assert caught.value.code == "upstream_unavailable"
    assert "Retry-After" in caught.value.headers
    # With nothing cached it retries after a short gap, not the full 10 s ...
    calls = fetch.calls
    clock.now += 1.0
    fetch.fail = False
    assert cache.get("dummy") is not None
    assert fetch.calls == calls + 1


def test_no_keys_retry_is_still_throttled() -> None:
    clock, fetch = FakeClock(), CountingFetch()
    fetch.fail = True
    cache = JWKSCache("http://jwks.invalid", fetch=fetch, clock=clock)
    for _ in range(200):
        with pytest.raises(errors.UpstreamUnavailableError):
            cache.get("dummy")
    assert fetch.calls == 1


@pytest.mark.parametrize(
    "document",
    [
        {"keys": []},
        {},
        {"keys": [{**MOTO_PUBLIC_JWKS["keys"][0], "alg": "HS256"}]},
        {"keys": [{**MOTO_PUBLIC_JWKS["keys"][0], "use": "enc"}]},
        {"keys": [{"kty": "oct", "kid": "dummy", "k": "c2VjcmV0"}]},
    ],
    ids=["empty", "no-keys", "hs256", "enc", "oct"],
)
def test_jwks_without_rs256_signing_keys_gives_no_key(document) -> None:
    cache = JWKSCache("http://jwks.invalid", fetch=CountingFetch(document), clock=FakeClock())
    with pytest.raises(errors.UpstreamUnavailableError):
        cache.get("dummy")


def test_http_fetch_against_the_emulator(cognito, app_settings) -> None:
    # The real fetcher, against moto's JWKS endpoint over HTTP.
    cache = JWKSCache(app_settings.jwks_url)
    assert cache.get("dummy") is not None
    assert cache.fetch_count == 1


def test_verified_token_is_cached_and_not_decoded_again(client, outbox, monkeypatch) -> None:
    verifier: TokenVerifier = client.app.state.authsvc.verifier
    _, tokens = signed_in_user(client, outbox)
    decoded: list[str] = []
    real_decode = tokens_module.jwt.decode

    def counting_decode(token: str, *args: Any, **kwargs: Any) -> Any:
        decoded.append(token)
        return real_decode(token, *args, **kwargs)

    monkeypatch.setattr(tokens_module.jwt, "decode", counting_decode)
    fetches = verifier.jwks.fetch_count
    assert not verifier.is_cached(tokens.access_token)
    first = session(client, tokens.access_token)
    assert first.status_code == 200, first.text
    assert verifier.is_cached(tokens.access_token)
    assert decoded.count(tokens.access_token) == 1
    second = session(client, tokens.access_token)
    assert second.status_code == 200
    assert second.json() == first.json()
    assert decoded.count(tokens.access_token) == 1  # served from the cache
    assert verifier.jwks.fetch_count == fetches


def test_cached_token_still_expires(app_settings) -> None:
    # A token verified while valid is refused once its exp passes, cache or not.
    verifier = TokenVerifier(
        app_settings, JWKSCache("http://jwks.invalid", fetch=CountingFetch(), clock=FakeClock())
    )
    now = int(time.time())
    token = mint(
        {
            "iss": app_settings.issuer,
            "sub": "s",
            "client_id": app_settings.cognito_client_id,
            "token_use": "access",
            "iat": now - 10,
            "exp": now + 2,
            "jti": "j",
        }
    )
    assert verifier.verify_access(token).sub == "s"
    assert verifier.is_cached(token)
    time.sleep(2.1)
    with pytest.raises(errors.InvalidTokenError):
        verifier.verify_access(token)
    assert not verifier.is_cached(token)


# --------------------------------------------------------------------------- the JWKS fetcher


class _Scripted(BaseHTTPRequestHandler):
    """Answers each path as ``routes`` says: (status, headers, body); records the paths."""

    routes: dict[str, tuple[int, dict[str, str], bytes]]
    requests: list[str]

    def do_GET(self) -> None:  # noqa: N802
        self.requests.append(self.path)
        status, headers, body = self.routes.get(self.path, (404, {}, b"{}"))
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def scripted_server() -> Iterator[tuple[str, dict[str, Any], list[str]]]:
    routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
    received: list[str] = []
    handler = type("Scripted", (_Scripted,), {"routes": routes, "requests": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", routes, received
    finally:
        server.shutdown()
        server.server_close()


def test_http_fetch_reads_a_jwks_over_http(scripted_server) -> None:
    base, routes, received = scripted_server
    routes["/.well-known/jwks.json"] = (200, {}, json.dumps(MOTO_PUBLIC_JWKS).encode())
    cache = JWKSCache(f"{base}/.well-known/jwks.json")
    assert cache.get("dummy") is not None
    assert received == ["/.well-known/jwks.json"]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_http_fetch_follows_no_redirect(scripted_server, status: int) -> None:
    # The keys come from the pool's own URL only: a redirect to other keys (which would
    # verify an attacker's tokens) is a failed fetch, and the target is never requested.
    base, routes, received = scripted_server
    public = json.loads(RSAAlgorithm.to_jwk(ATTACKER_KEY.public_key()))
    attacker_jwks = {"keys": [{**public, "kid": "dummy", "alg": "RS256", "use": "sig"}]}
    routes["/jwks"] = (status, {"Location": f"{base}/elsewhere"}, b"{}")
    routes["/elsewhere"] = (200, {}, json.dumps(attacker_jwks).encode())
    with pytest.raises(OSError) as caught:
        tokens_module._http_fetch(f"{base}/jwks")
    assert getattr(caught.value, "code", None) == status
    assert received == ["/jwks"]
    cache = JWKSCache(f"{base}/jwks")
    with pytest.raises(errors.UpstreamUnavailableError):
        cache.get("dummy")
    assert "/elsewhere" not in received


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (500, b'{"keys": []}', OSError),
        (404, b"{}", OSError),
        (200, b"<html>not json</html>", ValueError),
        (200, b'["a", "list"]', ValueError),
        (200, b" " * (tokens_module.MAX_JWKS_BYTES + 1), ValueError),
    ],
    ids=["500", "404", "not-json", "not-an-object", "too-large"],
)
def test_http_fetch_refuses_what_is_not_a_jwks(scripted_server, status, body, error) -> None:
    base, routes, _ = scripted_server
    routes["/jwks"] = (status, {}, body)
    with pytest.raises(error):
        tokens_module._http_fetch(f"{base}/jwks")


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/jwks", "data:,{}"])
def test_http_fetch_is_http_only(url: str) -> None:
    with pytest.raises(ValueError, match="http"):
        tokens_module._http_fetch(url)
