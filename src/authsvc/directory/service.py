"""Directory sign-in: the directory checks the password, Cognito issues the tokens.

1. Search-then-bind in the directory (``ldap.py``).
2. Find the Cognito user by the entry's mail, or create it (``admin_create_user``, no
   message, then a random permanent password nobody knows: the directory is the only way
   in). Mapped attributes and groups are written when they changed.
3. ``admin_initiate_auth`` CUSTOM_AUTH on the dedicated app client; its one challenge is
   answered with a proof signed with the proof key (``triggers.sign``), which Cognito's
   Verify trigger checks. The tokens then go through the same path as every sign-in:
   revocation ledger, refresh (tokens are tagged so refresh uses this client), cookies.
"""

from __future__ import annotations

import logging
import secrets
import string
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from authsvc import errors
from authsvc.auth.schemas import TokenResult
from authsvc.auth.service import AuthService
from authsvc.cognito.errors import AccountExistsError, UnknownUserError
from authsvc.cognito.gateway import CognitoGateway, from_attribute_list, user_sub
from authsvc.cognito.pool import PROTECTED, PoolInfoCache
from authsvc.config import Settings
from authsvc.directory import triggers
from authsvc.revocation.service import RevocationRegistry

if TYPE_CHECKING:
    from authsvc.directory.ldap import DirectoryEntry, LdapDirectory

log = logging.getLogger("authsvc.directory")

# Refresh tokens of the directory client carry this prefix: /v1/auth/refresh routes them.
REFRESH_PREFIX = "dir1."


def random_password() -> str:
    """A password no one will ever know or type; it satisfies any Cognito policy."""
    alphabet = string.ascii_letters + string.digits
    return (
        "".join(secrets.choice(alphabet) for _ in range(40))
        + secrets.choice(string.ascii_uppercase)
        + secrets.choice(string.ascii_lowercase)
        + secrets.choice(string.digits)
        + "!"
    )


