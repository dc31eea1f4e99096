"""Errors as Nessie reports them: status codes, ``NessieError`` JSON and error codes.

Every error response of the server, including 401, 404 for an unknown path, 413 and
422-style validation failures (reported as 400, as Nessie does), has this body::

    {"status": 409, "reason": "Conflict", "message": "…", "errorCode": "REFERENCE_CONFLICT",
     "serverStackTrace": null, "errorDetails": {"type": "REFERENCE_CONFLICTS", "conflicts": […]}}

``errorDetails`` is only sent to clients declaring ``Nessie-Client-Spec: 2`` or higher
(Nessie's rule). Domain errors map to statuses as Nessie's server maps its own:

=============================  ======  ==========================
error                          status  errorCode
=============================  ======  ==========================
InvalidInputError, read-only   400     BAD_REQUEST
ReferenceNotFoundError         404     REFERENCE_NOT_FOUND
ContentNotFoundError           404     CONTENT_NOT_FOUND
NamespaceNotFoundError         404     NAMESPACE_NOT_FOUND
NamespaceAlreadyExistsError    409     NAMESPACE_ALREADY_EXISTS
NamespaceNotEmptyError         409     NAMESPACE_NOT_EMPTY
ReferenceAlreadyExistsError    409     REFERENCE_ALREADY_EXISTS
ReferenceConflictError         409     REFERENCE_CONFLICT
CommitConflictError (+merge)   409     REFERENCE_CONFLICT
TransientCatalogError          503     SERVICE_UNAVAILABLE
CommitStateUnknownError        503     UNKNOWN (outcome unknown: do not retry blindly)
anything else                  500     UNKNOWN
=============================  ======  ==========================
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from lakehouse.catalog.model import Conflict, ConflictType
from lakehouse.errors import (
    CommitConflictError,
    CommitStateUnknownError,
    ContentNotFoundError,
    InvalidInputError,
    LakehouseError,
    NamespaceAlreadyExistsError,
    NamespaceNotEmptyError,
    NamespaceNotFoundError,
    NotFoundError,
    ReadOnlyReferenceError,
    ReferenceAlreadyExistsError,
    ReferenceConflictError,
    ReferenceNotFoundError,
    TransientCatalogError,
)
from lakehouse.server import wire
from lakehouse.server.authz import AccessDeniedError

log = logging.getLogger(__name__)

CLIENT_SPEC_HEADER = "Nessie-Client-Spec"

#: Nessie's ``ErrorCode`` for plain HTTP failures (unknown path, wrong method …).
_CODE_BY_STATUS = {
    400: "BAD_REQUEST",
    403: "FORBIDDEN",
    413: "BAD_REQUEST",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "BAD_REQUEST",
    429: "TOO_MANY_REQUESTS",
    503: "SERVICE_UNAVAILABLE",
}


def reason(status: int) -> str:
    """The HTTP reason phrase of ``status``."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def client_spec(headers: Mapping[str, str]) -> int:
    """The ``Nessie-Client-Spec`` a client declared (0 when absent or unreadable)."""
    value = headers.get(CLIENT_SPEC_HEADER)
    if not value:
        return 0
    try:
        return int(value.split(".", 1)[0].strip())
    except ValueError:
        return 0


def error_body(
    status: int,
    message: str,
    error_code: str,
    details: Mapping[str, Any] | None = None,
    *,
    spec: int = 0,
) -> dict[str, Any]:
    """Nessie's ``NessieError`` JSON."""
    body: dict[str, Any] = {
        "status": status,
        "reason": reason(status),
        "message": message,
        "errorCode": error_code,
        "serverStackTrace": None,
    }
    if details is not None and spec >= 2:
        body["errorDetails"] = dict(details)
    return body


