"""`lakehouse login` against the real Keycloak: the device flow approved through Keycloak's pages.

A person is played by an HTTP client: it opens the verification address the command printed,
signs in on Keycloak's login form as a user of the realm and presses "Yes" on the grant page
(Keycloak's cookies are ``Secure``; like a browser on loopback, the client sends them over
plain HTTP). The tokens then sign the requests of a lakehouse whose catalog is a
``lakehouse serve`` that requires Keycloak's tokens, and are renewed with the refresh token.

The public client ``lakehouse-login`` (device grant only) is in
docker/keycloak/lakehouse-realm.json; a Keycloak started before that client was added gets it
through the admin API (the same JSON), so that a running server need not restart.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest

from lakehouse.catalog.login import DeviceLogin, LoginDeniedError, TokenFile, Tokens
from lakehouse.catalog.sql_store import SqlStore
from lakehouse.client import connect
from lakehouse.config import Settings
from lakehouse.errors import CatalogError
from lakehouse.server import ServerSettings
from lakehouse.server.app import make_server, serving
from lakehouse.server.oidc import OidcSettings
from tests.server.keycloak.conftest import AUDIENCE, REALM_FILE, ROLES_CLAIM

pytestmark = pytest.mark.integration

CLIENT = "lakehouse-login"
USER, PASSWORD = "bob", "bob-dev-password"


class Browser:
    """Follows redirects and sends back every cookie it was given, ``Secure`` ones too."""

    def __init__(self) -> None:
        self.http = httpx.Client(timeout=30)
        self.cookies: dict[str, str] = {}

    def go(self, method: str, url: str, data: dict[str, str] | None = None) -> httpx.Response:
        for _ in range(10):
            cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            response = self.http.request(
                method, url, data=data, headers={"Cookie": cookie} if cookie else {}
            )
            for header in response.headers.get_list("set-cookie"):
                name, _, rest = header.partition("=")
                if "Max-Age=0" in header:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = rest.split(";", 1)[0]
            if response.status_code not in (301, 302, 303, 307, 308):
                return response
            url, method, data = (
                urljoin(str(response.url), response.headers["location"]),
                "GET",
                None,
            )
        raise AssertionError("too many redirects")


def _page(response: httpx.Response) -> str:
    found = re.search(r'data-page-id="([^"]+)"', response.text)
    return found.group(1) if found else f"HTTP {response.status_code}"


def _form(response: httpx.Response) -> tuple[str, dict[str, str]]:
    found = re.search(r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', response.text, re.S)
    assert found, response.text[:500]
    fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', found.group(2)))
    return urljoin(str(response.url), html.unescape(found.group(1))), fields


def approve(verification_uri: str, *, accept: bool = True) -> None:
    """Be the person: sign in on Keycloak's form and answer its grant page."""
    browser = Browser()
    with browser.http:
        login = browser.go("GET", verification_uri)
        assert _page(login) == "login-login", login.text[:500]
        action, fields = _form(login)
        grant = browser.go("POST", action, {**fields, "username": USER, "password": PASSWORD})
        assert _page(grant) == "login-login-oauth-grant", grant.text[:500]
        action, fields = _form(grant)
        done = browser.go("POST", action, {**fields, ("accept" if accept else "cancel"): ""})
        assert done.status_code == 200, done.text[:500]


@pytest.fixture(scope="module")
def login_client(keycloak_issuer: str) -> str:
    """The realm's public device-grant client, created from the realm file if missing."""
    base = keycloak_issuer.rsplit("/realms/", 1)[0]
    password = os.environ.get("LAKEHOUSE_KEYCLOAK_ADMIN_PASSWORD", "admin")
    admin = httpx.post(
        f"{base}/realms/master/protocol/openid-connect/token",
        data={"grant_type": "password", "client_id": "admin-cli", "username": "admin"}
        | {"password": password},
        timeout=30,
    )
    assert admin.status_code == 200, admin.text
    headers = {"Authorization": f"Bearer {admin.json()['access_token']}"}
    clients = f"{base}/admin/realms/lakehouse/clients"
    if not httpx.get(clients, params={"clientId": CLIENT}, headers=headers, timeout=30).json():
        realm = json.loads(REALM_FILE.read_text(encoding="utf-8"))
        (client,) = (c for c in realm["clients"] if c["clientId"] == CLIENT)
        created = httpx.post(clients, json=client, headers=headers, timeout=30)
        assert created.status_code in (201, 409), created.text
    return CLIENT


