"""Creating the template's user pool, app client and groups in the emulator with boto3 (moto
cannot deploy Cognito resources from CloudFormation); idempotent, as moto's state is per
process. Also the identity pool of the federation tests."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from authsvc.dev.template import TemplateError, _parameter_values, _Resolver

logger = logging.getLogger("authsvc.dev.emulator")

# A boto3 cognito-idp client (used untyped here); this alias documents what a value is.
CognitoIdpClient = Any

DEFAULT_STACK_NAME: Final = "authsvc-dev"
DEFAULT_ACCOUNT_ID: Final = "123456789012"  # moto's default account

USER_POOL_TYPE: Final = "AWS::Cognito::UserPool"
USER_POOL_CLIENT_TYPE: Final = "AWS::Cognito::UserPoolClient"
USER_POOL_GROUP_TYPE: Final = "AWS::Cognito::UserPoolGroup"


@dataclass(frozen=True)
class ProvisionedPool:
    """What `provision` created (or found): enough to configure authsvc against it."""

    region: str
    user_pool_id: str
    client_id: str
    client_secret: str | None
    groups: tuple[str, ...]


# --------------------------------------------------------------------------- mapping

# Standard attributes every real pool has. moto lists only the attributes named in Schema,
# so they are sent explicitly to make describe_user_pool answer like Cognito.
_STANDARD_ATTRIBUTES: Final[dict[str, str]] = {
    "sub": "String",
    "name": "String",
    "given_name": "String",
    "family_name": "String",
    "middle_name": "String",
    "nickname": "String",
    "preferred_username": "String",
    "profile": "String",
    "picture": "String",
    "website": "String",
    "email": "String",
    "email_verified": "Boolean",
    "gender": "String",
    "birthdate": "String",
    "zoneinfo": "String",
    "locale": "String",
    "phone_number": "String",
    "phone_number_verified": "Boolean",
    "address": "String",
    "updated_at": "Number",
}


def _accepted(client: CognitoIdpClient, operation: str, props: dict[str, Any]) -> dict[str, Any]:
    """Keep the properties the API operation accepts; CloudFormation-only ones are dropped."""
    members = client.meta.service_model.operation_model(operation).input_shape.members
    dropped = sorted(set(props) - set(members))
    if dropped:
        logger.debug("%s: not sent to the emulator: %s", operation, ", ".join(dropped))
    return {k: v for k, v in props.items() if k in members}


def _schema(attributes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_name = {str(a["Name"]): dict(a) for a in attributes}
    merged: list[dict[str, Any]] = []
    for name, data_type in _STANDARD_ATTRIBUTES.items():
        attribute = by_name.pop(name, {"Name": name, "AttributeDataType": data_type})
        merged.append(attribute)
    merged.extend(by_name.values())  # custom attributes, in template order
    for attribute in merged:
        for key in ("StringAttributeConstraints", "NumberAttributeConstraints"):
            if key in attribute:  # the API takes these limits as strings
                attribute[key] = {k: str(v) for k, v in attribute[key].items()}
    return merged


def _mfa_config(props: dict[str, Any]) -> dict[str, Any] | None:
    """SetUserPoolMfaConfig arguments for CloudFormation's MfaConfiguration + EnabledMfas.

    CreateUserPool cannot enable TOTP-only MFA (it asks for SMS); CloudFormation enables it
    afterwards through SetUserPoolMfaConfig, and so does the emulator.
    """
    mode = str(props.get("MfaConfiguration", "OFF"))
    enabled = [str(m) for m in props.get("EnabledMfas", [])]
    if mode == "OFF" or not enabled:
        return None
    config: dict[str, Any] = {"MfaConfiguration": mode}
    if "SOFTWARE_TOKEN_MFA" in enabled:
        config["SoftwareTokenMfaConfiguration"] = {"Enabled": True}
    if "SMS_MFA" in enabled and "SmsConfiguration" in props:
        sms: dict[str, Any] = {"SmsConfiguration": props["SmsConfiguration"]}
        if "SmsAuthenticationMessage" in props:
            sms["SmsAuthenticationMessage"] = props["SmsAuthenticationMessage"]
        config["SmsMfaConfiguration"] = sms
    return config


def _pages(call: Callable[..., dict[str, Any]], key: str, **kwargs: Any) -> Iterator[Any]:
    token: str | None = None
    while True:
        page = call(**kwargs, **({"NextToken": token} if token else {}))
        yield from page.get(key, [])
        token = page.get("NextToken")
        if not token:
            return


def _resources(template: Mapping[str, Any], kind: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (logical_id, resource)
        for logical_id, resource in template["Resources"].items()
        if isinstance(resource, dict) and resource.get("Type") == kind
    ]


def _active(resolver: _Resolver, resource: Mapping[str, Any]) -> bool:
    condition = resource.get("Condition")
    return condition is None or resolver.condition(str(condition))


def _ensure_pool(
    client: CognitoIdpClient, resolver: _Resolver, logical_id: str, resource: dict[str, Any]
) -> str:
    props = resolver.resolve(resource.get("Properties") or {}, f"Resources/{logical_id}")
    name = str(props.pop("UserPoolName", logical_id))
    for pool in _pages(client.list_user_pools, "UserPools", MaxResults=60):
        if pool["Name"] == name:
            pool_id = str(pool["Id"])
            logger.debug("reusing user pool %s (%s)", name, pool_id)
            break
    else:
        mfa = _mfa_config(props)
        if mfa is not None:
            props.pop("MfaConfiguration")
        if "Schema" in props:
            props["Schema"] = _schema(props["Schema"])
        arguments = _accepted(client, "CreateUserPool", props)
        pool_id = str(client.create_user_pool(PoolName=name, **arguments)["UserPool"]["Id"])
        if mfa is not None:
            client.set_user_pool_mfa_config(UserPoolId=pool_id, **mfa)
        logger.debug("created user pool %s (%s)", name, pool_id)
    arn = client.describe_user_pool(UserPoolId=pool_id)["UserPool"]["Arn"]
    region = client.meta.region_name
    resolver.refs[logical_id] = pool_id
    resolver.attributes[(logical_id, "Arn")] = arn
    resolver.attributes[(logical_id, "UserPoolId")] = pool_id
    provider = f"cognito-idp.{region}.amazonaws.com/{pool_id}"
    resolver.attributes[(logical_id, "ProviderName")] = provider
    resolver.attributes[(logical_id, "ProviderURL")] = f"https://{provider}"
    return pool_id


def find_or_create_client(
    client: CognitoIdpClient, pool_id: str, name: str, props: dict[str, Any]
) -> str:
    """The id of the pool's app client called ``name``, created from ``props`` (the
    template's properties, those moto's CreateUserPoolClient takes) when there is none."""
    existing = _pages(
        client.list_user_pool_clients, "UserPoolClients", UserPoolId=pool_id, MaxResults=60
    )
    client_id = next((str(c["ClientId"]) for c in existing if c["ClientName"] == name), None)
    if client_id is None:
        arguments = _accepted(client, "CreateUserPoolClient", props)
        created = client.create_user_pool_client(UserPoolId=pool_id, ClientName=name, **arguments)
        client_id = str(created["UserPoolClient"]["ClientId"])
        logger.debug("created app client %s (%s)", name, client_id)
    return client_id


def _ensure_client(
    client: CognitoIdpClient, resolver: _Resolver, logical_id: str, resource: dict[str, Any]
) -> tuple[str, str | None]:
    props = resolver.resolve(resource.get("Properties") or {}, f"Resources/{logical_id}")
    pool_id = str(props.pop("UserPoolId"))
    name = str(props.pop("ClientName", logical_id))
    client_id = find_or_create_client(client, pool_id, name, props)
    described = client.describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)
    secret = described["UserPoolClient"].get("ClientSecret")
    resolver.refs[logical_id] = client_id
    resolver.attributes[(logical_id, "ClientId")] = client_id
    if secret is not None:
        resolver.attributes[(logical_id, "ClientSecret")] = secret
    return client_id, None if secret is None else str(secret)


def _ensure_group(
    client: CognitoIdpClient, resolver: _Resolver, logical_id: str, resource: dict[str, Any]
) -> str:
    props = resolver.resolve(resource.get("Properties") or {}, f"Resources/{logical_id}")
    pool_id = str(props.pop("UserPoolId"))
    name = str(props.pop("GroupName", logical_id))
    existing = {g["GroupName"] for g in _pages(client.list_groups, "Groups", UserPoolId=pool_id)}
    if name not in existing:
        arguments = _accepted(client, "CreateGroup", props)
        client.create_group(UserPoolId=pool_id, GroupName=name, **arguments)
        logger.debug("created group %s", name)
    resolver.refs[logical_id] = name
    return name


def provision(
    client: CognitoIdpClient,
    template: dict[str, Any],
    *,
    parameters: dict[str, str] | None = None,
    stack_name: str = DEFAULT_STACK_NAME,
) -> ProvisionedPool:
    """Create the template's user pool, app client and groups (or reuse them by name).

    `parameters` override the template's parameter defaults. The template must hold exactly
    one user pool and one app client (after conditions); groups are optional.
    """
    region = str(client.meta.region_name)
    resolver = _Resolver(
        template,
        _parameter_values(template, parameters or {}),
        {
            "AWS::AccountId": DEFAULT_ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::Region": region,
            "AWS::StackName": stack_name,
            "AWS::StackId": (
                f"arn:aws:cloudformation:{region}:{DEFAULT_ACCOUNT_ID}:stack/{stack_name}/emulator"
            ),
            "AWS::URLSuffix": "amazonaws.com",
        },
    )

    def single(kind: str) -> tuple[str, dict[str, Any]]:
        found = [(i, r) for i, r in _resources(template, kind) if _active(resolver, r)]
        if len(found) != 1:
            names = ", ".join(i for i, _ in found) or "none"
            raise TemplateError(f"expected exactly one {kind} in the template, found {names}")
        return found[0]

    pool_id = _ensure_pool(client, resolver, *single(USER_POOL_TYPE))
    client_id, client_secret = _ensure_client(client, resolver, *single(USER_POOL_CLIENT_TYPE))
    groups = tuple(
        _ensure_group(client, resolver, logical_id, resource)
        for logical_id, resource in _resources(template, USER_POOL_GROUP_TYPE)
        if _active(resolver, resource)
    )
    return ProvisionedPool(
        region=region,
        user_pool_id=pool_id,
        client_id=client_id,
        client_secret=client_secret,
        groups=groups,
    )


def ensure_identity_pool(client: CognitoIdpClient, pool: ProvisionedPool) -> str:
    """The dev identity pool (the template's IdentityPool, by name), bound to the user pool and
    its app client. moto cannot create it from the template, like the user pool."""
    from authsvc.cognito.gateway import new_client

    identity = new_client(
        "cognito-identity",
        region_name=pool.region,
        endpoint_url=client.meta.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106
    )
    name = "authsvc_identities"
    for existing in identity.list_identity_pools(MaxResults=60)["IdentityPools"]:
        if existing["IdentityPoolName"] == name:
            return str(existing["IdentityPoolId"])
    created = identity.create_identity_pool(
        IdentityPoolName=name,
        AllowUnauthenticatedIdentities=False,
        CognitoIdentityProviders=[
            {
                "ProviderName": f"cognito-idp.{pool.region}.amazonaws.com/{pool.user_pool_id}",
                "ClientId": pool.client_id,
                "ServerSideTokenCheck": True,
            }
        ],
    )
    return str(created["IdentityPoolId"])
