"""What the service needs to know about its user pool: password policy and attributes.

Read from Cognito (describe_user_pool / describe_user_pool_client) on first use and cached
for ``AUTHSVC_POOL_INFO_TTL_SECONDS``. The service checks passwords against the policy
itself so that a weak password is refused before anything is created (moto checks no
temporary password).
"""

from __future__ import annotations

import logging
import re
import string
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from authsvc import errors
from authsvc.cognito.gateway import CognitoGateway

log = logging.getLogger("authsvc.cognito")

# Cognito's list of special characters for RequireSymbols.
SYMBOLS = set("^$*.[]{}()?\"!@#%&/\\,><':;|_~`=+- ")

# Attributes nobody may write through the profile APIs.
PROTECTED = frozenset({"sub", "email_verified", "phone_number_verified", "cognito:groups"})


@dataclass(frozen=True)
class PasswordPolicy:
    minimum_length: int = 8
    require_uppercase: bool = True
    require_lowercase: bool = True
    require_numbers: bool = True
    require_symbols: bool = True

    @classmethod
    def from_pool(cls, pool: dict[str, Any]) -> PasswordPolicy:
        raw = pool.get("Policies", {}).get("PasswordPolicy", {})
        return cls(
            minimum_length=int(raw.get("MinimumLength", 8)),
            require_uppercase=bool(raw.get("RequireUppercase", False)),
            require_lowercase=bool(raw.get("RequireLowercase", False)),
            require_numbers=bool(raw.get("RequireNumbers", False)),
            require_symbols=bool(raw.get("RequireSymbols", False)),
        )

    def problems(self, password: str) -> list[str]:
        found = []
        if len(password) < self.minimum_length:
            found.append(f"at least {self.minimum_length} characters")
        if self.require_uppercase and not any(c in string.ascii_uppercase for c in password):
            found.append("an uppercase letter")
        if self.require_lowercase and not any(c in string.ascii_lowercase for c in password):
            found.append("a lowercase letter")
        if self.require_numbers and not any(c in string.digits for c in password):
            found.append("a number")
        if self.require_symbols and not any(c in SYMBOLS for c in password):
            found.append("a symbol")
        if password != password.strip():
            found.append("no leading or trailing spaces")
        return found

    def check(self, password: str) -> None:
        missing = self.problems(password)
        if missing:
            raise errors.InvalidPasswordError("The password needs " + ", ".join(missing) + ".")

    def describe(self) -> str:
        return "; ".join(self.problems("")) or "any password"


@dataclass(frozen=True)
class AttributeRule:
    """What the pool accepts as one attribute's value (its schema's data type and limits)."""

    data_type: str = "String"
    min_length: int | None = None
    max_length: int | None = None
    min_value: float | None = None
    max_value: float | None = None

    @classmethod
    def from_schema(cls, attr: dict[str, Any]) -> AttributeRule:
        string = attr.get("StringAttributeConstraints") or {}
        number = attr.get("NumberAttributeConstraints") or {}
        return cls(
            data_type=str(attr.get("AttributeDataType") or "String"),
            min_length=_limit(string.get("MinLength"), int),
            max_length=_limit(string.get("MaxLength"), int),
            min_value=_limit(number.get("MinValue"), float),
            max_value=_limit(number.get("MaxValue"), float),
        )

    def problem(self, name: str, value: str) -> str | None:
        """Why the pool would refuse ``value`` for ``name`` (None: it takes it)."""
        if self.data_type == "Number":
            if not _NUMBER.fullmatch(value):
                return f"{name} takes a number."
            number = float(value)
            if self.min_value is not None and number < self.min_value:
                return f"{name} takes a number of at least {self.min_value:g}."
            if self.max_value is not None and number > self.max_value:
                return f"{name} takes a number of at most {self.max_value:g}."
            return None
        if self.max_length is not None and len(value) > self.max_length:
            return f"{name} takes at most {self.max_length} characters."
        if self.min_length is not None and len(value) < self.min_length:
            return f"{name} takes at least {self.min_length} characters."
        return None


