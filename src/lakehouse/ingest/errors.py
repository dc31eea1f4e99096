"""Errors of ingestion, all under :class:`IngestError`.

The subtree (add it under ``LakehouseError`` in :mod:`lakehouse.errors`)::

    IngestError                          ingestion failed; nothing was committed
    ├── SourceConfigError (ConfigError, ValueError)  a source definition is invalid
    ├── SourceNotFoundError (LookupError)  the folder, URL (404) or database table is missing
    ├── SourceUnavailableError           *transient*: the server or database cannot be reached
    ├── SourceChangedError               *transient*: a file changed while it was being ingested
    ├── BadInputError (ValueError)       unreadable, empty, wrongly encoded or malformed input
    └── BatchQuarantinedError            a batch was quarantined (schema incompatible with bronze)

Every message is one line naming the source and, where there is one, the file or URL;
the same context is kept as attributes (``source``, ``file``).
"""

from __future__ import annotations

from lakehouse.errors import ConfigError, LakehouseError


class IngestError(LakehouseError):
    """Ingestion failed; nothing reached the table."""

    def __init__(self, message: str, *, source: str | None = None, file: str | None = None) -> None:
        self.source = source
        self.file = file
        super().__init__(" ".join(message.split()))


class SourceConfigError(IngestError, ConfigError, ValueError):
    """A source definition is invalid (unknown type, missing field, bad option)."""


class SourceNotFoundError(IngestError, LookupError):
    """The source does not exist: a missing folder, an HTTP 404, a missing database table."""


class SourceUnavailableError(IngestError):
    """The source could not be reached (connection refused, timeout, HTTP 5xx); retry later."""

    transient = True


class SourceChangedError(IngestError):
    """A file changed between being checked and being landed; running again picks it up."""

    transient = True


class BadInputError(IngestError, ValueError):
    """A file is unreadable, empty, not in the declared encoding or not in the declared format."""


class BatchQuarantinedError(IngestError):
    """A batch did not fit its bronze table and was set aside under ``raw/_rejected/``."""


__all__ = [
    "BadInputError",
    "BatchQuarantinedError",
    "IngestError",
    "SourceChangedError",
    "SourceConfigError",
    "SourceNotFoundError",
    "SourceUnavailableError",
]
