"""Model unit tests: how given rows become tables and how results compare with expect."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakehouse.pipelines import PipelineConfigError, load_pipeline
from lakehouse.pipelines.modeltests import run_model_tests
from tests.pipelines.conftest import write_pipeline

MODEL = """\
SELECT id, CAST(amount AS DECIMAL(10, 2)) AS amount, CAST(day AS DATE) AS day, flag
FROM bronze.events
"""


def results(tmp_path: Path, tests: str) -> list[tuple[str, str]]:
    folder = write_pipeline(
        tmp_path, "p", "name: p\n", {"silver/events.sql": MODEL, "silver/events.test.yaml": tests}
    )
    return [(r.status, r.message) for r in run_model_tests(load_pipeline(folder))]


def test_values_compare_numerically_and_as_text_and_rows_as_a_multiset(tmp_path: Path) -> None:
    tests = """\
        tests:
          - given:
              bronze.events:
                - {id: 2, amount: "1.5", day: "2026-01-02", flag: true}
                - {id: 1, amount: "3", day: "2026-01-01", flag: false}
            expect:
              - {id: 1, amount: 3, day: "2026-01-01", flag: false}
              - {id: 2, amount: 1.50, day: "2026-01-02", flag: true}
        """
    assert results(tmp_path, tests) == [("pass", "2 row(s) as expected")]


def test_ordered_compares_the_order_and_booleans_are_not_numbers(tmp_path: Path) -> None:
    tests = """\
        tests:
          - ordered: true
            given:
              bronze.events:
                - {id: 2, amount: "1", day: "2026-01-02", flag: true}
                - {id: 1, amount: "1", day: "2026-01-01", flag: false}
            expect:
              - {id: 1}
              - {id: 2}
          - given:
              bronze.events: [{id: 1, amount: "1", day: "2026-01-01", flag: true}]
            expect: [{flag: 1}]
        """
    statuses = [status for status, _ in results(tmp_path, tests)]
    assert statuses == ["fail", "fail"]


def test_an_empty_given_table_needs_its_column_types(tmp_path: Path) -> None:
    typed = """\
        tests:
          - given:
              bronze.events:
                columns: {id: INT, amount: VARCHAR, day: VARCHAR, flag: BOOLEAN}
                rows: []
            expect: []
        """
    assert results(tmp_path, typed) == [("pass", "0 row(s) as expected")]
    untyped = """\
        tests:
          - given: {bronze.events: []}
            expect: []
        """
    assert results(tmp_path / "2", untyped) == [
        ("error", "given bronze.events: no rows and no 'columns': the table's columns are unknown")
    ]


def test_a_column_the_result_lacks_fails_naming_it(tmp_path: Path) -> None:
    tests = """\
        tests:
          - given:
              bronze.events: [{id: 1, amount: "1", day: "2026-01-01", flag: true}]
            expect: [{id: 1, total: 1}]
        """
    [(status, message)] = results(tmp_path, tests)
    assert status == "fail"
    assert message.startswith("the result has no column(s) total")


def test_unknown_keys_in_a_test_are_refused_naming_the_file(tmp_path: Path) -> None:
    tests = """\
        tests:
          - given: {bronze.events: [{id: 1}]}
            expected: []
        """
    with pytest.raises(PipelineConfigError, match=r"events.test.yaml: tests\[0\]: unknown key"):
        results(tmp_path, tests)
