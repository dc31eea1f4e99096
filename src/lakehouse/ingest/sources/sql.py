"""A table or query of a SQL database (SQLAlchemy): ``type: sql``.

* **Full snapshot** (no ``cursor``): every run extracts the whole table or query. The
  extract is written as Parquet (rows ordered by the primary key when the source is a
  table, so an unchanged table gives the same file) and skipped by checksum when the
  bronze table already holds that exact snapshot.
* **Incremental** (``cursor: updated_at``): a run extracts only rows whose cursor column
  is greater than the largest value loaded so far, which the bronze table's snapshot
  summary records together with the batch. Rows whose cursor is NULL are only picked up
  by the first run; rows added later with a cursor value not greater than the recorded
  one are not picked up (use a column that only grows, such as a sequence or a commit
  timestamp).

Column types come from the database's column types when a table is named, else from
the values. A database that cannot be reached raises
:class:`~lakehouse.ingest.errors.SourceUnavailableError`; a missing table raises
:class:`~lakehouse.ingest.errors.SourceNotFoundError`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import pyarrow as pa
from pydantic import Field, SecretStr, field_validator, model_validator

from lakehouse.config import redact_url
from lakehouse.ingest._fs import resolve
from lakehouse.ingest.errors import (
    IngestError,
    SourceConfigError,
    SourceNotFoundError,
    SourceUnavailableError,
)
from lakehouse.ingest.formats import FormatOptions
from lakehouse.ingest.sources.base import (
    Cursor,
    Discovery,
    Source,
    SourceFile,
    TableState,
    qualify_table,
)

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection


class SqlSource(Source):
    """Rows of a database table or query, loaded into one bronze table."""

    type: Literal["sql"] = "sql"
    skip_loaded_from: ClassVar[Literal["any", "last"]] = "last"
    #: SQLAlchemy URL (``postgresql+psycopg://user:pw@host/db``); a secret.
    url: SecretStr
    #: The bronze table it feeds.
    table: str
    #: The database table to read (``orders`` or ``schema.orders``) …
    source_table: str | None = None
    #: … or a query (a plain ``SELECT``).
    query: str | None = None
    #: Column whose growing values select new rows (incremental loads).
    cursor: str | None = None
    #: Rows fetched from the database at a time.
    batch_size: int = Field(default=10_000, gt=0)

    @field_validator("table")
    @classmethod
    def _qualified(cls, value: str) -> str:
        return qualify_table(value)

    @field_validator("query")
    @classmethod
    def _strip_query(cls, value: str | None) -> str | None:
        if value is None:
            return None
        stripped = value.strip().rstrip(";").strip()
        if not stripped:
            raise ValueError("the query is empty")
        return stripped

    @model_validator(mode="after")
    def _table_or_query(self) -> SqlSource:
        if (self.source_table is None) == (self.query is None):
            raise ValueError("give either 'source_table' or 'query', not both or none")
        return self

    def targets(self) -> list[str]:
        """The one bronze table."""
        return [self.table]

    def describe(self) -> str:
        """The database URL (password masked) and the table or query."""
        what = f"table {self.source_table}" if self.source_table else f"query {self.query}"
        return f"{redact_url(self.url.get_secret_value())} {what}"

    def discover(self, states: Mapping[str, TableState], workdir: Path) -> Discovery:
        """Extract the rows (or the new rows) into a Parquet file in ``workdir``."""
        import sqlalchemy as sa
        from sqlalchemy import exc as sa_exc

        state = states.get(self.table)
        last = self._last_cursor(state)
        where = self.describe()
        try:
            engine = sa.create_engine(self.url.get_secret_value())
        except (sa_exc.ArgumentError, ValueError) as exc:
            raise SourceConfigError(
                f"source '{self.name}': invalid database URL: {_first_line(exc)}", source=self.name
            ) from None
        except ModuleNotFoundError as exc:
            raise SourceConfigError(
                f"source '{self.name}': the database driver is not installed ({exc.name}); "
                "for PostgreSQL install lakehouse[postgres]",
                source=self.name,
            ) from None
        try:
            with engine.connect() as conn:
                table = self._extract(conn, last)
        except sa_exc.NoSuchTableError:
            raise SourceNotFoundError(
                f"source '{self.name}': table {self.source_table} does not exist in "
                f"{redact_url(self.url.get_secret_value())}",
                source=self.name,
                file=where,
            ) from None
        except sa_exc.OperationalError as exc:
            raise SourceUnavailableError(
                f"source '{self.name}' is unavailable: {_first_line(exc.orig or exc)} ({where})",
                source=self.name,
                file=where,
            ) from None
        except sa_exc.DBAPIError as exc:
            raise IngestError(
                f"source '{self.name}': the database refused the extract: "
                f"{_first_line(exc.orig or exc)} ({where})",
                source=self.name,
                file=where,
            ) from None
        except sa_exc.SQLAlchemyError as exc:
            raise IngestError(
                f"source '{self.name}': {_first_line(exc)} ({where})", source=self.name, file=where
            ) from None
        finally:
            engine.dispose()

        if table.num_rows == 0:
            return Discovery()
        cursor: Cursor | None = None
        if self.cursor is not None:
            import pyarrow.compute as pc

            if self.cursor not in table.column_names:
                raise SourceConfigError(
                    f"source '{self.name}': cursor column {self.cursor!r} is not in the "
                    f"extract (columns: {', '.join(table.column_names)})",
                    source=self.name,
                )
            value = pc.max(table.column(self.cursor)).as_py()
            if value is not None:
                cursor = Cursor(self.cursor, value)
                cursor.to_json()  # fails early for values that cannot be a cursor
            elif last is not None:
                cursor = last

        import pyarrow.parquet as pq

        base = (self.source_table or "query").replace("/", "_")
        target = workdir / "sql" / uuid.uuid4().hex / f"{base}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, str(target), compression="zstd")
        return Discovery(
            [
                SourceFile(
                    target.name,
                    where,
                    self.table,
                    "parquet",
                    _PARQUET_OPTIONS,
                    resolve(str(target)),
                    cursor=cursor,
                )
            ]
        )

    def _last_cursor(self, state: TableState | None) -> Cursor | None:
        last = state.cursor if state is not None else None
        if last is None or self.cursor is None:
            return None
        if last.column != self.cursor:
            raise SourceConfigError(
                f"source '{self.name}': {self.table} was loaded incrementally by column "
                f"{last.column!r}; cannot switch the cursor to {self.cursor!r}",
                source=self.name,
            )
        return last

    def _extract(self, conn: Connection, last: Cursor | None) -> pa.Table:
        import sqlalchemy as sa

        declared: dict[str, tuple[pa.DataType | None, bool]] = {}
        statement: sa.Executable
        params: dict[str, Any] = {}
        if self.source_table is not None:
            schema, _, name = self.source_table.rpartition(".")
            reflected = sa.Table(name, sa.MetaData(), autoload_with=conn, schema=schema or None)
            for column in reflected.columns:
                declared[column.name] = (_arrow_type(column.type), bool(column.nullable))
            select = sa.select(reflected)
            if self.cursor is not None:
                if self.cursor not in reflected.c:
                    raise SourceConfigError(
                        f"source '{self.name}': cursor column {self.cursor!r} is not a column "
                        f"of {self.source_table}",
                        source=self.name,
                    )
                column_ = reflected.c[self.cursor]
                if last is not None:
                    select = select.where(column_ > sa.bindparam("cursor", last.value))
                select = select.order_by(column_)
            else:
                select = select.order_by(*reflected.primary_key.columns)
            statement = select
        else:
            assert self.query is not None
            sql = self.query
            if self.cursor is not None:
                quoted = conn.dialect.identifier_preparer.quote(self.cursor)
                sql = f"SELECT * FROM ({self.query}) AS lakehouse_source"
                if last is not None:
                    sql += f" WHERE {quoted} > :cursor"
                    params["cursor"] = last.value
                sql += f" ORDER BY {quoted}"
            statement = sa.text(sql)

        result = conn.execution_options(stream_results=True, yield_per=self.batch_size).execute(
            statement, params
        )
        names = list(result.keys())
        batches = [_record_batch(names, rows, declared) for rows in result.partitions()]
        if not batches:
            return _empty(names, declared)
        schema_ = pa.unify_schemas([b.schema for b in batches], promote_options="permissive")
        return pa.Table.from_batches([_conform(b, schema_) for b in batches], schema=schema_)


_PARQUET_OPTIONS = FormatOptions()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _arrow_type(type_: sa.types.TypeEngine[Any]) -> pa.DataType | None:
    """The Arrow type of a database column type, or ``None`` to infer from the values."""
    import sqlalchemy as sa

    if isinstance(type_, sa.Boolean):
        return pa.bool_()
    if isinstance(type_, sa.BigInteger):
        return pa.int64()
    if isinstance(type_, sa.Integer):
        return pa.int32()
    if isinstance(type_, sa.Float):
        return pa.float64()
    if isinstance(type_, sa.Numeric):
        precision, scale = type_.precision, type_.scale
        if precision is not None and precision <= 38:
            return pa.decimal128(precision, scale or 0)
        return None
    if isinstance(type_, sa.DateTime):
        return pa.timestamp("us", tz="UTC" if type_.timezone else None)
    if isinstance(type_, sa.Date):
        return pa.date32()
    if isinstance(type_, sa.Time):
        return pa.time64("us")
    if isinstance(type_, sa.LargeBinary):
        return pa.binary()
    if isinstance(type_, sa.String | sa.Enum | sa.Uuid | sa.JSON):
        return pa.string()
    return None


def _python(value: Any) -> Any:
    """Database values Arrow does not take as they are: JSON documents, UUIDs, buffers."""
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, memoryview):
        return value.tobytes()
    return value


_PLAIN = (int, float, str, bool, bytes)


def _record_batch(
    names: Sequence[str],
    rows: Sequence[Sequence[Any]],
    declared: Mapping[str, tuple[pa.DataType | None, bool]],
) -> pa.RecordBatch:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    arrays = []
    fields = []
    for name, values in zip(names, columns, strict=True):
        type_, nullable = declared.get(name, (None, True))
        sample = next((v for v in values if v is not None), None)
        if sample is not None and not isinstance(sample, _PLAIN):
            values = tuple(_python(v) for v in values)
        if isinstance(sample, dict | list | uuid.UUID):
            type_ = pa.string()
        array = pa.array(values, type=type_)
        arrays.append(array)
        fields.append(pa.field(name, array.type, nullable=nullable or array.null_count > 0))
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    if batch.schema == schema:
        return batch
    arrays = [batch.column(f.name).cast(f.type) for f in schema]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _empty(
    names: Sequence[str], declared: Mapping[str, tuple[pa.DataType | None, bool]]
) -> pa.Table:
    fields = [pa.field(n, declared.get(n, (None, True))[0] or pa.null()) for n in names]
    return pa.schema(fields).empty_table()


__all__ = ["SqlSource"]
