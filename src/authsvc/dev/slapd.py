"""A throwaway OpenLDAP directory: Debian's ``slapd`` on loopback, with its own CA.

Used by `authsvc dev` (AUTHSVC_DEV_DIRECTORY=1) and by the tests: a config file and an
mdb database in a temporary directory, a self-signed CA and a server certificate for
127.0.0.1 made with ``cryptography``, entries loaded with ``slapadd`` before start. Listens
on ldap:// (StartTLS) and ldaps:// on free loopback ports. Nothing touches /etc/ldap or the
package's own service.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SLAPD_CANDIDATES = ("/usr/sbin/slapd", "/usr/local/sbin/slapd", "/usr/local/libexec/slapd")
SUFFIX = "dc=example,dc=com"
ROOT_DN = f"cn=admin,{SUFFIX}"
SERVICE_DN = f"cn=authsvc,ou=services,{SUFFIX}"
USER_BASE = f"ou=people,{SUFFIX}"
GROUP_BASE = f"ou=groups,{SUFFIX}"
# Entries this filter excludes are disabled accounts (OpenLDAP has no standard flag).
ACTIVE_FILTER = "(!(employeeType=disabled))"


def slapd_path() -> str | None:
    """AUTHSVC_DEV_SLAPD (e.g. Homebrew's .../openldap/libexec/slapd), else PATH, else the
    usual sbin folders."""
    override = os.environ.get("AUTHSVC_DEV_SLAPD")
    if override:
        return override if os.access(override, os.X_OK) else None
    found = shutil.which("slapd")
    if found:
        return found
    return next((p for p in SLAPD_CANDIDATES if os.access(p, os.X_OK)), None)


@dataclass
class Person:
    uid: str
    password: str
    mail: str
    given_name: str
    surname: str
    department: str = ""
    groups: tuple[str, ...] = ()
    disabled: bool = False


@dataclass
class Certificates:
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes


def make_certificates(host: str = "127.0.0.1") -> Certificates:
    """A self-signed CA and a server certificate for ``host`` (an IP SAN)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, f"authsvc test CA {secrets.token_hex(4)}")]
    )
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return Certificates(
        ca_pem=ca.public_bytes(serialization.Encoding.PEM),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def ssha(password: str) -> str:
    salt = secrets.token_bytes(8)
    digest = hashlib.sha1(password.encode() + salt).digest()  # noqa: S324 - LDAP's {SSHA}
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _ldif(people: list[Person], service_password: str) -> str:
    blocks = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example",
        f"dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people",
        f"dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups",
        f"dn: ou=services,{SUFFIX}\nobjectClass: organizationalUnit\nou: services",
        f"dn: {SERVICE_DN}\nobjectClass: person\nobjectClass: simpleSecurityObject\n"
        f"cn: authsvc\nsn: service\nuserPassword: {ssha(service_password)}",
    ]
    groups: dict[str, list[str]] = {}
    for p in people:
        dn = f"uid={p.uid},{USER_BASE}"
        lines = [
            f"dn: {dn}",
            "objectClass: inetOrgPerson",
            f"uid: {p.uid}",
            f"cn: {p.given_name} {p.surname}",
            f"givenName: {p.given_name}",
            f"sn: {p.surname}",
            f"mail: {p.mail}",
            f"userPassword: {ssha(p.password)}",
        ]
        if p.department:
            lines.append(f"departmentNumber: {p.department}")
        if p.disabled:
            lines.append("employeeType: disabled")
        blocks.append("\n".join(lines))
        for g in p.groups:
            groups.setdefault(g, []).append(dn)
    for name, members in groups.items():
        body = "\n".join(f"member: {m}" for m in members)
        blocks.append(f"dn: cn={name},{GROUP_BASE}\nobjectClass: groupOfNames\ncn: {name}\n{body}")
    return "\n\n".join(blocks) + "\n"


