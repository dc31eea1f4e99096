"""Keycloak's tokens at both servers: accepted when valid, 401 for every kind of bad token.

Each test runs against ``lakehouse serve`` and against the real Nessie (the ``server``
fixture), both configured with the same issuer, audience, claims and rules file.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable

import httpx
import pytest

from tests.server.keycloak.conftest import Realm, Server

pytestmark = pytest.mark.integration


def _segments(token: str) -> list[str]:
    parts = token.split(".")
    assert len(parts) == 3
    return parts


def _encode(document: dict[str, object]) -> str:
    raw = json.dumps(document, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode(segment: str) -> dict[str, object]:
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(segment + "=" * 4))
    return decoded


def _main_hash(server: Server, token: str) -> str:
    with server.client(token) as http:
        response = http.get("trees/main")
        assert response.status_code == 200, response.text
        return str(response.json()["reference"]["hash"])


def test_a_client_credentials_token_is_accepted(server: Server, realm: Realm) -> None:
    token = realm.client_credentials("lakehouse-etl")["access_token"]
    with server.client(token) as http:
        response = http.get("trees")
    assert response.status_code == 200, response.text
    assert "main" in [r["name"] for r in response.json()["references"]]


def test_a_password_grant_token_is_accepted(server: Server, realm: Realm) -> None:
    token = realm.password("carol")["access_token"]
    with server.client(token) as http:
        response = http.get("trees/main/entries")
    assert response.status_code == 200, response.text


def test_the_principal_is_preferred_username_and_roles_come_from_the_roles_claim(
    server: Server, realm: Realm
) -> None:
    # bob (role engineer) may create a work branch; carol (role analyst) may not; the
    # refusal names the principal exactly as Nessie does
    bob, carol = realm.token("bob"), realm.token("carol")
    head = _main_hash(server, bob)
    target = {"type": "BRANCH", "name": "main", "hash": head}
    with server.client(bob) as http:
        created = http.post(
            "trees", params={"name": f"bob-work-{time.time_ns()}", "type": "BRANCH"}, json=target
        )
        assert created.status_code == 200, created.text
        fresh = f"ns_{time.time_ns()}"  # a new key: Nessie validates content ids first
        on_main = http.post(
            f"trees/main@{head}/history/commit",
            json={
                "commitMeta": {"message": "not allowed"},
                "operations": [
                    {
                        "type": "PUT",
                        "key": {"elements": [fresh]},
                        "content": {"type": "NAMESPACE", "elements": [fresh]},
                    }
                ],
            },
        )
    assert on_main.status_code == 403, on_main.text
    assert on_main.json()["errorCode"] == "FORBIDDEN"
    assert (
        "'COMMIT_CHANGE_AGAINST_REFERENCE' is not allowed for role 'bob' on reference 'main'"
        in (on_main.json()["message"])
    )
    with server.client(carol) as http:
        refused = http.post(
            "trees", params={"name": f"carol-work-{time.time_ns()}", "type": "BRANCH"}, json=target
        )
    assert refused.status_code == 403, refused.text
    assert "'CREATE_REFERENCE' is not allowed for role 'carol'" in refused.json()["message"]


def test_a_service_account_is_named_by_keycloak(server: Server, realm: Realm) -> None:
    token = realm.token("sa:lakehouse-reports")
    head = _main_hash(server, token)
    with server.client(token) as http:
        refused = http.post(
            "trees",
            params={"name": "reports-branch", "type": "BRANCH"},
            json={"type": "BRANCH", "name": "main", "hash": head},
        )
    assert refused.status_code == 403, refused.text
    assert "role 'service-account-lakehouse-reports'" in refused.json()["message"]


def _expired(realm: Realm, other: Realm) -> str:
    answer = realm.client_credentials("lakehouse-short-lived")
    assert answer["expires_in"] <= 2
    expires = int(_decode(_segments(answer["access_token"])[1])["exp"])  # type: ignore[call-overload]
    time.sleep(max(0.0, expires - time.time()) + 1.5)
    return str(answer["access_token"])


def _other_audience(realm: Realm, other: Realm) -> str:
    token = str(realm.client_credentials("other-service")["access_token"])
    assert _decode(_segments(token)[1])["aud"] == "other-api"
    return token


def _other_issuer(realm: Realm, other: Realm) -> str:
    # same Keycloak, realm 'elsewhere': right audience, role admin, but another iss and keys
    return str(other.client_credentials("lakehouse-admin")["access_token"])


def _tampered_claims(realm: Realm, other: Realm) -> str:
    header, payload, signature = _segments(realm.token("carol"))
    claims = _decode(payload)
    claims["roles"] = ["admin"]
    return f"{header}.{_encode(claims)}.{signature}"


def _tampered_signature(realm: Realm, other: Realm) -> str:
    header, payload, signature = _segments(realm.token("carol"))
    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    return f"{header}.{payload}.{signature[:middle]}{flipped}{signature[middle + 1 :]}"


def _unknown_kid(realm: Realm, other: Realm) -> str:
    header, payload, signature = _segments(realm.token("alice"))
    fields = _decode(header)
    fields["kid"] = "not-a-key-of-this-realm"
    return f"{_encode(fields)}.{payload}.{signature}"


def _alg_none(realm: Realm, other: Realm) -> str:
    _, payload, _ = _segments(realm.token("alice"))
    return f"{_encode({'alg': 'none', 'typ': 'JWT'})}.{payload}."


def _hmac_with_the_public_key(realm: Realm, other: Realm) -> str:
    # the classic confusion attack: HS256 "signed" with the issuer's public RSA key
    import hmac

    jwks = httpx.get(f"{realm.issuer}/protocol/openid-connect/certs", timeout=30).json()
    key = json.dumps(jwks["keys"][0]).encode()
    _, payload, _ = _segments(realm.token("alice"))
    head = _encode({"alg": "HS256", "typ": "JWT", "kid": jwks["keys"][0]["kid"]})
    mac = hmac.new(key, f"{head}.{payload}".encode(), "sha256").digest()
    return f"{head}.{payload}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


BAD_TOKENS: dict[str, Callable[[Realm, Realm], str]] = {
    "expired": _expired,
    "another audience": _other_audience,
    "another issuer": _other_issuer,
    "tampered claims": _tampered_claims,
    "tampered signature": _tampered_signature,
    "unknown kid": _unknown_kid,
    "alg none": _alg_none,
    "HMAC with the public key": _hmac_with_the_public_key,
    "not a JWT": lambda realm, other: "not-a-jwt",
}


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
def test_a_bad_token_is_401_on_both_servers(
    kind: str, servers: dict[str, Server], realm: Realm, other_realm: Realm
) -> None:
    token = BAD_TOKENS[kind](realm, other_realm)
    statuses = {}
    for name, server in servers.items():
        with server.client(token) as http:
            statuses[name] = http.get("trees").status_code
    assert statuses == {"lakehouse": 401, "nessie": 401}


def test_no_token_is_401_on_both_servers(servers: dict[str, Server]) -> None:
    statuses = {}
    for name, server in servers.items():
        with server.client(None) as http:
            statuses[name] = http.get("trees").status_code
    assert statuses == {"lakehouse": 401, "nessie": 401}
