"""The embedded Cognito emulator behind `authsvc dev` and the tests.

moto's server mode runs on a loopback port inside this process, and the user pool, app
client and groups are created in it from `infra/template.yaml` with boto3: moto cannot
deploy Cognito resources from CloudFormation, and reading the template keeps it the single
source of truth for the pool's configuration.

moto keeps its state per process, not per server: every `EmbeddedCognito` started in one
process serves the same pools. `provision` is idempotent for that reason.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

import boto3
import yaml

logger = logging.getLogger(__name__)

# boto3 ships no type information; this alias documents what a value is.
CognitoIdpClient = Any

TEMPLATE_PATH_ENV: Final = "AUTHSVC_TEMPLATE_PATH"
DEFAULT_STACK_NAME: Final = "authsvc-dev"
DEFAULT_ACCOUNT_ID: Final = "123456789012"  # moto's default account

USER_POOL_TYPE: Final = "AWS::Cognito::UserPool"
USER_POOL_CLIENT_TYPE: Final = "AWS::Cognito::UserPoolClient"
USER_POOL_GROUP_TYPE: Final = "AWS::Cognito::UserPoolGroup"


class TemplateError(ValueError):
    """The template cannot be read or provisioned; the message says what and where."""


@dataclass(frozen=True)
class ProvisionedPool:
    """What `provision` created (or found): enough to configure authsvc against it."""

    region: str
    user_pool_id: str
    client_id: str
    client_secret: str | None
    groups: tuple[str, ...]


# --------------------------------------------------------------------------- loading

_SHORT_TAGS: Final = (
    "Base64",
    "Cidr",
    "Equals",
    "FindInMap",
    "GetAZs",
    "If",
    "ImportValue",
    "Join",
    "Not",
    "Select",
    "Split",
    "Sub",
    "And",
    "Or",
)


# A SafeLoader that turns CloudFormation short tags into their long JSON form. Built with
# type() so the module type-checks with and without PyYAML's stubs.
_TemplateLoader: Any = type("_TemplateLoader", (yaml.SafeLoader,), {})


def _construct_any(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    raise TemplateError(f"unsupported YAML node {node!r}")  # pragma: no cover


def _long_form(key: str) -> Callable[[yaml.SafeLoader, yaml.Node], dict[str, Any]]:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        return {key: _construct_any(loader, node)}

    return construct


def _construct_get_att(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
    value = _construct_any(loader, node)
    if isinstance(value, str):
        # `!GetAtt Resource.Attribute` (the attribute itself may contain dots)
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {"Fn::GetAtt": value}


_TemplateLoader.add_constructor("!Ref", _long_form("Ref"))
_TemplateLoader.add_constructor("!Condition", _long_form("Condition"))
_TemplateLoader.add_constructor("!GetAtt", _construct_get_att)
for _name in _SHORT_TAGS:
    _TemplateLoader.add_constructor(f"!{_name}", _long_form(f"Fn::{_name}"))


def load_template(path: Path) -> dict[str, Any]:
    """Parse a CloudFormation YAML (or JSON) template, short tags included."""
    try:
        with path.open(encoding="utf-8") as stream:
            template = yaml.load(stream, Loader=_TemplateLoader)  # noqa: S506 (SafeLoader subclass)
    except yaml.YAMLError as exc:
        raise TemplateError(f"{path}: not a valid template: {exc}") from exc
    if not isinstance(template, dict) or not isinstance(template.get("Resources"), dict):
        raise TemplateError(f"{path}: not a CloudFormation template (no Resources mapping)")
    return template


def default_template_path() -> Path:
    """The template to provision from: $AUTHSVC_TEMPLATE_PATH, the source tree, or ./infra."""
    explicit = os.environ.get(TEMPLATE_PATH_ENV)
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise TemplateError(f"{TEMPLATE_PATH_ENV}={explicit}: no such file")
        return path
    candidates = (
        # src/authsvc/dev/emulator.py -> repository root (source checkout, editable install)
        Path(__file__).resolve().parents[3] / "infra" / "template.yaml",
        Path.cwd() / "infra" / "template.yaml",
    )
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    searched = ", ".join(str(c) for c in candidates)
    raise TemplateError(
        f"infra/template.yaml not found (looked at {searched}); "
        f"set {TEMPLATE_PATH_ENV} to the template's path"
    )


# --------------------------------------------------------------------------- resolving

_NO_VALUE: Final = object()
_SUB_VARIABLE: Final = re.compile(r"\$\{([^}!][^}]*)\}")


class _Resolver:
    """Evaluates the intrinsic functions this emulator needs, in the template's context."""

    def __init__(
        self,
        template: Mapping[str, Any],
        parameters: Mapping[str, Any],
        pseudo: Mapping[str, Any],
    ) -> None:
        self._template = template
        self._parameters = parameters
        self._pseudo = pseudo
        # logical id -> Ref value, (logical id, attribute) -> Fn::GetAtt value
        self.refs: dict[str, Any] = {}
        self.attributes: dict[tuple[str, str], Any] = {}
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            definitions = self._template.get("Conditions") or {}
            if name not in definitions:
                raise TemplateError(f"unknown condition {name!r}")
            self._conditions[name] = bool(self.resolve(definitions[name], f"Conditions/{name}"))
        return self._conditions[name]

    def resolve(self, value: Any, where: str) -> Any:
        if isinstance(value, list):
            items = (self.resolve(item, f"{where}/{i}") for i, item in enumerate(value))
            return [item for item in items if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            # {"Condition": name} is the intrinsic; an IAM-style Condition block is a mapping
            named = key in ("Ref", "Condition") and isinstance(argument, str)
            if named or key.startswith("Fn::"):
                return self._intrinsic(key, argument, where)
        resolved = {k: self.resolve(v, f"{where}/{k}") for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    def _ref(self, name: str, where: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        for scope in (self._parameters, self._pseudo, self.refs):
            if name in scope:
                return scope[name]
        raise TemplateError(f"{where}: cannot resolve Ref {name!r} in the emulator")

    def _intrinsic(self, key: str, argument: Any, where: str) -> Any:
        here = f"{where}/{key}"
        match key:
            case "Ref":
                return self._ref(str(argument), here)
            case "Condition":
                return self.condition(str(argument))
            case "Fn::Sub":
                return self._sub(argument, here)
            case "Fn::GetAtt":
                names = argument.split(".", 1) if isinstance(argument, str) else argument
                resource, attribute = (self.resolve(n, here) for n in names)
                if (resource, attribute) not in self.attributes:
                    raise TemplateError(f"{here}: cannot resolve {resource}.{attribute}")
                return self.attributes[(resource, attribute)]
            case "Fn::If":
                name, if_true, if_false = argument
                chosen = if_true if self.condition(name) else if_false
                return self.resolve(chosen, here)
            case "Fn::Equals":
                left, right = self.resolve(argument, here)
                return str(left) == str(right)
            case "Fn::Not":
                (operand,) = self.resolve(argument, here)
                return not operand
            case "Fn::And":
                return all(self.resolve(argument, here))
            case "Fn::Or":
                return any(self.resolve(argument, here))
            case "Fn::Join":
                delimiter, items = self.resolve(argument, here)
                return str(delimiter).join(str(item) for item in items)
            case "Fn::Split":
                delimiter, source = self.resolve(argument, here)
                return str(source).split(str(delimiter))
            case "Fn::Select":
                index, items = self.resolve(argument, here)
                return items[int(index)]
            case "Fn::FindInMap":
                mapping, top, second = self.resolve(argument, here)
                try:
                    return self._template["Mappings"][mapping][top][second]
                except (KeyError, TypeError):
                    raise TemplateError(
                        f"{here}: no {mapping}/{top}/{second} in Mappings"
                    ) from None
        raise TemplateError(f"{here}: {key} is not supported by the emulator")

    def _sub(self, argument: Any, where: str) -> str:
        if isinstance(argument, str):
            text, variables = argument, {}
        else:
            text, raw_variables = argument
            variables = self.resolve(raw_variables, where)

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name:
                resource, attribute = name.split(".", 1)
                if (resource, attribute) in self.attributes:
                    return str(self.attributes[(resource, attribute)])
                raise TemplateError(f"{where}: cannot resolve ${{{name}}}")
            return str(self._ref(name, where))

        # `${!Literal}` is CloudFormation's escape for a literal `${Literal}`
        return _SUB_VARIABLE.sub(replace, str(text)).replace("${!", "${")


def _parameter_values(template: Mapping[str, Any], overrides: Mapping[str, str]) -> dict[str, Any]:
    declared: Mapping[str, Any] = template.get("Parameters") or {}
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise TemplateError(f"unknown template parameter(s): {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        if name in overrides:
            raw: Any = overrides[name]
        elif "Default" in spec:
            raw = spec["Default"]
        else:
            raise TemplateError(f"template parameter {name} has no Default: pass a value for it")
        allowed = spec.get("AllowedValues")
        if allowed is not None and str(raw) not in {str(v) for v in allowed}:
            raise TemplateError(f"template parameter {name}={raw!r} is not one of {allowed}")
        kind = str(spec.get("Type", "String"))
        if kind == "Number":
            text = str(raw)
            values[name] = int(text) if re.fullmatch(r"-?\d+", text) else float(text)
        elif kind == "CommaDelimitedList" or kind.startswith("List<"):
            values[name] = [] if raw in ("", None) else str(raw).split(",")
        else:
            values[name] = str(raw)
    return values


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


def _ensure_client(
    client: CognitoIdpClient, resolver: _Resolver, logical_id: str, resource: dict[str, Any]
) -> tuple[str, str | None]:
    props = resolver.resolve(resource.get("Properties") or {}, f"Resources/{logical_id}")
    pool_id = str(props.pop("UserPoolId"))
    name = str(props.pop("ClientName", logical_id))
    existing = _pages(
        client.list_user_pool_clients, "UserPoolClients", UserPoolId=pool_id, MaxResults=60
    )
    client_id = next((str(c["ClientId"]) for c in existing if c["ClientName"] == name), None)
    if client_id is None:
        arguments = _accepted(client, "CreateUserPoolClient", props)
        created = client.create_user_pool_client(UserPoolId=pool_id, ClientName=name, **arguments)
        client_id = str(created["UserPoolClient"]["ClientId"])
        logger.debug("created app client %s (%s)", name, client_id)
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


# --------------------------------------------------------------------------- the server


def file_tokens_under_the_username() -> None:
    """Make moto file tokens the way Cognito does: under the user's actual username (and
    end them when their user is deleted).

    moto files a refresh token under whatever name signed in (the email, for a pool that
    signs in by email), so it checks REFRESH_TOKEN_AUTH's SECRET_HASH over that name, and
    GlobalSignOut by the actual username misses the token. Cognito hashes over the actual
    username (the access token's ``username``) and signs a user out whichever name is given
    (REFERENCE.md). Patched once per process; moto's state is per process too.
    """
    from moto.cognitoidp.models import CognitoIdpBackend, CognitoIdpUserPool

    global _tokens_patched
    if _tokens_patched:
        return
    delete_user = CognitoIdpBackend.admin_delete_user

    def admin_delete_user(backend: CognitoIdpBackend, user_pool_id: str, username: str) -> None:
        # Cognito's tokens die with their user; moto keeps them, and refreshing one then
        # crashes (HTTP 500) instead of answering NotAuthorizedException.
        user = backend.admin_get_user(user_pool_id, username)
        backend.describe_user_pool(user_pool_id).sign_out(user.username)
        delete_user(backend, user_pool_id, username)

    create_refresh = CognitoIdpUserPool.create_refresh_token
    create_access = CognitoIdpUserPool.create_access_token
    sign_out = CognitoIdpUserPool.sign_out

    def actual(pool: CognitoIdpUserPool, name: str) -> str:
        user = pool._get_user(name)
        return str(user.username) if user is not None else name

    def create_refresh_token(
        pool: CognitoIdpUserPool, client_id: str, username: str
    ) -> tuple[str, str]:
        return create_refresh(pool, client_id, actual(pool, username))

    def create_access_token(
        pool: CognitoIdpUserPool, client_id: str, username: str, origin_jti: str
    ) -> tuple[str, int]:
        return create_access(pool, client_id, actual(pool, username), origin_jti)

    def sign_out_user(pool: CognitoIdpUserPool, username: str) -> None:
        sign_out(pool, actual(pool, username))
        if actual(pool, username) != username:
            sign_out(pool, username)  # tokens filed before the patch, under the alias

    # Patching moto's classes is the point here (moto is pinned: pyproject.toml); mypy
    # reads a function assigned to a class as taking self twice (assignment).
    CognitoIdpUserPool.create_refresh_token = create_refresh_token  # type: ignore[method-assign,assignment]
    CognitoIdpUserPool.create_access_token = create_access_token  # type: ignore[method-assign,assignment]
    CognitoIdpUserPool.sign_out = sign_out_user  # type: ignore[method-assign,assignment]
    CognitoIdpBackend.admin_delete_user = admin_delete_user  # type: ignore[method-assign,assignment]
    _tokens_patched = True


_tokens_patched = False  # moto's state is per process, and so is the patch


class EmbeddedCognito:
    """moto's Cognito in server mode, on a loopback port of this process."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, region: str = "us-east-1") -> None:
        self.host = host
        self.port = port
        self.region = region
        self._server: Any = None
        self._endpoint_url: str | None = None

    @property
    def endpoint_url(self) -> str:
        if self._endpoint_url is None:
            raise RuntimeError("EmbeddedCognito is not started")
        return self._endpoint_url

    def start(self) -> str:
        """Start the server (port 0 picks a free one) and return its endpoint URL."""
        if self._endpoint_url is not None:
            return self._endpoint_url
        # Stable pool and client ids: derived from the name and configuration.
        os.environ.setdefault("MOTO_COGNITO_IDP_USER_POOL_ID_STRATEGY", "HASH")
        os.environ.setdefault("MOTO_COGNITO_IDP_USER_POOL_CLIENT_ID_STRATEGY", "HASH")
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        from moto.server import ThreadedMotoServer  # heavy import, only when used

        file_tokens_under_the_username()
        server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        self._server = server
        self.port = port
        url_host = f"[{host}]" if ":" in host else host
        self._endpoint_url = f"http://{url_host}:{port}"
        return self._endpoint_url

    def client(self) -> CognitoIdpClient:
        """A boto3 cognito-idp client for the emulator (dummy credentials)."""
        return boto3.client(
            "cognito-idp",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
        self._server = None
        self._endpoint_url = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
