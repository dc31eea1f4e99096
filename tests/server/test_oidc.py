"""OIDC bearer-token validation (``lakehouse.server.oidc``) against an in-process issuer."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from lakehouse.server import ServerSettings
from lakehouse.server.app import create_app
from lakehouse.server.oidc import (
    AuthenticationError,
    IdentityProviderUnavailableError,
    OidcSettings,
    OidcVerifier,
    Principal,
)

if TYPE_CHECKING:
    from fastapi import FastAPI

    from lakehouse.catalog.store import VersionStore

ISSUER = "https://idp.test/realms/lake"


class Issuer:
    """Discovery + JWKS over an httpx MockTransport; counts fetches, can go down."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.jwks_fetches = 0
        self.down = False
        self.add_key("k1")

    def add_key(self, kid: str, kind: str = "RSA") -> None:
        key: Any = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if kind == "RSA"
            else ec.generate_private_key(ec.SECP256R1())
        )
        self.keys[kid] = key

    def jwks(self) -> dict[str, Any]:
        out = []
        for kid, key in self.keys.items():
            algo: Any = (
                jwt.algorithms.RSAAlgorithm
                if isinstance(key, rsa.RSAPrivateKey)
                else jwt.algorithms.ECAlgorithm
            )
            jwk = json.loads(algo.to_jwk(key.public_key()))
            out.append({**jwk, "kid": kid, "use": "sig"})
        return {"keys": out}

    def handler(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            return httpx.Response(503)
        if request.url.path.endswith("/.well-known/openid-configuration"):
            return httpx.Response(200, json={"issuer": ISSUER, "jwks_uri": "https://idp.test/jwks"})
        if request.url.path == "/jwks":
            self.jwks_fetches += 1
            return httpx.Response(200, json=self.jwks())
        return httpx.Response(404)

    def token(self, kid: str = "k1", alg: str = "RS256", **claims: Any) -> str:
        now = int(time.time())
        body = {
            "iss": ISSUER,
            "aud": "lakehouse",
            "exp": now + 300,
            "iat": now,
            "sub": "u-1",
            "preferred_username": "alice",
            "realm_access": {"roles": ["readers", "writers"]},
            **claims,
        }
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, self.keys[kid], algorithm=alg, headers={"kid": kid})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def oidc_app(
    store: VersionStore, issuer: Issuer, rules: Mapping[str, str] | None = None
) -> FastAPI:
    """The server app with OIDC bearer tokens of ``issuer`` (roles from
    ``realm_access.roles``, keys fetched in memory) and, if given, authorization ``rules``."""
    oidc = OidcSettings(issuer=ISSUER, audience="lakehouse", roles_claim="realm_access.roles")
    keys = OidcVerifier(
        oidc, client=httpx.Client(transport=httpx.MockTransport(issuer.handler)), clock=Clock()
    )
    settings = ServerSettings(oidc=oidc, authorization_rules=rules)
    return create_app(store, settings=settings, oidc_verifier=keys)


def bearer(issuer: Issuer, name: str, *roles: str) -> dict[str, str]:
    """The ``Authorization`` header of a token for principal ``name`` with realm ``roles``."""
    token = issuer.token(preferred_username=name, realm_access={"roles": list(roles)})
    return {"Authorization": f"Bearer {token}"}


def verifier(issuer: Issuer, clock: Clock, **settings: Any) -> OidcVerifier:
    config = OidcSettings(
        issuer=ISSUER, audience="lakehouse", roles_claim="realm_access.roles", **settings
    )
    client = httpx.Client(transport=httpx.MockTransport(issuer.handler))
    return OidcVerifier(config, client=client, clock=clock)


def test_a_valid_token_gives_the_principal_and_roles(issuer: Issuer, clock: Clock) -> None:
    got = verifier(issuer, clock).verify(issuer.token())
    assert got == Principal("alice", ("readers", "writers"))


def test_the_principal_falls_back_to_sub(issuer: Issuer, clock: Clock) -> None:
    got = verifier(issuer, clock).verify(issuer.token(preferred_username=None))
    assert got.name == "u-1"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"exp": int(time.time()) - 120}, "expired"),
        ({"nbf": int(time.time()) + 600}, "not valid yet"),
        ({"iss": "https://evil.test/"}, "another issuer"),
        ({"aud": "someone-else"}, "another audience"),
        ({"exp": None}, "exp"),
    ],
)
def test_bad_claims_are_refused(
    issuer: Issuer, clock: Clock, claims: dict[str, Any], reason: str
) -> None:
    with pytest.raises(AuthenticationError, match=reason):
        verifier(issuer, clock).verify(issuer.token(**claims))


