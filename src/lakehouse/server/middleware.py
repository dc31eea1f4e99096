"""ASGI middleware of the server: reference paths, ``HEAD``, bearer auth, request limits.

Each one answers with a ``NessieError`` body (:mod:`lakehouse.server.errors`) when it
refuses a request, before the request reaches a handler; under ``/iceberg`` the body is
the Iceberg REST spec's error instead (:mod:`lakehouse.server.iceberg_errors`).
"""

from __future__ import annotations

import hmac
import zlib
from collections.abc import Mapping
from contextvars import ContextVar
from urllib.parse import unquote

from pydantic import SecretStr
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lakehouse.server.errors import error_response
from lakehouse.server.iceberg_errors import iceberg_error_response, is_iceberg_path
from lakehouse.server.oidc import (
    AuthenticationError,
    IdentityProviderUnavailableError,
    OidcVerifier,
    Principal,
)

#: The principal of the request being served (set by :class:`OidcAuthMiddleware`).
current_principal: ContextVar[Principal | None] = ContextVar("current_principal", default=None)

TREES_PREFIX = "/api/v2/trees/"
#: API v1 paths whose segments may name a reference (see :class:`RefPathMiddleware`).
V1_REF_PREFIXES = ("/api/v1/trees/", "/api/v1/namespaces/")
#: Nessie's REST API (``HEAD`` is served as ``GET`` there).
API_PREFIX = "/api/"
#: Paths served without a token when auth is on: probes, scraping, the API description.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/redoc"})
#: Prefixes served without a token: the API docs' assets.
OPEN_PREFIXES = ("/docs-static/",)
#: The console's paths: it signs users in itself (session cookie or bearer token).
CONSOLE_PREFIXES = ("/ui/",)
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})
#: Request ``Content-Encoding`` values decoded (Nessie's Java client gzips its bodies).
_ZLIB_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": 0}


class RefPathMiddleware:
    """Let a reference name with an URL-encoded slash (``feature%2Fx``) be routed.

    Nessie matches reference path elements before decoding, so ``feature%2Fx`` is one
    element there. After decoding it would be two, so an encoded-slash reference gets
    the ``@`` that Nessie's syntax already allows after any name (``feature/x@``).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = scope.get("raw_path") if scope["type"] == "http" else None
        if (
            isinstance(raw, bytes)
            and scope["path"].startswith((TREES_PREFIX, *V1_REF_PREFIXES))
            and b"%2f" in raw.lower()
        ):
            scope = dict(scope)
            scope["path"] = _decode_tree_path(raw.split(b"?", 1)[0].decode("latin-1"))
        await self.app(scope, receive, send)


class HeadAsGetMiddleware:
    """Answer ``HEAD`` under ``/api/`` as the ``GET`` of the same path would, without the body.

    Nessie (JAX-RS) serves ``HEAD`` wherever it serves ``GET``, so a ``HEAD`` of a missing
    reference is a 404 there; FastAPI routes only the methods declared (a 405 for
    ``HEAD``). The headers, ``Content-Length`` included, are those of the ``GET``. The
    Iceberg REST routes declare their own ``HEAD`` operations and are left alone.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "HEAD"
            or not scope["path"].startswith(API_PREFIX)
        ):
            await self.app(scope, receive, send)
            return

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return  # the last empty body message below ends the response
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_headers_only)


def _ref_positions(segments: list[str]) -> set[int]:
    """Which segments of a Nessie path name a reference."""
    if segments[2] == "v1":
        # trees/{tree|branch|tag}/<ref>/…, namespaces/namespace/<ref>/<name>, namespaces/<ref>
        if segments[3] == "trees" or segments[4:5] == ["namespace"]:
            return {5}
        return {4}
    positions = {4}  # ['', 'api', 'v2', 'trees', <ref>, ...]
    for j in range(5, len(segments) - 1):
        if segments[j] in ("contents", "entries", "history"):
            break
        if segments[j] == "diff":
            positions.add(j + 1)
            break
    return positions


