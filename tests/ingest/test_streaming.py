"""Ingestion reads files in blocks and writes them as it reads: never a whole file in memory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

import lakehouse
from lakehouse.client import Lakehouse
from lakehouse.errors import LakehouseError
from lakehouse.ingest import FolderSource, ingest

from .conftest import manifests, rows

#: The smallest block ingestion may be configured with (``ingest.block_bytes``).
BLOCK = 1024


@pytest.fixture
def small_blocks(tmp_path: Path) -> Iterator[Lakehouse]:
    """A lakehouse whose ingestion parses CSV files 1 KiB at a time."""
    with lakehouse.connect(tmp_path / "home", create=True, ingest={"block_bytes": BLOCK}) as lh:
        yield lh


def folder(inbox: Path) -> FolderSource:
    return FolderSource.model_validate(
        {"name": "shop", "path": str(inbox), "table": "bronze.orders"}
    )


def orders_csv(n: int, *, late: str | None = None) -> str:
    """``n`` order rows (about 40 bytes each); ``late`` replaces the last row's amount."""
    lines = ["id,customer,amount"]
    lines += [f"{i},customer-{i:06d},{i * 1.5}" for i in range(n)]
    if late is not None:
        lines[-1] = f"{n - 1},customer-{n - 1:06d},{late}"
    return "\n".join(lines) + "\n"


class ReaderSpy:
    """Counts the batches ingestion takes from pyarrow's streaming CSV reader."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.batches: list[int] = []
        self.whole_reads = 0
        open_csv = pacsv.open_csv
        read_csv = pacsv.read_csv
        spy = self

        class Counting:
            def __init__(self, reader: Any) -> None:
                self._reader = reader
                self.schema = reader.schema

            def __iter__(self) -> Iterator[pa.RecordBatch]:
                for batch in self._reader:
                    spy.batches.append(batch.num_rows)
                    yield batch

        def counting_open(*args: Any, **kwargs: Any) -> Counting:
            return Counting(open_csv(*args, **kwargs))

        def counting_read(*args: Any, **kwargs: Any) -> pa.Table:
            spy.whole_reads += 1
            return read_csv(*args, **kwargs)

        monkeypatch.setattr(pacsv, "open_csv", counting_open)
        monkeypatch.setattr(pacsv, "read_csv", counting_read)


def test_a_file_larger_than_a_block_is_read_and_written_block_by_block(
    small_blocks: Lakehouse, inbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = orders_csv(5_000)  # ~170 KiB: ~170 blocks of 1 KiB
    (inbox / "orders.csv").write_text(text)
    spy = ReaderSpy(monkeypatch)

    [result] = ingest(small_blocks, folder(inbox))

    assert spy.whole_reads == 0  # never read_csv: the file is never one Arrow table
    assert len(spy.batches) >= len(text) // BLOCK // 2  # many batches, each a block's rows
    assert max(spy.batches) < 100
    assert result.rows_loaded == 5_000
    assert manifests(small_blocks)[0]["files"][0]["rows"] == 5_000
    assert rows(small_blocks, "bronze.orders")[:2] == [
        (0, "customer-000000", 0.0),
        (1, "customer-000001", 1.5),
    ]
    assert len(rows(small_blocks, "bronze.orders")) == 5_000


def test_the_batch_is_one_snapshot_of_one_data_file_with_bounded_row_groups(
    small_blocks: Lakehouse, inbox: Path
) -> None:
    (inbox / "a.csv").write_text(orders_csv(3_000))
    (inbox / "b.csv").write_text(orders_csv(2_000))

    results = ingest(small_blocks, folder(inbox))

    table = small_blocks.table("bronze.orders")
    assert [r.rows_loaded for r in results] == [5_000]
    assert len(table.snapshots()) == 1
    [task] = list(table.scan().plan_files())
    with table.io.new_input(task.file.file_path).open() as stream:
        parquet = pq.ParquetFile(stream)
        assert parquet.metadata.num_rows == 5_000
        sizes = [parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)]
    assert max(sizes) <= int(table.properties.get("write.parquet.row-group-limit", 1 << 20))


def test_a_late_block_that_does_not_fit_the_first_blocks_types_reads_the_file_whole(
    small_blocks: Lakehouse, inbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the first blocks say "amount" is a double; the last row holds text
    (inbox / "orders.csv").write_text(orders_csv(2_000, late="unknown"))
    spy = ReaderSpy(monkeypatch)

    [result] = ingest(small_blocks, folder(inbox))

    assert spy.whole_reads == 2  # the header again, then the rows (one file at a time)
    assert result.rows_loaded == 2_000
    schema = small_blocks.table("bronze.orders").schema()
    assert str(schema.find_field("amount").field_type) == "string"  # as read_csv infers it
    assert ("1999", "customer-001999", "unknown") in {
        tuple(str(v) for v in row) for row in rows(small_blocks, "bronze.orders")
    }


def test_a_file_that_goes_bad_after_its_first_block_commits_nothing(
    small_blocks: Lakehouse, inbox: Path
) -> None:
    text = orders_csv(2_000) + "1,too,many,columns\n"
    (inbox / "orders.csv").write_text(text)
    commit = small_blocks.store.resolve("main").hash

    with pytest.raises(LakehouseError, match=r"cannot read orders\.csv as csv"):
        ingest(small_blocks, folder(inbox))

    assert small_blocks.store.resolve("main").hash == commit
    assert not list((small_blocks.warehouse.local_path("bronze")).rglob("*.parquet"))
