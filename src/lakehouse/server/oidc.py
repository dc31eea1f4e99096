"""OIDC bearer tokens: discovery, a JWKS cache with key rotation, and JWT validation.

:class:`OidcVerifier` turns the ``Authorization: Bearer`` token of a request into a
:class:`Principal` (a name and roles, from configurable claims) or refuses it:

* the issuer's keys come from ``<issuer>/.well-known/openid-configuration`` (its
  ``jwks_uri``) or from an explicit ``jwks_uri``; they are cached for ``jwks_cache_seconds``;
* a token signed with a ``kid`` the cache does not know triggers one refetch (key
  rotation), at most once per ``jwks_min_refetch_seconds``, so unknown ``kid`` values
  cannot make the server hammer the identity provider;
* when the provider is down the cached keys keep serving until they are older than
  ``jwks_max_stale_seconds``; after that :class:`IdentityProviderUnavailableError`
  (the server answers 503 with the reason), never an accepted token;
* only asymmetric algorithms (RS*, PS*, ES*, EdDSA) are accepted, and only when the
  key's type fits the algorithm: ``alg: none`` and HMAC signed with a public key are
  refused before any signature check;
* ``iss``, ``aud`` (when configured), ``exp`` (required) and ``nbf`` are checked with a
  small clock skew (``leeway_seconds``).

JWS verification is PyJWT's (``pyjwt[crypto]``); nothing here implements cryptography.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from lakehouse.errors import LakehouseError

#: Algorithms a token may be signed with, by the key type they need.
_KEY_TYPES: dict[str, str] = {
    **{f"RS{n}": "RSA" for n in (256, 384, 512)},
    **{f"PS{n}": "RSA" for n in (256, 384, 512)},
    "ES256": "EC",
    "ES384": "EC",
    "ES512": "EC",
    "EdDSA": "OKP",
}
ASYMMETRIC_ALGORITHMS = tuple(_KEY_TYPES)
#: A larger token is refused before it is parsed (real ones are a few kB).
MAX_TOKEN_BYTES = 16 * 1024


class AuthenticationError(LakehouseError):
    """The bearer token is missing, malformed, expired or not signed by the issuer (401)."""


class IdentityProviderUnavailableError(LakehouseError):
    """The issuer's keys cannot be fetched and the cached ones are too old (503)."""

    transient = True


class OidcSettings(BaseModel):
    """How bearer tokens are validated (``LAKEHOUSE_SERVER__OIDC__*``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The issuer URL; tokens must carry exactly this ``iss``.
    issuer: str
    #: Expected ``aud`` (one of the token's audiences); unset: ``aud`` is not checked.
    audience: str | None = None
    #: JWKS URL; unset: ``jwks_uri`` from the issuer's discovery document.
    jwks_uri: str | None = None
    #: Claim naming the principal (Nessie's ``role`` in rules); falls back to ``sub``.
    principal_claim: str = "preferred_username"
    #: Dotted path of the claim holding the roles (``realm_access.roles`` for Keycloak).
    roles_claim: str = "groups"
    algorithms: tuple[str, ...] = ASYMMETRIC_ALGORITHMS
    leeway_seconds: int = Field(default=30, ge=0, le=600)
    jwks_cache_seconds: int = Field(default=300, ge=1)
    jwks_min_refetch_seconds: int = Field(default=10, ge=0)
    jwks_max_stale_seconds: int = Field(default=3600, ge=1)
    http_timeout_seconds: float = Field(default=5.0, gt=0)
    #: OAuth2 client the web console signs people in with (authorization code + PKCE,
    #: redirect URI ``<server>/ui/login/callback``); unset: the console takes a pasted token.
    console_client_id: str | None = None
    #: Secret of ``console_client_id`` when it is a confidential client.
    console_client_secret: SecretStr | None = None


@dataclass(frozen=True)
class Principal:
    """Who sent a request: Nessie's ``role`` (the name) and ``roles`` in rules."""

    name: str
    roles: tuple[str, ...] = ()


@dataclass
class _KeySet:
    keys: dict[str, jwt.PyJWK] = field(default_factory=dict)
    fetched_at: float = float("-inf")
    attempted_at: float = float("-inf")


