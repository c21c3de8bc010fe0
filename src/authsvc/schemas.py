"""Shared request/response building blocks."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, StringConstraints


def _lower(value: str) -> str:
    return value.strip().lower()


Email = Annotated[EmailStr, StringConstraints(max_length=254), AfterValidator(_lower)]
Password = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Code = Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
AttributeValue = Annotated[str, StringConstraints(max_length=2048)]
AttributeName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]{1,20}$")]


class RequestModel(BaseModel):
    """Every request body: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")
