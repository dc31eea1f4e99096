"""The public surface of `lakehouse.ingest` is deliberate: changing it fails here."""

from __future__ import annotations

import lakehouse.ingest
from lakehouse.errors import LakehouseError


def test_all_is_pinned() -> None:
    assert lakehouse.ingest.__all__ == [
        "BATCH_ID",
        "INGESTED_AT",
        "INGESTION_COLUMNS",
        "SOURCE_FILE",
        "SUMMARY_BATCH_ID",
        "SUMMARY_CURSOR",
        "SUMMARY_FILES",
        "SUMMARY_SOURCE",
        "BadInputError",
        "BatchQuarantinedError",
        "FolderSource",
        "Format",
        "FormatOptions",
        "HttpSource",
        "IngestError",
        "IngestResult",
        "KafkaCdcSource",
        "KafkaIngestResult",
        "LandedFile",
        "ProgressCallback",
        "Quarantine",
        "SchemaPolicy",
        "SkippedFile",
        "Source",
        "SourceChangedError",
        "SourceConfig",
        "SourceConfigError",
        "SourceNotFoundError",
        "SourceUnavailableError",
        "SqlSource",
        "TableMapping",
        "consume_cdc",
        "ingest",
        "parse_source",
    ]


def test_every_exported_member_exists() -> None:
    for name in lakehouse.ingest.__all__:
        assert hasattr(lakehouse.ingest, name), name


def test_ingest_errors_are_lakehouse_errors() -> None:
    from lakehouse.ingest import errors

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), LakehouseError), name
