"""Shared request/response building blocks."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from email_validator import SPECIAL_USE_DOMAIN_NAMES
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    StringConstraints,
)
from pydantic.json_schema import WithJsonSchema


def _lower(value: str) -> str:
    return value.strip().lower()


def _any_case(word: str) -> str:
    return "".join(f"[{c}{c.upper()}]" if c.isalpha() else c for c in word)


# email-validator (behind EmailStr) refuses special-use domains (RFC 6761: `.test`, `.local`,
# ...) that `format: email` allows: the document says so, so clients and generated
# requests know. ECMA-262 has no inline flags, hence the [tT] classes.
_NOT_SPECIAL_USE = (
    "^(?!.*[.@](?:"
    + "|".join(_any_case(name) for name in sorted(SPECIAL_USE_DOMAIN_NAMES, key=len, reverse=True))
    + r")\.?$)"
)
EMAIL_MAX_LENGTH = 254

Email = Annotated[
    EmailStr,
    StringConstraints(max_length=EMAIL_MAX_LENGTH),
    AfterValidator(_lower),
    WithJsonSchema(
        {
            "type": "string",
            "format": "email",
            "maxLength": EMAIL_MAX_LENGTH,
            "pattern": _NOT_SPECIAL_USE,
            "description": "An email address; special-use domains (`.test`, `.local`, ...)"
            " are refused. Compared in lower case.",
        }
    ),
]
Password = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Code = Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
AttributeValue = Annotated[str, StringConstraints(max_length=2048)]
AttributeName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]{1,20}$")]


_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def _rfc3339(value: object) -> object:
    # pydantic alone also takes "0.5" (a Unix time) or a date: `format: date-time` says
    # RFC 3339, with its offset, so a query parameter takes exactly that.
    if isinstance(value, str) and not _RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 date-time with an offset, e.g. 2026-01-31T12:00:00Z")
    return value


Timestamp = Annotated[datetime, BeforeValidator(_rfc3339)]


class RequestModel(BaseModel):
    """Every request body: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")
