"""The console's OIDC sign-in: OAuth2 authorization code with PKCE (RFC 7636).

``/ui/login/oidc`` sends the browser to the provider's ``authorization_endpoint`` (from
its discovery document) with a random ``state`` and an S256 code challenge, both kept in
a short-lived HttpOnly cookie; ``/ui/login/callback`` checks the ``state``, exchanges the
code (with the code verifier, and the client secret for a confidential client) at the
``token_endpoint`` and hands the access token to the console, which verifies it like any
bearer token. Nothing here validates tokens or does cryptography beyond a SHA-256 hash.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, urlencode

import httpx
from pydantic import SecretStr

from lakehouse.server.oidc import (
    AuthenticationError,
    IdentityProviderUnavailableError,
    OidcVerifier,
)

#: Cookie carrying ``state``, the PKCE verifier and the page to return to (10 minutes).
FLOW_COOKIE = "lakehouse_oidc_flow"
FLOW_SECONDS = 600


@dataclass(frozen=True)
class PendingSignIn:
    """What the browser keeps between the redirect and the callback."""

    state: str
    code_verifier: str
    next: str

    def to_cookie(self) -> str:
        """The cookie value (URL-safe base64 of a small JSON object)."""
        raw = json.dumps({"s": self.state, "v": self.code_verifier, "n": self.next})
        return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii")

    @classmethod
    def from_cookie(cls, value: str) -> PendingSignIn:
        """Read a cookie written by :meth:`to_cookie` (:class:`AuthenticationError` if not)."""
        try:
            data = json.loads(base64.urlsafe_b64decode(value.encode("ascii")))
            return cls(str(data["s"]), str(data["v"]), str(data["n"]))
        except (ValueError, KeyError, TypeError):
            raise AuthenticationError("the sign-in was not started here (no valid state)") from None


def _challenge(code_verifier: str) -> str:
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class AuthorizationCodeFlow:
    """Authorization code + PKCE against the issuer ``verifier`` trusts."""

    def __init__(
        self,
        verifier: OidcVerifier,
        client_id: str,
        client_secret: SecretStr | None = None,
        scope: str = "openid",
    ) -> None:
        self.verifier = verifier
        self.client_id = client_id
        self.client_secret = client_secret
        self.scope = scope
        self._metadata: Mapping[str, Any] | None = None
        self._lock = threading.Lock()

    def _endpoint(self, name: str) -> str:
        with self._lock:
            if self._metadata is None:
                issuer = self.verifier.settings.issuer.rstrip("/")
                url = f"{issuer}/.well-known/openid-configuration"
                try:
                    response = self.verifier.client.get(url)
                    response.raise_for_status()
                    metadata = response.json()
                except (httpx.HTTPError, ValueError) as exc:
                    raise IdentityProviderUnavailableError(
                        f"the identity provider's discovery document cannot be read ({exc})"
                    ) from None
                if not isinstance(metadata, dict):
                    raise IdentityProviderUnavailableError(
                        "the identity provider's discovery document is not a JSON object"
                    )
                self._metadata = metadata
            value = self._metadata.get(name)
        if not isinstance(value, str) or not value:
            raise IdentityProviderUnavailableError(
                f"the identity provider's discovery document has no {name}"
            )
        return value

    def start(self, redirect_uri: str, next_page: str) -> tuple[str, PendingSignIn]:
        """The provider URL to send the browser to, and what to keep in :data:`FLOW_COOKIE`."""
        pending = PendingSignIn(secrets.token_urlsafe(24), secrets.token_urlsafe(48), next_page)
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": redirect_uri,
                "scope": self.scope,
                "state": pending.state,
                "code_challenge": _challenge(pending.code_verifier),
                "code_challenge_method": "S256",
            }
        )
        endpoint = self._endpoint("authorization_endpoint")
        separator = "&" if "?" in endpoint else "?"
        return f"{endpoint}{separator}{query}", pending

    def finish(self, code: str, state: str, pending: PendingSignIn, redirect_uri: str) -> str:
        """Exchange ``code`` for an access token once ``state`` matches (not yet verified)."""
        if not state or not hmac.compare_digest(state.encode(), pending.state.encode()):
            raise AuthenticationError("the sign-in state does not match: start again")
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": self.client_id,
            "code_verifier": pending.code_verifier,
        }
        headers: dict[str, str] = {"Accept": "application/json"}
        if self.client_secret is not None:  # client_secret_basic (RFC 6749 2.3.1)
            pair = ":".join(
                quote_plus(part) for part in (self.client_id, self.client_secret.get_secret_value())
            )
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        try:
            response = self.verifier.client.post(
                self._endpoint("token_endpoint"), data=form, headers=headers
            )
        except httpx.HTTPError as exc:
            raise IdentityProviderUnavailableError(
                f"the identity provider's token endpoint cannot be reached ({exc})"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if response.status_code >= 500:
            raise IdentityProviderUnavailableError(
                f"the identity provider's token endpoint answered {response.status_code}"
            )
        token = body.get("access_token")
        if response.status_code != 200 or not isinstance(token, str):
            reason = body.get("error_description") or body.get("error") or response.status_code
            raise AuthenticationError(f"the identity provider refused the sign-in: {reason}")
        return token


__all__ = ["FLOW_COOKIE", "FLOW_SECONDS", "AuthorizationCodeFlow", "PendingSignIn"]
