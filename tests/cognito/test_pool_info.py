"""What authsvc reads from the user pool's schema (pool.py) and the refusals only the pool can
make: an attribute it does not define or this app may not write (`unknown_attribute`), a
required one missing (`attribute_required`), a value outside its limits
(`invalid_attribute_value`). Against a second moto pool whose schema has what the template's
lacks: a required standard attribute, Number and length-limited String custom attributes, an
immutable one, and an app client that may not write everything.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from authsvc import errors
from authsvc.cognito.gateway import CognitoGateway
from authsvc.cognito.pool import AttributeRule, PoolInfoCache
from authsvc.main import create_app
from tests.conftest import Emulator, make_settings
from tests.helpers import PASSWORD, assert_problem, new_email

SCHEMA = [
    {"Name": "email", "AttributeDataType": "String", "Required": True, "Mutable": True},
    {"Name": "name", "AttributeDataType": "String", "Required": True, "Mutable": True},
    {"Name": "family_name", "AttributeDataType": "String", "Required": False, "Mutable": True},
    {
        "Name": "level",
        "AttributeDataType": "Number",
        "Mutable": True,
        "NumberAttributeConstraints": {"MinValue": "1", "MaxValue": "10"},
    },
    {
        "Name": "badge",
        "AttributeDataType": "String",
        "Mutable": True,
        "StringAttributeConstraints": {"MinLength": "2", "MaxLength": "4"},
    },
    {"Name": "born_in", "AttributeDataType": "String", "Mutable": False},
    {"Name": "secret", "AttributeDataType": "String", "Mutable": True},
]
# custom:secret is in the pool but not in the client's WriteAttributes.
WRITE = ["email", "name", "family_name", "custom:level", "custom:badge", "custom:born_in"]


@dataclass
class OtherPool:
    pool_id: str
    client_id: str
    client: TestClient


@pytest.fixture(scope="module")
def other_pool(cognito: Emulator, database_url: str) -> Iterator[OtherPool]:
    boto = cognito.client
    pool_id = boto.create_user_pool(
        PoolName=f"schema-pool-{uuid.uuid4().hex[:6]}",
        UsernameAttributes=["email"],
        Schema=SCHEMA,
    )["UserPool"]["Id"]
    client_id = boto.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="schema-pool-app",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        WriteAttributes=WRITE,
        ReadAttributes=[*WRITE, "custom:secret", "email_verified"],
    )["UserPoolClient"]["ClientId"]
    settings = make_settings(
        cognito,
        database_url,
        cognito_user_pool_id=pool_id,
        cognito_client_id=client_id,
        cognito_client_secret=None,
    )
    try:
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            yield OtherPool(pool_id, client_id, client)
    finally:
        boto.delete_user_pool(UserPoolId=pool_id)


def _info(cognito: Emulator, pool: OtherPool):
    settings = make_settings(
        cognito,
        "sqlite://",
        cognito_user_pool_id=pool.pool_id,
        cognito_client_id=pool.client_id,
        cognito_client_secret=None,
    )
    return PoolInfoCache(CognitoGateway(settings)).get()


def test_reads_custom_required_writable_and_rules(cognito, other_pool):
    info = _info(cognito, other_pool)
    assert {"level", "badge", "born_in", "secret"} <= info.custom.keys()
    assert info.custom["born_in"] is False  # immutable
    assert info.is_immutable("custom:born_in")
    assert not info.is_immutable("custom:level")
    assert not info.is_immutable("custom:no_such_attribute")  # unknown: not said to be
    assert info.custom["level"] is True
    assert {"email", "name"} <= info.required
    assert "family_name" not in info.required
    assert info.writable == frozenset(WRITE)
    assert info.rules["custom:level"] == AttributeRule(
        data_type="Number", min_value=1, max_value=10
    )
    assert info.rules["custom:badge"].min_length == 2
    assert info.rules["custom:badge"].max_length == 4


def test_writable_attributes_names_each_refusal(cognito, other_pool):
    info = _info(cognito, other_pool)
    assert info.writable_attributes({"level": "7", "badge": "ab", "name": "Ann"}) == {
        "custom:level": "7",
        "custom:badge": "ab",
        "name": "Ann",
    }
    # An immutable attribute is written once, when the user is created.
    assert info.writable_attributes({"born_in": "Oslo"}, creating=True) == {
        "custom:born_in": "Oslo"
    }
    with pytest.raises(errors.UnknownAttributeError) as unknown:
        info.writable_attributes({"secret": "x", "born_in": "x", "nope": "x", "level": "1"})
    assert [issue["loc"] for issue in unknown.value.extra["errors"]] == [
        ["body", "attributes", "secret"],  # not in the client's WriteAttributes
        ["body", "attributes", "born_in"],  # immutable
        ["body", "attributes", "nope"],  # not in the pool
    ]
    with pytest.raises(errors.AttributeRequiredError) as required:
        info.writable_attributes({"name": None, "family_name": None})
    assert required.value.extra["errors"] == [
        {
            "loc": ["body", "attributes", "name"],
            "msg": "The user pool requires name.",
            "type": "attribute_required",
        }
    ]
    with pytest.raises(errors.InvalidAttributeValueError) as refused:
        info.writable_attributes({"level": "11", "badge": "x", "family_name": "Ok"})
    assert [(i["loc"], i["msg"]) for i in refused.value.extra["errors"]] == [
        (["body", "attributes", "level"], "level takes a number of at most 10."),
        (["body", "attributes", "badge"], "badge takes at least 2 characters."),
    ]


def _sign_up(pool: OtherPool, **fields):
    return pool.client.post(
        "/v1/auth/sign-up",
        json={"email": new_email("schema"), "password": PASSWORD, "family_name": "T", **fields},
    )


@pytest.mark.parametrize(
    ("attributes", "code", "name"),
    [
        ({"level": "3"}, "attribute_required", "name"),  # the pool requires name
        ({"name": "Ann", "level": "0"}, "invalid_attribute_value", "level"),
        ({"name": "Ann", "level": "high"}, "invalid_attribute_value", "level"),
        ({"name": "Ann", "badge": "toolong"}, "invalid_attribute_value", "badge"),
        ({"name": "Ann", "secret": "x"}, "unknown_attribute", "secret"),
        ({"name": "Ann", "test_attribute1": "x"}, "unknown_attribute", "test_attribute1"),
    ],
)
def test_sign_up_refusals_only_the_pool_can_make(other_pool, attributes, code, name):
    response = _sign_up(other_pool, attributes=attributes)
    body = assert_problem(response, 400, code)
    assert [(e["loc"], e["type"]) for e in body["errors"]] == [(["body", "attributes", name], code)]


def test_sign_up_with_what_the_pool_requires(cognito, other_pool):
    email = new_email("schema-ok")
    response = other_pool.client.post(
        "/v1/auth/sign-up",
        json={
            "email": email,
            "password": PASSWORD,
            "family_name": "T",
            # born_in is immutable: set once, here
            "attributes": {"name": "Ann", "level": "10", "badge": "abcd", "born_in": "Oslo"},
        },
    )
    assert response.status_code == 202, response.text
    stored = cognito.client.admin_get_user(UserPoolId=other_pool.pool_id, Username=email)
    values = {a["Name"]: a["Value"] for a in stored["UserAttributes"]}
    assert (values["name"], values["custom:level"], values["custom:badge"]) == ("Ann", "10", "abcd")
    assert values["custom:born_in"] == "Oslo"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_pool_settings_are_read_again_after_their_ttl(cognito: Emulator) -> None:
    # A change made in the console (here: the password policy) applies once the cached
    # settings are older than the TTL; until then, no describe call is made again. When the
    # pool cannot be read (deleted here), the settings read before are kept.
    boto = cognito.client
    pool_id = boto.create_user_pool(
        PoolName=f"ttl-pool-{uuid.uuid4().hex[:6]}",
        UsernameAttributes=["email"],
        Policies={"PasswordPolicy": {"MinimumLength": 8}},
    )["UserPool"]["Id"]
    client_id = boto.create_user_pool_client(UserPoolId=pool_id, ClientName="ttl-app")[
        "UserPoolClient"
    ]["ClientId"]
    settings = make_settings(
        cognito,
        "sqlite://",
        cognito_user_pool_id=pool_id,
        cognito_client_id=client_id,
        cognito_client_secret=None,
    )
    clock = Clock()
    cache = PoolInfoCache(CognitoGateway(settings), ttl_seconds=300, clock=clock)
    try:
        assert cache.get().policy.minimum_length == 8
        boto.update_user_pool(
            UserPoolId=pool_id, Policies={"PasswordPolicy": {"MinimumLength": 12}}
        )
        clock.now += 299
        assert cache.get().policy.minimum_length == 8  # within the TTL: kept
        clock.now += 2
        assert cache.get().policy.minimum_length == 12  # read again
    finally:
        boto.delete_user_pool(UserPoolId=pool_id)
    clock.now += 301
    assert cache.get().policy.minimum_length == 12  # the re-read failed: kept
    with pytest.raises(errors.AuthSvcError):
        PoolInfoCache(CognitoGateway(settings)).get()  # nothing read before: the error
