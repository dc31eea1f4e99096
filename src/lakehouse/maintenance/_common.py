"""What the maintenance operations share: table selection, progress reports, time."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lakehouse.catalog.model import ContentType

if TYPE_CHECKING:
    from lakehouse.session import Lakehouse


@dataclass(frozen=True)
class ProgressEvent:
    """Progress of a long step, for listeners (the CLI draws progress bars from these).

    ``total`` is ``None`` while unknown; ``done == total`` ends the step.
    """

    #: Short name of the step (``compact``, ``mark``, ``sweep`` …).
    step: str
    #: What is being worked on (a table, a reference), for display.
    item: str
    done: int
    total: int | None = None


#: Receives :class:`ProgressEvent` values; must not raise.
ProgressListener = Callable[[ProgressEvent], None]


def _ignore(_: ProgressEvent) -> None:
    return None


def listener(on_progress: ProgressListener | None) -> ProgressListener:
    """``on_progress`` or a listener that ignores everything."""
    return on_progress or _ignore


def utcnow() -> datetime:
    """The current time (UTC, aware)."""
    return datetime.now(UTC)


def matches_table(name: str, patterns: Sequence[str] | None) -> bool:
    """True if table ``name`` is selected by ``patterns``.

    No patterns select every table. A pattern is a table name (``bronze.orders``), a
    namespace selecting everything inside it (``bronze``) or an fnmatch pattern
    (``silver.*_daily``).
    """
    if not patterns:
        return True
    for pattern in patterns:
        if name == pattern or name.startswith(pattern + "."):
            return True
        if fnmatch.fnmatchcase(name, pattern):
            return True
    return False


def select_tables(lh: Lakehouse, ref: str, patterns: Sequence[str] | None) -> list[str]:
    """Names of the Iceberg tables on ``ref`` that ``patterns`` select, sorted."""
    return [
        str(entry.key)
        for entry in lh.tables(ref)
        if entry.type is ContentType.ICEBERG_TABLE and matches_table(str(entry.key), patterns)
    ]


def sample(paths: Iterable[str], n: int) -> list[str]:
    """The first ``n`` of ``paths`` in sorted order (stable reports)."""
    return sorted(paths)[:n] if n > 0 else []


__all__ = [
    "ProgressEvent",
    "ProgressListener",
    "listener",
    "matches_table",
    "sample",
    "select_tables",
    "utcnow",
]
