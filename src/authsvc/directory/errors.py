"""Directory faults, in the service's one error taxonomy."""

from __future__ import annotations

from authsvc import errors


class DirectoryUnavailableError(errors.UpstreamUnavailableError):
    """The directory is unreachable, refuses TLS or the service account: 503, never 401."""

    def __init__(self, reason: str = "") -> None:
        super().__init__("The corporate directory is unreachable; retry later.")
        self.reason = reason


class DirectoryNotConfiguredError(errors.NotFoundError):
    """Directory sign-in is off in this deployment (no AUTHSVC_LDAP_URL)."""

    def __init__(self) -> None:
        super().__init__("Directory sign-in is not enabled.")