_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def _limit(raw: object, kind: type[int] | type[float]) -> Any:
    try:
        return kind(str(raw)) if raw not in (None, "") else None
    except ValueError:
        return None


# Request fields that are attributes themselves (not keys of `attributes`): errors[] names
# them at the top of the body.
_TOP_LEVEL_FIELDS = frozenset({"given_name", "family_name", "email_verified"})


def field_loc(name: str) -> list[str | int]:
    """Where an attribute sits in a request body (outside name)."""
    return ["body", name] if name in _TOP_LEVEL_FIELDS else ["body", "attributes", name]


@dataclass(frozen=True)
class PoolInfo:
    policy: PasswordPolicy
    # custom attribute name (without "custom:") -> mutable
    custom: dict[str, bool] = field(default_factory=dict)
    # standard attribute name -> mutable
    standard: dict[str, bool] = field(default_factory=dict)
    required: frozenset[str] = frozenset()
    writable: frozenset[str] | None = None  # None: the client may write every attribute
    readable: frozenset[str] | None = None
    # Cognito name (custom ones with their prefix) -> what the pool accepts as its value
    rules: dict[str, AttributeRule] = field(default_factory=dict)

    @classmethod
    def from_cognito(cls, pool: dict[str, Any], client: dict[str, Any]) -> PoolInfo:
        custom: dict[str, bool] = {}
        standard: dict[str, bool] = {}
        rules: dict[str, AttributeRule] = {}
        required = set()
        for attr in pool.get("SchemaAttributes", []):
            name = attr["Name"]
            if name.startswith("dev:"):
                continue  # developer-only: no app client writes it
            mutable = bool(attr.get("Mutable", True))
            if attr.get("Required"):
                required.add(name)
            if name.startswith("custom:"):
                custom[name.removeprefix("custom:")] = mutable
            else:
                standard[name] = mutable
            rules[name] = AttributeRule.from_schema(attr)
        write = client.get("WriteAttributes")
        read = client.get("ReadAttributes")
        return cls(
            policy=PasswordPolicy.from_pool(pool),
            custom=custom,
            standard=standard,
            required=frozenset(required),
            writable=frozenset(write) if write else None,
            readable=frozenset(read) if read else None,
            rules=rules,
        )

    def can_write(self, cognito_name: str, *, creating: bool = False) -> bool:
        """Whether this app may write the attribute; ``creating``: on a new user, where
        Cognito takes immutable attributes too (their one chance to be set)."""
        if cognito_name in PROTECTED:
            return False
        if cognito_name.startswith("custom:"):
            mutable = self.custom.get(cognito_name.removeprefix("custom:"))
        else:
            mutable = self.standard.get(cognito_name)
        if mutable is None or not (mutable or creating):
            return False
        return self.writable is None or cognito_name in self.writable

    def cognito_name(self, name: str) -> str:
        """The pool's name for an outside one (``test_attribute1`` -> ``custom:...``)."""
        if name in self.custom:
            return f"custom:{name}"
        if name in self.standard or name in PROTECTED:
            return name
        return f"custom:{name}"

    def defines(self, cognito_name: str) -> bool:
        """Whether the pool's schema has this attribute (``custom:`` ones by their prefix)."""
        bare = cognito_name.removeprefix("custom:")
        return bare in self.custom if bare != cognito_name else cognito_name in self.standard

    def value_problem(self, cognito_name: str, value: str, *, shown: str) -> str | None:
        """Why the pool would refuse ``value`` for the attribute (named ``shown`` in the
        message), or None."""
        rule = self.rules.get(cognito_name)
        return rule.problem(shown, value) if rule is not None else None

    def is_immutable(self, cognito_name: str) -> bool:
        if cognito_name.startswith("custom:"):
            return self.custom.get(cognito_name.removeprefix("custom:")) is False
        return self.standard.get(cognito_name) is False

    def is_required(self, cognito_name: str) -> bool:
        return cognito_name in self.required

    def writable_attributes(
        self,
        values: Mapping[str, str | None],
        *,
        allow: frozenset[str] = frozenset(),
        creating: bool = False,
    ) -> dict[str, str]:
        """Turn an update request into Cognito attributes, or raise a 400 naming each field.

        ``values`` uses outside names (``given_name``, ``test_attribute1``); custom ones are
        given their ``custom:`` prefix; ``None`` clears one. ``allow`` admits protected names
        (admins may set ``email_verified``); ``creating``: for a new user (sign-up, an
        invitation), which may set immutable attributes. In this order: attributes the pool does not
        define or this app may not write (``unknown_attribute``), a required one cleared
        (``attribute_required``), values the pool does not take (``invalid_attribute_value``).
        """
        out: dict[str, str] = {}
        unknown: list[errors.FieldIssue] = []
        cleared: list[errors.FieldIssue] = []
        refused: list[errors.FieldIssue] = []
        for name, value in values.items():
            cognito_name = self.cognito_name(name)
            known = self.defines(cognito_name) or name in PROTECTED
            writable = known and self.can_write(cognito_name, creating=creating)
            if not (name in allow or writable):
                unknown.append((field_loc(name), unknown_attribute_message(name)))
                continue
            if value is None and self.is_required(cognito_name):
                cleared.append((field_loc(name), required_message(name)))
                continue
            if value is not None and name not in allow:
                problem = self.value_problem(cognito_name, value, shown=name)
                if problem is not None:
                    refused.append((field_loc(name), problem))
                    continue
            out[cognito_name] = "" if value is None else value
        _raise_first(unknown, cleared, refused)
        return out

    def check_required(self, attributes: dict[str, str], *, supplied: frozenset[str]) -> None:
        """A new user: every attribute the pool requires has a value (``attribute_required``
        naming each one missing). ``supplied``: the ones the call sets itself (email)."""
        missing = sorted(
            name
            for name in self.required
            if name not in supplied and name != "sub" and not attributes.get(name)
        )
        if missing:
            outside = [name.removeprefix("custom:") for name in missing]
            raise errors.AttributeRequiredError(
                " ".join(required_message(name) for name in outside),
                issues=[(field_loc(name), required_message(name)) for name in outside],
            )


