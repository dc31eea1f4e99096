"""SQL sources against a real PostgreSQL (scripts/services/postgres.sh)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal

import pytest
import sqlalchemy as sa

from lakehouse.client import Lakehouse
from lakehouse.ingest import (
    IngestError,
    SourceConfigError,
    SourceNotFoundError,
    SourceUnavailableError,
    SqlSource,
    ingest,
)
from lakehouse.ingest.bronze import SUMMARY_CURSOR

from .conftest import manifests, rows

pytestmark = pytest.mark.integration

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def db(fresh_postgres_url: str) -> Iterator[sa.Engine]:
    """A scratch database with a table ``shop.orders`` of three rows."""
    engine = sa.create_engine(fresh_postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA shop"))
        conn.execute(
            sa.text(
                "CREATE TABLE shop.orders (id bigint PRIMARY KEY, customer text NOT NULL, "
                "amount numeric(10, 2), tags jsonb, updated_at timestamptz NOT NULL)"
            )
        )
        insert(conn, (1, "alice", "10.50", T0), (2, "bob", "20.00", T0), (3, "carol", None, T0))
    try:
        yield engine
    finally:
        engine.dispose()


def insert(conn: sa.Connection, *values: tuple[int, str, str | None, dt.datetime]) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO shop.orders VALUES (:id, :customer, :amount, "
            "CAST(:tags AS jsonb), :updated_at)"
        ),
        [
            {"id": i, "customer": c, "amount": a, "tags": json.dumps({"n": i}), "updated_at": t}
            for i, c, a, t in values
        ],
    )


def source(db: sa.Engine, **kwargs: object) -> SqlSource:
    fields: dict[str, object] = {
        "name": "shopdb",
        "url": db.url.render_as_string(hide_password=False),
        "table": "bronze.orders",
        "source_table": "shop.orders",
    }
    fields.update(kwargs)
    return SqlSource.model_validate(fields)


def test_full_snapshot_loads_every_row_with_database_types(lh: Lakehouse, db: sa.Engine) -> None:
    [result] = ingest(lh, source(db))

    assert result.rows_loaded == 3
    assert [f.name for f in result.landed] == ["shop.orders.parquet"]
    table = lh.table("bronze.orders")
    types = {f.name: str(f.field_type) for f in table.schema().fields}
    assert types["id"] == "long" and types["amount"] == "decimal(10, 2)"
    assert types["updated_at"] == "timestamptz" and types["tags"] == "string"
    assert table.schema().find_field("customer").required
    assert rows(lh, "bronze.orders", "main", "id", "customer", "amount") == [
        (1, "alice", Decimal("10.50")),
        (2, "bob", Decimal("20.00")),
        (3, "carol", None),
    ]
    original = manifests(lh)[0]["files"][0]["original"]
    assert original.endswith("table shop.orders")
    assert "lakehouse:***@127.0.0.1" in original
    assert "lakehouse:lakehouse@" not in json.dumps(manifests(lh))


def test_an_unchanged_full_snapshot_loads_nothing_and_a_changed_one_loads_again(
    lh: Lakehouse, db: sa.Engine
) -> None:
    ingest(lh, source(db))

    [same] = ingest(lh, source(db))
    with db.begin() as conn:
        insert(conn, (4, "dave", "1.00", T0))
    [changed] = ingest(lh, source(db))

    assert same.batch_id is None and same.skipped[0].reason == "already loaded"
    assert changed.rows_loaded == 4  # a full snapshot: every row again, as a new batch
    data = lh.table("bronze.orders").scan().to_arrow()
    assert data.num_rows == 7
    assert len(set(data.column("_batch_id").to_pylist())) == 2


def test_incremental_load_by_cursor_loads_only_new_rows(lh: Lakehouse, db: sa.Engine) -> None:
    incremental = source(db, cursor="updated_at")
    [first] = ingest(lh, incremental)
    assert first.rows_loaded == 3
    assert first.cursor is not None and json.loads(first.cursor)["column"] == "updated_at"

    [nothing] = ingest(lh, incremental)
    with db.begin() as conn:
        insert(conn, (4, "dave", "1.00", T0 + dt.timedelta(hours=1)))
        conn.execute(
            sa.text("UPDATE shop.orders SET amount = 99, updated_at = :t WHERE id = 1"),
            {"t": T0 + dt.timedelta(hours=2)},
        )
    [second] = ingest(lh, incremental)

    assert nothing.batch_id is None and nothing.rows_loaded == 0
    assert second.rows_loaded == 2
    assert rows(lh, "bronze.orders", "main", "id", "amount") == [
        (1, Decimal("10.50")),
        (1, Decimal("99.00")),
        (2, Decimal("20.00")),
        (3, None),
        (4, Decimal("1.00")),
    ]
    snapshot = lh.table("bronze.orders").current_snapshot()
    assert snapshot is not None and snapshot.summary is not None
    cursor = json.loads(snapshot.summary[SUMMARY_CURSOR] or "")
    assert cursor["type"] == "datetime"
    assert dt.datetime.fromisoformat(cursor["value"]) == T0 + dt.timedelta(hours=2)


def test_incremental_query_source(lh: Lakehouse, db: sa.Engine) -> None:
    query = "SELECT id, customer FROM shop.orders WHERE customer <> 'bob'"
    incremental = source(db, source_table=None, query=query, cursor="id")

    [first] = ingest(lh, incremental)
    with db.begin() as conn:
        insert(conn, (4, "dave", "1.00", T0))
    [second] = ingest(lh, incremental)

    assert (first.rows_loaded, second.rows_loaded) == (2, 1)
    assert rows(lh, "bronze.orders") == [(1, "alice"), (3, "carol"), (4, "dave")]
    assert json.loads(second.cursor or "") == {"column": "id", "type": "int", "value": 4}


def test_the_cursor_column_cannot_change(lh: Lakehouse, db: sa.Engine) -> None:
    ingest(lh, source(db, cursor="updated_at"))

    with pytest.raises(SourceConfigError, match="cannot switch the cursor to 'id'"):
        ingest(lh, source(db, cursor="id"))


def test_a_missing_table_is_not_found(lh: Lakehouse, db: sa.Engine) -> None:
    with pytest.raises(SourceNotFoundError, match=r"table shop\.nope does not exist"):
        ingest(lh, source(db, source_table="shop.nope"))


def test_a_bad_query_is_a_one_line_error(lh: Lakehouse, db: sa.Engine) -> None:
    with pytest.raises(IngestError, match="the database refused the extract") as caught:
        ingest(lh, source(db, source_table=None, query="SELECT nope FROM shop.orders"))
    assert "\n" not in str(caught.value)
    assert lh.tables() == []


def test_a_database_that_is_down_is_unavailable_and_the_password_is_hidden(
    lh: Lakehouse,
) -> None:
    down = SqlSource(
        name="shopdb",
        url="postgresql+psycopg://lakehouse:s3cret@127.0.0.1:9/nowhere?connect_timeout=2",
        table="orders",
        source_table="orders",
    )

    with pytest.raises(SourceUnavailableError) as caught:
        ingest(lh, down)

    assert "s3cret" not in str(caught.value) and ":***@" in str(caught.value)
    assert "s3cret" not in repr(down)
