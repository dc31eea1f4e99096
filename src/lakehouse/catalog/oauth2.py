"""Sign-in of a catalog client with OAuth2 client credentials (RFC 6749 section 4.4).

A client of a catalog server (the real Nessie or ``lakehouse serve``, both behind an OIDC
issuer) configured with a client id and secret (:class:`lakehouse.config.OAuth2ClientSettings`,
``LAKEHOUSE_CATALOG__OAUTH2__*``) gets its bearer token itself:
:class:`ClientCredentials` is an :class:`httpx.Auth` that

* finds the token endpoint from ``token_url``, or from the issuer's discovery document
  (``<issuer>/.well-known/openid-configuration``, ``token_endpoint``);
* asks it for a token (``grant_type=client_credentials``, the client authenticated with
  HTTP Basic as RFC 6749 section 2.3.1 says), and keeps it until shortly before it expires
  (``expires_in``), then asks again: client-credentials grants have no refresh token;
* when the server answers 401 to a request sent with a cached token (revoked, keys
  rotated), gets a new token and sends the request once more.

Errors: the issuer refusing the credentials is :class:`SignInError` (terminal: fix the
settings); an issuer that cannot be reached or answers 5xx is
:class:`~lakehouse.errors.TransientCatalogError`. The secret and the tokens are
:class:`~pydantic.SecretStr` and appear in no message, ``repr`` or log.

The flow uses a blocking :class:`httpx.Client` of its own: use it with blocking clients.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any
from urllib.parse import quote_plus

import httpx
from pydantic import SecretStr

from lakehouse.errors import CatalogError, TransientCatalogError

log = logging.getLogger(__name__)

#: A token is renewed this long before it expires (at most a tenth of its lifetime).
REFRESH_MARGIN_SECONDS = 30.0
#: Lifetime assumed when the token endpoint does not say (``expires_in`` absent).
DEFAULT_LIFETIME_SECONDS = 300.0


class SignInError(CatalogError):
    """The identity provider refused the client's credentials or answered nonsense."""


def provider_reply(what: str, request: Callable[[], httpx.Response]) -> tuple[int, dict[str, Any]]:
    """Send ``request`` to the identity provider; its status and JSON object body.

    Unreachable or 5xx is :class:`~lakehouse.errors.TransientCatalogError`; an answer that
    is not a JSON object is :class:`SignInError`. ``what`` names the endpoint in messages.
    """
    try:
        response = request()
    except httpx.TransportError as exc:
        raise TransientCatalogError(
            f"cannot sign in: {what} cannot be reached ({type(exc).__name__}: {exc})"
        ) from None
    if response.status_code >= 500:
        raise TransientCatalogError(f"cannot sign in: {what} answered HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise SignInError(
            f"cannot sign in: {what} answered HTTP {response.status_code} without a JSON object"
        )
    return response.status_code, body


class RenewingBearerAuth(httpx.Auth, ABC):
    """Bearer authentication that asks for a new token once when the server answers 401.

    Subclasses say where tokens come from: :meth:`token` gives one valid for a while yet,
    :meth:`renew` a new one after the server refused the one it was given (revoked, keys
    rotated). A request refused with a token that cannot be renewed is not sent again.
    Blocking clients only: the issuer is called with a blocking :class:`httpx.Client`.
    """

    @abstractmethod
    def token(self) -> SecretStr:
        """A token valid for a while yet."""

    @abstractmethod
    def renew(self, refused: SecretStr) -> SecretStr:
        """A new token after the server refused ``refused``."""

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.token()
        request.headers["Authorization"] = "Bearer " + token.get_secret_value()
        response = yield request
        if response.status_code == 401:
            fresh = self.renew(token)
            if fresh.get_secret_value() != token.get_secret_value():
                request.headers["Authorization"] = "Bearer " + fresh.get_secret_value()
                yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        raise TypeError(
            f"{type(self).__name__} signs requests of a blocking client: use httpx.Client"
        )
        yield request  # type: ignore[unreachable]  # (makes this an async generator)


