from __future__ import annotations

from pydantic import Field

from authsvc.schemas import RequestModel


class DirectorySignInRequest(RequestModel):
    username: str = Field(
        min_length=1,
        max_length=256,
        description="The directory login name (uid, or sAMAccountName in Active Directory).",
    )
    # An empty password is refused here, before the directory is asked (an LDAP bind with
    # no password is an unauthenticated bind that many servers accept).
    password: str = Field(min_length=1, max_length=1024, repr=False)