@dataclass
class Slapd:
    """One running slapd; ``stop`` ends it and removes its directory."""

    people: list[Person]
    host: str = "127.0.0.1"
    tls: bool = True
    cert_host: str | None = None  # the name in the certificate (default: host)
    root_password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    service_password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    workdir: Path = field(init=False)
    ldap_port: int = field(init=False, default=0)
    ldaps_port: int = field(init=False, default=0)
    ca_file: Path = field(init=False)
    _process: subprocess.Popen[bytes] | None = field(init=False, default=None)

    @property
    def ldap_url(self) -> str:
        return f"ldap://{self.host}:{self.ldap_port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://{self.host}:{self.ldaps_port}"

    def start(self, timeout: float = 15.0) -> Slapd:
        binary = slapd_path()
        if binary is None:
            raise FileNotFoundError(
                "slapd is not installed (Debian: apt-get install slapd ldap-utils)"
            )
        self.workdir = Path(tempfile.mkdtemp(prefix="authsvc-slapd-"))
        (self.workdir / "db").mkdir()
        certs = make_certificates(self.cert_host or self.host)
        self.ca_file = self.workdir / "ca.pem"
        self.ca_file.write_bytes(certs.ca_pem)
        (self.workdir / "server.pem").write_bytes(certs.cert_pem)
        key = self.workdir / "server.key"
        key.write_bytes(certs.key_pem)
        key.chmod(0o600)
        schema = Path("/etc/ldap/schema")
        tls = (
            f"TLSCACertificateFile {self.ca_file}\n"
            f"TLSCertificateFile {self.workdir / 'server.pem'}\n"
            f"TLSCertificateKeyFile {key}\n"
            if self.tls
            else ""
        )
        module_dir = next(
            (
                d
                for d in ("/usr/lib/ldap", "/usr/lib/x86_64-linux-gnu/ldap", "/usr/lib/openldap")
                if Path(d).is_dir()
            ),
            "/usr/lib/ldap",
        )
        conf = self.workdir / "slapd.conf"
        conf.write_text(
            "".join(
                f"include {schema / n}.schema\n" for n in ("core", "cosine", "inetorgperson", "nis")
            )
            + f"pidfile {self.workdir / 'slapd.pid'}\n"
            f"argsfile {self.workdir / 'slapd.args'}\n"
            f"modulepath {module_dir}\n"
            "moduleload back_mdb\n" + tls + "database mdb\n"
            "maxsize 10485760\n"
            f'suffix "{SUFFIX}"\n'
            f'rootdn "{ROOT_DN}"\n'
            f"rootpw {ssha(self.root_password)}\n"
            f"directory {self.workdir / 'db'}\n"
            "index objectClass,uid,mail,member eq\n"
            "access to attrs=userPassword by anonymous auth by * none\n"
            "access to * by users read by * none\n"
        )
        ldif = self.workdir / "seed.ldif"
        ldif.write_text(_ldif(self.people, self.service_password))
        subprocess.run(  # noqa: S603 - fixed arguments
            [binary, "-T", "add", "-f", str(conf), "-l", str(ldif), "-q"],
            check=True,
            capture_output=True,
        )
        self.ldap_port = _free_port(self.host)
        self.ldaps_port = _free_port(self.host)
        urls = self.ldap_url + "/" + (f" {self.ldaps_url}/" if self.tls else "")
        self._process = subprocess.Popen(  # noqa: S603 - fixed arguments
            [binary, "-f", str(conf), "-h", urls, "-d", "0"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        ports = [self.ldap_port] + ([self.ldaps_port] if self.tls else [])
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                err = (
                    self._process.stderr.read().decode(errors="replace")
                    if self._process.stderr
                    else ""
                )
                raise RuntimeError(f"slapd exited: {err[-2000:]}")
            if all(_listening(self.host, p) for p in ports):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("slapd did not start listening in time")

    # -- changes while running (as the root DN, over StartTLS) ---------------------------

    def _admin(self) -> Any:
        import ssl

        from ldap3 import Connection, Server, Tls

        tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(self.ca_file))
        conn = Connection(Server(self.ldap_url, tls=tls), user=ROOT_DN, password=self.root_password)
        conn.open()
        conn.start_tls()
        if not conn.bind():
            raise RuntimeError(f"root bind refused: {conn.result}")
        return conn

    def add(self, person: Person) -> str:
        dn = f"uid={person.uid},{USER_BASE}"
        attributes: dict[str, Any] = {
            "uid": person.uid,
            "cn": f"{person.given_name} {person.surname}",
            "givenName": person.given_name,
            "sn": person.surname,
            "userPassword": ssha(person.password),
        }
        if person.mail:
            attributes["mail"] = person.mail
        if person.department:
            attributes["departmentNumber"] = person.department
        if person.disabled:
            attributes["employeeType"] = "disabled"
        conn = self._admin()
        try:
            if not conn.add(dn, ["inetOrgPerson"], attributes):
                raise RuntimeError(f"add refused: {conn.result}")
        finally:
            conn.unbind()
        return dn

    def set_disabled(self, uid: str, disabled: bool = True) -> None:
        from ldap3 import MODIFY_DELETE, MODIFY_REPLACE

        change = (MODIFY_REPLACE, ["disabled"]) if disabled else (MODIFY_DELETE, [])
        conn = self._admin()
        try:
            if not conn.modify(f"uid={uid},{USER_BASE}", {"employeeType": [change]}):
                raise RuntimeError(f"modify refused: {conn.result}")
        finally:
            conn.unbind()

    def delete(self, uid: str) -> None:
        conn = self._admin()
        try:
            if not conn.delete(f"uid={uid},{USER_BASE}"):
                raise RuntimeError(f"delete refused: {conn.result}")
        finally:
            conn.unbind()

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        if getattr(self, "workdir", None) is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False
