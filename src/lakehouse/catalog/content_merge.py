"""Content-aware catalog merges: tables changed on both sides merge when their changes commute.

:func:`content_merge` runs the store's merge as a dry run first. Each Iceberg table that
conflicts only because both sides changed it is merged by
:func:`lakehouse.tables.merge.merge_tables` (ancestor, target and source metadata); its
merged metadata file is written next to the target's, and the store's merge then lands
as **one** merge commit carrying that content for the key
(:class:`~lakehouse.catalog.model.ResolvedContent`, Nessie's ``resolvedContent``), valid
only while the target still holds the content the merge was computed from. Any other
conflict, or a table whose merge cannot be proved safe, fails the whole merge with one
reason per key (``bronze.orders: … both sides removed or rewrote data file …``); nothing
is committed. :meth:`lakehouse.client.Lakehouse.merge` describes each table merged by
content in its key's :attr:`~lakehouse.catalog.model.KeyMergeDetail.resolution` ("merged
by content (appends on the source …; deletes on the source …; rewrite on the source …)"),
also on a dry run.

Where it runs: a store that offers the merge itself runs it there
(:meth:`~lakehouse.catalog.store.VersionStore.merge_by_content`): ``lakehouse serve``
advertises the opt-in in ``GET /api/v2/config`` and a
:class:`~lakehouse.catalog.nessie_store.NessieStore` talking to it sends one merge request
with ``"contentMerge": true``; the server runs this very function over its own store,
next to the catalog, and sends the per-table report back. Every other store (SQLite and
PostgreSQL in process, the real Nessie server) gets the merge computed here: the client
reads the three sides' metadata, writes the merged metadata and lands it with Nessie's
``expectedTargetContent``/``resolvedContent``, which the store checks atomically. The
result is the same either way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from lakehouse.catalog.model import (
    CommitMeta,
    Conflict,
    ConflictType,
    ContentKey,
    ContentMergeResult,
    IcebergTable,
    KeyMergeDetail,
    MergeBehavior,
    ResolvedContent,
    TableOutcome,
)
from lakehouse.errors import MergeConflictError

if TYPE_CHECKING:
    from pyiceberg.io import FileIO
    from pyiceberg.table.metadata import TableMetadata

    from lakehouse.catalog.store import RefLike, VersionStore


def _metadata(location: str, properties: Mapping[str, str]) -> tuple[TableMetadata, FileIO]:
    from pyiceberg.io import load_file_io
    from pyiceberg.serializers import FromInputFile

    io = load_file_io(dict(properties), location)
    return FromInputFile.table_metadata(io.new_input(location)), io


def _write(metadata: TableMetadata, io: FileIO, after: str) -> str:
    """Write ``metadata`` as the next metadata file after ``after``; return its location."""
    import uuid

    from pyiceberg.serializers import ToOutputFile
    from pyiceberg.table.locations import load_location_provider

    name = after.rsplit("/", 1)[-1]
    try:
        version = int(name.split("-", 1)[0]) + 1
    except ValueError:
        version = 0
    provider = load_location_provider(metadata.location, metadata.properties)
    location = provider.new_metadata_location(f"{version:05d}-{uuid.uuid4()}.metadata.json")
    ToOutputFile.table_metadata(metadata, io.new_output(location), overwrite=False)
    return location


def content_merge(
    store: VersionStore,
    source: RefLike,
    into: str,
    *,
    io_properties: Mapping[str, str],
    default_behavior: MergeBehavior = MergeBehavior.NORMAL,
    key_behaviors: Mapping[ContentKey, MergeBehavior] | None = None,
    expected_target_hash: str | None = None,
    dry_run: bool = False,
    meta: CommitMeta | str | None = None,
    raise_on_conflict: bool = True,
    on_server: bool = True,
    location_allowed: Callable[[str], bool] | None = None,
) -> ContentMergeResult:
    """Merge ``source`` into branch ``into``, merging tables changed on both sides by content.

    ``io_properties`` configure the file IO (the catalog's properties: warehouse, S3).
    A dry run decides every table merge as the merge would, and writes and commits
    nothing. With ``on_server`` (the default) a store
    that offers the merge itself runs it (see the module doc); ``on_server=False``
    computes it here on every store. ``location_allowed`` (a server's guard) names the
    locations that may be read and written: a table whose metadata file or location is
    elsewhere is a conflict, and is not read.
    """
    if on_server:
        remote = store.merge_by_content(
            source,
            into,
            expected_target_hash=expected_target_hash,
            default_behavior=default_behavior,
            key_behaviors=key_behaviors,
            dry_run=dry_run,
            meta=meta,
            raise_on_conflict=raise_on_conflict,
        )
        if remote is not None:
            return remote
    from lakehouse.tables.merge import merge_tables

    allowed = location_allowed or (lambda _: True)
    preview = store.merge(
        source,
        into,
        expected_target_hash=expected_target_hash,
        default_behavior=default_behavior,
        key_behaviors=key_behaviors,
        dry_run=True,
        raise_on_conflict=False,
    )
    both = [
        c.key
        for c in preview.conflicts
        if c.key is not None and c.type is ConflictType.VALUE_DIFFERS
    ]
    if not both:
        if dry_run or not preview.was_successful:
            if not preview.was_successful and raise_on_conflict:
                raise MergeConflictError(preview.conflicts)
            return ContentMergeResult(preview)
        return ContentMergeResult(
            store.merge(
                source,
                into,
                expected_target_hash=preview.effective_target_hash,
                default_behavior=default_behavior,
                key_behaviors=key_behaviors,
                meta=meta,
                raise_on_conflict=raise_on_conflict,
            )
        )
    assert preview.common_ancestor is not None
    ancestors = store.get_contents(f"@{preview.common_ancestor}", both)
    targets = store.get_contents(f"@{preview.effective_target_hash}", both)
    sources = store.get_contents(f"@{preview.source_hash}", both)
    resolved: dict[ContentKey, ResolvedContent] = {}
    outcomes: list[TableOutcome] = []
    for key in both:
        a, t, s = ancestors.get(key), targets.get(key), sources.get(key)
        if not all(isinstance(c, IcebergTable) for c in (a, t, s)):
            outcomes.append(TableOutcome(key, False, "conflict: not a table on all three sides"))
            continue
        assert isinstance(a, IcebergTable) and isinstance(t, IcebergTable)
        assert isinstance(s, IcebergTable)
        outside = [c.metadata_location for c in (t, a, s) if not allowed(c.metadata_location)]
        if outside:
            reason = f"conflict: metadata file {outside[0]} is outside the warehouse"
            outcomes.append(TableOutcome(key, False, reason))
            continue
        try:
            target_metadata, io = _metadata(t.metadata_location, io_properties)
            ancestor_metadata = _metadata(a.metadata_location, io_properties)[0]
            source_metadata = _metadata(s.metadata_location, io_properties)[0]
        except (OSError, ValueError) as exc:
            reason = f"conflict: cannot read the table's metadata ({exc})"
            outcomes.append(TableOutcome(key, False, reason))
            continue
        if not allowed(target_metadata.location):
            reason = f"conflict: table location {target_metadata.location} is outside the warehouse"
            outcomes.append(TableOutcome(key, False, reason))
            continue
        merged = merge_tables(
            ancestor_metadata, target_metadata, source_metadata, io, write=not dry_run
        )
        outcomes.append(TableOutcome(key, merged.merged, merged.description))
        if merged.metadata is None or dry_run:
            continue
        location = _write(merged.metadata, io, t.metadata_location)
        snapshot_id = merged.metadata.current_snapshot_id
        resolved[key] = ResolvedContent(
            t,
            IcebergTable(
                metadata_location=location,
                snapshot_id=snapshot_id if snapshot_id is not None else -1,
                schema_id=merged.metadata.current_schema_id,
                spec_id=merged.metadata.default_spec_id,
                sort_order_id=merged.metadata.default_sort_order_id,
                id=t.id,
            ),
        )
    failed = {o.key: o for o in outcomes if not o.merged}
    details = tuple(
        KeyMergeDetail(
            d.key,
            d.merge_behavior,
            None
            if d.key in both and d.key not in failed
            else (
                Conflict(d.key, ConflictType.VALUE_DIFFERS, failed[d.key].description)
                if d.key in failed
                else d.conflict
            ),
        )
        for d in preview.details
    )
    report = replace(preview, details=details)
    conflicts = [d.conflict for d in details if d.conflict is not None]
    if conflicts:
        report = replace(report, was_successful=False)
        if raise_on_conflict:
            raise MergeConflictError(conflicts)
        return ContentMergeResult(report, tuple(outcomes))
    if dry_run:
        return ContentMergeResult(replace(report, was_successful=True), tuple(outcomes))
    result = store.merge(
        source,
        into,
        expected_target_hash=preview.effective_target_hash,
        default_behavior=default_behavior,
        key_behaviors=key_behaviors,
        meta=meta,
        raise_on_conflict=raise_on_conflict,
        resolved=resolved,
    )
    return ContentMergeResult(result, tuple(outcomes))


__all__ = ["ContentMergeResult", "TableOutcome", "content_merge"]
