"""Expiry of failed run branches: the retention policy of write-audit-publish.

A run that fails keeps its branch ``run/<pipeline>/<run-id>`` for inspection. Left
alone they pile up, so the branches of runs that did not succeed (their head records
``lakehouse.run.status`` ``failed`` or ``error``, or records nothing: an interrupted
run) are deleted once idle for longer than the ``failed_run_retention_days`` setting.
:func:`expire_failed_run_branches` applies it; ``lakehouse branch prune`` (no
arguments) and :func:`~lakehouse.pipelines.runner.run_pipeline` call it.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from lakehouse.catalog.model import CommitMeta
from lakehouse.catalog.recovery import PrunedBranch, prune_branches

if TYPE_CHECKING:
    from lakehouse.session import Lakehouse

#: Commit property recording a run's outcome (also in :mod:`lakehouse.pipelines.runner`).
RUN_STATUS = "lakehouse.run.status"
#: Where run branches live.
RUN_BRANCH_PATTERN = "run/*"


def _not_successful(meta: CommitMeta) -> bool:
    return meta.properties.get(RUN_STATUS) != "success"


def expire_failed_run_branches(
    lakehouse: Lakehouse,
    *,
    days: int | None = None,
    dry_run: bool = False,
    now: dt.datetime | None = None,
) -> list[PrunedBranch]:
    """Delete the branches of unsuccessful runs idle for more than ``days``.

    ``days`` defaults to the ``failed_run_retention_days`` setting; 0 disables expiry.
    Returns what was deleted (or would be, with ``dry_run``).
    """
    keep_days = lakehouse.settings.failed_run_retention_days if days is None else days
    if keep_days <= 0:
        return []
    return prune_branches(
        lakehouse.store,
        pattern=RUN_BRANCH_PATTERN,
        older_than=dt.timedelta(days=keep_days),
        when=_not_successful,
        dry_run=dry_run,
        now=now,
    )


__all__ = ["RUN_BRANCH_PATTERN", "RUN_STATUS", "expire_failed_run_branches"]