def unknown_attribute_message(name: str) -> str:
    return f"The user pool has no attribute {name}, or this app may not write it."


def required_message(name: str) -> str:
    return f"The user pool requires {name}."


def _raise_first(
    unknown: list[errors.FieldIssue],
    cleared: list[errors.FieldIssue],
    refused: list[errors.FieldIssue],
) -> None:
    for issues, kind in (
        (unknown, errors.UnknownAttributeError),
        (cleared, errors.AttributeRequiredError),
        (refused, errors.InvalidAttributeValueError),
    ):
        if issues:
            raise kind(" ".join(msg for _, msg in issues), issues=issues)


class PoolInfoCache:
    """Loads ``PoolInfo`` on first use (so start-up never waits on Cognito), then keeps it
    for ``ttl_seconds``: a password policy, attribute or app-client change made in the
    console applies within that time without a restart. A reload that fails keeps the
    previous answer (logged) and is tried again after ``RETRY_SECONDS``."""

    RETRY_SECONDS = 30.0

    def __init__(
        self,
        gateway: CognitoGateway,
        ttl_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._gateway = gateway
        self._ttl = ttl_seconds
        self._clock = clock
        self._info: PoolInfo | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def get(self) -> PoolInfo:
        info = self._info
        if info is not None and self._clock() < self._expires:
            return info
        with self._lock:
            if self._info is not None and self._clock() < self._expires:
                return self._info
            try:
                loaded = PoolInfo.from_cognito(
                    self._gateway.describe_user_pool(), self._gateway.describe_user_pool_client()
                )
            except Exception:
                if self._info is None:
                    raise
                log.warning(
                    "cognito: re-reading the pool's settings failed; keeping the ones read"
                    " before, trying again in %.0f s",
                    self.RETRY_SECONDS,
                    exc_info=True,
                )
                self._expires = self._clock() + min(self.RETRY_SECONDS, self._ttl)
                return self._info
            self._info = loaded
            self._expires = self._clock() + self._ttl
            return loaded