@pytest.fixture
def catalog_server(keycloak_issuer: str, tmp_path: Path) -> Iterator[str]:
    """API v2 URL of a catalog server that requires the realm's tokens."""
    store = SqlStore(f"sqlite:///{tmp_path / 'catalog.db'}")
    settings = ServerSettings(
        oidc=OidcSettings(issuer=keycloak_issuer, audience=AUDIENCE, roles_claim=ROLES_CLAIM)
    )
    server = make_server(store, "127.0.0.1", 0, settings=settings, log_level="warning")
    with serving(server) as port:
        yield f"http://127.0.0.1:{port}/api/v2"
    store.close()


def _lakehouse_env(issuer: str, api: str, tmp_path: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")},
        "LAKEHOUSE_HOME": str(tmp_path / "home"),
        "LAKEHOUSE_CATALOG__URI": api,
        "LAKEHOUSE_WAREHOUSE": str(tmp_path / "warehouse"),
        "LAKEHOUSE_CATALOG__LOGIN__ISSUER": issuer,
        "LAKEHOUSE_CATALOG__LOGIN__CLIENT_ID": CLIENT,
        "LAKEHOUSE_CATALOG__LOGIN__TOKEN_FILE": str(tmp_path / "cfg" / "credentials.json"),
    }


def _settings(issuer: str, api: str, tmp_path: Path) -> Settings:
    return Settings(
        home=tmp_path / "home",
        warehouse=str(tmp_path / "warehouse"),
        catalog={
            "uri": api,
            "login": {
                "issuer": issuer,
                "client_id": CLIENT,
                "token_file": tmp_path / "cfg" / "credentials.json",
            },
        },
    )


def test_login_approved_at_keycloak_signs_the_catalog_and_renews_itself(
    keycloak_issuer: str, login_client: str, catalog_server: str, tmp_path: Path
) -> None:
    env = _lakehouse_env(keycloak_issuer, catalog_server, tmp_path)
    command = [sys.executable, "-m", "lakehouse.cli", "-o", "json"]
    assert httpx.get(f"{catalog_server}/trees", timeout=10).status_code == 401

    # a command before signing in: one clear line, exit 1
    before = subprocess.run(
        [*command, "branch", "list"], env=env, capture_output=True, text=True, timeout=120
    )
    assert before.returncode == 1
    assert "not signed in" in before.stderr and "run lakehouse login" in before.stderr

    process = subprocess.Popen(
        [*command, "login"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stderr is not None
        first = process.stderr.readline()
        assert first.startswith("Open "), first
        approve(first.removeprefix("Open ").strip())
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    info = json.loads(out)
    token_file = Path(info["token_file"])
    assert token_file == tmp_path / "cfg" / "credentials.json"
    assert oct(token_file.stat().st_mode & 0o777) == "0o600"

    # the CLI signs its catalog requests with the stored tokens
    listed = subprocess.run(
        [*command, "branch", "list"], env=env, capture_output=True, text=True, timeout=120
    )
    assert listed.returncode == 0, listed.stderr
    assert "main" in listed.stdout

    # an expired access token is renewed with the refresh token, and saved
    file = TokenFile(token_file)
    stored = file.load(keycloak_issuer, CLIENT)
    assert stored is not None and stored.refresh_token is not None
    file.save(
        Tokens(stored.issuer, stored.client_id, stored.access_token, 0.0, stored.refresh_token)
    )
    with connect(settings=_settings(keycloak_issuer, catalog_server, tmp_path)) as lh:
        assert [b.name for b in lh.branches()] == ["main"]
    renewed = file.load(keycloak_issuer, CLIENT)
    assert renewed is not None and renewed.expires_at > 0.0
    assert renewed.access_token != stored.access_token

    # logout revokes the session at Keycloak: the old refresh token no longer works
    out = subprocess.run([*command, "logout"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["revoked"] is True
    assert file.load(keycloak_issuer, CLIENT) is None
    assert renewed.refresh_token is not None
    form = {"grant_type": "refresh_token", "client_id": CLIENT}
    form["refresh_token"] = renewed.refresh_token.get_secret_value()
    refresh = httpx.post(f"{keycloak_issuer}/protocol/openid-connect/token", data=form, timeout=30)
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"
    with (
        pytest.raises(CatalogError, match="run lakehouse login"),
        connect(settings=_settings(keycloak_issuer, catalog_server, tmp_path)) as lh,
    ):
        lh.branches()


def test_declining_at_keycloak_is_a_login_denied_error(
    keycloak_issuer: str, login_client: str
) -> None:
    flow = DeviceLogin(keycloak_issuer, login_client)
    started = flow.start()
    assert started.verification_uri_complete is not None
    declined = threading.Thread(
        target=approve, args=(started.verification_uri_complete,), kwargs={"accept": False}
    )
    declined.start()
    try:
        with pytest.raises(LoginDeniedError):
            flow.wait(started)
    finally:
        declined.join(timeout=60)
        flow.close()
