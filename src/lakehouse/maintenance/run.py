"""One maintenance run: merge approved branches, compact, expire snapshots, collect garbage.

The order matters: approved branches are merged first so that compaction and expiry see
``main`` as it will be; compaction runs before expiry so that the snapshots it replaced
can expire in the same run once old enough; garbage collection runs last and deletes
what nothing within the retention reaches any more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from lakehouse.maintenance._common import ProgressListener, utcnow
from lakehouse.maintenance.branches import BranchMergeResult, merge_approved_branches
from lakehouse.maintenance.compact import CompactResult, compact
from lakehouse.maintenance.expire import ExpireResult, expire_snapshots
from lakehouse.maintenance.gc import GCResult, collect_garbage
from lakehouse.maintenance.policies import Policies, load_policies
from lakehouse.storage.records import save_record

if TYPE_CHECKING:
    from lakehouse.session import Lakehouse

Step = Literal["merge", "compact", "expire", "gc"]
#: Every step, in the order a run takes them.
STEPS: tuple[Step, ...] = ("merge", "compact", "expire", "gc")


@dataclass
class MaintenanceReport:
    """Results of a maintenance run (a step that did not run is absent)."""

    dry_run: bool
    started: datetime
    merges: BranchMergeResult | None = None
    compactions: list[CompactResult] = field(default_factory=list)
    expiries: list[ExpireResult] = field(default_factory=list)
    gc: GCResult | None = None
    #: Step → error message, for steps that failed as a whole.
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no step and no table failed."""
        return (
            not self.errors
            and all(not c.errors for c in self.compactions)
            and all(not e.errors for e in self.expiries)
            and (self.gc is None or not self.gc.failed)
        )

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "operation": "run",
            "dry_run": self.dry_run,
            "started": self.started.isoformat(),
            "ok": self.ok,
            "merge": self.merges.to_json() if self.merges else None,
            "compact": [c.to_json() for c in self.compactions],
            "expire": [e.to_json() for e in self.expiries],
            "gc": self.gc.to_json() if self.gc else None,
            "errors": self.errors,
        }


def run_maintenance(
    lh: Lakehouse,
    *,
    refs: Sequence[str] | None = None,
    tables: Sequence[str] | None = None,
    policies: Policies | None = None,
    steps: Sequence[Step] = STEPS,
    dry_run: bool = False,
    now: datetime | None = None,
    on_progress: ProgressListener | None = None,
) -> MaintenanceReport:
    """Run the maintenance ``steps`` (default: all, see the module docstring).

    ``refs`` are the branches compacted and expired (default: the default branch);
    garbage collection always considers every reference. A step that fails as a whole is
    recorded in :attr:`MaintenanceReport.errors` and the next steps still run — except
    garbage collection, which does not run after a failed step.
    """
    policies = policies or load_policies(home=lh.settings.home)
    started = now or utcnow()
    report = MaintenanceReport(dry_run=dry_run, started=started)
    branches = list(refs) if refs else [lh.default_branch]
    wanted = set(steps)
    if "merge" in wanted:
        try:
            report.merges = merge_approved_branches(
                lh, policies=policies, dry_run=dry_run, now=started, on_progress=on_progress
            )
        except Exception as exc:
            report.errors["merge"] = " ".join(str(exc).split())
    for branch in branches:
        if "compact" in wanted:
            try:
                report.compactions.append(
                    compact(
                        lh,
                        branch,
                        tables=tables,
                        policies=policies,
                        dry_run=dry_run,
                        on_progress=on_progress,
                    )
                )
            except Exception as exc:
                report.errors[f"compact:{branch}"] = " ".join(str(exc).split())
        if "expire" in wanted:
            try:
                report.expiries.append(
                    expire_snapshots(
                        lh,
                        branch,
                        tables=tables,
                        policies=policies,
                        dry_run=dry_run,
                        now=started,
                        on_progress=on_progress,
                    )
                )
            except Exception as exc:
                report.errors[f"expire:{branch}"] = " ".join(str(exc).split())
    if "gc" in wanted:
        if report.errors:
            report.errors["gc"] = "skipped because an earlier step failed"
        else:
            try:
                report.gc = collect_garbage(
                    lh, policies=policies, dry_run=dry_run, on_progress=on_progress
                )
            except Exception as exc:
                report.errors["gc"] = " ".join(str(exc).split())
    if not dry_run:  # the console's operations page: the last maintenance run
        save_record(
            lh.warehouse,
            lh.settings.fileio_properties(),
            "maintenance",
            started.strftime("%Y%m%dT%H%M%S%fZ"),
            report.to_json(),
        )
    return report


__all__ = ["STEPS", "MaintenanceReport", "Step", "run_maintenance"]
