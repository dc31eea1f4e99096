"""Errors of row-level table writes (upserts, deletes), rooted at :class:`RowLevelWriteError`.

The subtree::

    LakehouseError
    └── RowLevelWriteError               a row-level write was refused; nothing was committed
        ├── UpsertKeyError (ValueError)  missing, NULL or duplicate key columns
        └── RowDeltaConflictError        *transient*: the table kept changing under the write
"""

from __future__ import annotations

from lakehouse.errors import LakehouseError


class RowLevelWriteError(LakehouseError):
    """A row-level write (upsert or delete) was refused; nothing was committed."""


class UpsertKeyError(RowLevelWriteError, ValueError):
    """The key columns of an upsert are missing, NULL or not unique in the new rows."""


class RowDeltaConflictError(RowLevelWriteError):
    """Concurrent commits kept invalidating the row delta; retrying later may succeed."""

    transient = True


__all__ = ["RowDeltaConflictError", "RowLevelWriteError", "UpsertKeyError"]
