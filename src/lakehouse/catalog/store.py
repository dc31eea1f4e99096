"""The contract of the versioned catalog: :class:`VersionStore`.

One abstract class, implemented by :mod:`lakehouse.catalog.sql_store` (SQLite and
PostgreSQL, in-process) and by :mod:`lakehouse.catalog.nessie_store` (any server
speaking Nessie's REST API v2: the real Nessie server or ``lakehouse serve``). A
single behaviour test suite runs against every implementation.

Rules every implementation follows (DESIGN §3):

* ``main`` exists from the start; reference names are validated.
* A commit goes to a branch. With ``expected_hash`` older than the head, it still
  lands if none of its keys changed since ``expected_hash``; otherwise it fails with
  :class:`~lakehouse.errors.CommitConflictError` naming each key and why. A commit
  lands atomically or not at all.
* New content carries no id (the store assigns one); an update must carry the
  existing id; a rename is a delete plus a put with the same id. A key's enclosing
  namespace must exist; a namespace with children cannot be deleted.
* Merge finds the common ancestor; a key changed on both sides since then is a
  conflict unless its merge behaviour says otherwise; the result is one commit on
  the target with the source as second parent; nothing to merge means no commit.
* Tags and detached hashes are read-only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from lakehouse.catalog.model import (
    Branch,
    CommitMeta,
    CommitResult,
    Content,
    ContentKey,
    ContentMergeResult,
    Delete,
    DiffEntry,
    Entry,
    LogEntry,
    LogPage,
    MergeBehavior,
    MergeResult,
    Namespace,
    Operation,
    Put,
    Reference,
    ReferenceHistory,
    ReferenceType,
    RefSpec,
    RepositoryConfig,
    ResolvedContent,
)
from lakehouse.errors import (
    ConfigError,
    ContentNotFoundError,
    InvalidInputError,
    ReadOnlyReferenceError,
)

#: Anything naming a point in history: ``"main"``, ``"main@hash~1"``, a parsed spec, a reference.
RefLike = str | RefSpec | Reference


def validate_operations(operations: Sequence[Operation]) -> None:
    """Refuse a malformed commit before it reaches any backend.

    At least one operation; a key at most once — except the replacement Nessie allows,
    a delete followed by a put of new content; a namespace put at its own key.
    """
    if not operations:
        raise InvalidInputError("a commit needs at least one operation")
    seen: dict[ContentKey, Operation] = {}
    for op in operations:
        earlier = seen.get(op.key)
        if earlier is not None and not (isinstance(earlier, Delete) and isinstance(op, Put)):
            raise InvalidInputError(f"key '{op.key}' appears twice in one commit")
        seen[op.key] = op
        if (
            isinstance(op, Put)
            and isinstance(op.content, Namespace)
            and op.content.elements != op.key.elements
        ):
            raise InvalidInputError(
                f"namespace content {'.'.join(op.content.elements)!r} "
                f"put at a different key '{op.key}'"
            )


def check_reference_type(name: str, actual: ReferenceType, wanted: ReferenceType | None) -> None:
    """Refuse an operation that names a branch as a tag or the reverse (Nessie: 400)."""
    if wanted is not None and ReferenceType(wanted) is not actual:
        raise InvalidInputError(
            f"'{name}' is a {actual.value.lower()}, not a {ReferenceType(wanted).value.lower()}"
        )


@dataclass(frozen=True)
class ResolvedRef:
    """A reference spec resolved to a commit.

    ``reference`` is the named branch/tag (``None`` for a detached ``@hash``);
    ``hash`` is the commit the spec points at after any relative parts, which may
    differ from ``reference.hash``.
    """

    reference: Reference | None
    hash: str

    @property
    def is_head_of_branch(self) -> bool:
        """True when this points at the current head of a branch (writable)."""
        return (
            self.reference is not None
            and self.reference.type is ReferenceType.BRANCH
            and self.reference.hash == self.hash
        )

    def __str__(self) -> str:
        if self.reference is None:
            return "@" + self.hash
        if self.reference.hash == self.hash:
            return self.reference.name
        return f"{self.reference.name}@{self.hash}"


class VersionStore(ABC):
    """Branches, tags, commits, contents, merges: the versioned catalog."""

    default_branch: str = "main"

    # -- references -------------------------------------------------------------------

    @abstractmethod
    def list_references(self) -> list[Reference]:
        """Every branch and tag, sorted by name."""

    @abstractmethod
    def get_reference(self, name: str) -> Reference:
        """The branch or tag called ``name`` (raises ReferenceNotFoundError)."""

    @abstractmethod
    def create_reference(
        self, name: str, type: ReferenceType, from_ref: RefLike | None = None
    ) -> Reference:
        """Create a branch or tag at ``from_ref`` (default: the default branch's head)."""

    @abstractmethod
    def assign_reference(
        self, name: str, expected_hash: str, to: RefLike, type: ReferenceType | None = None
    ) -> Reference:
        """Point ``name`` at ``to`` if it is still at ``expected_hash``."""

    @abstractmethod
    def delete_reference(
        self, name: str, expected_hash: str | None = None, type: ReferenceType | None = None
    ) -> None:
        """Delete ``name`` (if still at ``expected_hash`` when given). The default branch stays."""

    @abstractmethod
    def resolve(self, ref: RefLike | None = None) -> ResolvedRef:
        """Resolve a spec (``name``, ``name@hash``, ``@hash``, ``~N``, ``^N``, ``*time``)."""

    def writable_branch(self, ref: RefLike | None) -> Branch:
        """The branch ``ref`` names, or :class:`ReadOnlyReferenceError` for tags and hashes.

        A spec with a hash (``dev@abc``) is accepted: the hash becomes the expected hash.
        """
        resolved = self.resolve(ref)
        reference = resolved.reference
        if reference is None:
            raise ReadOnlyReferenceError(str(resolved), kind="detached commit")
        if reference.type is not ReferenceType.BRANCH:
            raise ReadOnlyReferenceError(reference.name, kind="tag")
        return Branch(reference.name, resolved.hash)

    # -- contents ---------------------------------------------------------------------

    @abstractmethod
    def get_contents(
        self, ref: RefLike | None, keys: Iterable[ContentKey]
    ) -> dict[ContentKey, Content]:
        """Contents of ``keys`` at ``ref``; absent keys are left out."""

    def get_content(self, ref: RefLike | None, key: ContentKey) -> Content:
        """Content of one key at ``ref`` (raises ContentNotFoundError)."""
        found = self.get_contents(ref, [key])
        if key not in found:
            raise ContentNotFoundError(str(key), str(ref or self.default_branch), key)
        return found[key]

    @abstractmethod
    def entries(
        self,
        ref: RefLike | None = None,
        *,
        prefix: ContentKey | None = None,
        with_content: bool = False,
    ) -> list[Entry]:
        """Every key at ``ref`` (inside namespace ``prefix`` if given), sorted."""

    # -- history ----------------------------------------------------------------------

    @abstractmethod
    def commit(
        self,
        branch: str,
        operations: Sequence[Operation],
        meta: CommitMeta | str = "",
        *,
        expected_hash: str | None = None,
    ) -> CommitResult:
        """Commit ``operations`` atomically on ``branch`` (see the module rules)."""

    @abstractmethod
    def log(
        self,
        ref: RefLike | None = None,
        *,
        limit: int = 100,
        page_token: str | None = None,
        fetch_operations: bool = False,
    ) -> LogPage:
        """History of ``ref`` along first parents, newest first, one page at a time."""

    def iter_log(
        self, ref: RefLike | None = None, *, fetch_operations: bool = False, page_size: int = 200
    ) -> Iterator[LogEntry]:
        """Every commit of ``ref``'s history, newest first."""
        token: str | None = None
        while True:
            page = self.log(
                ref, limit=page_size, page_token=token, fetch_operations=fetch_operations
            )
            yield from page.entries
            if page.next_token is None:
                return
            token = page.next_token

    @abstractmethod
    def commit_meta(self, hash: str) -> CommitMeta:
        """Metadata of one commit."""

    @abstractmethod
    def diff(
        self, from_ref: RefLike, to_ref: RefLike, *, prefix: ContentKey | None = None
    ) -> list[DiffEntry]:
        """Keys whose content differs from ``from_ref`` to ``to_ref``, sorted."""

    @abstractmethod
    def merge(
        self,
        source: RefLike,
        into: str | None = None,
        *,
        expected_target_hash: str | None = None,
        default_behavior: MergeBehavior = MergeBehavior.NORMAL,
        key_behaviors: Mapping[ContentKey, MergeBehavior] | None = None,
        dry_run: bool = False,
        meta: CommitMeta | str | None = None,
        raise_on_conflict: bool = True,
        resolved: Mapping[ContentKey, ResolvedContent] | None = None,
    ) -> MergeResult:
        """Merge ``source`` into branch ``into`` (default branch) as one commit.

        ``resolved`` gives, for keys changed on both sides, the content to put instead of
        a conflict, valid only while the target still holds the expected content there
        (Nessie's ``expectedTargetContent``/``resolvedContent``).

        Conflicts raise :class:`~lakehouse.errors.MergeConflictError` (the target is
        unchanged) unless ``raise_on_conflict`` is false, in which case they are
        returned in the result.
        """

    def merge_by_content(
        self,
        source: RefLike,
        into: str,
        *,
        expected_target_hash: str | None = None,
        default_behavior: MergeBehavior = MergeBehavior.NORMAL,
        key_behaviors: Mapping[ContentKey, MergeBehavior] | None = None,
        dry_run: bool = False,
        meta: CommitMeta | str | None = None,
        raise_on_conflict: bool = True,
    ) -> ContentMergeResult | None:
        """Run a content-aware merge where the catalog is, if the store offers that.

        ``None`` (this default, and every store that cannot) means "not here": the caller
        computes the merge itself (:func:`lakehouse.catalog.content_merge.content_merge`).
        A store that offers it — a server advertising the opt-in — returns the same result
        that function would return in process: one merge commit, checked against the
        target's expected hash and contents, and a :class:`~lakehouse.catalog.model.TableOutcome`
        per table changed on both sides.
        """
        return None

    @abstractmethod
    def transplant(
        self,
        hashes: Sequence[str],
        into: str | None = None,
        *,
        expected_target_hash: str | None = None,
        default_behavior: MergeBehavior = MergeBehavior.NORMAL,
        key_behaviors: Mapping[ContentKey, MergeBehavior] | None = None,
        dry_run: bool = False,
        raise_on_conflict: bool = True,
    ) -> MergeResult:
        """Cherry-pick commits (oldest first) onto branch ``into``, one commit each."""

    # -- reference history and repository config (Nessie spec 2.1/2.2) -----------------

    def reference_history(
        self, name: str, limit: int | None = None, *, scan_commits: int | None = None
    ) -> ReferenceHistory:
        """The recorded recent heads of branch or tag ``name`` (its reflog), newest first.

        Every change of the reference's head (its creation, commits, merges,
        transplants, assignments) is recorded; a store keeps a bounded number of them
        (see the store). ``limit`` caps the previous heads returned. ``scan_commits``
        checks that many commits of the log from the head (the combined result is
        :attr:`ReferenceHistory.commit_log`). Raises ``ReferenceNotFoundError``.
        """
        raise ConfigError(f"reference history is not supported by {type(self).__name__}")

    def repository_config(self, types: Iterable[str]) -> list[RepositoryConfig]:
        """The repository config objects of ``types`` that exist (e.g. ``GARBAGE_COLLECTOR``).

        An unknown type is :class:`InvalidInputError`.
        """
        raise ConfigError(f"repository config is not supported by {type(self).__name__}")

    def update_repository_config(self, config: RepositoryConfig) -> RepositoryConfig | None:
        """Create or replace the config object of ``config.type``; return the previous one."""
        raise ConfigError(f"repository config is not supported by {type(self).__name__}")

    # -- export and import (backups: lakehouse.ops) -------------------------------------

    def export_rows(
        self, references: Sequence[Reference] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every record needed to rebuild this catalog at ``references`` (default: all, now).

        The records (JSON-ready dicts with a ``kind``) are the store's own; only the same
        kind of store can import them. Stores that cannot export raise :class:`ConfigError`.
        """
        raise ConfigError(
            f"catalog export is not supported by {type(self).__name__}: this is a remote "
            "Nessie server; use Nessie's own export (nessie-server-admin-tool export)"
        )

    def import_rows(
        self, rows: Iterable[Mapping[str, Any]], *, erase: bool = False
    ) -> dict[str, int]:
        """Load :meth:`export_rows` records into this (empty) catalog, verifying every hash.

        Refuses a catalog that holds anything but the empty default branch unless
        ``erase``. All or nothing. Returns counts per record kind.
        """
        raise ConfigError(
            f"catalog import is not supported by {type(self).__name__}: this is a remote "
            "Nessie server; use Nessie's own import (nessie-server-admin-tool import)"
        )

    @contextmanager
    def commit_lock(
        self, branch: str, keys: Iterable[ContentKey], timeout: float
    ) -> Iterator[bool]:
        """Serialise the writers of ``keys`` on ``branch`` for the duration of the block.

        Advisory, and only a cost saver: commits stay optimistic (expected hash and
        per-key conflicts) whether the lock is held or not, so writers that queue here
        do not redo their work after every lost race. Waits at most ``timeout`` seconds,
        then goes on without it; yields whether it is held. Stores without such a lock
        (this default, remote Nessie servers) yield ``False`` at once.
        """
        yield False

    def close(self) -> None:
        """Release connections. The store is unusable afterwards."""
        return None

    def __enter__(self) -> VersionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = [
    "RefLike",
    "ResolvedRef",
    "VersionStore",
    "check_reference_type",
    "validate_operations",
]
