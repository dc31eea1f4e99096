"""Sign-in of a person: the OAuth2 device authorization grant (RFC 8628), tokens kept in a file.

``lakehouse login`` runs :class:`DeviceLogin` against the configured issuer
(:class:`lakehouse.config.LoginSettings`, ``LAKEHOUSE_CATALOG__LOGIN__ISSUER`` and
``…__CLIENT_ID``, a *public* client with the device grant enabled):

1. the issuer's discovery document names the ``device_authorization_endpoint`` and the
   ``token_endpoint``;
2. :meth:`DeviceLogin.start` asks for a device code and a user code; the person opens the
   verification URI in any browser, signs in there and approves;
3. :meth:`DeviceLogin.wait` polls the token endpoint every ``interval`` seconds:
   ``authorization_pending`` waits, ``slow_down`` adds 5 seconds to the interval (RFC 8628
   section 3.5), ``access_denied`` is :class:`LoginDeniedError`, ``expired_token`` (or the
   code's lifetime passing) is :class:`LoginExpiredError`.

The tokens go to a :class:`TokenFile` (default ``$XDG_CONFIG_HOME/lakehouse/credentials.json``,
else ``~/.config/lakehouse/credentials.json``), one entry per issuer and client, written
atomically with mode 0600; a file that others may read is refused, not used.
:class:`StoredLogin` is the :class:`httpx.Auth` the library uses when no client credentials
are configured: it sends the access token, renews it with the refresh token shortly before
it expires (and once when the server answers 401), and saves what it got. When the refresh
token itself is no longer accepted the error says to run ``lakehouse login`` again.

Tokens are :class:`~pydantic.SecretStr` and appear in no message, ``repr`` or log. Errors:
:class:`~lakehouse.catalog.oauth2.SignInError` (terminal) and its subclasses here;
an issuer that cannot be reached or answers 5xx is
:class:`~lakehouse.errors.TransientCatalogError`.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from lakehouse.catalog.oauth2 import (
    REFRESH_MARGIN_SECONDS,
    RenewingBearerAuth,
    SignInError,
    provider_reply,
)
from lakehouse.errors import TransientCatalogError

log = logging.getLogger(__name__)

#: The grant type of the device flow's token requests (RFC 8628 section 3.4).
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
#: Polling interval when the issuer names none (RFC 8628 section 3.2: 5 seconds).
DEFAULT_INTERVAL_SECONDS = 5.0
#: What ``slow_down`` adds to the interval (RFC 8628 section 3.5).
SLOW_DOWN_SECONDS = 5.0
#: Format of the credentials file.
FORMAT_VERSION = 1


class LoginDeniedError(SignInError):
    """The person declined the sign-in at the issuer (``access_denied``)."""


class LoginExpiredError(SignInError):
    """The device code expired before the person approved (``expired_token``)."""


class NotLoggedInError(SignInError):
    """No usable sign-in is stored: run ``lakehouse login``."""


def default_token_file() -> Path:
    """``$XDG_CONFIG_HOME/lakehouse/credentials.json`` (default ``~/.config/…``)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "lakehouse" / "credentials.json"


@dataclass(frozen=True)
class DeviceAuthorization:
    """The issuer's answer to a device authorization request (RFC 8628 section 3.2)."""

    device_code: SecretStr
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: float
    interval: float


