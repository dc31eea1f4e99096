"""Errors of table maintenance, all under :class:`MaintenanceError`.

The subtree (under ``LakehouseError`` in :mod:`lakehouse.errors`)::

    MaintenanceError
    ├── PolicyError (ConfigError, ValueError)   maintenance.yaml is missing, unreadable or invalid
    ├── ConcurrentChangeError *transient*       a table changed under compaction or expiry; nothing
    │                                           was committed, running again re-plans
    └── GCRefusedError                          garbage collection refused to run (or to go on):
        │                                       nothing more was deleted
        └── IncompleteWalkError                 a live reference's history could not be walked
                                                completely (unreadable metadata, manifest …)

Every message is one line naming the table, reference, file or setting concerned; the
same context is kept as attributes.
"""

from __future__ import annotations

from collections.abc import Sequence

from lakehouse.errors import ConfigError, LakehouseError


class MaintenanceError(LakehouseError):
    """Base of maintenance errors."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


class PolicyError(MaintenanceError, ConfigError, ValueError):
    """The maintenance policies file is missing, unreadable or invalid."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class ConcurrentChangeError(MaintenanceError):
    """A table changed concurrently in a way that conflicts; nothing was committed."""

    transient = True

    def __init__(self, message: str, *, table: str | None = None, ref: str | None = None) -> None:
        self.table = table
        self.ref = ref
        super().__init__(message)


class GCRefusedError(MaintenanceError):
    """Garbage collection refused to (go on) deleting; nothing more was deleted."""


class IncompleteWalkError(GCRefusedError):
    """Files reachable from a live reference could not be read, so what is live is unknown."""

    def __init__(self, errors: Sequence[tuple[str, str]]) -> None:
        #: ``(path, reason)`` of each file that could not be read.
        self.errors = list(errors)
        shown = "; ".join(f"{reason}" for _, reason in self.errors[:3])
        more = f" (and {len(self.errors) - 3} more)" if len(self.errors) > 3 else ""
        super().__init__(
            f"refusing to collect garbage: {len(self.errors)} file(s) reachable from live "
            f"references could not be read, so what is live is unknown: {shown}{more}"
        )


__all__ = [
    "ConcurrentChangeError",
    "GCRefusedError",
    "IncompleteWalkError",
    "MaintenanceError",
    "PolicyError",
]
