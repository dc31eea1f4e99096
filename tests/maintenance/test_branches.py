"""Branch policies: approval, merging approved branches, reporting the rest."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lakehouse.catalog.model import CommitMeta, ContentKey, Unchanged
from lakehouse.client import Lakehouse
from lakehouse.errors import ReadOnlyReferenceError
from lakehouse.maintenance import MaintenanceError, approve_branch, merge_approved_branches
from lakehouse.maintenance._common import utcnow
from lakehouse.maintenance.branches import APPROVED, APPROVED_HASH, MERGED_BRANCH
from lakehouse.maintenance.policies import Policies

from .conftest import batch, make_table, rows


@pytest.fixture
def feature(lh: Lakehouse) -> str:
    """main with a table; branch `feature` that appended to it."""
    make_table(lh, "bronze.orders", 2)
    lh.create_branch("feature", "main")
    lh.branch("feature").table("bronze.orders").append(batch(500, 5, "f"))
    return "feature"


def _record_run(lh: Lakehouse, branch: str, status: str) -> None:
    meta = CommitMeta(message=f"run: {status}", properties={"lakehouse.run.status": status})
    lh.store.commit(branch, [Unchanged(ContentKey.parse("bronze.orders"))], meta)


def _state(lh: Lakehouse, branch: str, policies: Policies | None = None) -> str:
    result = merge_approved_branches(lh, policies=policies or Policies(), dry_run=True)
    return {b.branch: b.state for b in result.branches}[branch]


def test_an_approved_branch_is_merged(lh: Lakehouse, feature: str) -> None:
    expected = rows(lh.table("bronze.orders", feature))
    approval = approve_branch(lh, feature)
    head = lh.store.get_reference(feature).hash
    assert head == approval.commit
    meta = lh.log(feature, 1)[0].meta
    assert meta.properties[APPROVED] == "true"
    assert meta.properties[APPROVED_HASH] == approval.approved_hash
    assert _state(lh, feature) == "would-merge"

    result = merge_approved_branches(lh, policies=Policies())
    (outcome,) = result.merged
    assert outcome.state == "merged" and outcome.merge_commit is not None
    assert rows(lh.table("bronze.orders")) == expected
    assert lh.log("main", 1)[0].meta.properties[MERGED_BRANCH] == feature
    # merged once: the next run finds nothing to do
    assert _state(lh, feature) == "up-to-date"


def test_unapproved_and_stale_approvals_are_not_merged(lh: Lakehouse, feature: str) -> None:
    main_before = lh.resolve("main").hash
    assert _state(lh, feature) == "not-approved"
    approve_branch(lh, feature)
    lh.branch(feature).table("bronze.orders").append(batch(900, 1))
    assert _state(lh, feature) == "stale-approval"
    merge_approved_branches(lh, policies=Policies())
    assert lh.resolve("main").hash == main_before
    approve_branch(lh, feature)
    assert _state(lh, feature) == "would-merge"


def test_failed_checks_block_and_required_checks_must_exist(lh: Lakehouse, feature: str) -> None:
    strict = Policies().with_changes(branches={"require_checks": True})
    approve_branch(lh, feature)
    assert _state(lh, feature, strict) == "no-checks"
    _record_run(lh, feature, "failed")
    approve_branch(lh, feature)
    assert _state(lh, feature) == "checks-failed"
    _record_run(lh, feature, "success")
    approve_branch(lh, feature)
    assert _state(lh, feature, strict) == "would-merge"


def test_conflicting_branches_are_reported_never_forced(lh: Lakehouse, feature: str) -> None:
    lh.table("bronze.orders").append(batch(700, 1))  # main changed the same table
    main_before = lh.resolve("main").hash
    approve_branch(lh, feature)
    result = merge_approved_branches(lh, policies=Policies())
    (outcome,) = result.problems
    assert outcome.state == "conflict" and "bronze.orders" in outcome.detail
    assert lh.resolve("main").hash == main_before


def test_stale_branches_are_reported(lh: Lakehouse, feature: str) -> None:
    approve_branch(lh, feature)
    later = utcnow() + timedelta(days=31)
    result = merge_approved_branches(lh, policies=Policies(), dry_run=True, now=later)
    assert [b.state for b in result.branches] == ["stale"]
    keep = Policies().with_changes(branches={"stale_after": None})
    result = merge_approved_branches(lh, policies=keep, dry_run=True, now=later)
    assert [b.state for b in result.branches] == ["would-merge"]


def test_policy_patterns_and_deletion_after_merge(lh: Lakehouse, feature: str) -> None:
    approve_branch(lh, feature)
    excluded = Policies().with_changes(branches={"exclude": ["feat*"]})
    assert merge_approved_branches(lh, policies=excluded).branches == ()
    deleting = Policies().with_changes(branches={"delete_after_merge": True})
    merge_approved_branches(lh, policies=deleting)
    assert feature not in {b.name for b in lh.branches()}


def test_approval_refuses_tags_main_and_empty_branches(lh: Lakehouse, feature: str) -> None:
    lh.create_tag("t", "main")
    with pytest.raises(ReadOnlyReferenceError):
        approve_branch(lh, "t")
    with pytest.raises(MaintenanceError, match="default branch"):
        approve_branch(lh, "main")
    root = lh.log("main", None)[-1].meta.parent_hashes[0]  # the empty catalog
    lh.create_branch("empty", "@" + root)
    with pytest.raises(MaintenanceError, match="nothing to approve"):
        approve_branch(lh, "empty")