def test_small_clock_skew_is_tolerated(issuer: Issuer, clock: Clock) -> None:
    token = issuer.token(exp=int(time.time()) - 5)
    assert verifier(issuer, clock, leeway_seconds=30).verify(token).name == "alice"


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_alg_none_is_refused(issuer: Issuer, clock: Clock) -> None:
    claims = jwt.decode(issuer.token(), options={"verify_signature": False})
    token = f"{_b64({'alg': 'none', 'kid': 'k1'})}.{_b64(claims)}."
    with pytest.raises(AuthenticationError, match="algorithm 'none'"):
        verifier(issuer, clock).verify(token)


def test_hmac_signed_with_the_public_key_is_refused(issuer: Issuer, clock: Clock) -> None:
    claims = jwt.decode(issuer.token(), options={"verify_signature": False})
    public_pem = issuer.jwks()["keys"][0]["n"].encode()
    header = _b64({"alg": "HS256", "kid": "k1", "typ": "JWT"})
    import hashlib
    import hmac

    signing_input = f"{header}.{_b64(claims)}"
    sig = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{base64.urlsafe_b64encode(sig).rstrip(b'=').decode()}"
    with pytest.raises(AuthenticationError, match="HS256"):
        verifier(issuer, clock).verify(token)


def test_a_tampered_signature_is_refused(issuer: Issuer, clock: Clock) -> None:
    head, body, sig = issuer.token().split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["preferred_username"] = "mallory"
    with pytest.raises(AuthenticationError, match="signature"):
        verifier(issuer, clock).verify(f"{head}.{_b64(claims)}.{sig}")


def test_an_algorithm_that_does_not_fit_the_key_is_refused(issuer: Issuer, clock: Clock) -> None:
    issuer.add_key("ec1", "EC")
    token = issuer.token(kid="ec1", alg="ES256")
    assert verifier(issuer, clock).verify(token).name == "alice"
    forged = jwt.encode(
        {"iss": ISSUER}, issuer.keys["k1"], algorithm="RS256", headers={"kid": "ec1"}
    )
    with pytest.raises(AuthenticationError, match="does not fit"):
        verifier(issuer, clock).verify(forged)


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "x" * 100_000])
def test_malformed_and_huge_tokens_are_refused(issuer: Issuer, clock: Clock, token: str) -> None:
    with pytest.raises(AuthenticationError):
        verifier(issuer, clock).verify(token)
    assert issuer.jwks_fetches == 0


def test_rotated_keys_are_fetched_once_and_refetch_is_rate_limited(
    issuer: Issuer, clock: Clock
) -> None:
    v = verifier(issuer, clock, jwks_min_refetch_seconds=10)
    v.verify(issuer.token())
    assert issuer.jwks_fetches == 1
    issuer.add_key("k2")  # the provider rotates
    clock.now += 11
    assert v.verify(issuer.token(kid="k2")).name == "alice"
    assert issuer.jwks_fetches == 2
    for _ in range(5):  # unknown kids within the rate limit do not refetch
        with pytest.raises(AuthenticationError, match="unknown key"):
            v.verify(jwt.encode({"iss": ISSUER}, issuer.keys["k1"], "RS256", {"kid": "nope"}))
    assert issuer.jwks_fetches == 2


def test_a_provider_outage_is_served_from_cache_then_refused_with_503(
    issuer: Issuer, clock: Clock
) -> None:
    v = verifier(issuer, clock, jwks_cache_seconds=60, jwks_max_stale_seconds=600)
    v.verify(issuer.token())
    issuer.down = True
    clock.now += 120  # cache expired, refetch fails: the cached keys still serve
    assert v.verify(issuer.token()).name == "alice"
    clock.now += 600  # too stale: refused, never accepted
    with pytest.raises(IdentityProviderUnavailableError):
        v.verify(issuer.token())


def test_a_provider_down_at_start_is_503(issuer: Issuer, clock: Clock) -> None:
    issuer.down = True
    with pytest.raises(IdentityProviderUnavailableError):
        verifier(issuer, clock).verify(issuer.token())


def test_symmetric_algorithms_cannot_be_configured() -> None:
    with pytest.raises(ValueError, match="HS256"):
        OidcVerifier(OidcSettings(issuer=ISSUER, algorithms=("HS256",)))
