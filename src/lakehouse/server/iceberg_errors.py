"""Errors as the Iceberg REST catalog spec reports them, for everything under ``/iceberg``.

Every error response under ``/iceberg`` (including 401 from the auth middleware, 413/415
from the request limits, 404/405 for unknown paths and 400 for malformed requests) has
the spec's ``IcebergErrorResponse`` body::

    {"error": {"message": "…", "type": "NoSuchTableException", "code": 404}}

Statuses follow the spec (``open-api/rest-catalog-open-api.yaml``) and PyIceberg's and
the Java client's error handlers:

==============================================  ======  ===============================
error                                           status  type
==============================================  ======  ===============================
malformed body/parameter, read-only reference   400     BadRequestException
pyiceberg ``ValidationException``               400     ValidationException
location outside the warehouse                  403     ForbiddenException
refused by the authorization rules              403     ForbiddenException
no such table / namespace / view                404     NoSuchTableException …
no such reference, metadata file not found      404     NotFoundException
table / namespace exists                        409     AlreadyExistsException
namespace not empty                             409     NamespaceNotEmptyException
requirement failed, lost race (nothing landed)  409     CommitFailedException
unsupported update or operation                 406     UnsupportedOperationException
property both set and removed                   422     UnprocessableEntityException
commit outcome unknown                          500     CommitStateUnknownException
catalog busy/unreachable (nothing landed)       503     ServiceUnavailableException
anything else                                   500     (on a commit endpoint:
                                                        CommitStateUnknownException)
==============================================  ======  ===============================

A 500 on a commit endpoint means "the commit may or may not have landed": clients
(PyIceberg, the Java client) then raise ``CommitStateUnknownException`` and must not
delete the files they wrote; a 409 or 503 guarantees that nothing was committed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError as PydanticValidationError
from pyiceberg import exceptions as ice
from starlette.exceptions import HTTPException as StarletteHTTPException

from lakehouse.errors import (
    CommitConflictError,
    CommitStateUnknownError,
    ContentNotFoundError,
    InvalidInputError,
    LocationNotAllowedError,
    ReadOnlyReferenceError,
    ReferenceConflictError,
    ReferenceNotFoundError,
    TransientCatalogError,
)
from lakehouse.server.authz import AccessDeniedError
from lakehouse.server.errors import validation_message

log = logging.getLogger(__name__)

#: Paths served by the Iceberg REST catalog.
ICEBERG_ROOT = "/iceberg"

#: The ``type`` of errors that have no more specific one.
_TYPE_BY_STATUS: Mapping[int, str] = {
    400: "BadRequestException",
    401: "NotAuthorizedException",
    403: "ForbiddenException",
    404: "NotFoundException",
    405: "BadRequestException",
    406: "UnsupportedOperationException",
    409: "AlreadyExistsException",
    413: "BadRequestException",
    415: "BadRequestException",
    422: "UnprocessableEntityException",
    500: "InternalServerError",
    503: "ServiceUnavailableException",
}

_UNKNOWN_OUTCOME = (
    "the outcome of the commit is unknown: it may or may not have been applied; "
    "reload the table(s) before retrying and do not delete files written for it"
)


class IcebergRestError(Exception):
    """A request the Iceberg REST layer refuses by itself (bad prefix, bad body …)."""

    def __init__(self, status: int, message: str, type_: str | None = None) -> None:
        self.status = status
        self.type = type_ or _TYPE_BY_STATUS.get(status, "RESTException")
        self.message = message
        super().__init__(message)


def is_iceberg_path(path: str) -> bool:
    """True for paths served by the Iceberg REST catalog."""
    return path == ICEBERG_ROOT or path.startswith(ICEBERG_ROOT + "/")


def iceberg_error_body(status: int, message: str, type_: str | None = None) -> dict[str, Any]:
    """The spec's ``IcebergErrorResponse``."""
    return {
        "error": {
            "message": message,
            "type": type_ or _TYPE_BY_STATUS.get(status, "RESTException"),
            "code": status,
        }
    }