class ClientCredentials(RenewingBearerAuth):
    """Bearer tokens from the client-credentials grant, cached until shortly before expiry.

    ``transport`` replaces the network towards the issuer (tests); ``clock`` is monotonic
    seconds. Thread-safe: one token is shared by every thread of a client.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: SecretStr,
        *,
        issuer: str | None = None,
        token_url: str | None = None,
        scope: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not issuer and not token_url:
            raise ValueError("ClientCredentials needs an issuer or a token_url")
        self.client_id = client_id
        self._secret = client_secret
        self.issuer = issuer.rstrip("/") if issuer else None
        self._token_url = token_url
        self.scope = scope
        self._http = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False)
        self._clock = clock
        self._lock = threading.Lock()
        self._token: SecretStr | None = None
        self._renew_at = float("-inf")

    def __repr__(self) -> str:
        where = self._token_url or self.issuer
        return f"ClientCredentials(client_id={self.client_id!r}, at={where!r})"

    # -- the token endpoint ----------------------------------------------------------------

    def _get(self, what: str, request: Callable[[], httpx.Response]) -> dict[str, Any]:
        status, body = provider_reply(what, request)
        if status != 200:
            error = str(body.get("error") or f"HTTP {status}")
            detail = body.get("error_description")
            raise SignInError(
                f"cannot sign in as client {self.client_id!r}: {what} refused: {error}"
                + (f" ({detail})" if detail else "")
            )
        return body

    @property
    def token_url(self) -> str:
        """The token endpoint (discovered from the issuer on first use)."""
        if self._token_url is None:
            assert self.issuer is not None
            url = f"{self.issuer}/.well-known/openid-configuration"
            document = self._get(
                f"the issuer's discovery document {url}", lambda: self._http.get(url)
            )
            endpoint = document.get("token_endpoint")
            if not isinstance(endpoint, str) or not endpoint:
                raise SignInError(f"cannot sign in: {url} names no token_endpoint")
            self._token_url = endpoint
        return self._token_url

    def _request_token(self) -> tuple[SecretStr, float]:
        url = self.token_url
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        basic = httpx.BasicAuth(
            quote_plus(self.client_id), quote_plus(self._secret.get_secret_value())
        )
        body = self._get(
            f"the token endpoint {url}", lambda: self._http.post(url, data=form, auth=basic)
        )
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise SignInError(f"cannot sign in: the token endpoint {url} sent no access_token")
        kind = body.get("token_type", "Bearer")
        if not isinstance(kind, str) or kind.lower() != "bearer":
            raise SignInError(f"cannot sign in: the token endpoint {url} sent a {kind!r} token")
        lifetime = body.get("expires_in", DEFAULT_LIFETIME_SECONDS)
        if not isinstance(lifetime, int | float) or lifetime <= 0:
            lifetime = DEFAULT_LIFETIME_SECONDS
        log.debug("signed in as client %s (token valid for %ss)", self.client_id, lifetime)
        return SecretStr(token), float(lifetime)

    # -- the cached token --------------------------------------------------------------------

    def token(self) -> SecretStr:
        """A token valid for a while yet: the cached one, or a new one."""
        with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                token, lifetime = self._request_token()
                self._token = token
                self._renew_at = (
                    self._clock() + lifetime - min(REFRESH_MARGIN_SECONDS, lifetime / 10)
                )
            return self._token

    def renew(self, refused: SecretStr) -> SecretStr:
        """A new token after the server refused ``refused`` (revoked, keys rotated)."""
        with self._lock:
            if self._token is not None and (
                self._token.get_secret_value() == refused.get_secret_value()
            ):
                self._token = None
        return self.token()

    def close(self) -> None:
        """Close the connections to the issuer."""
        self._http.close()


__all__ = [
    "DEFAULT_LIFETIME_SECONDS",
    "REFRESH_MARGIN_SECONDS",
    "ClientCredentials",
    "RenewingBearerAuth",
    "SignInError",
    "provider_reply",
]
