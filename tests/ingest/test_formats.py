"""Readers and type normalization."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakehouse.ingest._fs import resolve
from lakehouse.ingest.formats import (
    FormatOptions,
    infer_format,
    normalize,
    parse_type,
    read_file,
    wrong_delimiter,
)


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.csv", "csv"),
        ("a.CSV.gz", "csv"),
        ("a.jsonl", "jsonl"),
        ("a.ndjson", "jsonl"),
        ("a.parquet", "parquet"),
        ("a.tbl", None),
    ],
)
def test_infer_format_from_the_suffix(name: str, fmt: str | None) -> None:
    assert infer_format(name) == fmt


def test_normalize_maps_types_to_what_iceberg_stores() -> None:
    ns = pa.array([dt.datetime(2026, 1, 1, 0, 0, 0, 1)], pa.timestamp("ns", tz="Europe/Paris"))
    table = pa.table(
        {
            "ts": ns,
            "small": pa.array([1], pa.int8()),
            "unsigned": pa.array([2], pa.uint32()),
            "text": pa.array(["a"], pa.large_string()),
            "category": pa.array(["x"]).dictionary_encode(),
        }
    )

    out = normalize(table)

    assert out.schema.types == [
        pa.timestamp("us", tz="UTC"),
        pa.int32(),
        pa.int64(),
        pa.string(),
        pa.string(),
    ]
    assert out.column("category").to_pylist() == ["x"]


def test_unsupported_types_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot be stored"):
        normalize(pa.table({"d": pa.array([1], pa.duration("s"))}))


def test_parse_type_names() -> None:
    assert parse_type("decimal(12, 2)") == pa.decimal128(12, 2)
    assert parse_type("timestamptz") == pa.timestamp("us", tz="UTC")
    assert parse_type("int64") == pa.int64()


def test_gzip_csv_is_read_and_hints_keep_table_types(tmp_path: Path) -> None:
    import gzip

    path = tmp_path / "a.csv.gz"
    path.write_bytes(gzip.compress(b"zip,n\n00042,\n"))

    table = read_file(
        resolve(str(path)),
        "csv",
        FormatOptions(),
        name="a.csv.gz",
        hints={"zip": pa.large_string(), "n": pa.float64()},
    )

    assert table.to_pylist() == [{"zip": "00042", "n": None}]
    assert table.schema.types == [pa.string(), pa.float64()]


def test_parquet_columns_can_be_selected(tmp_path: Path) -> None:
    pq.write_table(pa.table({"a": [1], "b": ["x"]}), tmp_path / "a.parquet")

    table = read_file(
        resolve(str(tmp_path / "a.parquet")),
        "parquet",
        FormatOptions(include_columns=("b",)),
        name="a.parquet",
    )

    assert table.column_names == ["b"]


@pytest.mark.parametrize(
    ("header", "delimiter", "seen"),
    [
        ("id;name;amount", ",", ";"),
        ("id|name", ",", "|"),
        ("id\tname", ",", "\t"),
        ("id,name", ";", ","),
    ],
)
def test_a_single_header_column_holding_another_separator_is_a_wrong_delimiter(
    tmp_path: Path, header: str, delimiter: str, seen: str
) -> None:
    path = tmp_path / "a.csv"
    path.write_text(f"{header}\n1\n")
    options = FormatOptions(delimiter=delimiter)
    data = read_file(resolve(str(path)), "csv", options, name="a.csv")

    reason = wrong_delimiter(data, "csv", options, name="a.csv")

    assert reason is not None and f"delimited by {seen!r}" in reason


@pytest.mark.parametrize(
    ("text", "options"),
    [
        ("id,name\n1,a\n", FormatOptions()),  # several columns: fine
        ("amount\n1\n", FormatOptions()),  # one plain column: fine
        ("a;b\n1\n", FormatOptions(header=False)),  # no header: names say nothing
        ("a;b\n1\n", FormatOptions(column_names=("x",))),  # names given by the source
    ],
)
def test_other_headers_are_not_a_wrong_delimiter(
    tmp_path: Path, text: str, options: FormatOptions
) -> None:
    path = tmp_path / "a.csv"
    path.write_text(text)
    data = read_file(resolve(str(path)), "csv", options, name="a.csv")
    assert wrong_delimiter(data, "csv", options, name="a.csv") is None
