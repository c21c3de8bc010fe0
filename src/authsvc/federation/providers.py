"""Identity providers authsvc offers, by their Cognito names (the template's ProviderName)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ProviderKind = Literal["google", "facebook", "amazon", "apple", "oidc", "saml"]

# Cognito's fixed names for the social providers (CreateIdentityProvider ProviderType and
# ProviderName are the same for these).
SOCIAL: dict[str, ProviderKind] = {
    "Google": "google",
    "Facebook": "facebook",
    "LoginWithAmazon": "amazon",
    "SignInWithApple": "apple",
}
CUSTOM_KINDS: tuple[ProviderKind, ...] = ("oidc", "saml")


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    kind: ProviderKind


def parse_provider(entry: str) -> Provider:
    """``Google`` or ``Corp:saml`` → a Provider; anything else raises ValueError."""
    name, _, kind = entry.partition(":")
    name = name.strip()
    if not name or len(name) > 32 or not all(c.isalnum() or c in "_-" for c in name):
        raise ValueError(f"{entry!r} is not a provider name (letters, digits, _ and -)")
    if not kind:
        if name not in SOCIAL:
            raise ValueError(
                f"{entry!r}: give the kind of a custom provider, e.g. '{name}:oidc' or"
                f" '{name}:saml' (social ones are {', '.join(SOCIAL)})"
            )
        return Provider(name, SOCIAL[name])
    kind = kind.strip().lower()
    if kind not in CUSTOM_KINDS:
        raise ValueError(f"{entry!r}: the kind must be oidc or saml")
    if name in SOCIAL:
        raise ValueError(f"{entry!r}: {name} is a social provider; list it without a kind")
    return Provider(name, kind)


def parse_providers(entries: list[str]) -> dict[str, Provider]:
    """Keyed by lower-cased name: the path segment is matched case-insensitively."""
    return {p.name.lower(): p for p in map(parse_provider, entries)}
