"""TPC-H generation, caching and the derived batches (:mod:`lakehouse.tpch`)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from lakehouse import tpch


@pytest.mark.parametrize(
    ("scale_factor", "text"), [(0.1, "0.1"), (1.0, "1"), (0.01, "0.01"), (10, "10"), (0.5, "0.5")]
)
def test_scale_factor_names(scale_factor: float, text: str) -> None:
    assert tpch.format_scale_factor(scale_factor) == text
    assert tpch.dataset_dir(scale_factor, Path("/c")) == Path(f"/c/tpch/sf{text}")


@pytest.mark.parametrize("bad", [0, -1, 0.0000001])
def test_bad_scale_factors_are_refused(bad: float) -> None:
    with pytest.raises(tpch.TpchError):
        tpch.format_scale_factor(bad)


def test_cache_root_follows_lakehouse_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LAKEHOUSE_CACHE", str(tmp_path / "cache"))
    assert tpch.cache_root() == tmp_path / "cache"
    monkeypatch.delenv("LAKEHOUSE_CACHE")
    assert tpch.cache_root() == Path.home() / ".cache" / "lakehouse"


def test_generated_data_is_complete_and_cached(tpch_data: Path) -> None:
    assert tpch.is_complete(tpch_data)
    again = tpch.generate(0.01)
    assert again.path == tpch_data and not again.generated
    for table in tpch.TABLES:
        with tpch.table_files(tpch_data, table)[0].open() as f:
            header = next(csv.reader(f))
        expected = list(tpch.COLUMNS[table])
        if table in tpch.CDC_TABLES:
            expected.append(tpch.OP_COLUMN)
        assert header == expected


def test_a_damaged_cache_is_not_complete(tpch_data: Path, tmp_path: Path) -> None:
    copy = tmp_path / "sf"
    copy.mkdir()
    for file in tpch_data.iterdir():
        (copy / file.name).write_bytes(file.read_bytes())
    assert tpch.is_complete(copy)
    with (copy / "region.csv").open("a") as f:
        f.write("5,EXTRA,x\n")
    assert not tpch.is_complete(copy)  # size differs from the manifest
    (copy / tpch.MANIFEST).unlink()
    assert not tpch.is_complete(copy)


def test_op_column_is_appended_to_every_line(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b'a,b\n1,"x, y"\n2,z')  # no newline at the end
    tpch._append_op_column(path, chunk_bytes=4)  # tiny chunks: lines split across reads
    assert path.read_bytes() == b'a,b,_op\n1,"x, y",I\n2,z,I\n'


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_change_batch_is_deterministic_and_consistent(
    tpch_data: Path, change_batch: tpch.ChangeBatch, tmp_path: Path
) -> None:
    again = tpch.write_change_batch(tpch_data, tmp_path / "again")
    for first, second in zip(change_batch.files, again.files, strict=True):
        assert first.read_bytes() == second.read_bytes()

    orders = _rows(change_batch.path / "orders_changes.csv")
    ops = [r["_op"] for r in orders]
    total = sum(1 for _ in _rows(tpch_data / "orders.csv"))
    assert ops.count("U") == change_batch.updated_orders
    assert 0.005 < change_batch.updated_orders / total < 0.02
    assert 0.002 < change_batch.deleted_orders / total < 0.01
    assert change_batch.inserted_orders > 0
    assert len({r["o_orderkey"] for r in orders}) == len(orders)  # one change per key

    # Deleted orders take their line items along; inserted ones bring theirs.
    lines = _rows(change_batch.path / "lineitem_changes.csv")
    by_op = {op: {r["o_orderkey"] for r in orders if r["_op"] == op} for op in "UDI"}
    assert {r["l_orderkey"] for r in lines if r["_op"] == "D"} == by_op["D"]
    assert {r["l_orderkey"] for r in lines if r["_op"] == "I"} <= by_op["I"]
    assert not any(r["_op"] == "U" for r in lines)
    assert sum(r["_op"] == "D" for r in lines) == change_batch.deleted_lineitems


def test_broken_batch_keeps_every_primary_key(broken_batch: tpch.BrokenBatch) -> None:
    orders = _rows(broken_batch.path / "orders_changes.csv")
    lines = _rows(broken_batch.path / "lineitem_changes.csv")
    assert all(r["o_orderkey"] for r in orders)
    assert all(r["l_orderkey"] and r["l_linenumber"] for r in lines)
    assert sum(r["o_totalprice"].startswith("-") for r in orders) == 5
    assert sum(r["o_custkey"] == "" for r in orders) == 5
    assert sum(r["o_orderstatus"] == "X" for r in orders) == 5
    assert sum(r["l_quantity"].startswith("-") for r in lines) == 5


def test_insert_only_batches_with_different_key_offsets_share_no_new_key(
    tpch_data: Path, change_batch: tpch.ChangeBatch, tmp_path: Path
) -> None:
    late = tpch.write_change_batch(
        tpch_data,
        tmp_path / "late",
        update_fraction=0.0,
        delete_fraction=0.0,
        insert_fraction=0.002,
        salt=7,
        key_offset=1,
    )
    orders = _rows(late.path / "orders_changes.csv")
    assert {r["_op"] for r in orders} == {"I"} and len(orders) == late.inserted_orders > 0
    largest = max(int(r["o_orderkey"]) for r in _rows(tpch_data / "orders.csv"))
    new = {int(r["o_orderkey"]) for r in orders}
    assert min(new) > largest
    inserted = _rows(change_batch.path / "orders_changes.csv")
    assert not new & {int(r["o_orderkey"]) for r in inserted if r["_op"] == "I"}
    lines = _rows(late.path / "lineitem_changes.csv")
    assert {int(r["l_orderkey"]) for r in lines} <= new
    assert len(lines) == late.inserted_lineitems


@pytest.mark.parametrize("offset", [-1, 32])
def test_a_key_offset_outside_a_block_is_refused(
    tpch_data: Path, tmp_path: Path, offset: int
) -> None:
    with pytest.raises(tpch.TpchError, match="key_offset"):
        tpch.write_change_batch(tpch_data, tmp_path, key_offset=offset)
    assert not (tmp_path / "orders_changes.csv").exists()


def test_new_customers_get_new_keys_and_keep_the_columns(tpch_data: Path, tmp_path: Path) -> None:
    batch = tpch.write_new_customers(tpch_data, tmp_path / "customers", fraction=0.01)
    assert batch.file == batch.path / "customer.csv"
    existing = _rows(tpch_data / "customer.csv")
    new = _rows(batch.file)
    assert list(new[0]) == list(existing[0])  # the first load's columns, in order
    assert len(new) == batch.customers and 0.005 < len(new) / len(existing) < 0.02
    largest = max(int(r["c_custkey"]) for r in existing)
    assert sorted(int(r["c_custkey"]) for r in new) == list(
        range(largest + 1, largest + 1 + len(new))
    )
    again = tpch.write_new_customers(tpch_data, tmp_path / "again", fraction=0.01)
    assert again.file.read_bytes() == batch.file.read_bytes()
