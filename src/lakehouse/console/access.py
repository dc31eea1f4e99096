"""Who is signed in to the console, and what Nessie's authorization rules let them see.

The console signs people in itself (the API's auth middleware leaves ``/ui`` to it):

* **static token** (``server.token``): ``/ui/login`` takes the token and the session
  cookie holds an HMAC of it, never the token; the principal is anonymous (``role ''``),
  as for API requests with the static token;
* **OIDC** (``server.oidc``): ``/ui/login`` takes a bearer token of the issuer (pasted,
  e.g. from ``lakehouse login`` or the identity provider's token endpoint), verifies it
  like the API does and keeps it in an HttpOnly, SameSite=Strict cookie until it
  expires; each page verifies it again. ``Authorization: Bearer`` works too.

With authorization rules (``server.authorization_rules``) each page asks the rules the
questions the Nessie API would for the same data (:class:`ConsoleAccess`): references are
listed when ``VIEW_REFERENCE`` passes, tables when ``READ_ENTITY_VALUE`` passes, and a
page or a SQL query touching anything else is refused with the failed checks (403).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import SecretStr
from starlette.requests import Request

from lakehouse.catalog.model import ContentKey, Entry
from lakehouse.server import wire
from lakehouse.server.authz import (
    AuthorizationRules,
    Check,
    CheckType,
    on_content,
    on_reference,
    view_reference,
)
from lakehouse.server.oidc import AuthenticationError, OidcVerifier, Principal

#: Cookie of a static-token session (an HMAC of the token).
SESSION_COOKIE = "lakehouse_session"
#: Cookie holding the OIDC bearer token of a signed-in person (HttpOnly, SameSite=Strict).
TOKEN_COOKIE = "lakehouse_token"
ANONYMOUS = Principal("")


def session_value(token: SecretStr) -> str:
    """The cookie value for ``token``: an HMAC, so the cookie never holds the token."""
    key = token.get_secret_value().encode("utf-8")
    return hmac.new(key, b"lakehouse-console-session", hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class ConsoleAuth:
    """How the console signs people in: nothing, a static token, or OIDC bearer tokens."""

    token: SecretStr | None = None
    verifier: OidcVerifier | None = None

    @property
    def enabled(self) -> bool:
        """Whether pages need a signed-in principal."""
        return self.token is not None or self.verifier is not None

    def principal(self, request: Request) -> Principal | None:
        """Who sent ``request`` (``None``: nobody valid is signed in).

        Raises :class:`~lakehouse.server.oidc.IdentityProviderUnavailableError` when the
        issuer's keys cannot be fetched (the page answers 503).
        """
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        bearer = given.strip() if scheme.lower() == "bearer" else ""
        if self.verifier is not None:
            candidate = bearer or request.cookies.get(TOKEN_COOKIE, "")
            return self.verify(candidate) if candidate else None
        if self.token is None:
            return ANONYMOUS
        cookie = request.cookies.get(SESSION_COOKIE, "")
        if cookie and hmac.compare_digest(cookie, session_value(self.token)):
            return ANONYMOUS
        secret = self.token.get_secret_value().encode("utf-8")
        if bearer and hmac.compare_digest(bearer.encode("utf-8"), secret):
            return ANONYMOUS
        return None

    def verify(self, candidate: str) -> Principal | None:
        """The principal of an OIDC token, or ``None`` when it is not valid."""
        if self.verifier is None:
            return None
        try:
            return self.verifier.verify(candidate)
        except AuthenticationError:
            return None

    def static_token_matches(self, given: str) -> bool:
        """Whether ``given`` is the static token (constant-time)."""
        if self.token is None:
            return False
        secret = self.token.get_secret_value().encode("utf-8")
        return hmac.compare_digest(given.encode("utf-8"), secret)


class ConsoleAccess:
    """The rules' answers for one principal (everything allowed without rules)."""

    def __init__(self, rules: AuthorizationRules | None, principal: Principal) -> None:
        self.rules = rules
        self.principal = principal

    def allows(self, checks: Iterable[Check]) -> bool:
        """Whether every check passes."""
        return self.rules is None or not self.rules.failures(checks, self.principal)

    def require(self, checks: Iterable[Check]) -> None:
        """Raise :class:`~lakehouse.server.authz.AccessDeniedError` naming failed checks."""
        if self.rules is not None:
            self.rules.check(checks, self.principal)

    def can_view(self, ref: str) -> bool:
        """``VIEW_REFERENCE`` on ``ref``: whether the reference is listed."""
        return self.allows([view_reference(ref)])

    def can_read(self, ref: str, key: ContentKey, content_type: str = "") -> bool:
        """``READ_ENTITY_VALUE`` on ``key`` of ``ref`` (with ``VIEW_REFERENCE``)."""
        path = wire.key_to_path(key)
        return self.allows(on_content(CheckType.READ_ENTITY_VALUE, ref, path, content_type))

    def readable(self, ref: str, entries: Sequence[Entry]) -> list[Entry]:
        """The ``entries`` of ``ref`` whose values the principal may read."""
        if self.rules is None:
            return list(entries)
        return [e for e in entries if self.can_read(ref, e.key, e.type.value)]

    def require_entries(self, ref: str) -> None:
        """``VIEW_REFERENCE`` and ``READ_ENTRIES`` on ``ref`` (a listing of its keys)."""
        self.require(on_reference(CheckType.READ_ENTRIES, ref))

    def require_log(self, ref: str) -> None:
        """``VIEW_REFERENCE`` and ``LIST_COMMIT_LOG`` on ``ref``."""
        self.require(on_reference(CheckType.LIST_COMMIT_LOG, ref))

    def require_values(self, ref: str, keys: Iterable[tuple[ContentKey, str]]) -> None:
        """``READ_ENTITY_VALUE`` on every ``(key, content type)`` of ``ref``."""
        checks: list[Check] = [view_reference(ref)]
        for key, content_type in keys:
            checks += on_content(
                CheckType.READ_ENTITY_VALUE, ref, wire.key_to_path(key), content_type
            )
        self.require(checks)


__all__ = [
    "ANONYMOUS",
    "SESSION_COOKIE",
    "TOKEN_COOKIE",
    "ConsoleAccess",
    "ConsoleAuth",
    "session_value",
]