def _decode_tree_path(raw: str) -> str:
    segments = raw.split("/")
    ref_positions = _ref_positions(segments)
    out: list[str] = []
    for i, segment in enumerate(segments):
        decoded = unquote(segment)
        if i in ref_positions and "%2f" in segment.lower() and "@" not in decoded:
            decoded += "@"
        out.append(decoded)
    return "/".join(out)


class BearerAuthMiddleware:
    """Require ``Authorization: Bearer <token>`` on everything but :data:`OPEN_PATHS`.

    With ``console=True`` the console's paths (``/`` and ``/ui/…``) are left to the
    console, which asks for sign-in itself.
    """

    def __init__(self, app: ASGIApp, token: SecretStr, *, console: bool = False) -> None:
        self.app = app
        self._token = token.get_secret_value().encode("utf-8")
        self._console = console

    def _open(self, path: str) -> bool:
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            return True
        return self._console and (path == "/" or path.startswith(CONSOLE_PREFIXES))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self._open(scope["path"]):
            headers = Headers(scope=scope)
            scheme, _, credentials = headers.get("authorization", "").partition(" ")
            given = credentials.strip().encode("utf-8")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given, self._token):
                response = _refusal_response(
                    scope,
                    headers,
                    401,
                    "Unauthorized: send a valid 'Authorization: Bearer <token>' header",
                    "UNKNOWN",
                    extra_headers={"WWW-Authenticate": 'Bearer realm="lakehouse"'},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class OidcAuthMiddleware:
    """Require an OIDC bearer token (:class:`OidcVerifier`) on everything but :data:`OPEN_PATHS`.

    With ``console=True`` the console's paths (``/`` and ``/ui/…``) are left to the
    console, which signs people in itself (:mod:`lakehouse.console.access`).

    A missing, malformed or invalid token is a 401 with the reason and a
    ``WWW-Authenticate`` header; an identity provider whose keys cannot be fetched (and
    whose cached keys are too old) is a 503. The principal is kept in ``scope["state"]``
    and in :data:`current_principal` for the handlers' authorization checks.
    """

    def __init__(self, app: ASGIApp, verifier: OidcVerifier, *, console: bool = False) -> None:
        self.app = app
        self.verifier = verifier
        self._console = console

    def _open(self, path: str) -> bool:
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            return True
        return self._console and (path == "/" or path.startswith(CONSOLE_PREFIXES))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._open(str(scope["path"])):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        try:
            if scheme.lower() != "bearer" or not credentials.strip():
                raise AuthenticationError("send an 'Authorization: Bearer <token>' header")
            principal = await run_in_threadpool(self.verifier.verify, credentials.strip())
        except AuthenticationError as exc:
            challenge = 'Bearer realm="lakehouse", error="invalid_token"'
            response = _refusal_response(
                scope,
                headers,
                401,
                f"Unauthorized: {exc}",
                "UNKNOWN",
                extra_headers={"WWW-Authenticate": challenge},
            )
            await response(scope, receive, send)
            return
        except IdentityProviderUnavailableError as exc:
            response = _refusal_response(scope, headers, 503, str(exc), "SERVICE_UNAVAILABLE")
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        reset = current_principal.set(principal)
        try:
            await self.app(scope, receive, send)
        finally:
            current_principal.reset(reset)


class RequestLimitMiddleware:
    """Refuse bodies over ``max_bytes`` (413) and non-JSON bodies on the API (415).

    A write to the API without a ``Content-Type`` is read as JSON. A body sent with
    ``Content-Encoding: gzip`` or ``deflate`` (as Nessie's Java client, and so the Nessie
    CLI and Spark's Nessie catalog, send every body) is decompressed; ``max_bytes`` bounds
    both the compressed and the decompressed size. Other encodings are refused (415).
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            status, message = refusal
            await _refusal_response(scope, headers, status, message)(scope, receive, send)
            return
        if _is_api_write(scope) and "content-type" not in headers:
            scope = dict(scope)
            scope["headers"] = [*scope["headers"], (b"content-type", b"application/json")]
        encoding = headers.get("content-encoding", "").strip().lower() or "identity"
        if encoding != "identity":
            # the app sees the decoded body: drop the headers that describe the encoded one
            scope = dict(scope)
            scope["headers"] = [
                (name, value)
                for name, value in scope["headers"]
                if name.lower() not in (b"content-encoding", b"content-length")
            ]
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, self._too_large())
            return message

        app_receive: Receive = limited_receive
        if encoding != "identity":
            app_receive = _decoding_receive(
                limited_receive, _ZLIB_WBITS[encoding], self.max_bytes, self._too_large()
            )
        await self.app(scope, app_receive, send)

    def _too_large(self) -> str:
        return f"Request body too large: the limit is {self.max_bytes} bytes"

    def _refusal(self, scope: Scope, headers: Headers) -> tuple[int, str] | None:
        length_header = headers.get("content-length")
        length: int | None = None
        if length_header is not None:
            try:
                length = int(length_header)
            except ValueError:
                return 400, f"Invalid Content-Length {length_header[:40]!r}"
            if length > self.max_bytes:
                return 413, self._too_large()
        encoding = headers.get("content-encoding", "").strip().lower() or "identity"
        if encoding != "identity" and encoding not in _ZLIB_WBITS:
            return 415, f"Unsupported Content-Encoding {encoding[:40]!r}: send gzip or deflate"
        content_type = headers.get("content-type")
        if _is_api_write(scope) and content_type and length != 0 and not _is_json(content_type):
            return 415, f"Unsupported media type {content_type[:80]!r}: send application/json"
        return None


def _decoding_receive(receive: Receive, wbits: int, max_bytes: int, too_large: str) -> Receive:
    """``receive`` giving the whole body, decompressed, as one message (at most max_bytes)."""
    done = False

    async def decoded_receive() -> Message:
        nonlocal done
        if done:
            return await receive()
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return message
            chunks.append(message.get("body", b""))
            more = bool(message.get("more_body", False))
        done = True
        encoded = b"".join(chunks)
        # wbits 0 reads the zlib header; some clients send raw deflate instead
        candidates = (wbits,) if wbits else (zlib.MAX_WBITS, -zlib.MAX_WBITS)
        for i, bits in enumerate(candidates):
            decompressor = zlib.decompressobj(bits)
            try:
                body = decompressor.decompress(encoded, max_bytes + 1)
            except zlib.error:
                if i + 1 < len(candidates):
                    continue
                raise HTTPException(400, "Invalid compressed request body") from None
            if len(body) > max_bytes or decompressor.unconsumed_tail:
                raise HTTPException(413, too_large)
            if encoded and not decompressor.eof:
                raise HTTPException(400, "Truncated compressed request body")
            return {"type": "http.request", "body": body, "more_body": False}
        raise AssertionError("unreachable")  # pragma: no cover

    return decoded_receive


def _refusal_response(
    scope: Scope,
    headers: Headers,
    status: int,
    message: str,
    error_code: str | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A refusal in the error shape of the API the path belongs to."""
    if is_iceberg_path(str(scope.get("path", ""))):
        return iceberg_error_response(status, message, headers=extra_headers)
    return error_response(headers, status, message, error_code, headers=extra_headers)


def _is_api_write(scope: Scope) -> bool:
    path = str(scope["path"])
    return scope.get("method") in _WRITE_METHODS and (
        path.startswith("/api/") or is_iceberg_path(path)
    )


def _is_json(content_type: str) -> bool:
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime == "application/json" or (
        mime.startswith("application/") and mime.endswith("+json")
    )


__all__ = [
    "OPEN_PATHS",
    "BearerAuthMiddleware",
    "OidcAuthMiddleware",
    "RefPathMiddleware",
    "RequestLimitMiddleware",
    "current_principal",
]
