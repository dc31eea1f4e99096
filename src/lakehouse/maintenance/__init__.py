"""Table maintenance that is safe across branches (DESIGN §3).

Every function takes a :class:`~lakehouse.client.Lakehouse`; the CLI
(``lakehouse maintenance …``), the Airflow DAGs and the tests call the same ones::

    import lakehouse
    from lakehouse import maintenance

    with lakehouse.connect() as lh:
        policies = maintenance.load_policies(home=lh.settings.home)
        maintenance.merge_approved_branches(lh, policies=policies)
        maintenance.compact(lh, "main", policies=policies)
        maintenance.expire_snapshots(lh, "main", policies=policies)
        maintenance.collect_garbage(lh, policies=policies, dry_run=True)
        # or all of it, in that order:
        maintenance.run_maintenance(lh, policies=policies)

* :mod:`~lakehouse.maintenance.policies` — ``maintenance.yaml``: retention, compaction
  triggers, GC cutoffs per reference pattern, grace period, branch policy;
* :mod:`~lakehouse.maintenance.expire` — snapshot expiry, metadata only, one catalog
  commit per branch;
* :mod:`~lakehouse.maintenance.compact` — data file compaction (``replace`` snapshots that
  fail cleanly or rebuild on concurrent commits) and manifest rewriting;
* :mod:`~lakehouse.maintenance.gc` — mark and sweep across every reference, the only code
  that deletes files;
* :mod:`~lakehouse.maintenance.branches` — ``lakehouse branch approve`` and the merge of
  approved branches whose checks passed.

Only garbage collection deletes files; nothing else here does.
"""

from lakehouse.maintenance._common import ProgressEvent as ProgressEvent
from lakehouse.maintenance._common import ProgressListener as ProgressListener
from lakehouse.maintenance.branches import Approval as Approval
from lakehouse.maintenance.branches import BranchMergeResult as BranchMergeResult
from lakehouse.maintenance.branches import BranchOutcome as BranchOutcome
from lakehouse.maintenance.branches import approve_branch as approve_branch
from lakehouse.maintenance.branches import merge_approved_branches as merge_approved_branches
from lakehouse.maintenance.compact import CompactResult as CompactResult
from lakehouse.maintenance.compact import TableCompaction as TableCompaction
from lakehouse.maintenance.compact import compact as compact
from lakehouse.maintenance.compact import compact_table as compact_table
from lakehouse.maintenance.compact import rewrite_manifests as rewrite_manifests
from lakehouse.maintenance.errors import ConcurrentChangeError as ConcurrentChangeError
from lakehouse.maintenance.errors import GCRefusedError as GCRefusedError
from lakehouse.maintenance.errors import IncompleteWalkError as IncompleteWalkError
from lakehouse.maintenance.errors import MaintenanceError as MaintenanceError
from lakehouse.maintenance.errors import PolicyError as PolicyError
from lakehouse.maintenance.expire import ExpireResult as ExpireResult
from lakehouse.maintenance.expire import TableExpiry as TableExpiry
from lakehouse.maintenance.expire import expire_snapshots as expire_snapshots
from lakehouse.maintenance.gc import GCResult as GCResult
from lakehouse.maintenance.gc import collect_garbage as collect_garbage
from lakehouse.maintenance.policies import Policies as Policies
from lakehouse.maintenance.policies import load_policies as load_policies
from lakehouse.maintenance.policies import parse_policies as parse_policies
from lakehouse.maintenance.run import MaintenanceReport as MaintenanceReport
from lakehouse.maintenance.run import run_maintenance as run_maintenance

__all__ = [
    "Approval",
    "BranchMergeResult",
    "BranchOutcome",
    "CompactResult",
    "ConcurrentChangeError",
    "ExpireResult",
    "GCRefusedError",
    "GCResult",
    "IncompleteWalkError",
    "MaintenanceError",
    "MaintenanceReport",
    "Policies",
    "PolicyError",
    "ProgressEvent",
    "ProgressListener",
    "TableCompaction",
    "TableExpiry",
    "approve_branch",
    "collect_garbage",
    "compact",
    "compact_table",
    "expire_snapshots",
    "load_policies",
    "merge_approved_branches",
    "parse_policies",
    "rewrite_manifests",
    "run_maintenance",
]
