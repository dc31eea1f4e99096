"""Table maintenance: compaction → snapshot expiry → garbage collection → approved-branch merges.

Every task is one call into :mod:`lakehouse.maintenance` (the same functions as
``lakehouse maintenance compact|expire|gc`` and the branch policy of ``lakehouse
maintenance run``); policies come from ``maintenance.yaml`` in the lakehouse home. Merging
approved branches goes through the ``nessie_client`` helper, as the operations guide says.
Nothing here deletes a file except the garbage collector, which marks what every live
branch and tag still reaches first.

Configuration, highest first: the run's conf (``branches``, ``dry_run``), Airflow
Variables ``LAKEHOUSE_HOME`` / ``LAKEHOUSE_CATALOG__URI``, then the worker's environment
(same names, read by :func:`lakehouse.connect`). While the lakehouse is paused for
disaster recovery (``lakehouse dr pause``) a run skips all of its tasks.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import nessie_client
import pendulum
from airflow.sdk import Param, dag, task

#: Where the lakehouse is: rendered at run time (an unset Variable renders as "", which
#: nessie_client.connect treats as "use LAKEHOUSE_* from the environment").
LAKEHOUSE = {
    "home": "{{ var.value.get('LAKEHOUSE_HOME', '') }}",
    "catalog_uri": "{{ var.value.get('LAKEHOUSE_CATALOG__URI', '') }}",
}
DRY_RUN = "{{ params.dry_run }}"


def _fail_on(errors: list[Any], what: str) -> None:
    """Fail the task (after the library went on with the other tables) if any table failed."""
    if errors:
        from airflow.sdk.exceptions import AirflowException

        names = ", ".join(f"{e.table}: {e.error}" for e in errors[:5])
        raise AirflowException(f"{what} failed for {len(errors)} table(s): {names}")


@dag(
    dag_id="maintenance_compaction_snapshot_policies",
    description="Compaction, snapshot expiry, garbage collection, approved-branch merges",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # the collector must not race another maintenance run
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=5), "owner": "lakehouse"},
    params={
        "branches": Param(["main"], type="array", description="branches to compact and expire"),
        "dry_run": Param(False, type="boolean", description="report only, change nothing"),
    },
    render_template_as_native_obj=True,
    tags=["lakehouse", "maintenance"],
    doc_md=__doc__,
)
def maintenance_compaction_snapshot_policies() -> None:
    @task
    def ensure_not_paused(lakehouse: dict[str, str]) -> None:
        """Skip the run while the lakehouse is paused for disaster recovery."""
        from airflow.sdk.exceptions import AirflowSkipException

        from lakehouse.ops.dr import ensure_not_paused
        from lakehouse.ops.errors import PausedError

        with nessie_client.connect(**lakehouse) as lh:
            try:
                ensure_not_paused(lh, "maintenance")
            except PausedError as exc:
                raise AirflowSkipException(str(exc)) from exc

    @task
    def selected_branches(branches: list[str]) -> list[str]:
        """The branches this run compacts and expires (the run's ``branches`` param)."""
        return list(branches)

    @task(map_index_template="{{ branch }}")
    def compact(lakehouse: dict[str, str], branch: str, dry_run: bool) -> dict[str, Any]:
        """Rewrite small data files (and manifests) of every table on ``branch``."""
        from lakehouse.maintenance import compact

        with nessie_client.connect(**lakehouse) as lh:
            result = compact(lh, branch, dry_run=dry_run)
        _fail_on(result.errors, f"compaction on {branch}")
        return result.to_json()

    @task(map_index_template="{{ branch }}")
    def expire_snapshots(lakehouse: dict[str, str], branch: str, dry_run: bool) -> dict[str, Any]:
        """Expire old snapshots on ``branch`` (metadata only: one catalog commit)."""
        from lakehouse.maintenance import expire_snapshots

        with nessie_client.connect(**lakehouse) as lh:
            result = expire_snapshots(lh, branch, dry_run=dry_run)
        _fail_on(result.errors, f"snapshot expiry on {branch}")
        return result.to_json()

    @task
    def collect_garbage(lakehouse: dict[str, str], dry_run: bool) -> dict[str, Any]:
        """Delete files no live reference reaches (mark across all refs, then sweep)."""
        from lakehouse.maintenance import collect_garbage

        with nessie_client.connect(**lakehouse) as lh:
            return collect_garbage(lh, dry_run=dry_run).to_json()

    # Runs after a failed compaction or expiry too (branches are independent of those), but
    # not when the run was skipped for a disaster-recovery pause.
    @task(trigger_rule="none_skipped")
    def merge_approved_branches(lakehouse: dict[str, str], dry_run: bool) -> dict[str, Any]:
        """Merge approved branches whose checks passed; conflicts are reported, never forced."""
        with nessie_client.connect(**lakehouse) as lh:
            return nessie_client.merge_approved_branches(lh, dry_run=dry_run)

    guard = ensure_not_paused(LAKEHOUSE)
    branches = selected_branches("{{ params.branches }}")
    compacted = compact.partial(lakehouse=LAKEHOUSE, dry_run=DRY_RUN).expand(branch=branches)
    expired = expire_snapshots.partial(lakehouse=LAKEHOUSE, dry_run=DRY_RUN).expand(branch=branches)
    collected = collect_garbage(LAKEHOUSE, DRY_RUN)
    merged = merge_approved_branches(LAKEHOUSE, DRY_RUN)
    guard >> branches >> compacted >> expired >> collected >> merged


maintenance_compaction_snapshot_policies()
