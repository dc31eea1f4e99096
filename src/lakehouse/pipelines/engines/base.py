"""The compute engine interface the pipeline runner uses.

An :class:`Engine` is bound to one branch of the versioned catalog. The runner only
calls these methods, so any engine (DuckDB in-process, Spark in the cluster profile)
runs the same pipelines:

* :meth:`Engine.execute` — run a query (DuckDB's SQL dialect; an engine with another
  dialect translates with sqlglot) over the tables of the branch; small results only
  (check queries);
* :meth:`Engine.read` — read one table of the branch;
* :meth:`Engine.write` — run a model's SELECT and commit its result into the model's
  Iceberg table on the branch, as one catalog commit, according to the model's
  materialization (``full_refresh`` | ``append`` | ``merge``);
* :meth:`Engine.reading` — for incremental models: within the block, the model's
  sources read only their new rows (engines with :attr:`Engine.incremental_reads`; the
  runner reads the sources of the others in full);
* :meth:`Engine.batch` — the audit: within the block, :meth:`Engine.execute` of the
  queries named up front may share work (the DuckDB engine plans them all at one commit
  and runs them in one sandboxed connection); an engine need not do anything.

Engines write through the versioned catalog (a
:class:`~lakehouse.catalog.iceberg.RefCatalog` or the engine's own Nessie catalog
integration), never around it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from types import TracebackType

    import pyarrow as pa

    from lakehouse.pipelines.config import ModelConfig
    from lakehouse.pipelines.incremental import SourceRead
    from lakehouse.session import Lakehouse


@dataclass(frozen=True)
class WriteResult:
    """What writing one model did."""

    #: The table written (``namespace.table``).
    table: str
    #: ``full_refresh`` | ``append`` | ``merge``.
    materialized: str
    #: Rows the model's SELECT returned.
    rows: int
    #: Rows added to the table (new keys for ``merge``).
    inserted: int = 0
    #: Rows replaced by a changed version (``merge``).
    updated: int = 0
    #: Rows removed (all old rows for ``full_refresh``; deleted keys for ``merge``).
    deleted: int = 0
    #: True when the table was created by this write.
    created: bool = False
    #: The table's snapshot after the write (``None``: nothing was committed).
    snapshot_id: int | None = None

    @property
    def committed(self) -> bool:
        """True when the write made a catalog commit."""
        return self.snapshot_id is not None

    def to_json(self) -> dict[str, object]:
        """JSON form."""
        return {
            "table": self.table,
            "materialized": self.materialized,
            "rows": self.rows,
            "inserted": self.inserted,
            "updated": self.updated,
            "deleted": self.deleted,
            "created": self.created,
            "snapshot_id": self.snapshot_id,
        }


class Engine(ABC):
    """Compute for pipeline runs, bound to branch ``ref`` of ``lakehouse``."""

    #: Name used to choose the engine (``duckdb``, ``spark``).
    name: ClassVar[str]
    #: True when :meth:`execute` honours :meth:`reading` (presents a source as some of
    #: its files); otherwise incremental models read their sources in full.
    incremental_reads: ClassVar[bool] = False
    #: The sources :meth:`reading` set (``()``: every table read as it is).
    _reads: tuple[SourceRead, ...] = ()

    def __init__(self, lakehouse: Lakehouse, ref: str) -> None:
        self.lakehouse = lakehouse
        self.ref = ref

    @abstractmethod
    def execute(self, sql: str) -> pa.Table:
        """Run query ``sql`` over the tables of the branch; the result as an Arrow table."""

    @abstractmethod
    def read(self, table: str, *, columns: Sequence[str] | None = None) -> pa.Table:
        """Read table ``table`` (``namespace.table``) of the branch."""

    @abstractmethod
    def write(
        self,
        table: str,
        sql: str,
        config: ModelConfig,
        *,
        properties: Mapping[str, str] | None = None,
    ) -> WriteResult:
        """Run ``sql`` and commit its result into ``table`` as ``config`` says (one commit).

        ``properties`` are recorded on the Iceberg snapshot (run id, model).
        """

    @contextmanager
    def reading(self, reads: Sequence[SourceRead]) -> Iterator[None]:
        """Within the block, queries read each ``incremental`` source of ``reads`` as only
        the rows its appended files hold (see :mod:`lakehouse.pipelines.incremental`).
        """
        previous, self._reads = self._reads, tuple(reads)
        try:
            yield
        finally:
            self._reads = previous

    @contextmanager
    def batch(self, queries: Sequence[str]) -> Iterator[None]:
        """Within the block, :meth:`execute` of any of ``queries`` may share work with the
        others, and every query may read the branch as it was when the block began (the
        runner's audit names its checks' queries here; nothing writes to the branch
        meanwhile, so results are those :meth:`execute` gives outside the block). An error
        of one query is raised by its own :meth:`execute`. Default: nothing shared.
        """
        yield

    def table_exists(self, table: str) -> bool:
        """True when ``table`` exists on the branch."""
        return self.lakehouse.catalog(self.ref).table_exists(table)

    def close(self) -> None:
        """Release the engine's resources."""
        return None

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


__all__ = ["Engine", "WriteResult"]
