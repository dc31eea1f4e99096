"""Records of batch work: written once, read newest first, never collected as garbage."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakehouse.client import connect
from lakehouse.errors import InvalidInputError
from lakehouse.maintenance import collect_garbage
from lakehouse.maintenance.policies import Policies
from lakehouse.storage.records import RECORDS_FOLDER, Records
from lakehouse.storage.zones import METADATA_BUCKET


def test_records_round_trip_newest_first(_isolate_lakehouse_config: Path) -> None:
    with connect(create=True) as lh:
        records = Records(lh.warehouse, lh.settings.fileio_properties())
        assert records.latest("pipeline-run") == []
        records.write("pipeline-run", "20260101T000000Z-a", {"status": "success"})
        records.write("pipeline-run", "20260102T000000Z-b", {"status": "failed"})
        assert records.ids("pipeline-run") == ["20260102T000000Z-b", "20260101T000000Z-a"]
        assert [r["status"] for r in records.latest("pipeline-run")] == ["failed", "success"]
        assert records.read("pipeline-run", "20260101T000000Z-a") == {"status": "success"}
        assert records.read("pipeline-run", "missing") is None
        assert records.latest("maintenance") == []


def test_a_damaged_record_is_skipped_and_ids_are_checked(_isolate_lakehouse_config: Path) -> None:
    with connect(create=True) as lh:
        records = Records(lh.warehouse, lh.settings.fileio_properties())
        records.write("backup", "20260101T000000Z", {"backup_id": "x"})
        folder = lh.warehouse.local_path(METADATA_BUCKET) / RECORDS_FOLDER / "backup"
        (folder / "20260102T000000Z.json").write_text("{not json")
        assert records.latest("backup") == [{"backup_id": "x"}]
        with pytest.raises(InvalidInputError):
            records.read("backup", "../../etc/passwd")


def test_garbage_collection_keeps_records(_isolate_lakehouse_config: Path) -> None:
    with connect(create=True) as lh:
        records = Records(lh.warehouse, lh.settings.fileio_properties())
        uri = records.write("maintenance", "20260101T000000Z", {"ok": True})
        result = collect_garbage(lh, policies=Policies().with_changes(gc={"grace_period": 0}))
        assert result.candidates.files == 0
        assert result.excluded.files == 1
        assert records.read("maintenance", "20260101T000000Z") == {"ok": True}
        assert uri.endswith("/_records/maintenance/20260101T000000Z.json")
