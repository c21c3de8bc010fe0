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
# What str.strip() removes, spelled out so that ECMA-262, Python and pydantic's engine read
# the same class (their `\s` differ: U+001C..U+001F, U+0085, U+FEFF).
_WHITESPACE = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_WHITESPACE_CHARS = "".join(
    chr(c) for c in (*range(0x09, 0x0E), *range(0x1C, 0x21), 0x85, 0xA0, 0x1680)
) + "".join(chr(c) for c in (*range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F, 0x205F, 0x3000))


def _strip(value: str) -> str:
    return value.strip(_WHITESPACE_CHARS)


# A person's name: 1-256 characters as sent, at least one of them not whitespace (the
# document states both); stored without leading and trailing whitespace.
Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=256, pattern=f"[^{_WHITESPACE}]"),
    AfterValidator(_strip),
]
# Cognito's own limit on an attribute value; a pool may set a lower one per attribute
# (answered 400 `invalid_attribute_value`, which no shared schema can state).
ATTRIBUTE_VALUE_MAX_LENGTH = 2048
AttributeValue = Annotated[str, StringConstraints(max_length=ATTRIBUTE_VALUE_MAX_LENGTH)]

# The request fields a body states on its own: never an `attributes` key, whatever the pool.
RESERVED_ATTRIBUTE_NAMES = ("email", "email_verified", "family_name", "given_name", "sub")
# A custom attribute's name as Cognito allows it (1-20 of [A-Za-z0-9_]), given without its
# `custom:` prefix. A lookahead keeps the reserved names out: ECMA-262 and Python agree on it
# (pydantic's own regex engine has no lookaround, hence the validator below).
ATTRIBUTE_NAME_PATTERN = "^(?!(?:" + "|".join(RESERVED_ATTRIBUTE_NAMES) + r")$)[A-Za-z0-9_]{1,20}$"
_ATTRIBUTE_NAME = re.compile(ATTRIBUTE_NAME_PATTERN)


def _attribute_name(name: str) -> str:
    if _ATTRIBUTE_NAME.fullmatch(name):
        return name
    if name in RESERVED_ATTRIBUTE_NAMES:
        raise ValueError(f"{name} is not an attribute here: send it as its own field, if at all.")
    if name.startswith("custom:"):
        raise ValueError("Send custom attributes without the `custom:` prefix.")
    raise ValueError("An attribute name is 1 to 20 letters, digits or underscores.")


AttributeName = Annotated[
    str,
    AfterValidator(_attribute_name),
    WithJsonSchema({"type": "string", "pattern": ATTRIBUTE_NAME_PATTERN}),
]

# Cognito's group-name rule ([\p{L}\p{M}\p{S}\p{N}\p{P}]{1,128}) restricted to ASCII: the
# printable characters but the space, read the same by every regex engine.
GROUP_NAME_PATTERN = r"^[!-~]{1,128}$"
GroupName = Annotated[str, StringConstraints(pattern=GROUP_NAME_PATTERN)]
# In a path, a `/` would end the segment: the same rule without it.
GroupNameSegment = Annotated[str, StringConstraints(pattern=r"^[!-.0-~]{1,128}$")]


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