class DirectoryService:
    def __init__(
        self,
        settings: Settings,
        gateway: CognitoGateway,
        pool: PoolInfoCache,
        revocations: RevocationRegistry,
        auth: AuthService,
        directory: LdapDirectory | None = None,
    ) -> None:
        assert settings.directory_client_id
        self.settings = settings
        self.gateway = gateway  # the main client's gateway: admin calls need no client
        self.pool = pool
        self.revocations = revocations
        self.auth = auth
        if directory is None:
            # ldap3 is imported only by an app with a directory configured (issue 12).
            from authsvc.directory.ldap import LdapDirectory

            directory = LdapDirectory(settings)
        self.directory = directory
        secret = settings.directory_client_secret
        client_settings = settings.model_copy(
            update={
                "cognito_client_id": settings.directory_client_id,
                "cognito_client_secret": secret,
            }
        )
        # A gateway and token plumbing for the dedicated client; same budget, same errors.
        self.client_gateway = CognitoGateway(client_settings, client=gateway.client)
        self.client_gateway.once_client = gateway.once_client
        self.client_gateway.budget = gateway.budget
        self.tokens = AuthService(self.client_gateway, pool, revocations, auth.sealer)
        self.client_id = settings.directory_client_id

    # -- sign-in ------------------------------------------------------------------------

    def sign_in(
        self,
        username: str,
        password: str,
        concerns: Callable[[str, str], None] | None = None,
    ) -> TokenResult:
        """``concerns`` is told the Cognito username and email once the directory has
        vouched for the user (for the audit log)."""
        entry = self.directory.authenticate(username, password)
        if not entry.email:
            log.warning("directory entry has no %s attribute", self.settings.ldap_mail_attribute)
            raise errors.InvalidCredentialsError()
        cognito_username = self.ensure_user(entry)
        if concerns is not None:
            concerns(cognito_username, entry.email)
        started = self.revocations.started()
        response = self._custom_auth(cognito_username)
        result = self.tokens.tokens_from(response, started)
        if not isinstance(result, TokenResult):
            raise errors.UpstreamError()
        if result.refresh_token:
            result.refresh_token = REFRESH_PREFIX + result.refresh_token
        return result

    def refresh(self, refresh_token: str) -> TokenResult:
        inner = refresh_token.removeprefix(REFRESH_PREFIX)
        result = self.tokens.refresh(inner)
        if result.refresh_token and not result.refresh_token.startswith(REFRESH_PREFIX):
            result.refresh_token = REFRESH_PREFIX + result.refresh_token
        return result

    def _custom_auth(self, username: str) -> dict[str, Any]:
        gw = self.client_gateway
        params = gw._with_secret({"USERNAME": username}, username)
        try:
            challenge = gw._call(
                "sign_in",
                "admin_initiate_auth",
                UserPoolId=gw.pool_id,
                ClientId=self.client_id,
                AuthFlow="CUSTOM_AUTH",
                AuthParameters=params,
            )
        except UnknownUserError:
            raise errors.InvalidCredentialsError() from None
        if challenge.get("AuthenticationResult"):
            return challenge
        parameters = challenge.get("ChallengeParameters") or {}
        if challenge.get("ChallengeName") != "CUSTOM_CHALLENGE" or not parameters.get("nonce"):
            log.error(
                "directory client answered %s, not CUSTOM_CHALLENGE", challenge.get("ChallengeName")
            )
            raise errors.UpstreamError()
        # Cognito names the actual username here; answers must use it (REFERENCE.md).
        actual = parameters.get("USERNAME") or username
        proof = triggers.sign(
            self.settings.directory_proof_keys[0],
            actual,
            parameters["nonce"],
            gw.pool_id,
            self.client_id,
            int(time.time()) + self.settings.directory_proof_ttl_seconds,
        )
        answers = gw._with_secret({"USERNAME": actual, "ANSWER": proof}, actual)
        try:
            return gw._call(
                "respond_to_challenge",
                "admin_respond_to_auth_challenge",
                UserPoolId=gw.pool_id,
                ClientId=self.client_id,
                ChallengeName="CUSTOM_CHALLENGE",
                Session=challenge["Session"],
                ChallengeResponses=answers,
            )
        except (errors.InvalidSessionError, errors.InvalidCredentialsError):
            # The trigger refused our own proof: the key or the client differ from the
            # stack's. A deployment fault, not the user's password.
            log.error("the Verify trigger refused authsvc's proof: check the proof key")
            raise errors.UpstreamError() from None

    # -- the Cognito user ---------------------------------------------------------------

    def ensure_user(self, entry: DirectoryEntry) -> str:
        """The Cognito username for this entry; created, updated and grouped as mapped.

        What the pool refuses here (a mapped attribute it lacks or a value it does not take,
        a mapped group it does not have) comes from the directory's data and the operator's
        maps, not from the request: a 502 for the caller, the reason in the log."""
        try:
            return self._ensure_user(entry)
        except (errors.FieldProblemError, errors.NotFoundError) as exc:
            log.error(
                "directory: the user pool refused the entry's mapped attributes or groups"
                " (AUTHSVC_DIRECTORY_ATTRIBUTE_MAP / AUTHSVC_DIRECTORY_GROUP_MAP): %s %s",
                exc.code,
                exc.detail,
            )
            raise errors.UpstreamError() from None

    def _ensure_user(self, entry: DirectoryEntry) -> str:
        assert entry.email
        wanted = self._cognito_attributes(entry)
        try:
            user = self.gateway.admin_get_user(entry.email)
            created = False
        except UnknownUserError:
            user = self._create(entry.email, wanted)
            created = True
        username = str(user["Username"])
        current = from_attribute_list(user.get("UserAttributes") or user.get("Attributes") or [])
        changed = {k: v for k, v in wanted.items() if current.get(k) != v}
        if changed:
            self.gateway.admin_update_user_attributes(username, changed)
        groups = set(self.gateway.admin_list_groups_for_user(username))
        if self.settings.directory_cognito_group not in groups and not created:
            # An account that existed before the directory claimed it (e.g. a self sign-up
            # with the work address): from now on only the directory signs it in, so its
            # old password and sessions die here.
            self.gateway.admin_set_user_password(username, random_password(), permanent=True)
            self.revocations.revoke(user_sub(user))
            self.auth.end_cognito_sessions(username)
        self._sync_groups(username, entry, groups)
        return username

    def _create(self, email: str, attributes: dict[str, str]) -> dict[str, Any]:
        try:
            user = self.gateway.admin_create_user(
                email, random_password(), {**attributes, "email_verified": "true"}
            )
        except AccountExistsError:
            # It did not exist a moment ago: a concurrent first sign-in of the same person
            # created it. Treated as created here (no takeover of the account).
            return self.gateway.admin_get_user(email)
        username = str(user["Username"])
        # CONFIRMED with a password no one knows: Cognito would otherwise keep the user in
        # FORCE_CHANGE_PASSWORD, and the directory is the only way in.
        self.gateway.admin_set_user_password(username, random_password(), permanent=True)
        return self.gateway.admin_get_user(username)

    def _cognito_attributes(self, entry: DirectoryEntry) -> dict[str, str]:
        """The entry's mapped attributes, checked against the pool's schema first: Cognito
        refuses an attribute the pool does not define or a value outside its limits (moto
        stores either). The mapping's targets are Cognito names (``custom:department``)."""
        info = self.pool.get()
        attributes = dict(entry.attributes)
        for name, value in attributes.items():
            if not info.defines(name) or name in PROTECTED:
                raise errors.UnknownAttributeError(f"The user pool has no attribute {name}.")
            problem = info.value_problem(name, value, shown=name)
            if problem is not None:
                raise errors.InvalidAttributeValueError(problem)
        return attributes

    def _sync_groups(self, username: str, entry: DirectoryEntry, current: set[str]) -> None:
        mapping = {k.lower(): v for k, v in self.settings.directory_group_map.items()}
        managed = set(mapping.values())
        wanted = {mapping[g] for g in entry.groups if g in mapping}
        wanted.add(self.settings.directory_cognito_group)
        for group in sorted(wanted - current):
            self.gateway.admin_add_user_to_group(username, group)
        for group in sorted((current & managed) - wanted):
            self.gateway.admin_remove_user_from_group(username, group)
            # A removed group must not live on in tokens already issued.
            self.revocations.revoke(self._sub(username))

    def _sub(self, username: str) -> str:
        return user_sub(self.gateway.admin_get_user(username))

    # -- sync ---------------------------------------------------------------------------

    def sync(self) -> dict[str, int]:
        """Disable and sign out every directory user whose entry is gone or disabled."""
        counts = {"checked": 0, "disabled": 0, "errors": 0}
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "UserPoolId": self.gateway.pool_id,
                "GroupName": self.settings.directory_cognito_group,
                "Limit": 60,
            }
            if token:
                kwargs["NextToken"] = token
            page = self.gateway._call("list_users", "list_users_in_group", **kwargs)
            for user in page.get("Users", []):
                if not user.get("Enabled", True):
                    continue
                counts["checked"] += 1
                email = from_attribute_list(user.get("Attributes") or []).get("email")
                try:
                    entry = self.directory.find_by_email(email) if email else None
                except errors.UpstreamUnavailableError:
                    # Never disable anyone because the directory could not be asked.
                    counts["errors"] += 1
                    log.warning("directory sync: directory unavailable; stopping this pass")
                    return counts
                if entry is None:
                    self.disable(user)
                    counts["disabled"] += 1
            token = page.get("NextToken")
            if not token:
                return counts

    def disable(self, user: dict[str, Any]) -> None:
        username = str(user["Username"])
        self.gateway.admin_disable_user(username)
        # Locally first (cannot be lost to a Cognito fault), then the refresh tokens.
        self.revocations.revoke(user_sub(user))
        self.auth.end_cognito_sessions(username)
        log.info("directory sync: disabled a user whose directory entry is gone or disabled")