def iceberg_error_response(
    status: int,
    message: str,
    type_: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A JSON response carrying an ``IcebergErrorResponse``."""
    return JSONResponse(
        iceberg_error_body(status, message, type_),
        status_code=status,
        headers=dict(headers or {}),
    )


def map_exception(exc: BaseException, *, commit: bool = False) -> tuple[int, str, str]:
    """``(status, type, message)`` for an exception raised while serving a request.

    ``commit`` marks the commit endpoints, where an unexpected failure leaves the
    outcome unknown (500 ``CommitStateUnknownException``).
    """
    if isinstance(exc, IcebergRestError):
        return exc.status, exc.type, exc.message
    if isinstance(exc, StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else "HTTP error"
        return exc.status_code, _TYPE_BY_STATUS.get(exc.status_code, "RESTException"), message
    if isinstance(exc, RequestValidationError):
        return 400, "BadRequestException", validation_message(exc.errors())
    if isinstance(exc, PydanticValidationError):
        errors = exc.errors(include_url=False, include_input=False)
        return 400, "BadRequestException", validation_message(errors)
    if isinstance(exc, ice.CommitStateUnknownException | CommitStateUnknownError):
        return 500, "CommitStateUnknownException", f"{_UNKNOWN_OUTCOME} ({exc})"
    if isinstance(exc, ice.CommitFailedException | CommitConflictError | ReferenceConflictError):
        return 409, "CommitFailedException", str(exc)
    if isinstance(exc, ice.NoSuchTableError | ice.NoSuchIdentifierError):
        return 404, "NoSuchTableException", str(exc)
    if isinstance(exc, ice.NoSuchNamespaceError):
        return 404, "NoSuchNamespaceException", str(exc)
    if isinstance(exc, ice.NoSuchViewError):
        return 404, "NoSuchViewException", str(exc)
    if isinstance(exc, ReferenceNotFoundError | ContentNotFoundError):
        return 404, "NotFoundException", str(exc)
    if isinstance(
        exc,
        ice.TableAlreadyExistsError | ice.NamespaceAlreadyExistsError | ice.ViewAlreadyExistsError,
    ):
        return 409, "AlreadyExistsException", str(exc)
    if isinstance(exc, ice.NamespaceNotEmptyError):
        return 409, "NamespaceNotEmptyException", str(exc)
    if isinstance(exc, AccessDeniedError | LocationNotAllowedError):
        return 403, "ForbiddenException", str(exc)
    if isinstance(exc, ReadOnlyReferenceError):
        return (
            400,
            "BadRequestException",
            f"{exc}; the prefix names the reference: write through a branch "
            "(a tag, 'name@hash' or a relative spec is read-only)",
        )
    if isinstance(exc, TransientCatalogError):
        return 503, "ServiceUnavailableException", f"{exc}; nothing was committed, retry later"
    if isinstance(exc, FileNotFoundError):
        return 404, "NotFoundException", f"file not found: {exc.filename or exc}"
    if isinstance(exc, IsADirectoryError | NotADirectoryError):
        return 400, "BadRequestException", f"not a file: {exc.filename or exc}"
    if isinstance(exc, ice.ValidationException):
        return 400, "ValidationException", str(exc)
    if isinstance(exc, NotImplementedError):
        return 406, "UnsupportedOperationException", str(exc) or "unsupported operation"
    if isinstance(exc, InvalidInputError | ValueError | ice.ValidationError | ice.ResolveError):
        return 400, "BadRequestException", str(exc) or type(exc).__name__
    if commit:
        return 500, "CommitStateUnknownException", f"{_UNKNOWN_OUTCOME} (internal error: {exc})"
    return (
        500,
        "InternalServerError",
        f"Internal server error ({type(exc).__name__}); see the server log",
    )


__all__ = [
    "ICEBERG_ROOT",
    "IcebergRestError",
    "iceberg_error_body",
    "iceberg_error_response",
    "is_iceberg_path",
    "map_exception",
]
