"""The console's OIDC sign-in: authorization code with PKCE against a mock provider."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pyarrow as pa
import pytest

from lakehouse.client import Lakehouse, connect
from lakehouse.console import WebConsole
from lakehouse.console.access import TOKEN_COOKIE
from lakehouse.console.oidc_login import FLOW_COOKIE
from lakehouse.server.app import create_app
from lakehouse.server.oidc import OidcSettings, OidcVerifier
from lakehouse.server.settings import ServerSettings
from tests.server.helpers import ApiClient
from tests.server.test_oidc import ISSUER, Clock, Issuer

CALLBACK = "http://testserver/ui/login/callback"


class Provider:
    """The mock issuer plus an authorization and a token endpoint (PKCE checked)."""

    def __init__(self) -> None:
        self.issuer = Issuer()
        self.challenges: dict[str, str] = {}  # code -> S256 challenge it was issued for
        self.token_requests: list[dict[str, list[str]]] = []
        self.secret_seen: str | None = None

    def authorize(self, url: str) -> str:
        """The code the provider would redirect back with, after the person signed in."""
        query = parse_qs(urlparse(url).query)
        code = f"code-{len(self.challenges)}"
        self.challenges[code] = query["code_challenge"][0]
        return code

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/.well-known/openid-configuration"):
            return httpx.Response(
                200,
                json={
                    "issuer": ISSUER,
                    "jwks_uri": "https://idp.test/jwks",
                    "authorization_endpoint": "https://idp.test/auth",
                    "token_endpoint": "https://idp.test/token",
                },
            )
        if request.url.path == "/token":
            form = parse_qs(request.content.decode())
            self.token_requests.append(form)
            self.secret_seen = request.headers.get("authorization")
            code = form["code"][0]
            verifier = form["code_verifier"][0]
            digest = hashlib.sha256(verifier.encode()).digest()
            challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if self.challenges.get(code) != challenge or form["redirect_uri"] != [CALLBACK]:
                return httpx.Response(400, json={"error": "invalid_grant"})
            token = self.issuer.token(preferred_username="olga", realm_access={"roles": []})
            return httpx.Response(200, json={"access_token": token, "token_type": "Bearer"})
        return self.issuer.handler(request)


@pytest.fixture
def provider() -> Provider:
    return Provider()


@pytest.fixture
def lh(_isolate_lakehouse_config: Path) -> Iterator[Lakehouse]:
    with connect(create=True) as opened:
        opened.catalog("main").create_namespace("bronze")
        opened.catalog("main").create_table("bronze.orders", schema=pa.schema([("id", pa.int64())]))
        yield opened


@pytest.fixture
def client(lh: Lakehouse, provider: Provider) -> Iterator[ApiClient]:
    oidc = OidcSettings(
        issuer=ISSUER,
        audience="lakehouse",
        roles_claim="realm_access.roles",
        console_client_id="lakehouse-console",
    )
    verifier = OidcVerifier(
        oidc, client=httpx.Client(transport=httpx.MockTransport(provider.handler)), clock=Clock()
    )
    app = create_app(
        lh.store, settings=ServerSettings(oidc=oidc), oidc_verifier=verifier, console=WebConsole(lh)
    )
    with ApiClient(app) as opened:
        yield opened


def test_the_login_page_offers_the_provider(client: ApiClient) -> None:
    page = client.get("/ui/login?next=/ui/tables")
    assert 'href="/ui/login/oidc?next=%2Fui%2Ftables"' in page.text


def test_sign_in_with_authorization_code_and_pkce(client: ApiClient, provider: Provider) -> None:
    start = client.get("/ui/login/oidc?next=/ui/tables")
    assert start.status_code == 303
    location = start.headers["location"]
    assert location.startswith("https://idp.test/auth?")
    query = parse_qs(urlparse(location).query)
    assert query["client_id"] == ["lakehouse-console"]
    assert query["redirect_uri"] == [CALLBACK]
    assert query["code_challenge_method"] == ["S256"]
    assert query["response_type"] == ["code"]
    flow_cookie = start.headers["set-cookie"]
    assert flow_cookie.startswith(f"{FLOW_COOKIE}=")
    assert "HttpOnly" in flow_cookie
    assert "SameSite=lax" in flow_cookie
    code = provider.authorize(location)

    back = client.get(f"/ui/login/callback?code={code}&state={query['state'][0]}")
    assert back.status_code == 200, back.text
    assert 'content="0;url=/ui/tables"' in back.text
    assert f"{TOKEN_COOKIE}=" in back.headers["set-cookie"]
    assert provider.secret_seen is None  # a public client: PKCE, no secret
    page = client.get("/ui/tables")
    assert page.status_code == 200
    assert "olga" in page.text


def test_a_callback_with_another_state_signs_nobody_in(
    client: ApiClient, provider: Provider
) -> None:
    start = client.get("/ui/login/oidc?next=/")
    code = provider.authorize(start.headers["location"])
    forged = client.get(f"/ui/login/callback?code={code}&state=forged")
    assert forged.status_code == 401
    assert "state does not match" in forged.text
    assert provider.token_requests == []  # the code was never exchanged
    assert client.get("/ui/tables").status_code == 303


def test_a_callback_without_a_started_sign_in_is_refused(client: ApiClient) -> None:
    response = client.get("/ui/login/callback?code=x&state=y")
    assert response.status_code == 401
    assert "not started here" in response.text


def test_a_refused_code_exchange_signs_nobody_in(client: ApiClient, provider: Provider) -> None:
    start = client.get("/ui/login/oidc?next=/")
    state = parse_qs(urlparse(start.headers["location"]).query)["state"][0]
    # a code the provider never issued for this challenge
    response = client.get(f"/ui/login/callback?code=stolen&state={state}")
    assert response.status_code == 401
    assert "invalid_grant" in response.text
    assert client.get("/ui/tables").status_code == 303


def test_next_cannot_leave_the_server(client: ApiClient, provider: Provider) -> None:
    start = client.get("/ui/login/oidc?next=//evil.example/x")
    query = parse_qs(urlparse(start.headers["location"]).query)
    code = provider.authorize(start.headers["location"])
    back = client.get(f"/ui/login/callback?code={code}&state={query['state'][0]}")
    assert 'content="0;url=/"' in back.text