class OidcVerifier:
    """Validates bearer tokens of one issuer. Thread-safe; one per server process."""

    def __init__(
        self,
        settings: OidcSettings,
        *,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        bad = [a for a in settings.algorithms if a not in _KEY_TYPES]
        if bad:
            raise ValueError(
                f"algorithms {bad} are not accepted: use asymmetric ones ({', '.join(_KEY_TYPES)})"
            )
        self.settings = settings
        self._client = client or httpx.Client(timeout=settings.http_timeout_seconds)
        self._clock = clock
        self._lock = threading.Lock()
        self._keys = _KeySet()
        self._jwks_uri = settings.jwks_uri

    @property
    def client(self) -> httpx.Client:
        """The HTTP client that reaches the identity provider (the console's sign-in uses it)."""
        return self._client

    # -- keys -------------------------------------------------------------------------

    def _get_json(self, url: str) -> Mapping[str, Any]:
        response = self._client.get(url, headers={"Accept": "application/json"})
        response.raise_for_status()
        data = response.json()
        if not isinstance(data, dict):
            raise ValueError(f"{url} did not answer a JSON object")
        return data

    def _fetch(self) -> None:
        """Refresh the key set (caller holds the lock); keeps the old one on failure."""
        self._keys.attempted_at = self._clock()
        if self._jwks_uri is None:
            issuer = self.settings.issuer.rstrip("/")
            discovery = self._get_json(f"{issuer}/.well-known/openid-configuration")
            uri = discovery.get("jwks_uri")
            if not isinstance(uri, str):
                raise ValueError("the discovery document has no jwks_uri")
            self._jwks_uri = uri
        document = self._get_json(self._jwks_uri)
        keys: dict[str, jwt.PyJWK] = {}
        for entry in document.get("keys", []):
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            if entry.get("kty") not in ("RSA", "EC", "OKP"):
                continue  # symmetric ('oct') keys are never used to verify tokens
            try:
                keys[str(entry.get("kid", ""))] = jwt.PyJWK(entry)
            except jwt.PyJWKError:
                continue  # an algorithm this installation cannot use
        self._keys = _KeySet(keys, self._clock(), self._keys.attempted_at)

    def _key(self, kid: str) -> jwt.PyJWK:
        with self._lock:
            now = self._clock()
            state = self._keys
            age = now - state.fetched_at
            known = kid in state.keys
            expired = age > self.settings.jwks_cache_seconds
            may_refetch = now - state.attempted_at >= self.settings.jwks_min_refetch_seconds
            if (expired or not known) and may_refetch:
                try:
                    self._fetch()
                except (httpx.HTTPError, ValueError, json.JSONDecodeError) as exc:
                    if now - state.fetched_at > self.settings.jwks_max_stale_seconds:
                        raise IdentityProviderUnavailableError(
                            f"the identity provider's keys cannot be fetched ({exc}) and no "
                            "recent copy is cached"
                        ) from None
            state = self._keys
            if now - state.fetched_at > self.settings.jwks_max_stale_seconds:
                raise IdentityProviderUnavailableError(
                    "the identity provider's keys are too old to trust; refetch is rate-limited"
                )
            key = state.keys.get(kid)
        if key is None:
            raise AuthenticationError(f"token signed with an unknown key (kid {kid[:64]!r})")
        return key

    # -- tokens -----------------------------------------------------------------------

    def verify(self, token: str) -> Principal:
        """The principal of a valid ``token``; :class:`AuthenticationError` otherwise."""
        if len(token) > MAX_TOKEN_BYTES:
            raise AuthenticationError(f"token too large (over {MAX_TOKEN_BYTES} bytes)")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthenticationError("malformed token: not a signed JWT") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.settings.algorithms:
            raise AuthenticationError(f"token algorithm {str(alg)[:20]!r} is not accepted")
        key = self._key(str(header.get("kid", "")))
        if _KEY_TYPES[alg] != key.key_type:
            raise AuthenticationError(f"token algorithm {alg} does not fit the issuer's key")
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=[alg],
                issuer=self.settings.issuer,
                audience=self.settings.audience,
                leeway=self.settings.leeway_seconds,
                options={
                    "require": ["exp", "iss"],
                    "verify_aud": self.settings.audience is not None,
                },
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("token expired") from None
        except jwt.ImmatureSignatureError:
            raise AuthenticationError("token not valid yet (nbf)") from None
        except jwt.InvalidIssuerError:
            raise AuthenticationError("token from another issuer") from None
        except jwt.InvalidAudienceError:
            raise AuthenticationError("token for another audience") from None
        except jwt.InvalidSignatureError:
            raise AuthenticationError("token signature does not verify") from None
        except jwt.PyJWTError as exc:
            raise AuthenticationError(f"invalid token: {exc}") from None
        return principal_from_claims(
            claims, self.settings.principal_claim, self.settings.roles_claim
        )


def principal_from_claims(
    claims: Mapping[str, Any], principal_claim: str, roles_claim: str
) -> Principal:
    """The principal named by ``principal_claim`` (else ``sub``) and roles at ``roles_claim``."""
    name = claims.get(principal_claim) or claims.get("sub")
    if not isinstance(name, str) or not name:
        raise AuthenticationError(f"token has neither {principal_claim!r} nor 'sub'")
    value: Any = claims
    for part in roles_claim.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    roles: Sequence[Any] = value if isinstance(value, list) else []
    return Principal(name, tuple(str(r) for r in roles if isinstance(r, str)))


__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "MAX_TOKEN_BYTES",
    "AuthenticationError",
    "IdentityProviderUnavailableError",
    "OidcSettings",
    "OidcVerifier",
    "Principal",
    "principal_from_claims",
]
