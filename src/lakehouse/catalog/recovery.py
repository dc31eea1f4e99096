"""Git-like recovery over any :class:`~lakehouse.catalog.store.VersionStore`.

Built only from the store contract, so it works the same on the SQL stores and on a
Nessie server:

* :func:`reset_branch` — point a branch at another commit (Nessie's *assign*), only if
  the branch is still where the caller saw it;
* :func:`revert` — a new commit undoing one commit: the inverse of its operations,
  computed against its first parent; keys changed again since then are conflicts;
* :func:`prune_branches` — delete branches by name pattern and age (each delete checks
  the head it was judged by);
* :data:`MergeStrategy` — a whole-merge conflict resolution mapped onto the store's
  per-key merge behaviours.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from lakehouse.catalog.model import (
    Branch,
    CommitMeta,
    CommitResult,
    Conflict,
    ConflictType,
    Delete,
    MergeBehavior,
    Operation,
    Put,
    ReferenceType,
    with_id,
)
from lakehouse.catalog.store import RefLike, VersionStore
from lakehouse.errors import (
    CommitConflictError,
    InvalidInputError,
    ReferenceConflictError,
    ReferenceNotFoundError,
)


class MergeStrategy(StrEnum):
    """How a whole merge resolves keys changed on both sides.

    ``normal``: such keys conflict. ``source-wins``: the source's version is taken
    (the store's FORCE). ``target-wins``: the target's version stays (DROP).
    """

    NORMAL = "normal"
    SOURCE_WINS = "source-wins"
    TARGET_WINS = "target-wins"

    @property
    def behavior(self) -> MergeBehavior:
        """The store's default merge behaviour for this strategy."""
        return {
            MergeStrategy.NORMAL: MergeBehavior.NORMAL,
            MergeStrategy.SOURCE_WINS: MergeBehavior.FORCE,
            MergeStrategy.TARGET_WINS: MergeBehavior.DROP,
        }[self]


_BARE_HASH = re.compile(r"^[0-9a-fA-F]{8,64}$")


def commit_spec(text: str) -> str:
    """A spec for ``text``: a bare (possibly abbreviated) hash becomes ``@hash``.

    Lets users type ``lakehouse revert 3f9a1c2b`` as in git; any other spec (``main~1``,
    ``dev@3f9a1c2b``) is returned as it is.
    """
    return "@" + text if _BARE_HASH.match(text) else text


def reset_branch(
    store: VersionStore, name: str, to: RefLike, *, expected_hash: str | None = None
) -> Branch:
    """Point branch ``name`` at the commit ``to`` names (a branch, tag or hash).

    Refuses a tag or detached hash as ``name`` (:class:`ReadOnlyReferenceError`) and a
    branch that moved away from ``expected_hash`` (:class:`ReferenceConflictError`);
    without ``expected_hash`` the head read now is expected, so a concurrent commit
    still fails the reset rather than being lost silently.
    """
    branch = store.writable_branch(name)
    target = store.resolve(commit_spec(to) if isinstance(to, str) else to).hash
    expected = expected_hash or branch.hash
    if expected_hash is not None and expected_hash != branch.hash:
        raise ReferenceConflictError(branch.name, expected_hash, branch.hash)
    assigned = store.assign_reference(branch.name, expected, "@" + target, ReferenceType.BRANCH)
    assert isinstance(assigned, Branch)
    return assigned


def revert(
    store: VersionStore,
    commit: str,
    branch: str,
    *,
    message: str | None = None,
    author: str | None = None,
) -> CommitResult:
    """Commit on ``branch`` the inverse of commit ``commit`` (a hash or spec).

    Each key the commit changed goes back to its value at the commit's first parent.
    A key whose value on ``branch`` is no longer the one ``commit`` left is a conflict;
    all conflicts are reported at once (:class:`CommitConflictError`, nothing
    committed). A commit that changed no content (a merge of nothing, a run record) is
    :class:`InvalidInputError`.
    """
    head = store.writable_branch(branch)
    resolved = store.resolve(commit_spec(commit)).hash
    meta = store.commit_meta(resolved)
    if not meta.parent_hashes:
        raise InvalidInputError(f"commit {resolved[:12]} has no parent: nothing to revert to")
    parent = meta.parent_hashes[0]
    changes = store.diff("@" + parent, "@" + resolved)
    if not changes:
        raise InvalidInputError(f"commit {resolved[:12]} changed no content: nothing to revert")
    current = store.get_contents("@" + head.hash, [c.key for c in changes])
    conflicts: list[Conflict] = []
    operations: list[Operation] = []
    for change in changes:
        now = current.get(change.key)
        if now != change.to_content:
            why = "deleted since" if now is None else "changed again since"
            conflicts.append(
                Conflict(
                    change.key,
                    ConflictType.VALUE_DIFFERS,
                    f"{why} commit {resolved[:12]} on {head.name}",
                )
            )
            continue
        if change.from_content is None:
            operations.append(Delete(change.key))
        elif now is None:  # the commit deleted it: bring it back as new content
            operations.append(Put(change.key, with_id(change.from_content, None)))
        else:
            operations.append(Put(change.key, with_id(change.from_content, now.id)))
    if conflicts:
        raise CommitConflictError(conflicts, action=f"revert of {resolved[:12]}")
    # namespaces: create enclosing ones first, delete children before their namespace
    operations.sort(key=_apply_order)
    text = message or f'Revert "{meta.message.splitlines()[0] if meta.message else resolved[:12]}"'
    return store.commit(
        head.name,
        operations,
        CommitMeta(
            message=f"{text}\n\nThis reverts commit {resolved}.",
            author=author,
            properties={"lakehouse.revert": resolved},
        ),
        expected_hash=head.hash,
    )


def _apply_order(op: Operation) -> tuple[bool, int]:
    depth = len(op.key.elements)
    return (True, -depth) if isinstance(op, Delete) else (False, depth)


@dataclass(frozen=True)
class PrunedBranch:
    """A branch :func:`prune_branches` deleted (or would delete on a dry run)."""

    name: str
    hash: str
    age: dt.timedelta

    def to_json(self) -> dict[str, object]:
        """JSON form."""
        return {"name": self.name, "hash": self.hash, "age_seconds": int(self.age.total_seconds())}


_STAMP = re.compile(r"(\d{8}T\d{6}Z)")


def branch_time(store: VersionStore, branch: Branch) -> dt.datetime | None:
    """When ``branch`` was last active: its head's commit time, or a later time in its name.

    A run branch's name carries its start (``run/p/20260101T120000Z-ab12cd``): a run
    that has not committed yet still counts as new.
    """
    times: list[dt.datetime] = []
    meta = store.commit_meta(branch.hash)
    if meta.commit_time is not None:
        times.append(meta.commit_time.astimezone(dt.UTC))
    match = _STAMP.search(branch.name)
    if match:
        stamp = dt.datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
        times.append(stamp)
    return max(times) if times else None


def prune_branches(
    store: VersionStore,
    *,
    pattern: str = "*",
    older_than: dt.timedelta | None = None,
    keep: Sequence[str] = (),
    when: Callable[[CommitMeta], bool] | None = None,
    dry_run: bool = False,
    now: dt.datetime | None = None,
) -> list[PrunedBranch]:
    """Delete the branches whose name matches ``pattern`` (``fnmatch``, ``*`` spans ``/``).

    Only branches idle for at least ``older_than`` (see :func:`branch_time`), whose head
    commit satisfies ``when`` if given; never the default branch nor one in ``keep``.
    Each delete expects the head it was judged by: a branch that moved meanwhile stays.
    ``dry_run`` deletes nothing. Returns the branches deleted (or that would be).
    """
    moment = now or dt.datetime.now(dt.UTC)
    protected = {store.default_branch, *keep}
    pruned: list[PrunedBranch] = []
    for ref in store.list_references():
        if not isinstance(ref, Branch) or ref.name in protected:
            continue
        if not fnmatch.fnmatchcase(ref.name, pattern):
            continue
        when_active = branch_time(store, ref)
        age = moment - when_active if when_active else dt.timedelta(0)
        if older_than is not None and (when_active is None or age < older_than):
            continue
        if when is not None and not when(store.commit_meta(ref.hash)):
            continue
        if not dry_run:
            try:
                store.delete_reference(ref.name, ref.hash, type=ReferenceType.BRANCH)
            except (ReferenceConflictError, ReferenceNotFoundError):
                continue  # moved or gone since listed: not ours to delete
        pruned.append(PrunedBranch(ref.name, ref.hash, age))
    return pruned


_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_age(text: str) -> dt.timedelta:
    """Parse an age such as ``7d``, ``12h``, ``30m``, ``2w`` (InvalidInputError otherwise)."""
    match = _DURATION.match(text)
    if not match:
        raise InvalidInputError(f"invalid age {text!r}: use a number and s, m, h, d or w (7d)")
    return dt.timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


__all__ = [
    "MergeStrategy",
    "PrunedBranch",
    "branch_time",
    "commit_spec",
    "parse_age",
    "prune_branches",
    "reset_branch",
    "revert",
]
