"""A person signs in with the device flow (RFC 8628); tokens kept in a 0600 file, renewed.

The issuer and the catalog server are httpx MockTransports here; the same flow against the
real Keycloak (the verification page driven over HTTP) is
tests/server/keycloak/test_device_login.py.
"""

from __future__ import annotations

import logging
import stat
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from lakehouse.catalog.login import (
    DEVICE_GRANT,
    DeviceLogin,
    LoginDeniedError,
    LoginExpiredError,
    NotLoggedInError,
    StoredLogin,
    TokenFile,
    Tokens,
    logout,
)
from lakehouse.catalog.nessie_store import NessieStore
from lakehouse.catalog.oauth2 import SignInError
from lakehouse.cli.main import app as cli
from lakehouse.errors import TransientCatalogError

ISSUER = "https://idp.example/realms/lakehouse"
DEVICE_URL = f"{ISSUER}/protocol/openid-connect/auth/device"
TOKEN_URL = f"{ISSUER}/protocol/openid-connect/token"
REVOKE_URL = f"{ISSUER}/protocol/openid-connect/revoke"
CLIENT = "lakehouse-login"


class Clock:
    """Seconds that move only when the code under test sleeps."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Issuer:
    """Discovery, a device endpoint, a token endpoint answering from a script, revocation."""

    def __init__(self, answers: list[tuple[int, dict[str, object]]] | None = None) -> None:
        self.answers = list(answers or [])
        self.token_forms: list[dict[str, list[str]]] = []
        self.device_forms: list[dict[str, list[str]]] = []
        self.revoked: list[dict[str, list[str]]] = []
        self.issued = 0

    def tokens(self, expires_in: int = 300) -> tuple[int, dict[str, object]]:
        self.issued += 1
        return 200, {
            "access_token": f"access-{self.issued}",
            "token_type": "Bearer",
            "expires_in": expires_in,
            "refresh_token": f"refresh-{self.issued}",
            "refresh_expires_in": 1800,
        }

    def handler(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        if url.endswith("/.well-known/openid-configuration"):
            return httpx.Response(
                200,
                json={
                    "issuer": ISSUER,
                    "device_authorization_endpoint": DEVICE_URL,
                    "token_endpoint": TOKEN_URL,
                    "revocation_endpoint": REVOKE_URL,
                },
            )
        form = parse_qs(request.content.decode())
        if url == DEVICE_URL:
            self.device_forms.append(form)
            return httpx.Response(
                200,
                json={
                    "device_code": "dev-code-secret",
                    "user_code": "WDJB-MJHT",
                    "verification_uri": f"{ISSUER}/device",
                    "verification_uri_complete": f"{ISSUER}/device?user_code=WDJB-MJHT",
                    "expires_in": 600,
                    "interval": 5,
                },
            )
        if url == REVOKE_URL:
            self.revoked.append(form)
            return httpx.Response(200)
        assert url == TOKEN_URL
        self.token_forms.append(form)
        status, body = self.answers.pop(0) if self.answers else self.tokens()
        return httpx.Response(status, json=body)


def _flow(issuer: Issuer, clock: Clock) -> DeviceLogin:
    return DeviceLogin(
        ISSUER,
        CLIENT,
        transport=httpx.MockTransport(issuer.handler),
        sleep=clock.sleep,
        clock=clock,
    )


PENDING = (400, {"error": "authorization_pending"})


# -- the device flow -----------------------------------------------------------------------


def test_the_flow_polls_until_the_person_approves() -> None:
    issuer, clock = Issuer([PENDING, PENDING]), Clock()
    flow = _flow(issuer, clock)
    started = flow.start()
    assert started.user_code == "WDJB-MJHT"
    assert started.verification_uri_complete == f"{ISSUER}/device?user_code=WDJB-MJHT"
    assert issuer.device_forms == [{"client_id": [CLIENT], "scope": ["openid"]}]
    tokens = flow.wait(started)
    assert tokens.access_token.get_secret_value() == "access-1"
    assert tokens.refresh_token is not None
    assert clock.sleeps == [5, 5, 5]  # the interval the issuer asked for, between polls
    assert issuer.token_forms[0] == {
        "grant_type": [DEVICE_GRANT],
        "device_code": ["dev-code-secret"],
        "client_id": [CLIENT],
    }
    assert "dev-code-secret" not in repr(started)


def test_slow_down_adds_five_seconds_to_the_interval() -> None:
    slow = (400, {"error": "slow_down"})
    issuer, clock = Issuer([PENDING, slow, PENDING, slow]), Clock()
    flow = _flow(issuer, clock)
    flow.wait(flow.start())
    assert clock.sleeps == [5, 5, 10, 10, 15]


def test_a_declined_sign_in_is_a_login_denied_error() -> None:
    issuer, clock = Issuer([PENDING, (400, {"error": "access_denied"})]), Clock()
    flow = _flow(issuer, clock)
    with pytest.raises(LoginDeniedError, match="declined"):
        flow.wait(flow.start())


def test_an_expired_code_is_a_login_expired_error() -> None:
    issuer, clock = Issuer([(400, {"error": "expired_token"})]), Clock()
    flow = _flow(issuer, clock)
    with pytest.raises(LoginExpiredError, match="expired"):
        flow.wait(flow.start())


def test_the_code_lifetime_bounds_the_wait_even_if_the_issuer_keeps_saying_pending() -> None:
    issuer, clock = Issuer([PENDING] * 1000), Clock()
    flow = _flow(issuer, clock)
    with pytest.raises(LoginExpiredError):
        flow.wait(flow.start())
    assert len(issuer.token_forms) == 120  # one poll per 5 s for 600 s, then no more
    assert sum(clock.sleeps) <= 605


def test_another_refusal_names_the_issuers_reason() -> None:
    refusal = (400, {"error": "invalid_client", "error_description": "device grant disabled"})
    issuer, clock = Issuer([refusal]), Clock()
    flow = _flow(issuer, clock)
    with pytest.raises(SignInError, match=r"invalid_client \(device grant disabled\)"):
        flow.wait(flow.start())


def test_an_issuer_that_fails_is_transient_not_a_refusal() -> None:
    issuer, clock = Issuer([(503, {"error": "unavailable"})]), Clock()
    flow = _flow(issuer, clock)
    with pytest.raises(TransientCatalogError, match="HTTP 503"):
        flow.wait(flow.start())


# -- the credentials file ---------------------------------------------------------------------


def _tokens(expires_at: float, refresh: str | None = "refresh-0") -> Tokens:
    return Tokens(
        issuer=ISSUER,
        client_id=CLIENT,
        access_token=SecretStr("access-0"),
        expires_at=expires_at,
        refresh_token=SecretStr(refresh) if refresh else None,
    )


def test_the_file_is_written_with_mode_0600_and_read_back(tmp_path: Path) -> None:
    file = TokenFile(tmp_path / "cfg" / "credentials.json")
    file.save(_tokens(123.0))
    assert stat.S_IMODE(file.path.stat().st_mode) == 0o600
    loaded = file.load(ISSUER + "/", CLIENT)
    assert loaded == _tokens(123.0)
    assert file.load(ISSUER, "other-client") is None
    assert "access-0" not in repr(loaded) and "refresh-0" not in repr(loaded)


def test_a_file_others_can_read_is_refused(tmp_path: Path) -> None:
    file = TokenFile(tmp_path / "credentials.json")
    file.save(_tokens(123.0))
    file.path.chmod(0o644)
    with pytest.raises(SignInError, match=r"read by other users \(mode 644\): run chmod 600"):
        file.load(ISSUER, CLIENT)


def test_the_default_file_is_under_xdg_config_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert TokenFile().path == tmp_path / "lakehouse" / "credentials.json"


# -- using and renewing a stored sign-in -----------------------------------------------------


def _stored(tmp_path: Path, issuer: Issuer, clock: Clock) -> StoredLogin:
    return StoredLogin(
        ISSUER,
        CLIENT,
        token_file=TokenFile(tmp_path / "credentials.json"),
        transport=httpx.MockTransport(issuer.handler),
        clock=clock,
    )


def test_a_valid_token_is_used_without_asking_the_issuer(tmp_path: Path) -> None:
    clock, issuer = Clock(), Issuer()
    TokenFile(tmp_path / "credentials.json").save(_tokens(clock.now + 300))
    assert _stored(tmp_path, issuer, clock).token().get_secret_value() == "access-0"
    assert issuer.token_forms == []


def test_an_expiring_token_is_renewed_with_the_refresh_token_and_saved(tmp_path: Path) -> None:
    clock, issuer = Clock(), Issuer()
    file = TokenFile(tmp_path / "credentials.json")
    file.save(_tokens(clock.now + 10))  # inside the renewal margin
    login = _stored(tmp_path, issuer, clock)
    assert login.token().get_secret_value() == "access-1"
    assert issuer.token_forms == [
        {"grant_type": ["refresh_token"], "refresh_token": ["refresh-0"], "client_id": [CLIENT]}
    ]
    saved = file.load(ISSUER, CLIENT)
    assert saved is not None and saved.access_token.get_secret_value() == "access-1"
    assert saved.refresh_token == SecretStr("refresh-1")
    assert stat.S_IMODE(file.path.stat().st_mode) == 0o600
    # the next command starts from the renewed tokens, without asking again
    assert _stored(tmp_path, issuer, clock).token().get_secret_value() == "access-1"
    assert len(issuer.token_forms) == 1


def test_a_refresh_token_no_longer_accepted_says_to_log_in_again(tmp_path: Path) -> None:
    clock, issuer = Clock(), Issuer([(400, {"error": "invalid_grant"})])
    TokenFile(tmp_path / "credentials.json").save(_tokens(clock.now - 1))
    with pytest.raises(NotLoggedInError, match=r"invalid_grant.*run lakehouse login"):
        _stored(tmp_path, issuer, clock).token()


def test_without_a_stored_sign_in_the_error_says_to_log_in(tmp_path: Path) -> None:
    with pytest.raises(NotLoggedInError, match=r"not signed in at .*: run lakehouse login"):
        _stored(tmp_path, Issuer(), Clock()).token()


def test_a_catalog_client_sends_the_token_and_renews_once_on_401(tmp_path: Path) -> None:
    clock, issuer = Clock(), Issuer()
    TokenFile(tmp_path / "credentials.json").save(_tokens(clock.now + 300))
    seen: list[str] = []

    def server(request: httpx.Request) -> httpx.Response:
        auth = request.headers.get("Authorization", "")
        seen.append(auth)
        if auth != "Bearer access-1":  # the server revoked access-0
            return httpx.Response(401, json={"status": 401, "message": "unauthorized"})
        return httpx.Response(200, json={"defaultBranch": "main", "maxSupportedApiVersion": 2})

    store = NessieStore(
        "http://catalog.example/api/v2",
        auth=_stored(tmp_path, issuer, clock),
        transport=httpx.MockTransport(server),
    )
    assert store.server_config()["defaultBranch"] == "main"
    assert seen == ["Bearer access-0", "Bearer access-1"]


def test_logout_forgets_the_tokens_and_revokes_the_refresh_token(tmp_path: Path) -> None:
    file = TokenFile(tmp_path / "credentials.json")
    file.save(_tokens(123.0))
    issuer = Issuer()
    removed, revoked = logout(
        ISSUER, CLIENT, token_file=file, transport=httpx.MockTransport(issuer.handler)
    )
    assert (removed, revoked) == (True, True)
    assert issuer.revoked == [
        {"token": ["refresh-0"], "token_type_hint": ["refresh_token"], "client_id": [CLIENT]}
    ]
    assert file.load(ISSUER, CLIENT) is None
    assert logout(ISSUER, CLIENT, token_file=file) == (False, False)


def test_tokens_never_reach_the_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    clock, issuer = Clock(), Issuer([PENDING])
    flow = _flow(issuer, clock)
    tokens = flow.wait(flow.start())
    TokenFile(tmp_path / "credentials.json").save(
        Tokens(ISSUER, CLIENT, tokens.access_token, clock.now - 1, tokens.refresh_token)
    )
    _stored(tmp_path, issuer, clock).token()
    for secret in ("dev-code-secret", "access-1", "refresh-1", "access-2", "refresh-2"):
        assert secret not in caplog.text


# -- the commands -------------------------------------------------------------------------------


def test_login_without_an_issuer_is_one_line_and_changes_nothing(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--home", str(tmp_path / "lh"), "login"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: no issuer to sign in at: set LAKEHOUSE_CATALOG__LOGIN__ISSUER and "
        "LAKEHOUSE_CATALOG__LOGIN__CLIENT_ID (or pass --issuer and --client-id)"
    ]
    assert not (tmp_path / "lh").exists()


def test_logout_when_not_signed_in_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    args = ["logout", "--issuer", ISSUER, "--client-id", CLIENT]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "Not signed in at" in result.output
