"""What the library's domains need of a connected lakehouse: the :class:`Lakehouse` protocol.

Ingestion, pipelines, queries, maintenance and operations take an open lakehouse as their
first argument. They type it with this protocol, not with the concrete
:class:`lakehouse.client.Lakehouse`, so that every import arrow points down:
:mod:`lakehouse.client` is the top of the library (its ``sql`` and ``run`` call into
:mod:`lakehouse.query` and :mod:`lakehouse.pipelines`), and those packages never import it.

The concrete class satisfies the protocol structurally; mypy checks that at every call
site that passes one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from lakehouse.catalog.iceberg import RefCatalog
    from lakehouse.catalog.model import (
        Branch,
        CommitMeta,
        Entry,
        LogEntry,
        MergeResult,
        Reference,
        Tag,
    )
    from lakehouse.catalog.store import RefLike, ResolvedRef, VersionStore
    from lakehouse.config import Settings
    from lakehouse.storage.zones import Warehouse


class Lakehouse(Protocol):
    """A versioned catalog plus the warehouse holding its files, with its settings."""

    @property
    def store(self) -> VersionStore:
        """The versioned catalog."""
        ...

    @property
    def warehouse(self) -> Warehouse:
        """Where table files live."""
        ...

    @property
    def settings(self) -> Settings:
        """The settings this lakehouse was opened with."""
        ...

    @property
    def default_branch(self) -> str:
        """The branch merges target by default."""
        ...

    @property
    def default_ref(self) -> str:
        """The reference reads use when none is given."""
        ...

    def references(self) -> list[Reference]:
        """Every branch and tag, sorted by name."""
        ...

    def branches(self) -> list[Branch]:
        """Every branch, sorted by name."""
        ...

    def tags(self) -> list[Tag]:
        """Every tag, sorted by name."""
        ...

    def resolve(self, ref: RefLike | None = None) -> ResolvedRef:
        """Resolve a reference spec."""
        ...

    def create_branch(self, name: str, from_ref: RefLike | None = None) -> Branch:
        """Create branch ``name`` at ``from_ref``."""
        ...

    def create_tag(self, name: str, ref: RefLike | None = None) -> Tag:
        """Create tag ``name`` at ``ref``."""
        ...

    def delete_branch(self, name: str, expected_hash: str | None = None) -> None:
        """Delete branch ``name``."""
        ...

    def merge(
        self, source: RefLike, into: str | None = None, *, meta: CommitMeta | None = None
    ) -> MergeResult:
        """Merge ``source`` into branch ``into`` as one commit, by content where it commutes."""
        ...

    def log(
        self, ref: RefLike | None = None, limit: int | None = 100, *, operations: bool = False
    ) -> list[LogEntry]:
        """The newest ``limit`` commits of ``ref``, newest first."""
        ...

    def catalog(self, ref: str | None = None) -> RefCatalog:
        """A PyIceberg catalog bound to ``ref``."""
        ...

    def table(self, name: str, ref: str | None = None) -> Table:
        """Load table ``name`` as it is on ``ref``."""
        ...

    def tables(self, ref: RefLike | None = None, *, namespace: str | None = None) -> list[Entry]:
        """Tables and views on ``ref``, sorted by key."""
        ...


__all__ = ["Lakehouse"]
