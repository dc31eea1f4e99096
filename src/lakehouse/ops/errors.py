"""Errors of backup, restore, the integrity check and disaster recovery, under :class:`OpsError`.

The subtree (under ``LakehouseError`` in :mod:`lakehouse.errors`)::

    OpsError
    ├── BackupError                      a backup or restore could not be done
    │   ├── BackupNotFoundError (LookupError)   no backup at that location / with that id
    │   ├── BackupFormatError (ValueError)      not a backup, or a format_version we cannot read
    │   ├── BackupCorruptError           a checksum, size or record does not verify; an object
    │   │                                is missing or truncated (names the object)
    │   ├── SourceIncompleteError        the live lakehouse lacks files its catalog references
    │   └── TargetNotEmptyError          the restore target already holds a catalog or files
    ├── IntegrityError                   the catalog references missing or damaged files
    └── PausedError                      the lakehouse is paused for disaster recovery

Every message is one line naming the object, table, reference or location concerned.
"""

from __future__ import annotations

from lakehouse.errors import OpsError as OpsError
from lakehouse.errors import PausedError as PausedError


class BackupError(OpsError):
    """A backup or restore could not be done; nothing was left half-done."""


class BackupNotFoundError(BackupError, LookupError):
    """No backup (or no complete backup) at the given location."""


class BackupFormatError(BackupError, ValueError):
    """Not a Lakehouse backup, or one written in a format this version cannot read."""


class BackupCorruptError(BackupError):
    """The backup does not verify: a checksum, size or record is wrong, or an object is missing.

    ``objects`` names the offending objects (original URIs or backup paths).
    """

    def __init__(self, message: str, objects: list[str] | None = None) -> None:
        self.objects = list(objects or [])
        super().__init__(message)


class SourceIncompleteError(BackupError):
    """The lakehouse's catalog references files that are missing or damaged."""

    def __init__(self, message: str, files: list[str] | None = None) -> None:
        self.files = list(files or [])
        super().__init__(message)


class TargetNotEmptyError(BackupError):
    """The restore target holds a catalog or files already."""


class IntegrityError(OpsError):
    """The catalog references files that are missing, truncated or unreadable."""


__all__ = [
    "BackupCorruptError",
    "BackupError",
    "BackupFormatError",
    "BackupNotFoundError",
    "IntegrityError",
    "OpsError",
    "PausedError",
    "SourceIncompleteError",
    "TargetNotEmptyError",
]
