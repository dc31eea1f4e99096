"""A catalog client signs in with OAuth2 client credentials, keeps its token, renews it.

The issuer and the catalog server are httpx MockTransports here; the same flow against the
real Keycloak and both real servers is tests/server/keycloak/test_client_sign_in.py.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import SecretStr

from lakehouse.catalog.nessie_store import NessieStore
from lakehouse.catalog.oauth2 import ClientCredentials, SignInError
from lakehouse.config import load_settings
from lakehouse.errors import CatalogError, ConfigError, TransientCatalogError

ISSUER = "https://idp.example/realms/lakehouse"
TOKEN_URL = f"{ISSUER}/protocol/openid-connect/token"
SECRET = "s3cr3t/with+special=chars"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Issuer:
    """Discovery and a token endpoint that counts the tokens it hands out."""

    def __init__(self, expires_in: int | None = 300) -> None:
        self.expires_in = expires_in
        self.issued: list[str] = []
        self.discoveries = 0
        self.forms: list[dict[str, list[str]]] = []
        self.authorizations: list[str] = []
        self.refuse: tuple[int, dict[str, str]] | None = None

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/.well-known/openid-configuration"):
            self.discoveries += 1
            return httpx.Response(200, json={"issuer": ISSUER, "token_endpoint": TOKEN_URL})
        assert str(request.url) == TOKEN_URL and request.method == "POST"
        self.forms.append(parse_qs(request.content.decode()))
        self.authorizations.append(request.headers.get("Authorization", ""))
        if self.refuse is not None:
            return httpx.Response(self.refuse[0], json=self.refuse[1])
        token = f"token-{len(self.issued) + 1}"
        self.issued.append(token)
        body: dict[str, object] = {"access_token": token, "token_type": "Bearer"}
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        return httpx.Response(200, json=body)


def flow(issuer: Issuer, clock: Clock | None = None, **kwargs: object) -> ClientCredentials:
    return ClientCredentials(
        "lakehouse-etl",
        SecretStr(SECRET),
        issuer=ISSUER,
        transport=httpx.MockTransport(issuer.handler),
        clock=clock or Clock(),
        **kwargs,  # type: ignore[arg-type]
    )


def catalog(accepts: Callable[[str], bool], seen: list[str]) -> httpx.MockTransport:
    """A Nessie server answering /config to the tokens ``accepts`` takes, else 401."""

    def handler(request: httpx.Request) -> httpx.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        seen.append(token)
        if not accepts(token):
            return httpx.Response(401, json={"status": 401, "message": "Unauthorized"})
        return httpx.Response(200, json={"defaultBranch": "main", "maxSupportedApiVersion": 2})

    return httpx.MockTransport(handler)


def test_the_token_endpoint_is_discovered_once_and_the_token_reused() -> None:
    issuer = Issuer()
    seen: list[str] = []
    store = NessieStore(
        "http://nessie.example/api/v2",
        auth=flow(issuer),
        transport=catalog(lambda t: t == "token-1", seen),
    )
    for _ in range(3):
        store._config = None  # ask the server each time
        assert store.server_config()["defaultBranch"] == "main"
    assert seen == ["token-1"] * 3
    assert issuer.discoveries == 1 and issuer.issued == ["token-1"]


def test_the_client_authenticates_with_http_basic_and_asks_for_client_credentials() -> None:
    issuer = Issuer()
    flow(issuer, scope="catalog").token()
    assert issuer.forms == [{"grant_type": ["client_credentials"], "scope": ["catalog"]}]
    user, _, password = (
        base64.b64decode(issuer.authorizations[0].removeprefix("Basic ")).decode().partition(":")
    )
    # RFC 6749 2.3.1: id and secret are form-encoded before Basic
    assert (user, password) == ("lakehouse-etl", "s3cr3t%2Fwith%2Bspecial%3Dchars")


def test_a_token_is_renewed_shortly_before_it_expires() -> None:
    issuer, clock = Issuer(expires_in=300), Clock()
    credentials = flow(issuer, clock)
    assert credentials.token().get_secret_value() == "token-1"
    clock.now += 269  # 300 s token: renewed 30 s early
    assert credentials.token().get_secret_value() == "token-1"
    clock.now += 1
    assert credentials.token().get_secret_value() == "token-2"


def test_a_short_token_is_renewed_at_nine_tenths_of_its_life() -> None:
    issuer, clock = Issuer(expires_in=10), Clock()
    credentials = flow(issuer, clock)
    credentials.token()
    clock.now += 8.9
    assert credentials.token().get_secret_value() == "token-1"
    clock.now += 0.2
    assert credentials.token().get_secret_value() == "token-2"


def test_a_refused_token_is_replaced_once_and_the_request_sent_again() -> None:
    issuer = Issuer()
    seen: list[str] = []
    credentials = flow(issuer)
    credentials.token()  # token-1 cached, then revoked at the server
    store = NessieStore(
        "http://nessie.example/api/v2",
        auth=credentials,
        transport=catalog(lambda t: t != "token-1", seen),
    )
    assert store.server_config()["defaultBranch"] == "main"
    assert seen == ["token-1", "token-2"]


def test_a_server_that_refuses_every_token_is_one_error_after_one_retry() -> None:
    issuer = Issuer()
    seen: list[str] = []
    store = NessieStore(
        "http://nessie.example/api/v2",
        auth=flow(issuer),
        transport=catalog(lambda t: False, seen),
        max_retries=0,
    )
    with pytest.raises(CatalogError, match="requires authentication"):
        store.server_config()
    assert seen == ["token-1", "token-2"]


def test_refused_credentials_are_a_sign_in_error_that_names_the_reason_not_the_secret() -> None:
    issuer = Issuer()
    issuer.refuse = (401, {"error": "invalid_client", "error_description": "Invalid secret"})
    with pytest.raises(SignInError) as raised:
        flow(issuer).token()
    message = str(raised.value)
    assert "'lakehouse-etl'" in message and "invalid_client (Invalid secret)" in message
    assert SECRET not in message


def test_an_issuer_that_is_down_is_transient() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    credentials = ClientCredentials(
        "c", SecretStr(SECRET), token_url=TOKEN_URL, transport=httpx.MockTransport(down)
    )
    with pytest.raises(TransientCatalogError, match="cannot be reached"):
        credentials.token()


def test_an_answer_without_a_bearer_token_is_refused() -> None:
    def mac(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"access_token": "x", "token_type": "mac"})

    credentials = ClientCredentials(
        "c", SecretStr(SECRET), token_url=TOKEN_URL, transport=httpx.MockTransport(mac)
    )
    with pytest.raises(SignInError, match="'mac' token"):
        credentials.token()


def test_the_secret_and_tokens_never_reach_reprs_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    issuer = Issuer()
    credentials = flow(issuer)
    seen: list[str] = []
    NessieStore(
        "http://nessie.example/api/v2",
        auth=credentials,
        transport=catalog(lambda t: True, seen),
    ).server_config()
    assert seen == ["token-1"]
    settings = load_settings(
        catalog={
            "uri": "http://nessie.example/api/v2",
            "oauth2": {"issuer": ISSUER, "client_id": "etl", "client_secret": SECRET},
        }
    )
    for text in (repr(credentials), repr(settings), str(settings.summary()), caplog.text):
        assert SECRET not in text and "token-1" not in text


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEHOUSE_CATALOG__URI", "http://nessie.example/api/v2")
    monkeypatch.setenv("LAKEHOUSE_CATALOG__OAUTH2__ISSUER", ISSUER)
    monkeypatch.setenv("LAKEHOUSE_CATALOG__OAUTH2__CLIENT_ID", "lakehouse-etl")
    monkeypatch.setenv("LAKEHOUSE_CATALOG__OAUTH2__CLIENT_SECRET", SECRET)
    oauth2 = load_settings().catalog.oauth2
    assert oauth2 is not None
    assert (oauth2.issuer, oauth2.client_id) == (ISSUER, "lakehouse-etl")
    assert oauth2.client_secret.get_secret_value() == SECRET


@pytest.mark.parametrize(
    ("catalog_settings", "message"),
    [
        ({"oauth2": {"client_id": "c", "client_secret": "s"}}, "set the issuer or the token_url"),
        ({"oauth2": {"issuer": ISSUER, "client_id": "c", "client_secret": ""}}, "is empty"),
        (
            {"token": "t", "oauth2": {"issuer": ISSUER, "client_id": "c", "client_secret": "s"}},
            "not both",
        ),
    ],
)
def test_incomplete_or_conflicting_credentials_are_one_config_error(
    catalog_settings: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        load_settings(catalog={"uri": "http://nessie.example/api/v2", **catalog_settings})
    assert "\n" not in str(raised.value)
