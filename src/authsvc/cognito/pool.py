"""What the service needs to know about its user pool: password policy and attributes.

Read once from Cognito (describe_user_pool / describe_user_pool_client) and cached for
the life of the process. The service checks passwords against the policy itself so that a
weak password is refused before anything is created (moto checks no temporary password).
"""

from __future__ import annotations

import string
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from authsvc import errors
from authsvc.cognito.gateway import CognitoGateway

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
class PoolInfo:
    policy: PasswordPolicy
    # custom attribute name (without "custom:") -> mutable
    custom: dict[str, bool] = field(default_factory=dict)
    # standard attribute name -> mutable
    standard: dict[str, bool] = field(default_factory=dict)
    required: frozenset[str] = frozenset()
    writable: frozenset[str] | None = None  # None: the client may write every attribute
    readable: frozenset[str] | None = None

    @classmethod
    def from_cognito(cls, pool: dict[str, Any], client: dict[str, Any]) -> PoolInfo:
        custom: dict[str, bool] = {}
        standard: dict[str, bool] = {}
        required = set()
        for attr in pool.get("SchemaAttributes", []):
            name = attr["Name"]
            mutable = bool(attr.get("Mutable", True))
            if attr.get("Required"):
                required.add(name)
            if name.startswith("custom:"):
                custom[name.removeprefix("custom:")] = mutable
            else:
                standard[name] = mutable
        write = client.get("WriteAttributes")
        read = client.get("ReadAttributes")
        return cls(
            policy=PasswordPolicy.from_pool(pool),
            custom=custom,
            standard=standard,
            required=frozenset(required),
            writable=frozenset(write) if write else None,
            readable=frozenset(read) if read else None,
        )

    def can_write(self, cognito_name: str) -> bool:
        if cognito_name in PROTECTED:
            return False
        if cognito_name.startswith("custom:"):
            mutable = self.custom.get(cognito_name.removeprefix("custom:"))
        else:
            mutable = self.standard.get(cognito_name)
        if not mutable:
            return False
        return self.writable is None or cognito_name in self.writable

    def writable_attributes(
        self, values: Mapping[str, str | None], *, allow: frozenset[str] = frozenset()
    ) -> dict[str, str]:
        """Turn an update request into Cognito attributes, or raise 422 naming the culprits.

        ``values`` uses outside names (``given_name``, ``test_attribute1``); custom ones are
        given their ``custom:`` prefix. ``allow`` admits protected names (admins may set
        ``email_verified``).
        """
        out: dict[str, str] = {}
        refused: list[str] = []
        for name, value in values.items():
            cognito_name = name if name in self.standard or name in PROTECTED else f"custom:{name}"
            if name in self.custom:
                cognito_name = f"custom:{name}"
            known = name in self.custom or name in self.standard or name in PROTECTED
            if name in allow or (known and self.can_write(cognito_name)):
                if value is None and cognito_name.removeprefix("custom:") in {
                    r.removeprefix("custom:") for r in self.required
                }:
                    refused.append(f"{name} (required)")
                    continue
                out[cognito_name] = "" if value is None else value
            else:
                refused.append(name)
        if refused:
            raise errors.ValidationError(
                "These attributes do not exist or cannot be changed: " + ", ".join(sorted(refused))
            )
        return out


class PoolInfoCache:
    """Loads ``PoolInfo`` on first use (so start-up never waits on Cognito), then keeps it."""

    def __init__(self, gateway: CognitoGateway) -> None:
        self._gateway = gateway
        self._info: PoolInfo | None = None
        self._lock = threading.Lock()

    def get(self) -> PoolInfo:
        info = self._info
        if info is not None:
            return info
        with self._lock:
            if self._info is None:
                self._info = PoolInfo.from_cognito(
                    self._gateway.describe_user_pool(), self._gateway.describe_user_pool_client()
                )
            return self._info