def error_response(
    request_headers: Mapping[str, str],
    status: int,
    message: str,
    error_code: str | None = None,
    details: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A JSON response carrying a ``NessieError``."""
    code = error_code or _CODE_BY_STATUS.get(status, "UNKNOWN")
    body = error_body(status, message, code, details, spec=client_spec(request_headers))
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def map_error(exc: LakehouseError) -> tuple[int, str, str, dict[str, Any] | None]:
    """``(status, errorCode, message, errorDetails)`` for a domain error."""
    message = str(exc)
    if isinstance(exc, AccessDeniedError):
        return 403, "FORBIDDEN", message, None
    if isinstance(exc, CommitConflictError):
        return 409, "REFERENCE_CONFLICT", message, wire.conflicts_details_json(exc.conflicts)
    if isinstance(exc, ReferenceConflictError):
        # Nessie's wording: its clients and conformance tests match on it
        text = (
            f"named-reference '{exc.ref}' is not at expected hash '{exc.expected}', "
            f"but at '{exc.actual}'"
        )
        conflict = Conflict(None, ConflictType.UNEXPECTED_HASH, text)
        message = text[0].upper() + text[1:] + "."
        return 409, "REFERENCE_CONFLICT", message, wire.conflicts_details_json([conflict])
    if isinstance(exc, ReferenceAlreadyExistsError):
        return 409, "REFERENCE_ALREADY_EXISTS", message, None
    if isinstance(exc, ContentNotFoundError):
        # Nessie's ContentKeyErrorDetails: clients read the missing key from it
        details = None
        if exc.content_key is not None:
            details = {"type": "CONTENT_KEY", "contentKey": wire.key_json(exc.content_key)}
        return 404, "CONTENT_NOT_FOUND", message, details
    if isinstance(
        exc, NamespaceNotFoundError | NamespaceAlreadyExistsError | NamespaceNotEmptyError
    ):
        status, code = (
            (404, "NAMESPACE_NOT_FOUND")
            if isinstance(exc, NamespaceNotFoundError)
            else (409, "NAMESPACE_ALREADY_EXISTS")
            if isinstance(exc, NamespaceAlreadyExistsError)
            else (409, "NAMESPACE_NOT_EMPTY")
        )
        details = {"type": "CONTENT_KEY", "contentKey": wire.key_json(exc.namespace)}
        return status, code, message, details
    if isinstance(exc, ReferenceNotFoundError | NotFoundError):
        return 404, "REFERENCE_NOT_FOUND", message, None
    if isinstance(exc, InvalidInputError | ReadOnlyReferenceError):
        return 400, "BAD_REQUEST", message, None
    if isinstance(exc, CommitStateUnknownError):
        return (
            503,
            "UNKNOWN",
            "The outcome of the operation is unknown: it may or may not have been applied. "
            f"Read the target reference before retrying. Cause: {message}",
            None,
        )
    if isinstance(exc, TransientCatalogError):
        return 503, "SERVICE_UNAVAILABLE", message, None
    return 500, "UNKNOWN", message, None


def validation_message(errors: Sequence[Any]) -> str:
    """One line describing pydantic/FastAPI validation errors, without echoing input."""
    parts: list[str] = []
    for error in errors[:5]:
        loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path")]
        what = error.get("msg", "invalid value")
        if error.get("type") == "json_invalid":
            what = "malformed JSON: " + str(error.get("ctx", {}).get("error", "cannot parse"))
        parts.append(f"{'.'.join(loc)}: {what}" if loc else what)
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "Bad request: " + "; ".join(parts) + more


def install_error_handlers(app: FastAPI, on_conflict: Any = None) -> None:
    """Register the handlers that turn every failure into a ``NessieError``.

    ``on_conflict(request)`` is called for each 409 REFERENCE_CONFLICT (metrics).
    """

    @app.exception_handler(LakehouseError)
    async def _domain(request: Request, exc: LakehouseError) -> JSONResponse:
        status, code, message, details = map_error(exc)
        if status >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, exc, exc_info=exc)
        if code == "REFERENCE_CONFLICT" and on_conflict is not None:
            on_conflict(request)
        return error_response(request.headers, status, message, code, details)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(request.headers, 400, validation_message(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else reason(exc.status_code)
        if exc.status_code == 404 and message == "Not Found":
            message = f"Not Found: no endpoint {request.method} {request.url.path}"
            if request.url.path.startswith("/api/v2/trees/"):
                message += (
                    " (in a path, a reference name containing '/' must be followed by '@', "
                    "e.g. 'feature/x@')"
                )
        return error_response(request.headers, exc.status_code, message, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        message = f"Internal server error ({type(exc).__name__}); see the server log"
        return error_response(request.headers, 500, message, "UNKNOWN")


__all__ = [
    "CLIENT_SPEC_HEADER",
    "client_spec",
    "error_body",
    "error_response",
    "install_error_handlers",
    "map_error",
    "reason",
    "validation_message",
]
