"""How far references are from the default branch: commits ahead, behind, common ancestor.

The numbers Nessie reports as ``ReferenceMetadata`` (``fetch=ALL``), shared by the REST API
(:mod:`lakehouse.server.api_v2`) and the console's references page. A
:class:`ReferenceCounter` walks the default branch's history once (first parents), then
each reference only back to where it meets that history: counting many references costs
the length of the default branch plus each reference's commits since it forked.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from lakehouse.catalog.model import NO_ANCESTOR, Reference, ReferenceType, RefSpec
from lakehouse.catalog.store import VersionStore


@dataclass(frozen=True)
class RefCounts:
    """Commit counts of a reference (``None``: not reported).

    ``total`` counts the commits along first parents from the head; ``ahead``, ``behind``
    and ``common_ancestor`` compare a branch with the default branch (not reported for the
    default branch itself, nor for tags).
    """

    total: int | None = None
    ahead: int | None = None
    behind: int | None = None
    common_ancestor: str | None = None


def first_parents(store: VersionStore, hash_: str) -> Iterator[str]:
    """``hash_`` and its first-parent ancestors, newest first (not the root)."""
    if hash_ == NO_ANCESTOR:
        return
    for entry in store.iter_log(RefSpec(None, hash_), page_size=500):
        if entry.meta.hash is not None:
            yield entry.meta.hash


class ReferenceCounter:
    """Counts for the references of one request (the default branch is read once, lazily)."""

    def __init__(self, store: VersionStore) -> None:
        self._store = store
        self._index: dict[str, int] | None = None  # default branch: hash -> commits behind head

    def _default_index(self) -> dict[str, int]:
        if self._index is None:
            head = self._store.get_reference(self._store.default_branch).hash
            self._index = {h: n for n, h in enumerate(first_parents(self._store, head))}
        return self._index

    def __call__(self, reference: Reference) -> RefCounts:
        """The counts of ``reference`` against the default branch."""
        on_default = self._default_index()
        is_default = (
            reference.type is ReferenceType.BRANCH and reference.name == self._store.default_branch
        )
        if is_default:
            return RefCounts(total=len(on_default))
        ahead = 0
        common: str | None = None
        for h in first_parents(self._store, reference.hash):
            if h in on_default:
                common = h
                break
            ahead += 1
        total = ahead + (len(on_default) - on_default[common] if common is not None else 0)
        if reference.type is not ReferenceType.BRANCH:
            return RefCounts(total=total)
        if common is None:  # no commit in common: both histories start at the root
            return RefCounts(total, ahead, len(on_default), NO_ANCESTOR)
        return RefCounts(total, ahead, on_default[common], common)


__all__ = ["RefCounts", "ReferenceCounter", "first_parents"]
