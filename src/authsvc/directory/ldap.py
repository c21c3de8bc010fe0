"""Search-then-bind against an LDAP directory (OpenLDAP, Active Directory) with ldap3.

TLS always: LDAPS, or StartTLS on ldap:// before the service account binds; the server's
certificate must chain to ``AUTHSVC_LDAP_CA_FILE`` (or the system store) and name the host.
The username is escaped before it enters the search filter, and an empty password is
refused before any connection (an LDAP bind with a DN and no password is an
"unauthenticated bind" that many servers answer with success).
"""

from __future__ import annotations

import logging
import math
import ssl
from dataclasses import dataclass, field
from typing import Any

from ldap3 import NONE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import parse_dn

from authsvc import errors
from authsvc.config import Settings
from authsvc.directory.errors import DirectoryUnavailableError

log = logging.getLogger("authsvc.directory")

MAX_USERNAME = 256


@dataclass(frozen=True)
class DirectoryEntry:
    dn: str
    email: str | None
    attributes: dict[str, str] = field(default_factory=dict)
    groups: frozenset[str] = frozenset()  # group cn values, lower-cased


class LdapDirectory:
    def __init__(self, settings: Settings) -> None:
        assert settings.ldap_url
        self.settings = settings
        self.url = settings.ldap_url
        self.use_ssl = self.url.startswith("ldaps://")
        tls = Tls(
            validate=ssl.CERT_REQUIRED,
            version=ssl.PROTOCOL_TLS_CLIENT,
            ca_certs_file=settings.ldap_ca_file,
        )
        self.server = Server(
            self.url,
            use_ssl=self.use_ssl,
            tls=tls,
            get_info=NONE,
            connect_timeout=settings.ldap_timeout_seconds,
        )
        self._attributes = sorted(
            {settings.ldap_mail_attribute, "memberOf", *settings.directory_attribute_map}
        )

    # -- connections --------------------------------------------------------------------

    def _connect(self, user: str | None, password: str | None) -> Connection:
        """An open, TLS-protected connection, not yet bound."""
        conn = Connection(
            self.server,
            user=user,
            password=password,
            receive_timeout=max(1, math.ceil(self.settings.ldap_timeout_seconds)),
            raise_exceptions=False,
            read_only=True,
            auto_bind=False,
        )
        try:
            conn.open()
            if not self.use_ssl and not conn.start_tls():
                raise DirectoryUnavailableError("StartTLS refused")
        except LDAPException as exc:
            _close(conn)
            log.warning("directory unreachable: %s", type(exc).__name__)
            raise DirectoryUnavailableError(type(exc).__name__) from None
        except DirectoryUnavailableError:
            _close(conn)
            log.warning("directory refused StartTLS")
            raise
        return conn

    def _service(self) -> Connection:
        password = self.settings.ldap_bind_password
        conn = self._connect(
            self.settings.ldap_bind_dn, password.get_secret_value() if password else None
        )
        try:
            bound = conn.bind()
        except LDAPException as exc:
            _close(conn)
            raise DirectoryUnavailableError(type(exc).__name__) from None
        if not bound:
            _close(conn)
            # A wrong service password is our fault, not the user's: never invalid_credentials.
            log.error("directory service bind refused: %s", conn.result.get("description"))
            raise DirectoryUnavailableError("service bind refused")
        return conn

    # -- lookups ------------------------------------------------------------------------

    def _search(self, conn: Connection, ldap_filter: str) -> list[Any]:
        try:
            conn.search(
                self.settings.ldap_user_base,
                ldap_filter,
                search_scope=SUBTREE,
                attributes=self._attributes,
                size_limit=2,
            )
        except LDAPException as exc:
            raise DirectoryUnavailableError(type(exc).__name__) from None
        code = conn.result.get("result", 0)
        if code not in (0, 4, 32):  # success, sizeLimitExceeded, noSuchObject
            log.error("directory search failed: %s", conn.result.get("description"))
            raise DirectoryUnavailableError("search failed")
        return [e for e in conn.response or [] if e.get("type") == "searchResEntry"]

    def _filter(self, template: str, **values: str) -> str:
        escaped = {k: escape_filter_chars(v) for k, v in values.items()}
        base = template.format(**escaped)
        active = self.settings.ldap_active_filter
        return f"(&{base}{active})" if active else base

    def _entry(self, conn: Connection, raw: dict[str, Any]) -> DirectoryEntry:
        attrs = raw.get("attributes") or {}
        dn = str(raw["dn"])
        email = _first(attrs.get(self.settings.ldap_mail_attribute))
        mapped = {}
        for source, target in self.settings.directory_attribute_map.items():
            value = _first(attrs.get(source))
            if value is not None:
                mapped[target] = value
        groups = {_cn(g) for g in attrs.get("memberOf") or []}
        if self.settings.ldap_group_base:
            groups |= self._groups_of(conn, dn)
        return DirectoryEntry(
            dn=dn,
            email=email.strip().lower() if email else None,
            attributes=mapped,
            groups=frozenset(g for g in groups if g),
        )

    def _groups_of(self, conn: Connection, dn: str) -> set[str]:
        value = escape_filter_chars(dn)
        try:
            conn.search(
                self.settings.ldap_group_base,
                f"(|(member={value})(uniqueMember={value}))",
                search_scope=SUBTREE,
                attributes=["cn"],
            )
        except LDAPException as exc:
            raise DirectoryUnavailableError(type(exc).__name__) from None
        found = set()
        for raw in conn.response or []:
            if raw.get("type") == "searchResEntry":
                cn = _first((raw.get("attributes") or {}).get("cn"))
                if cn:
                    found.add(cn.lower())
        return found

    # -- the two operations -------------------------------------------------------------

    def authenticate(self, username: str, password: str) -> DirectoryEntry:
        """The user's entry if the directory accepts this password; else InvalidCredentials."""
        if not password or not username or len(username) > MAX_USERNAME:
            raise errors.InvalidCredentialsError()
        if any(ord(c) < 32 for c in username):
            raise errors.InvalidCredentialsError()
        service = self._service()
        try:
            found = self._search(
                service, self._filter(self.settings.ldap_user_filter, username=username)
            )
            if len(found) != 1:
                # none: unknown or disabled; two: the filter is ambiguous, refuse both
                if len(found) > 1:
                    log.warning("directory filter matched more than one entry")
                raise errors.InvalidCredentialsError()
            entry = self._entry(service, found[0])
        finally:
            _close(service)
        user_conn = self._connect(entry.dn, password)
        try:
            bound = user_conn.bind()
        except LDAPException as exc:
            raise DirectoryUnavailableError(type(exc).__name__) from None
        finally:
            _close(user_conn)
        if not bound:
            result = user_conn.result.get("result")
            if result in (49, 53, 50):  # invalidCredentials, unwillingToPerform, no access
                raise errors.InvalidCredentialsError()
            log.error("directory user bind failed: %s", user_conn.result.get("description"))
            raise DirectoryUnavailableError("user bind failed")
        return entry

    def find_by_email(self, email: str) -> DirectoryEntry | None:
        """The active entry whose mail is this address (``directory-sync``), or None."""
        service = self._service()
        try:
            template = f"({self.settings.ldap_mail_attribute}={{email}})"
            found = self._search(service, self._filter(template, email=email))
            return self._entry(service, found[0]) if len(found) == 1 else None
        finally:
            _close(service)


def _first(value: Any) -> str | None:
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def _cn(dn: str) -> str:
    try:
        parts = parse_dn(dn)
    except LDAPException:
        return ""
    return str(parts[0][1]).lower() if parts and parts[0][0].lower() == "cn" else ""


def _close(conn: Connection) -> None:
    try:
        conn.unbind()
    except Exception:  # noqa: BLE001, S110 - closing a connection that failed half-way
        pass
