"""Merge logic shared by the stores that compute merges themselves.

* :func:`common_ancestor` — the merge base of two commits in a DAG of first and
  merge parents, found by walking both sides in generation order.
* :func:`plan_merge` — given what the source changed since the ancestor and what
  the target holds now, decide per key: apply, keep, or conflict.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from lakehouse.catalog.model import (
    Conflict,
    ConflictType,
    ContentKey,
    KeyMergeDetail,
    MergeBehavior,
)
from lakehouse.catalog.tree import Value

#: Returns, for each hash asked, (generation, parent hashes); it may answer for more
#: hashes than asked (a store reading ahead), which the walk keeps for later steps.
ParentsLookup = Callable[[Sequence[str]], Mapping[str, tuple[int, tuple[str, ...]]]]


def common_ancestor(a: str, b: str, lookup: ParentsLookup) -> str | None:
    """The newest commit reachable from both ``a`` and ``b`` (``None`` if unrelated).

    Generation numbers (1 + the highest parent's) guarantee that a commit is popped
    only after all its explored descendants, so the first commit seen from both sides
    is a best common ancestor. Cost grows with the commits since the fork only.
    """
    if a == b:
        return a
    info = dict(lookup([a, b]))
    flags: dict[str, int] = {a: 1, b: 2}
    heap: list[tuple[int, str]] = [(-info[a][0], a), (-info[b][0], b)]
    heapq.heapify(heap)
    queued = {a, b}
    while heap:
        _, h = heapq.heappop(heap)
        if flags[h] == 3:
            return h
        parents = info[h][1]
        missing = [p for p in parents if p not in info]
        if missing:
            info.update(lookup(missing))
        for p in parents:
            flags[p] = flags.get(p, 0) | flags[h]
            if p not in queued:
                queued.add(p)
                heapq.heappush(heap, (-info[p][0], p))
    return None


@dataclass(frozen=True)
class MergePlan:
    """What a merge would do: the changes to apply and a detail per key."""

    changes: dict[str, Value | None]
    details: tuple[KeyMergeDetail, ...]

    @property
    def conflicts(self) -> list[Conflict]:
        """Conflicting keys."""
        return [d.conflict for d in self.details if d.conflict is not None]


def plan_merge(
    source_changes: Mapping[str, tuple[Value | None, Value | None]],
    target_values: Mapping[str, Value | None],
    default_behavior: MergeBehavior,
    key_behaviors: Mapping[ContentKey, MergeBehavior],
) -> MergePlan:
    """Decide per key what merging ``source_changes`` into the target does.

    ``source_changes`` maps each key the source changed to (value at the ancestor,
    value on the source). ``target_values`` holds the target's current value for those
    keys. A key the target also changed since the ancestor is a conflict under NORMAL —
    even when both sides made the identical change, as in Nessie (DESIGN §3: changed on
    both sides means conflict); FORCE takes the source's value, DROP keeps the target's.
    """
    changes: dict[str, Value | None] = {}
    details: list[KeyMergeDetail] = []
    for path in sorted(source_changes):
        before, after = source_changes[path]
        key = ContentKey.parse(path)
        behavior = key_behaviors.get(key, default_behavior)
        current = target_values.get(path)
        if behavior is MergeBehavior.DROP:
            details.append(KeyMergeDetail(key, behavior))
            continue
        target_changed = current != before
        if target_changed and behavior is MergeBehavior.NORMAL:
            details.append(KeyMergeDetail(key, behavior, _conflict(key, before, after, current)))
            continue
        if current != after:
            changes[path] = after
        details.append(KeyMergeDetail(key, behavior))
    return MergePlan(changes, tuple(details))


def _conflict(
    key: ContentKey, before: Value | None, after: Value | None, current: Value | None
) -> Conflict:
    if current is None:
        return Conflict(
            key, ConflictType.KEY_DOES_NOT_EXIST, "deleted on the target, changed on the source"
        )
    if after is None:
        return Conflict(
            key, ConflictType.VALUE_DIFFERS, "changed on the target, deleted on the source"
        )
    if before is None:
        if current.get("id") != after.get("id"):
            return Conflict(
                key, ConflictType.KEY_EXISTS, "created on both sides as different content"
            )
        return Conflict(
            key, ConflictType.VALUE_DIFFERS, "created on both sides with different values"
        )
    return Conflict(key, ConflictType.VALUE_DIFFERS, "changed on both the source and the target")
