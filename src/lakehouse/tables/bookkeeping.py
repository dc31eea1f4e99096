"""Exactly-once bookkeeping in snapshot summaries: its keys, and what a snapshot claims.

Ingestion (:mod:`lakehouse.ingest.bronze`, :mod:`lakehouse.ingest.kafka`) records in the
summary of each snapshot it commits what that snapshot loaded: the batch, the source, the
files (with their sha256), an SQL cursor, the next Kafka offsets. Readers find that state
by walking a table's ancestry. The keys live here, at the bottom, because besides
ingestion a content merge (:mod:`lakehouse.tables.merge`) must read them: it carries the
source's bookkeeping into the merged snapshot, and merges two sides that both ingested
only when their claims are disjoint (:func:`overlap`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

logger = logging.getLogger(__name__)

#: Prefix of every ingestion summary key.
SUMMARY_PREFIX = "lakehouse.ingest."
SUMMARY_BATCH_ID = "lakehouse.ingest.batch-id"
SUMMARY_SOURCE = "lakehouse.ingest.source"
#: JSON ``[[name, sha256], …]`` of the batch's files.
SUMMARY_FILES = "lakehouse.ingest.files"
SUMMARY_MANIFEST = "lakehouse.ingest.manifest"
#: JSON cursor of an incremental SQL source.
SUMMARY_CURSOR = "lakehouse.ingest.cursor"
#: JSON ``{"<topic>": {"<partition>": <next offset>}}``: the next Kafka offsets to read.
SUMMARY_KAFKA_OFFSETS = "lakehouse.ingest.kafka.offsets"
#: Table property every ingestion commit sets, so that two concurrent ingestions into one
#: table conflict instead of both landing (it is a guard, not data).
LAST_BATCH_PROPERTY = "lakehouse.ingest.last-batch-id"


def parse_kafka_offsets(value: str | None) -> dict[str, dict[int, int]]:
    """Parse a :data:`SUMMARY_KAFKA_OFFSETS` value (empty for absent or malformed)."""
    if not value:
        return {}
    try:
        data = json.loads(value)
        return {
            str(topic): {int(p): int(o) for p, o in parts.items()} for topic, parts in data.items()
        }
    except (ValueError, AttributeError, TypeError):
        logger.warning("ignoring a malformed %s value: %r", SUMMARY_KAFKA_OFFSETS, value[:200])
        return {}


@dataclass(frozen=True)
class Claims:
    """What a run of snapshots loaded: state that must not be claimed by two sides."""

    #: sha256 of every file loaded.
    files: frozenset[str] = frozenset()
    #: Sources whose cursor advanced.
    cursors: frozenset[str] = frozenset()
    #: Kafka ``topic/partition`` consumed.
    partitions: frozenset[str] = frozenset()


def claims(summaries: Iterable[Mapping[str, str]]) -> Claims:
    """The files, cursors and Kafka partitions the given snapshot summaries record."""
    files: set[str] = set()
    cursors: set[str] = set()
    partitions: set[str] = set()
    for props in summaries:
        try:
            files.update(sha for _, sha in json.loads(props.get(SUMMARY_FILES) or "[]"))
        except (ValueError, TypeError):
            files.add(f"unreadable {SUMMARY_FILES} of batch {props.get(SUMMARY_BATCH_ID)}")
        if props.get(SUMMARY_CURSOR):
            cursors.add(props.get(SUMMARY_SOURCE) or "")
        for topic, parts in parse_kafka_offsets(props.get(SUMMARY_KAFKA_OFFSETS)).items():
            partitions.update(f"{topic}/{partition}" for partition in parts)
    return Claims(frozenset(files), frozenset(cursors), frozenset(partitions))


def overlap(one: Claims, other: Claims) -> str | None:
    """Why two sides' bookkeeping cannot both stand (``None`` when disjoint)."""
    if both := sorted(one.files & other.files):
        return f"both sides loaded the same file (sha256 {both[0][:12]}…, {len(both)} in all)"
    if both := sorted(one.cursors & other.cursors):
        return f"both sides advanced the cursor of source '{both[0]}'"
    if both := sorted(one.partitions & other.partitions):
        return f"both sides consumed Kafka partition {both[0]}"
    return None


__all__ = [
    "LAST_BATCH_PROPERTY",
    "SUMMARY_BATCH_ID",
    "SUMMARY_CURSOR",
    "SUMMARY_FILES",
    "SUMMARY_KAFKA_OFFSETS",
    "SUMMARY_MANIFEST",
    "SUMMARY_PREFIX",
    "SUMMARY_SOURCE",
    "Claims",
    "claims",
    "overlap",
    "parse_kafka_offsets",
]
