"""``nessie_client``: the branch helper the DAGs use (the operations guide names it).

A thin layer of functions over the lakehouse's catalog API (:func:`lakehouse.connect`), so
that a DAG task is one call: open the lakehouse, then create, merge or delete a branch,
tag a release, list or merge approved branches. Every function takes the open
:class:`~lakehouse.client.Lakehouse` first and returns plain values (strings, lists,
dicts) that Airflow can keep as XComs. The catalog may be the embedded one, our catalog
server or a real Nessie server: whatever ``LAKEHOUSE_CATALOG__URI`` points at.

This module does not import Airflow; it works from any Python that has ``lakehouse``::

    import nessie_client

    with nessie_client.connect() as lh:                 # LAKEHOUSE_HOME / LAKEHOUSE_CATALOG__URI
        nessie_client.create_branch(lh, "feature/foo", from_ref="main")
        nessie_client.merge_branch(lh, "feature/foo", into="main")
        nessie_client.tag_release(lh, "prod-20260101", ref="main")
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import lakehouse

if TYPE_CHECKING:
    from lakehouse.client import Lakehouse


def connect(
    home: str | Path | None = None, catalog_uri: str | None = None, *, create: bool = False
) -> Lakehouse:
    """Open the lakehouse (use it with ``with``).

    ``home`` and ``catalog_uri`` win over ``LAKEHOUSE_HOME`` and ``LAKEHOUSE_CATALOG__URI``;
    an empty string means "not given" (what an unset Airflow Variable renders to), so the
    environment and then the library's defaults apply. ``create=True`` creates a missing
    embedded lakehouse (``lakehouse init``).
    """
    overrides: dict[str, Any] = {}
    if catalog_uri:
        overrides["catalog"] = {"uri": catalog_uri}
    return lakehouse.connect(str(home) if home else None, create=create, **overrides)


def head(lh: Lakehouse, ref: str | None = None) -> str:
    """The commit hash ``ref`` (default: ``NESSIE_REF`` or ``main``) points at."""
    return lh.resolve(ref or None).hash


def list_branches(lh: Lakehouse) -> list[str]:
    """Names of every branch, sorted."""
    return [b.name for b in lh.branches()]


def list_tags(lh: Lakehouse) -> list[str]:
    """Names of every tag, sorted."""
    return [t.name for t in lh.tags()]


def create_branch(lh: Lakehouse, name: str, from_ref: str | None = None) -> str:
    """Create branch ``name`` at ``from_ref`` (default: ``NESSIE_REF`` or ``main``); its hash."""
    return lh.create_branch(name, from_ref or None).hash


def delete_branch(lh: Lakehouse, name: str) -> None:
    """Delete branch ``name``."""
    lh.delete_branch(name)


def merge_branch(
    lh: Lakehouse,
    source: str,
    into: str | None = None,
    *,
    message: str | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Merge ``source`` into ``into`` (default ``main``) as one commit.

    Raises :class:`~lakehouse.errors.MergeConflictError` (target unchanged) on a conflict.
    Returns ``{"source", "target", "applied", "hash"}`` (``hash``: the target's new head).
    """
    result = lh.merge(source, into or None, message=message or None, dry_run=dry_run)
    return {
        "source": source,
        "target": result.target_branch,
        "applied": result.was_applied,
        "hash": result.resultant_target_hash or result.effective_target_hash,
    }


def tag_release(lh: Lakehouse, name: str, ref: str | None = None) -> str:
    """Create tag ``name`` (e.g. ``prod-20260101``) at ``ref`` (default ``main``); its hash."""
    return lh.create_tag(name, ref or lh.default_branch).hash


def approve_branch(lh: Lakehouse, name: str, message: str | None = None) -> dict[str, Any]:
    """Approve the current head of branch ``name`` for merging by the maintenance DAG."""
    from lakehouse.maintenance import approve_branch

    return approve_branch(lh, name, message=message or None).to_json()


def list_approved_branches(lh: Lakehouse) -> list[str]:
    """Branches carrying an approval (mergeable or not: stale, conflicting, checks failed)."""
    from lakehouse.maintenance import merge_approved_branches

    result = merge_approved_branches(lh, dry_run=True)
    return [b.branch for b in result.branches if b.state != "not-approved"]


def merge_approved_branches(lh: Lakehouse, *, dry_run: bool = False) -> dict[str, Any]:
    """Merge every approved branch whose checks passed (``maintenance.yaml`` branch policy).

    Conflicting, stale or failing branches are reported, never forced. Returns the
    library's report (``{"target", "merged", "problems", "branches": [...]}``).
    """
    from lakehouse.maintenance import merge_approved_branches

    return merge_approved_branches(lh, dry_run=dry_run).to_json()


__all__ = [
    "approve_branch",
    "connect",
    "create_branch",
    "delete_branch",
    "head",
    "list_approved_branches",
    "list_branches",
    "list_tags",
    "merge_approved_branches",
    "merge_branch",
    "tag_release",
]
