"""Ingestion (the role NiFi plays): sources → ``raw`` landing → ``bronze`` Iceberg tables.

::

    import lakehouse
    from lakehouse.ingest import FolderSource, ingest

    with lakehouse.connect() as lh:
        source = FolderSource(name="shop", path="exports/", format="csv", table="bronze.orders")
        [result] = ingest(lh, source, branch="dev")
        print(result.batch_id, result.rows_loaded, result.commit_hash)

Sources: :class:`FolderSource` (CSV, JSON Lines, Parquet files), :class:`HttpSource`
(one URL) and :class:`SqlSource` (a database table or query, full or incremental by a
cursor column); :func:`consume_cdc` applies Debezium change events from Kafka topics
to a silver table through a bronze change log, exactly once
(:mod:`lakehouse.ingest.kafka`); :func:`parse_source` builds one from a ``sources:`` entry of
``pipeline.yaml``. Each batch is landed unchanged under
``raw/<source>/<yyyy>/<mm>/<dd>/<batch_id>/`` with ``_manifest.json``, then appended to
its bronze table with the columns ``_batch_id``, ``_source_file`` and ``_ingested_at``,
exactly once: the batch ids and file checksums live in the bronze snapshot summaries
(see :mod:`lakehouse.ingest.bronze`). Errors are :class:`IngestError` subclasses.
"""

from __future__ import annotations

from lakehouse.ingest.bronze import BATCH_ID as BATCH_ID
from lakehouse.ingest.bronze import INGESTED_AT as INGESTED_AT
from lakehouse.ingest.bronze import INGESTION_COLUMNS as INGESTION_COLUMNS
from lakehouse.ingest.bronze import SOURCE_FILE as SOURCE_FILE
from lakehouse.ingest.bronze import SUMMARY_BATCH_ID as SUMMARY_BATCH_ID
from lakehouse.ingest.bronze import SUMMARY_CURSOR as SUMMARY_CURSOR
from lakehouse.ingest.bronze import SUMMARY_FILES as SUMMARY_FILES
from lakehouse.ingest.bronze import SUMMARY_SOURCE as SUMMARY_SOURCE
from lakehouse.ingest.engine import ProgressCallback as ProgressCallback
from lakehouse.ingest.engine import ingest as ingest
from lakehouse.ingest.errors import BadInputError as BadInputError
from lakehouse.ingest.errors import BatchQuarantinedError as BatchQuarantinedError
from lakehouse.ingest.errors import IngestError as IngestError
from lakehouse.ingest.errors import SourceChangedError as SourceChangedError
from lakehouse.ingest.errors import SourceConfigError as SourceConfigError
from lakehouse.ingest.errors import SourceNotFoundError as SourceNotFoundError
from lakehouse.ingest.errors import SourceUnavailableError as SourceUnavailableError
from lakehouse.ingest.formats import Format as Format
from lakehouse.ingest.formats import FormatOptions as FormatOptions
from lakehouse.ingest.kafka import KafkaCdcSource as KafkaCdcSource
from lakehouse.ingest.kafka import KafkaIngestResult as KafkaIngestResult
from lakehouse.ingest.kafka import consume_cdc as consume_cdc
from lakehouse.ingest.result import IngestResult as IngestResult
from lakehouse.ingest.result import LandedFile as LandedFile
from lakehouse.ingest.result import Quarantine as Quarantine
from lakehouse.ingest.result import SkippedFile as SkippedFile
from lakehouse.ingest.sources import FolderSource as FolderSource
from lakehouse.ingest.sources import HttpSource as HttpSource
from lakehouse.ingest.sources import Source as Source
from lakehouse.ingest.sources import SourceConfig as SourceConfig
from lakehouse.ingest.sources import SqlSource as SqlSource
from lakehouse.ingest.sources import TableMapping as TableMapping
from lakehouse.ingest.sources import parse_source as parse_source
from lakehouse.ingest.sources.base import SchemaPolicy as SchemaPolicy

__all__ = [
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
