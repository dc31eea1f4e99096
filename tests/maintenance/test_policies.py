"""maintenance.yaml: parsing, validation, overrides, retention rules."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from lakehouse.catalog.model import ReferenceType
from lakehouse.errors import ConfigError
from lakehouse.maintenance import PolicyError, load_policies, parse_policies
from lakehouse.maintenance.policies import (
    POLICIES_FILE,
    Policies,
    format_duration,
    parse_duration,
)

FULL = """
snapshots:
  keep_last: 5
  max_age: 7d
compaction:
  target_file_size: 256MiB
  min_small_files: 4
  min_small_share: 0.5
overrides:
  bronze:
    snapshots: {max_age: 30d}
    compaction: {min_small_files: 10}
  bronze.orders:
    compaction: {target_file_size: 64MiB}
gc:
  grace_period: 12h
  references:
    - {pattern: main, keep_commits: 100, max_age: P30D}
    - {pattern: "run/*", type: branch, keep_commits: 1}
    - {pattern: "*", type: tag, keep_commits: 1}
branches:
  require_checks: true
  stale_after: 2w
"""


def test_defaults_without_a_file(tmp_path: Path) -> None:
    policies = load_policies(home=tmp_path)
    assert policies == Policies()
    assert policies.snapshots.keep_last == 1
    assert policies.snapshots.max_age == timedelta(days=5)
    assert policies.gc.grace_period == timedelta(days=1)
    assert policies.gc.retention_for("main", ReferenceType.BRANCH).keeps_everything


def test_full_file_and_override_precedence(tmp_path: Path) -> None:
    (tmp_path / POLICIES_FILE).write_text(FULL)
    policies = load_policies(home=tmp_path)
    orders = policies.for_table("bronze.orders")
    assert orders.snapshots.keep_last == 5  # default section
    assert orders.snapshots.max_age == timedelta(days=30)  # namespace override
    assert orders.compaction.min_small_files == 10  # namespace override
    assert orders.compaction.target_file_size == 64 * 1024 * 1024  # table override wins
    assert orders.compaction.min_small_share == 0.5
    other = policies.for_table("silver.x")
    assert other.snapshots.max_age == timedelta(days=7)
    assert other.compaction.target_file_size == 256 * 1024 * 1024
    assert policies.gc.grace_period == timedelta(hours=12)
    assert policies.branches.stale_after == timedelta(weeks=2)


def test_retention_rules_first_match_wins(tmp_path: Path) -> None:
    gc = parse_policies(FULL).gc
    main = gc.retention_for("main", ReferenceType.BRANCH)
    assert (main.keep_commits, main.max_age) == (100, timedelta(days=30))
    assert gc.retention_for("run/p/1", ReferenceType.BRANCH).keep_commits == 1
    assert gc.retention_for("release-1", ReferenceType.TAG).keep_commits == 1
    assert gc.retention_for("dev", ReferenceType.BRANCH).keeps_everything
    assert gc.retention_for("run/x", ReferenceType.TAG).keep_commits == 1  # tag rule
    assert main.describe() == "100 commits + 30d"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("snapshots: {keep_lats: 3}", "unknown key snapshots.keep_lats"),
        ("snapshots: {keep_last: 0}", "snapshots.keep_last"),
        ("gc: {grace_period: -1d}", "gc.grace_period"),
        ("compaction: {target_file_size: lots}", "compaction.target_file_size"),
        ("overrides: {bronze: {compaction: {min_small_files: 1}}}", "min_small_files"),
        ("overrides: {bronze: {snapshot: {}}}", "unknown key overrides.bronze.snapshot"),
        ("- a list", "must hold a mapping"),
        ("snapshots: [unclosed", "not valid YAML"),
    ],
)
def test_invalid_files_are_one_line_errors(text: str, fragment: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policies(text, path="maintenance.yaml")
    message = str(info.value)
    assert fragment in message, message
    assert "\n" not in message and message.startswith("maintenance.yaml: ")
    assert isinstance(info.value, ConfigError)


def test_an_explicit_path_must_exist(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_policies(tmp_path / "nope.yaml")


def test_durations() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("1.5h") == timedelta(minutes=90)
    assert parse_duration("P1D") == "P1D"  # left to pydantic
    for value in (timedelta(days=7), timedelta(hours=12), timedelta(seconds=90), timedelta(0)):
        assert parse_duration(format_duration(value)) == value
    assert Policies().model_dump(mode="json")["snapshots"]["max_age"] == "5d"


def test_with_changes_validates() -> None:
    policies = Policies().with_changes(gc={"grace_period": "2h"})
    assert policies.gc.grace_period == timedelta(hours=2)
    with pytest.raises(PolicyError):
        Policies().with_changes(gc={"grace_period": "soon"})
    with pytest.raises(PolicyError, match="unknown policy section"):
        Policies().with_changes(nope={})
