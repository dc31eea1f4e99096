"""Branch policies: approve a branch, and merge the approved ones whose checks passed.

**Approval** (:func:`approve_branch`, ``lakehouse branch approve NAME``) is a commit on the
branch that changes no content — one ``Unchanged`` operation, the same marker commit the
pipeline runner uses to record a run — whose properties say who approved which head::

    lakehouse.approved       = "true"
    lakehouse.approved.hash  = <the head that was approved>
    lakehouse.approved.by    = <author>

An approval covers exactly the commit it names: if anything is committed to the branch
after it, the approval is stale and the branch is not merged until approved again.

**Merging** (:func:`merge_approved_branches`, part of ``lakehouse maintenance run``): every
branch the :class:`~lakehouse.maintenance.policies.BranchPolicy` considers is classified

* ``not-approved`` — no approval, or ``stale-approval`` — commits landed after it;
* ``checks-failed`` — the newest pipeline run recorded on the branch since it forked
  (commit property ``lakehouse.run.status``) did not pass, or ``no-checks`` — no run
  recorded and the policy requires one;
* ``stale`` — its last change is older than ``stale_after``; ``up-to-date`` — nothing to
  merge;
* ``conflict`` — a dry-run merge found keys changed on both sides;
* otherwise it is merged (``merged``; ``would-merge`` on a dry run): the approved hash
  (``branch@hash``, never a newer head) is merged into the target in one merge commit.

Nothing is ever forced: conflicting and stale branches are only reported.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from lakehouse.catalog.model import CommitMeta, LogEntry, Unchanged
from lakehouse.control import ensure_not_paused
from lakehouse.errors import MergeConflictError, ReferenceConflictError
from lakehouse.maintenance._common import ProgressEvent, ProgressListener, listener, utcnow
from lakehouse.maintenance.errors import MaintenanceError
from lakehouse.maintenance.policies import BranchPolicy, Policies

if TYPE_CHECKING:
    from lakehouse.session import Lakehouse

logger = logging.getLogger(__name__)

#: Commit properties of an approval.
APPROVED = "lakehouse.approved"
APPROVED_HASH = "lakehouse.approved.hash"
APPROVED_BY = "lakehouse.approved.by"
#: Commit property of a pipeline run's outcome (see :mod:`lakehouse.pipelines.runner`).
RUN_STATUS = "lakehouse.run.status"
#: Run statuses that count as passed checks.
PASSED = frozenset({"success", "passed"})
#: Commit properties of a merge made by maintenance.
MERGED_BRANCH = "lakehouse.maintenance.merged-branch"
MERGED_HASH = "lakehouse.maintenance.merged-hash"

#: How many commits below the head are searched for an older (stale) approval.
_STALE_SEARCH = 200

BranchState = Literal[
    "merged",
    "would-merge",
    "not-approved",
    "stale-approval",
    "checks-failed",
    "no-checks",
    "stale",
    "up-to-date",
    "conflict",
    "error",
]


@dataclass(frozen=True)
class Approval:
    """An approval commit."""

    branch: str
    #: The head that was approved.
    approved_hash: str
    #: The approval commit itself (the branch's new head).
    commit: str
    by: str | None

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "branch": self.branch,
            "approved_hash": self.approved_hash,
            "commit": self.commit,
            "by": self.by,
        }


def approve_branch(lh: Lakehouse, name: str, *, message: str | None = None) -> Approval:
    """Approve the current head of branch ``name`` (a marker commit on the branch).

    Raises :class:`~lakehouse.errors.ReadOnlyReferenceError` for a tag,
    :class:`~lakehouse.maintenance.errors.MaintenanceError` for the merge target itself
    or a branch without content.
    """
    branch = lh.store.writable_branch(name)
    if branch.name == lh.default_branch:
        raise MaintenanceError(
            f"branch '{branch.name}' is the default branch; approve the branches merged into it"
        )
    entries = lh.store.entries("@" + branch.hash)
    if not entries:
        raise MaintenanceError(f"branch '{branch.name}' holds nothing to approve")
    author = lh.settings.author
    meta = CommitMeta(
        message=message or f"Approve branch {branch.name} at {branch.hash[:12]}",
        author=author,
        properties={
            "application": "lakehouse",
            APPROVED: "true",
            APPROVED_HASH: branch.hash,
            **({APPROVED_BY: author} if author else {}),
        },
    )
    # an Unchanged operation conflicts if the key moved since the head we approve; other
    # commits landing meanwhile make the approval stale (its parent is not that head)
    result = lh.store.commit(
        branch.name, [Unchanged(entries[0].key)], meta, expected_hash=branch.hash
    )
    return Approval(branch.name, branch.hash, result.hash, author)


def _is_approval(entry: LogEntry) -> bool:
    return entry.meta.properties.get(APPROVED, "").lower() == "true"


@dataclass(frozen=True)
class BranchOutcome:
    """What the branch policy decided for one branch."""

    branch: str
    state: BranchState
    detail: str = ""
    #: The branch head when it was looked at.
    hash: str | None = None
    #: The merge commit on the target (``merged`` only).
    merge_commit: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "branch": self.branch,
            "state": self.state,
            "detail": self.detail,
            "hash": self.hash,
            "merge_commit": self.merge_commit,
        }


@dataclass(frozen=True)
class BranchMergeResult:
    """Outcome of :func:`merge_approved_branches`."""

    target: str
    dry_run: bool
    branches: tuple[BranchOutcome, ...] = field(default_factory=tuple)

    def by_state(self, *states: BranchState) -> list[BranchOutcome]:
        """Branches in any of ``states``."""
        return [b for b in self.branches if b.state in states]

    @property
    def merged(self) -> list[BranchOutcome]:
        """Branches merged (or that would be, on a dry run)."""
        return self.by_state("merged", "would-merge")

    @property
    def problems(self) -> list[BranchOutcome]:
        """Approved branches that could not be merged (reported, never forced)."""
        return self.by_state("stale-approval", "checks-failed", "no-checks", "stale", "conflict")

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "operation": "merge-approved",
            "target": self.target,
            "dry_run": self.dry_run,
            "merged": len(self.merged),
            "problems": len(self.problems),
            "branches": [b.to_json() for b in self.branches],
        }


def branch_outcome(
    lh: Lakehouse,
    name: str,
    policy: BranchPolicy,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
) -> BranchOutcome:
    """Decide for branch ``name`` and merge it when the policy says so (unless ``dry_run``)."""
    target = policy.merge_into
    head = lh.store.writable_branch(name)
    log = lh.store.iter_log("@" + head.hash)
    first = next(log, None)
    if first is None or not _is_approval(first):
        approved_earlier = first is not None and any(
            _is_approval(e) for _, e in zip(range(_STALE_SEARCH), log, strict=False)
        )
        if approved_earlier:
            return BranchOutcome(
                name,
                "stale-approval",
                "commits landed after the approval; approve the branch again",
                head.hash,
            )
        return BranchOutcome(name, "not-approved", "", head.hash)
    approved = first.meta.properties.get(APPROVED_HASH, "")
    parents = first.meta.parent_hashes
    if not parents or parents[0] != approved:
        return BranchOutcome(
            name,
            "stale-approval",
            f"the approval names {approved[:12]} but was committed on top of "
            f"{parents[0][:12] if parents else '?'}; approve the branch again",
            head.hash,
        )

    preview = lh.store.merge(f"{name}@{head.hash}", target, dry_run=True, raise_on_conflict=False)
    if preview.conflicts:
        keys = ", ".join(sorted({str(c.key) for c in preview.conflicts if c.key})[:5])
        return BranchOutcome(name, "conflict", f"conflicting keys: {keys}", head.hash)
    if not preview.details:
        return BranchOutcome(name, "up-to-date", f"nothing to merge into '{target}'", head.hash)

    # run records and the last real change since the branch forked from the target
    status: str | None = None
    last_change: datetime | None = None
    for entry in lh.store.iter_log("@" + approved):
        if entry.hash == preview.common_ancestor:
            break
        props = entry.meta.properties
        if status is None and RUN_STATUS in props:
            status = props[RUN_STATUS]
        if last_change is None and not _is_approval(entry) and RUN_STATUS not in props:
            last_change = entry.meta.commit_time
        if status is not None and last_change is not None:
            break
    if status is not None and status.lower() not in PASSED:
        return BranchOutcome(
            name, "checks-failed", f"the newest pipeline run on it is '{status}'", head.hash
        )
    if status is None and policy.require_checks:
        return BranchOutcome(
            name, "no-checks", "no pipeline run recorded and the policy requires one", head.hash
        )
    when = now or utcnow()
    if (
        policy.stale_after is not None
        and last_change is not None
        and when - last_change > policy.stale_after
    ):
        return BranchOutcome(
            name,
            "stale",
            f"last changed {last_change:%Y-%m-%d %H:%M} UTC, older than the "
            "stale_after policy; merge it by hand if still wanted",
            head.hash,
        )
    if dry_run:
        changed = len(preview.details)
        return BranchOutcome(name, "would-merge", f"{changed} key(s) into '{target}'", head.hash)

    meta = CommitMeta(
        message=f"Merge approved branch {name} into {target}",
        author=lh.settings.author,
        properties={
            "application": "lakehouse",
            "lakehouse.maintenance": "merge-approved",
            MERGED_BRANCH: name,
            MERGED_HASH: head.hash,
        },
    )
    try:
        result = lh.store.merge(
            f"{name}@{head.hash}",
            target,
            meta=meta,
            raise_on_conflict=True,
        )
    except MergeConflictError as exc:  # the target moved in between and now conflicts
        keys = ", ".join(sorted({str(c.key) for c in exc.conflicts if c.key})[:5])
        return BranchOutcome(name, "conflict", f"conflicting keys: {keys}", head.hash)
    except ReferenceConflictError as exc:
        return BranchOutcome(name, "error", str(exc), head.hash)
    merge_commit = result.resultant_target_hash
    if policy.delete_after_merge:
        try:
            lh.delete_branch(name, expected_hash=head.hash)
        except ReferenceConflictError:
            logger.info("branch %s moved after its merge; not deleted", name)
    return BranchOutcome(
        name, "merged", f"{len(result.details)} key(s) into '{target}'", head.hash, merge_commit
    )


def merge_approved_branches(
    lh: Lakehouse,
    *,
    policies: Policies | None = None,
    branches: Sequence[str] | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    on_progress: ProgressListener | None = None,
) -> BranchMergeResult:
    """Merge every approved branch whose checks passed into the policy's target.

    ``branches`` restricts the branches looked at (default: all the policy considers).
    Errors on one branch are reported for it; the others go on.
    """

    if not dry_run:
        ensure_not_paused(lh, "merging approved branches")
    from lakehouse.maintenance.policies import load_policies

    policies = policies or load_policies(home=lh.settings.home)
    policy = policies.branches
    lh.store.writable_branch(policy.merge_into)  # the target must be a branch
    names = [
        b.name
        for b in lh.branches()
        if policy.considers(b.name) and (branches is None or b.name in branches)
    ]
    report = listener(on_progress)
    out: list[BranchOutcome] = []
    for i, name in enumerate(names):
        report(ProgressEvent("branches", name, i, len(names)))
        try:
            out.append(branch_outcome(lh, name, policy, dry_run=dry_run, now=now))
        except Exception as exc:  # reported per branch
            logger.warning("branch policy on %s failed: %s", name, exc)
            out.append(BranchOutcome(name, "error", " ".join(str(exc).split())))
    report(ProgressEvent("branches", policy.merge_into, len(names), len(names)))
    return BranchMergeResult(policy.merge_into, dry_run, tuple(out))


__all__ = [
    "APPROVED",
    "APPROVED_BY",
    "APPROVED_HASH",
    "MERGED_BRANCH",
    "MERGED_HASH",
    "PASSED",
    "RUN_STATUS",
    "Approval",
    "BranchMergeResult",
    "BranchOutcome",
    "BranchState",
    "approve_branch",
    "branch_outcome",
    "merge_approved_branches",
]