@dataclass(frozen=True)
class Tokens:
    """A person's tokens at one issuer for one client. Times are Unix seconds."""

    issuer: str
    client_id: str
    access_token: SecretStr
    expires_at: float
    refresh_token: SecretStr | None = None
    #: When the refresh token expires, if the issuer said (``refresh_expires_in``).
    refresh_expires_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The file form (secrets in clear: the file is 0600)."""
        return {
            "issuer": self.issuer,
            "client_id": self.client_id,
            "access_token": self.access_token.get_secret_value(),
            "expires_at": self.expires_at,
            "refresh_token": self.refresh_token.get_secret_value() if self.refresh_token else None,
            "refresh_expires_at": self.refresh_expires_at,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Tokens:
        """Read :meth:`to_json`'s form (``ValueError`` if it is not)."""
        try:
            refresh = data.get("refresh_token")
            refresh_at = data.get("refresh_expires_at")
            return cls(
                issuer=str(data["issuer"]),
                client_id=str(data["client_id"]),
                access_token=SecretStr(str(data["access_token"])),
                expires_at=float(data["expires_at"]),
                refresh_token=SecretStr(str(refresh)) if refresh else None,
                refresh_expires_at=float(refresh_at) if refresh_at is not None else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a stored sign-in: {exc}") from None


def _key(issuer: str, client_id: str) -> str:
    return f"{issuer.rstrip('/')} {client_id}"


class TokenFile:
    """The credentials file: sign-ins by issuer and client, mode 0600, written atomically."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_token_file()

    def _read_all(self) -> dict[str, Any]:
        try:
            mode = self.path.stat().st_mode
        except FileNotFoundError:
            return {}
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SignInError(
                f"{self.path} can be read by other users (mode {stat.S_IMODE(mode):o}): "
                f"run chmod 600 {self.path}, or lakehouse logout and login again"
            )
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SignInError(f"{self.path} cannot be read ({exc}): run lakehouse login") from None
        if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
            raise SignInError(f"{self.path} is not a lakehouse credentials file")
        logins = data.get("logins")
        return logins if isinstance(logins, dict) else {}

    def _write_all(self, logins: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)  # whatever the umask or an older file said
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump({"format_version": FORMAT_VERSION, "logins": logins}, out, indent=1)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def load(self, issuer: str, client_id: str) -> Tokens | None:
        """The stored sign-in at ``issuer`` for ``client_id``, if any."""
        entry = self._read_all().get(_key(issuer, client_id))
        if entry is None:
            return None
        try:
            return Tokens.from_json(entry)
        except ValueError:
            raise SignInError(f"{self.path}: a damaged entry; run lakehouse login") from None

    def save(self, tokens: Tokens) -> None:
        """Store ``tokens`` (replacing the entry of the same issuer and client)."""
        logins = self._read_all()
        logins[_key(tokens.issuer, tokens.client_id)] = tokens.to_json()
        self._write_all(logins)

    def remove(self, issuer: str, client_id: str) -> Tokens | None:
        """Forget the sign-in at ``issuer`` for ``client_id``; the removed tokens, if any."""
        logins = self._read_all()
        entry = logins.pop(_key(issuer, client_id), None)
        if entry is None:
            return None
        self._write_all(logins)
        try:
            return Tokens.from_json(entry)
        except ValueError:
            return None


class _Issuer:
    """The issuer's endpoints (discovery) and its form-encoded token endpoint answers."""

    def __init__(
        self,
        issuer: str,
        client_id: str,
        *,
        timeout: float,
        transport: httpx.BaseTransport | None,
        clock: Callable[[], float],
    ) -> None:
        """``clock``: wall-clock Unix seconds, for the tokens' expiry times."""
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.clock = clock
        self.http = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False)
        self._document: dict[str, Any] | None = None

    def call(self, what: str, request: Callable[[], httpx.Response]) -> tuple[int, dict[str, Any]]:
        return provider_reply(what, request)

    def endpoint(self, name: str) -> str:
        if self._document is None:
            url = f"{self.issuer}/.well-known/openid-configuration"
            status, document = self.call(
                f"the discovery document {url}", lambda: self.http.get(url)
            )
            if status != 200:
                raise SignInError(f"cannot sign in: {url} answered HTTP {status}")
            self._document = document
        value = self._document.get(name)
        if not isinstance(value, str) or not value:
            raise SignInError(f"cannot sign in: the issuer {self.issuer} names no {name}")
        return value

    def optional_endpoint(self, name: str) -> str | None:
        try:
            return self.endpoint(name)
        except SignInError:
            return None

    def tokens(self, body: dict[str, Any], previous_refresh: SecretStr | None = None) -> Tokens:
        """:class:`Tokens` from a successful token response."""
        access = body.get("access_token")
        if not isinstance(access, str) or not access:
            raise SignInError("cannot sign in: the token endpoint sent no access_token")
        kind = body.get("token_type", "Bearer")
        if not isinstance(kind, str) or kind.lower() != "bearer":
            raise SignInError(f"cannot sign in: the token endpoint sent a {kind!r} token")
        now = self.clock()
        lifetime = body.get("expires_in")
        lifetime = float(lifetime) if isinstance(lifetime, int | float) and lifetime > 0 else 300.0
        refresh = body.get("refresh_token")
        refresh_in = body.get("refresh_expires_in")
        return Tokens(
            issuer=self.issuer,
            client_id=self.client_id,
            access_token=SecretStr(access),
            expires_at=now + lifetime,
            # a refresh response may leave the refresh token out: the old one stays valid
            refresh_token=SecretStr(refresh)
            if isinstance(refresh, str) and refresh
            else previous_refresh,
            # Keycloak says 0 for an offline token: no expiry known
            refresh_expires_at=now + float(refresh_in)
            if isinstance(refresh_in, int | float) and refresh_in > 0
            else None,
        )

    def close(self) -> None:
        self.http.close()


