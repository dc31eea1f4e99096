"""Ingestion records rows, bytes, files and rejects; CDC records its lag."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lakehouse.cli.main import app
from lakehouse.client import Lakehouse
from lakehouse.observability import TEXTFILE_NAME
from tests.ingest.test_kafka import TOPIC, ListSource, envelope, rec, source
from tests.metrics_helpers import fresh_metrics, sample

__all__ = ["fresh_metrics"]
pytestmark = pytest.mark.usefixtures("fresh_metrics")


def test_lakehouse_ingest_writes_loaded_and_quarantined_batches_to_the_textfile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prom = tmp_path / "textfile"
    prom.mkdir()
    monkeypatch.setenv("LAKEHOUSE_METRICS__TEXTFILE_DIR", str(prom))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    first = "id,status\n1,new\n2,paid\n3,new\n"
    (inbox / "a.csv").write_text(first, encoding="utf-8")
    runner = CliRunner()
    ingest = ["ingest", "folder", str(inbox), "-t", "orders", "-s", "shop"]
    assert runner.invoke(app, ["init"]).exit_code == 0
    assert runner.invoke(app, ingest).exit_code == 0

    text = (prom / TEXTFILE_NAME).read_text(encoding="utf-8")
    shop = {"source": "shop", "table": "bronze.orders"}
    assert sample("lakehouse_ingest_rows_total", text, **shop) == 3
    assert sample("lakehouse_ingest_files_total", text, **shop) == 1
    assert sample("lakehouse_ingest_bytes_total", text, **shop) == len(first)

    (inbox / "b.csv").write_text("colour,size\nred,2\n", encoding="utf-8")  # no shared column
    refused = runner.invoke(app, ingest)
    assert refused.exit_code == 1 and "_rejected" in refused.stderr

    text = (prom / TEXTFILE_NAME).read_text(encoding="utf-8")
    assert sample("lakehouse_ingest_quarantined_batches_total", text, **shop) == 1
    assert sample("lakehouse_ingest_rows_total", text, **shop) == 3  # kept from the first run


class LaggingSource(ListSource):
    """Records from a list, with a high watermark ``behind`` records past the last one."""

    def __init__(self, records: list, behind: int) -> None:  # type: ignore[type-arg]
        super().__init__(records)
        self.behind = behind

    def lag(self, offsets: Mapping[str, Mapping[int, int]]) -> dict[tuple[str, int], int]:
        end = max(r.offset for r in self.records) + 1 + self.behind
        return {(t, p): end - o for t, parts in offsets.items() for p, o in parts.items()}


def test_cdc_records_changes_rejects_and_lag(lh: Lakehouse) -> None:
    from lakehouse.ingest.kafka import consume_cdc

    records = [
        rec(0, envelope("c", after={"id": 1, "name": "a", "qty": 1}, lsn=10)),
        rec(1, b"{oops"),
        rec(2, envelope("c", after={"id": 2, "name": "b", "qty": 2}, lsn=12)),
    ]
    before = time.time()
    result = consume_cdc(lh, source(), records=LaggingSource(records, behind=5), idle_timeout=0.1)
    assert (result.changes, result.rejected) == (2, 1)

    kafka = {"source": "kafka", "table": "silver.orders"}
    assert sample("lakehouse_ingest_rows_total", **kafka) == 2
    assert sample("lakehouse_ingest_rejected_records_total", **kafka) == 1
    lag = {"table": "silver.orders", "topic": TOPIC, "partition": "0"}
    assert sample("lakehouse_cdc_lag_records", **lag) == 5
    # the events' ts_ms are from 2023: the lag in seconds is now minus then
    seconds = sample("lakehouse_cdc_lag_seconds", table="silver.orders")
    assert seconds is not None and seconds == pytest.approx(before - 1_700_000_000.012, abs=60)
