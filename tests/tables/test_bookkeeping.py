"""What ingestion's snapshot summaries claim, and when two sides' claims cannot both stand."""

from __future__ import annotations

import json

from lakehouse.tables.bookkeeping import (
    SUMMARY_CURSOR,
    SUMMARY_FILES,
    SUMMARY_KAFKA_OFFSETS,
    SUMMARY_SOURCE,
    Claims,
    claims,
    overlap,
)


def batch(*shas: str, source: str = "shop", cursor: str | None = None) -> dict[str, str]:
    props = {SUMMARY_SOURCE: source, SUMMARY_FILES: json.dumps([[f"{s}.csv", s] for s in shas])}
    if cursor is not None:
        props[SUMMARY_CURSOR] = cursor
    return props


def test_claims_collect_files_cursors_and_kafka_partitions() -> None:
    found = claims(
        [
            batch("a", "b"),
            batch("c", source="db", cursor='{"column": "id", "value": 9}'),
            {SUMMARY_KAFKA_OFFSETS: json.dumps({"orders": {"0": 10, "1": 4}})},
            {"unrelated": "x"},
        ]
    )
    assert found == Claims(
        files=frozenset({"a", "b", "c"}),
        cursors=frozenset({"db"}),
        partitions=frozenset({"orders/0", "orders/1"}),
    )


def test_disjoint_claims_stand_together() -> None:
    assert overlap(claims([batch("a")]), claims([batch("b")])) is None
    assert overlap(Claims(), claims([batch("a", cursor="{}")])) is None


def test_overlaps_name_what_both_sides_claimed() -> None:
    assert "loaded the same file (sha256 a" in str(
        overlap(claims([batch("a", "b")]), claims([batch("a")]))
    )
    assert (
        overlap(
            claims([batch("a", source="db", cursor="1")]),
            claims([batch("b", source="db", cursor="2")]),
        )
        == "both sides advanced the cursor of source 'db'"
    )
    kafka = {SUMMARY_KAFKA_OFFSETS: json.dumps({"orders": {"0": 10}})}
    consumed = overlap(claims([kafka]), claims([kafka]))
    assert consumed == "both sides consumed Kafka partition orders/0"