class _SignIn:
    """What a sign-in shows of itself: its issuer and public client (no token, no secret)."""

    _issuer: _Issuer

    @property
    def issuer(self) -> str:
        """The issuer URL (no trailing slash)."""
        return self._issuer.issuer

    @property
    def client_id(self) -> str:
        """The public client that signs in."""
        return self._issuer.client_id

    def __repr__(self) -> str:
        return f"{type(self).__name__}(issuer={self.issuer!r}, client_id={self.client_id!r})"


class DeviceLogin(_SignIn):
    """The device authorization grant (RFC 8628) of a public client at ``issuer``.

    ``transport`` replaces the network (tests); ``sleep`` and ``clock`` (monotonic
    seconds) replace waiting, so that tests run in no time.
    """

    def __init__(
        self,
        issuer: str,
        client_id: str,
        *,
        scope: str | None = "openid",
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._issuer = _Issuer(
            issuer, client_id, timeout=timeout, transport=transport, clock=time.time
        )
        self.scope = scope
        self._sleep = sleep
        self._clock = clock

    def start(self) -> DeviceAuthorization:
        """Ask for a device code and a user code (RFC 8628 section 3.1)."""
        url = self._issuer.endpoint("device_authorization_endpoint")
        form = {"client_id": self.client_id}
        if self.scope:
            form["scope"] = self.scope
        status, body = self._issuer.call(
            f"the device authorization endpoint {url}",
            lambda: self._issuer.http.post(url, data=form),
        )
        if status != 200:
            raise SignInError(_refusal(f"the issuer refused client {self.client_id!r}", body))
        try:
            return DeviceAuthorization(
                device_code=SecretStr(str(body["device_code"])),
                user_code=str(body["user_code"]),
                verification_uri=str(body["verification_uri"]),
                verification_uri_complete=(
                    str(body["verification_uri_complete"])
                    if body.get("verification_uri_complete")
                    else None
                ),
                expires_in=float(body["expires_in"]),
                interval=float(body.get("interval") or DEFAULT_INTERVAL_SECONDS),
            )
        except (KeyError, TypeError, ValueError):
            raise SignInError(f"cannot sign in: {url} answered without a device code") from None

    def wait(self, authorization: DeviceAuthorization) -> Tokens:
        """Poll the token endpoint until the person approved, declined, or the code expired."""
        url = self._issuer.endpoint("token_endpoint")
        form = {
            "grant_type": DEVICE_GRANT,
            "device_code": authorization.device_code.get_secret_value(),
            "client_id": self.client_id,
        }
        interval = max(authorization.interval, 0.0)
        deadline = self._clock() + authorization.expires_in
        while True:
            self._sleep(interval)
            if self._clock() > deadline:
                raise LoginExpiredError("the sign-in code expired before it was approved")
            status, body = self._issuer.call(
                f"the token endpoint {url}", lambda: self._issuer.http.post(url, data=form)
            )
            if status == 200:
                tokens = self._issuer.tokens(body)
                log.debug("signed in at %s as client %s", self.issuer, self.client_id)
                return tokens
            error = body.get("error")
            if error == "authorization_pending":
                continue
            if error == "slow_down":
                interval += SLOW_DOWN_SECONDS
                continue
            if error == "access_denied":
                raise LoginDeniedError("the sign-in was declined at the issuer")
            if error == "expired_token":
                raise LoginExpiredError("the sign-in code expired before it was approved")
            raise SignInError(_refusal("the token endpoint refused the sign-in", body))

    def close(self) -> None:
        """Close the connections to the issuer."""
        self._issuer.close()


def _refusal(what: str, body: dict[str, Any]) -> str:
    error = str(body.get("error") or "no reason given")
    detail = body.get("error_description")
    return f"cannot sign in: {what}: {error}" + (f" ({detail})" if detail else "")


class StoredLogin(_SignIn, RenewingBearerAuth):
    """Bearer tokens of a stored sign-in (``lakehouse login``), renewed with its refresh token.

    Thread-safe; every renewal is written back to the :class:`TokenFile`, so the next
    command starts from the newest tokens.
    """

    def __init__(
        self,
        issuer: str,
        client_id: str,
        *,
        token_file: TokenFile | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._issuer = _Issuer(issuer, client_id, timeout=timeout, transport=transport, clock=clock)
        self.file = token_file or TokenFile()
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: Tokens | None = None

    def _current(self) -> Tokens:
        if self._tokens is None:
            self._tokens = self.file.load(self.issuer, self.client_id)
        if self._tokens is None:
            raise NotLoggedInError(
                f"not signed in at {self.issuer} (client {self.client_id}): run lakehouse login"
            )
        return self._tokens

    def _refresh(self, tokens: Tokens) -> Tokens:
        if tokens.refresh_token is None:
            raise NotLoggedInError(
                "the sign-in expired and has no refresh token: run lakehouse login"
            )
        url = self._issuer.endpoint("token_endpoint")
        form = {
            "grant_type": "refresh_token",
            "refresh_token": tokens.refresh_token.get_secret_value(),
            "client_id": self.client_id,
        }
        status, body = self._issuer.call(
            f"the token endpoint {url}", lambda: self._issuer.http.post(url, data=form)
        )
        if status != 200:
            reason = body.get("error") or f"HTTP {status}"
            raise NotLoggedInError(
                f"the sign-in can no longer be renewed ({reason}): run lakehouse login"
            )
        fresh = self._issuer.tokens(body, previous_refresh=tokens.refresh_token)
        self.file.save(fresh)
        log.debug("renewed the sign-in at %s", self.issuer)
        return fresh

    def token(self) -> SecretStr:
        """An access token valid for a while yet: the stored one, or a renewed one."""
        with self._lock:
            tokens = self._current()
            lifetime_left = tokens.expires_at - self._clock()
            if lifetime_left <= REFRESH_MARGIN_SECONDS:
                # the file may hold newer tokens another command renewed meanwhile
                stored = self.file.load(self.issuer, self.client_id)
                if (
                    stored is not None
                    and stored.expires_at - self._clock() > REFRESH_MARGIN_SECONDS
                ):
                    tokens = stored
                else:
                    tokens = self._refresh(stored or tokens)
                self._tokens = tokens
            return tokens.access_token

    def renew(self, refused: SecretStr) -> SecretStr:
        """A new access token after the server refused ``refused`` (revoked, keys rotated)."""
        with self._lock:
            tokens = self._current()
            if tokens.access_token.get_secret_value() == refused.get_secret_value():
                tokens = self._refresh(tokens)
                self._tokens = tokens
            return tokens.access_token

    def close(self) -> None:
        """Close the connections to the issuer."""
        self._issuer.close()


def logout(
    issuer: str,
    client_id: str,
    *,
    token_file: TokenFile | None = None,
    transport: httpx.BaseTransport | None = None,
    timeout: float = 30.0,
) -> tuple[bool, bool]:
    """Forget the stored sign-in; revoke its refresh token at the issuer when it can (RFC 7009).

    Returns ``(removed, revoked)``: whether a sign-in was stored, and whether the issuer
    confirmed the revocation (the local copy is removed either way).
    """
    tokens = (token_file or TokenFile()).remove(issuer, client_id)
    if tokens is None:
        return False, False
    secret = tokens.refresh_token or tokens.access_token
    hint = "refresh_token" if tokens.refresh_token else "access_token"
    issuer_ = _Issuer(issuer, client_id, timeout=timeout, transport=transport, clock=time.time)
    try:
        url = issuer_.optional_endpoint("revocation_endpoint")
        if url is None:
            return True, False
        form = {"token": secret.get_secret_value(), "token_type_hint": hint, "client_id": client_id}
        try:
            response = issuer_.http.post(url, data=form)
        except httpx.TransportError:
            return True, False
        return True, response.status_code == 200
    except (SignInError, TransientCatalogError):
        return True, False
    finally:
        issuer_.close()


__all__ = [
    "DEVICE_GRANT",
    "DeviceAuthorization",
    "DeviceLogin",
    "LoginDeniedError",
    "LoginExpiredError",
    "NotLoggedInError",
    "StoredLogin",
    "TokenFile",
    "Tokens",
    "default_token_file",
    "logout",
]
