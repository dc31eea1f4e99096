"""The Python API: :func:`connect` returns a :class:`Lakehouse`.

A :class:`Lakehouse` is a versioned catalog (a :class:`~lakehouse.catalog.store.VersionStore`)
plus a warehouse (where table files live). Every method is a thin call into the store or
into a :class:`~lakehouse.catalog.iceberg.RefCatalog`; the CLI calls the same methods::

    import lakehouse

    with lakehouse.connect() as lh:                     # settings from env / .env
        lh.create_branch("dev")
        orders = lh.branch("dev").table("bronze.orders")   # a PyIceberg Table on dev
        orders.append(rows)
        lh.branch("dev").merge_into("main")
        lh.create_tag("release-1", ref="main")

Git-like objects are nouns: :meth:`Lakehouse.branch`, :meth:`Lakehouse.tag` and
:meth:`Lakehouse.ref` return small handles bound to a name; they do not touch the
catalog until a method is called.

Heavy modules (PyIceberg, SQLAlchemy, pydantic) are imported when first needed, so
importing :mod:`lakehouse` stays fast.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakehouse.catalog import CATALOG_NAME, open_store, sqlite_path
from lakehouse.catalog.content_merge import TableOutcome
from lakehouse.catalog.content_merge import content_merge as merge_by_content
from lakehouse.catalog.model import (
    Branch,
    CommitMeta,
    CommitResult,
    ContentKey,
    ContentType,
    DiffEntry,
    Entry,
    LogEntry,
    MergeBehavior,
    MergeResult,
    Reference,
    ReferenceType,
    Tag,
    validate_ref_name,
)
from lakehouse.catalog.recovery import (
    MergeStrategy,
    PrunedBranch,
    commit_spec,
    prune_branches,
    reset_branch,
    revert,
)
from lakehouse.catalog.rowdiff import RowChanges, row_changes
from lakehouse.catalog.sqlite_refs import reference_head
from lakehouse.catalog.store import RefLike, ResolvedRef, VersionStore
from lakehouse.errors import ConfigError, InvalidInputError

if TYPE_CHECKING:
    from types import TracebackType

    import httpx
    import pyarrow as pa
    from pyiceberg.table import Table

    from lakehouse.catalog.iceberg import RefCatalog
    from lakehouse.catalog.oauth2 import ClientCredentials
    from lakehouse.config import OAuth2ClientSettings, Settings
    from lakehouse.pipelines import RunResult
    from lakehouse.query.result import QueryResult
    from lakehouse.storage.zones import Warehouse

logger = logging.getLogger(__name__)


def connect(
    uri_or_home: str | Path | None = None,
    *,
    create: bool = False,
    settings: Settings | None = None,
    **overrides: Any,
) -> Lakehouse:
    """Open a lakehouse.

    ``uri_or_home`` is either a catalog URL (anything with ``://``: ``sqlite:///…``,
    ``postgresql+psycopg://…``) or a home folder; ``None`` uses the settings
    (``LAKEHOUSE_HOME``, ``.env``, default ``./.lakehouse``). ``overrides`` are
    :class:`~lakehouse.config.Settings` fields (``warehouse=``, ``author=``,
    ``catalog={"uri": …}`` …) and win over the environment. Alternatively pass a
    ready ``settings`` object.

    With ``create=True`` the home folder, the warehouse buckets and the catalog
    database are created when missing (what ``lakehouse init`` does); otherwise a
    missing embedded catalog raises :class:`~lakehouse.errors.ConfigError`.

    An existing embedded (SQLite) catalog is opened on first use: a command that only
    resolves a branch or tag name reads it without importing SQLAlchemy
    (:mod:`lakehouse.catalog.sqlite_refs`).
    """
    if settings is None:
        from lakehouse.config import load_settings

        if uri_or_home is not None:
            text = str(uri_or_home)
            if "://" in text:
                catalog = dict(overrides.pop("catalog", None) or {})
                catalog["uri"] = text
                overrides["catalog"] = catalog
            else:
                overrides["home"] = Path(text)
        settings = load_settings(**overrides)
    elif uri_or_home is not None or overrides:
        raise TypeError("connect(): pass either settings or uri_or_home/overrides, not both")

    warehouse = _open_warehouse(settings)
    db_path = sqlite_path(settings.catalog_uri)
    if create:
        settings.home.mkdir(parents=True, exist_ok=True)
        if db_path is not None:
            db_path.parent.mkdir(parents=True, exist_ok=True)
        warehouse.ensure_local_dirs()
    elif db_path is not None and not db_path.exists():
        raise ConfigError(
            f"no lakehouse catalog at {db_path}: run `lakehouse init` "
            "(or point LAKEHOUSE_HOME / --home at an existing one)"
        )

    def open_catalog() -> VersionStore:
        return open_store(
            settings.catalog_uri,
            default_branch=settings.default_branch,
            token=settings.catalog.token,
            auth=_sign_in(settings),
        )

    lazy = db_path is not None and not create
    return Lakehouse(open_catalog if lazy else open_catalog(), warehouse, settings)


def _sign_in(settings: Settings) -> httpx.Auth | None:
    """How a remote catalog's requests are signed, beyond a static token.

    Client credentials when configured; else a person's stored sign-in (``lakehouse
    login``) when a login issuer is configured and no static token is set; else nothing.
    httpx is imported only when one is used.
    """
    catalog = settings.catalog
    if catalog.oauth2 is not None:
        return _client_credentials(catalog.oauth2)
    if catalog.login is not None and catalog.token is None:
        from lakehouse.catalog.login import StoredLogin, TokenFile

        return StoredLogin(
            catalog.login.issuer,
            catalog.login.client_id,
            token_file=TokenFile(catalog.login.token_file),
        )
    return None


def _client_credentials(oauth2: OAuth2ClientSettings) -> ClientCredentials:
    """The client-credentials flow of ``oauth2``."""
    from lakehouse.catalog.oauth2 import ClientCredentials

    return ClientCredentials(
        oauth2.client_id,
        oauth2.client_secret,
        issuer=oauth2.issuer,
        token_url=oauth2.token_url,
        scope=oauth2.scope,
    )


def _open_warehouse(settings: Settings) -> Warehouse:
    from lakehouse.storage.zones import Warehouse

    return Warehouse.from_uri(settings.warehouse_location)


@dataclass(frozen=True)
class Status:
    """Where a lakehouse is and what it holds (``lakehouse status``)."""

    settings: dict[str, Any]
    ref: str
    hash: str
    branches: int
    tags: int
    tables: int
    last_commit: CommitMeta | None

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            **self.settings,
            "ref": self.ref,
            "hash": self.hash,
            "branches": self.branches,
            "tags": self.tags,
            "tables": self.tables,
            "last_commit": self.last_commit.to_json() if self.last_commit else None,
        }


class Lakehouse:
    """A versioned catalog of Iceberg tables plus the warehouse holding their files.

    Get one from :func:`connect`; close it (or use ``with``) when done. ``store`` is the
    versioned catalog, or a function that opens it, called on first use.
    """

    def __init__(
        self,
        store: VersionStore | Callable[[], VersionStore],
        warehouse: Warehouse,
        settings: Settings,
    ) -> None:
        self._opened: VersionStore | None = None
        self._opener: Callable[[], VersionStore] | None = None
        if isinstance(store, VersionStore):
            self._opened = store
        else:
            self._opener = store
        self._open_lock = threading.Lock()
        self._warehouse = warehouse
        self._settings = settings

    # -- parts ------------------------------------------------------------------------

    @property
    def store(self) -> VersionStore:
        """The versioned catalog (opened now if it was not yet)."""
        return self._store

    @property
    def _store(self) -> VersionStore:
        store = self._opened
        if store is None:
            with self._open_lock:
                if self._opened is None:
                    assert self._opener is not None
                    self._opened = self._opener()
                store = self._opened
        return store

    @property
    def warehouse(self) -> Warehouse:
        """Where table files live."""
        return self._warehouse

    @property
    def settings(self) -> Settings:
        """The settings this lakehouse was opened with."""
        return self._settings

    @property
    def default_branch(self) -> str:
        """The branch merges target by default (``main``)."""
        return self._settings.default_branch

    @property
    def default_ref(self) -> str:
        """The reference reads use when none is given (``NESSIE_REF``, else ``main``)."""
        return self._settings.default_ref

    # -- references -------------------------------------------------------------------

    def references(self) -> list[Reference]:
        """Every branch and tag, sorted by name."""
        return self._store.list_references()

    def branches(self) -> list[Branch]:
        """Every branch, sorted by name."""
        return [r for r in self._store.list_references() if isinstance(r, Branch)]

    def tags(self) -> list[Tag]:
        """Every tag, sorted by name."""
        return [r for r in self._store.list_references() if isinstance(r, Tag)]

    def resolve(self, ref: RefLike | None = None) -> ResolvedRef:
        """Resolve a reference spec (``main``, ``dev@hash``, ``@hash``, ``main~2`` …)."""
        spec = self._ref(ref)
        if self._opened is None and isinstance(spec, str):
            # a catalog not opened yet: a branch or tag name is one row of the SQLite file
            database = sqlite_path(self._settings.catalog_uri)
            found = reference_head(database, spec) if database is not None else None
            if found is not None:
                kind, head = found
                return ResolvedRef(Reference.of(kind, spec, head), head)
        return self._store.resolve(spec)

    def create_branch(self, name: str, from_ref: RefLike | None = None) -> Branch:
        """Create branch ``name`` at ``from_ref`` (default: :attr:`default_ref`)."""
        created = self._store.create_reference(name, ReferenceType.BRANCH, self._ref(from_ref))
        assert isinstance(created, Branch)
        return created

    def create_tag(self, name: str, ref: RefLike | None = None) -> Tag:
        """Create tag ``name`` at ``ref`` (default: :attr:`default_ref`)."""
        created = self._store.create_reference(name, ReferenceType.TAG, self._ref(ref))
        assert isinstance(created, Tag)
        return created

    def delete_branch(self, name: str, expected_hash: str | None = None) -> None:
        """Delete branch ``name`` (only if still at ``expected_hash`` when given)."""
        self._store.delete_reference(name, expected_hash, type=ReferenceType.BRANCH)

    def delete_tag(self, name: str, expected_hash: str | None = None) -> None:
        """Delete tag ``name`` (only if still at ``expected_hash`` when given)."""
        self._store.delete_reference(name, expected_hash, type=ReferenceType.TAG)

    def branch(self, name: str) -> BranchRef:
        """A handle on branch ``name`` (which need not exist yet)."""
        return BranchRef(self, name)

    def tag(self, name: str) -> TagRef:
        """A handle on tag ``name`` (which need not exist yet)."""
        return TagRef(self, name)

    def ref(self, spec: str | None = None) -> Ref:
        """A read-only handle on any reference spec (default: :attr:`default_ref`)."""
        return Ref(self, spec or self.default_ref)

    # -- history ----------------------------------------------------------------------

    def log(
        self, ref: RefLike | None = None, limit: int | None = 100, *, operations: bool = False
    ) -> list[LogEntry]:
        """The newest ``limit`` commits of ``ref`` (all with ``None``), newest first."""
        entries = self._store.iter_log(
            self._ref(ref),
            fetch_operations=operations,
            page_size=max(1, min(limit or 200, 200)),
        )
        return list(itertools.islice(entries, limit))

    def diff(
        self, from_ref: RefLike, to_ref: RefLike, *, namespace: str | None = None
    ) -> list[DiffEntry]:
        """Keys whose content differs from ``from_ref`` to ``to_ref`` (inside ``namespace``)."""
        prefix = ContentKey.parse(namespace) if namespace else None
        return self._store.diff(from_ref, to_ref, prefix=prefix)

    def merge(
        self,
        source: RefLike,
        into: str | None = None,
        *,
        dry_run: bool = False,
        force_keys: Iterable[str | ContentKey] = (),
        drop_keys: Iterable[str | ContentKey] = (),
        message: str | None = None,
        expected_target_hash: str | None = None,
        raise_on_conflict: bool = True,
        strategy: MergeStrategy | str = MergeStrategy.NORMAL,
        content_merge: bool = True,
        meta: CommitMeta | None = None,
    ) -> MergeResult:
        """Merge ``source`` into branch ``into`` (default: the default branch) as one commit.

        With ``content_merge`` (the default), an Iceberg table changed on both sides is
        merged by content when the changes commute (:mod:`lakehouse.catalog.content_merge`);
        ``content_merge=False`` makes every such table a conflict, as in Nessie. ``meta``
        replaces the commit metadata built from ``message``.

        Keys changed on both sides conflict (:class:`~lakehouse.errors.MergeConflictError`,
        target unchanged) unless listed in ``force_keys`` (the source wins) or
        ``drop_keys`` (the target's version stays), or unless ``strategy`` resolves every
        such key: ``source-wins`` or ``target-wins`` (listed keys still win over it).
        ``dry_run`` computes without committing.
        """
        target = into or self.default_branch
        behaviors = _key_behaviors(force_keys, drop_keys)
        chosen = _strategy(strategy)
        meta = meta or CommitMeta(
            message=message or f"Merge {source} into {target}", author=self._settings.author
        )
        if content_merge:
            merged = merge_by_content(
                self._store,
                source,
                target,
                io_properties=self._settings.fileio_properties(),
                expected_target_hash=expected_target_hash,
                default_behavior=chosen.behavior,
                key_behaviors=behaviors or None,
                dry_run=dry_run,
                meta=meta,
                raise_on_conflict=raise_on_conflict,
            )
            return _with_resolutions(merged.result, merged.tables)
        return self._store.merge(
            source,
            target,
            expected_target_hash=expected_target_hash,
            default_behavior=chosen.behavior,
            key_behaviors=behaviors or None,
            dry_run=dry_run,
            meta=meta,
            raise_on_conflict=raise_on_conflict,
        )

    def transplant(
        self,
        hashes: Sequence[str],
        into: str | None = None,
        *,
        dry_run: bool = False,
        force_keys: Iterable[str | ContentKey] = (),
        drop_keys: Iterable[str | ContentKey] = (),
        raise_on_conflict: bool = True,
    ) -> MergeResult:
        """Cherry-pick commits ``hashes`` (oldest first) onto branch ``into``."""
        behaviors = _key_behaviors(force_keys, drop_keys)
        return self._store.transplant(
            hashes,
            into or self.default_branch,
            key_behaviors=behaviors or None,
            dry_run=dry_run,
            raise_on_conflict=raise_on_conflict,
        )

    def cherry_pick(
        self, hashes: Sequence[str], onto: str, *, dry_run: bool = False
    ) -> MergeResult:
        """Copy commits ``hashes`` (oldest first; specs resolved) onto branch ``onto``.

        Nessie's transplant: one new commit per commit picked; a key changed on
        ``onto`` since the picked commit's parent is a conflict (nothing committed).
        """
        if not hashes:
            raise InvalidInputError("cherry-pick needs at least one commit")
        resolved = [self._store.resolve(commit_spec(h)).hash for h in hashes]
        return self.transplant(resolved, onto, dry_run=dry_run)

    def reset_branch(self, name: str, to: RefLike, *, expected_hash: str | None = None) -> Branch:
        """Point branch ``name`` at ``to`` (Nessie's assign), if still at ``expected_hash``.

        See :func:`lakehouse.catalog.recovery.reset_branch`. The commits it pointed at
        stay reachable by hash (``lakehouse log -r @HASH``).
        """
        return reset_branch(self._store, name, to, expected_hash=expected_hash)

    def revert(
        self, commit: str, on: str | None = None, *, message: str | None = None
    ) -> CommitResult:
        """Commit on branch ``on`` (default: :attr:`default_ref`) the inverse of ``commit``.

        Conflicts (keys changed again since) raise :class:`~lakehouse.errors.CommitConflictError`
        naming each key; nothing is committed.
        """
        branch = self._store.writable_branch(self._ref(on)).name
        return revert(self._store, commit, branch, message=message, author=self._settings.author)

    def prune_branches(
        self,
        *,
        pattern: str | None = None,
        older_than: dt.timedelta | None = None,
        dry_run: bool = False,
    ) -> list[PrunedBranch]:
        """Delete branches matching ``pattern`` idle for ``older_than``; see the policy below.

        With neither argument, apply the retention policy: delete the run branches
        (``run/*``) of failed or interrupted runs idle for longer than the
        ``failed_run_retention_days`` setting. ``dry_run`` only lists them. ``older_than``
        needs ``pattern`` (:class:`InvalidInputError` without): every branch idle that long
        is rarely what is meant, and ``pattern="*"`` says so.
        """
        if pattern is None and older_than is None:
            from lakehouse.pipelines.retention import expire_failed_run_branches

            return expire_failed_run_branches(self, dry_run=dry_run)
        if pattern is None:
            raise InvalidInputError(
                "--older-than needs --pattern: name the branches to prune "
                "(--pattern 'run/*'; --pattern '*' for every branch but the default one)"
            )
        return prune_branches(self._store, pattern=pattern, older_than=older_than, dry_run=dry_run)

    def diff_rows(
        self, from_ref: RefLike, to_ref: RefLike, *, namespace: str | None = None
    ) -> list[RowChanges]:
        """Rows added and deleted per table from ``from_ref`` to ``to_ref``.

        Counted from the Iceberg snapshot summaries between the two refs' snapshots
        (:mod:`lakehouse.catalog.rowdiff`): no data file is read. Views and namespaces
        are left out.
        """
        from lakehouse.catalog.model import IcebergTable

        left, right = self.resolve(from_ref), self.resolve(to_ref)
        out: list[RowChanges] = []
        for entry in self.diff("@" + left.hash, "@" + right.hash, namespace=namespace):
            before, after = entry.from_content, entry.to_content
            if not isinstance(before, IcebergTable | None) or not isinstance(
                after, IcebergTable | None
            ):
                continue
            if before is None and after is None:
                continue
            name = str(entry.key)
            old = self.table(name, "@" + left.hash).metadata if before else None
            new = self.table(name, "@" + right.hash).metadata if after else None
            out.append(
                row_changes(
                    name,
                    old,
                    before.snapshot_id if before else None,
                    new,
                    after.snapshot_id if after else None,
                )
            )
        return out

    def diff_sample(
        self, table: str, from_ref: RefLike, to_ref: RefLike, limit: int = 10
    ) -> tuple[pa.Table, pa.Table]:
        """Up to ``limit`` rows of ``table`` added and deleted from ``from_ref`` to ``to_ref``.

        Reads both versions (row-level, with DuckDB's ``EXCEPT ALL``); a side without
        the table counts as empty.
        """
        import duckdb

        left, right = self.resolve(from_ref), self.resolve(to_ref)
        old = self._read_or_none(table, "@" + left.hash)
        new = self._read_or_none(table, "@" + right.hash)
        if old is None and new is None:
            raise InvalidInputError(f"table {table} exists on neither {from_ref} nor {to_ref}")
        if old is None:
            assert new is not None
            return new.slice(0, limit), new.schema.empty_table()
        if new is None:
            return old.schema.empty_table(), old.slice(0, limit)
        with duckdb.connect() as con:
            con.register("old_rows", old)
            con.register("new_rows", new)
            added = con.sql(
                f"SELECT * FROM new_rows EXCEPT ALL SELECT * FROM old_rows LIMIT {int(limit)}"
            ).to_arrow_table()
            deleted = con.sql(
                f"SELECT * FROM old_rows EXCEPT ALL SELECT * FROM new_rows LIMIT {int(limit)}"
            ).to_arrow_table()
        return added, deleted

    def _read_or_none(self, table: str, ref: str) -> pa.Table | None:
        from lakehouse.catalog.model import IcebergTable

        found = self._store.get_contents(ref, [ContentKey.parse(table)])
        if not isinstance(found.get(ContentKey.parse(table)), IcebergTable):
            return None
        return self.table(table, ref).scan().to_arrow()

    # -- tables -----------------------------------------------------------------------

    def catalog(self, ref: str | None = None) -> RefCatalog:
        """A PyIceberg catalog bound to ``ref`` (default: :attr:`default_ref`).

        Writes through it commit to that branch; on a tag or hash it is read-only.
        """
        from lakehouse.catalog.iceberg import AUTHOR, RefCatalog

        properties = self._settings.fileio_properties()
        if self._settings.author:
            properties[AUTHOR] = self._settings.author
        return RefCatalog(
            CATALOG_NAME, self._store, ref or self.default_ref, self._warehouse, **properties
        )

    def table(self, name: str, ref: str | None = None) -> Table:
        """Load table ``name`` (``namespace.table``) as it is on ``ref``."""
        return self.catalog(ref).load_table(name)

    def tables(self, ref: RefLike | None = None, *, namespace: str | None = None) -> list[Entry]:
        """Tables and views on ``ref`` (inside ``namespace`` when given), sorted by key."""
        prefix = ContentKey.parse(namespace) if namespace else None
        return [
            e
            for e in self._store.entries(self._ref(ref), prefix=prefix)
            if e.type is not ContentType.NAMESPACE
        ]

    def namespaces(self, ref: RefLike | None = None) -> list[ContentKey]:
        """Namespaces on ``ref``, sorted."""
        return [
            e.key for e in self._store.entries(self._ref(ref)) if e.type is ContentType.NAMESPACE
        ]

    # -- SQL and pipelines ------------------------------------------------------------

    def sql(self, query: str, ref: str | None = None) -> pa.Table:
        """Run ``query`` over the tables of ``ref`` (default: :attr:`default_ref`) with DuckDB.

        Tables are visible as ``namespace.table``; see :mod:`lakehouse.query`.
        """
        from lakehouse.query import sql

        return sql(self, query, ref)

    def fetch(
        self, query: str, ref: str | None = None, *, max_rows: int | None = None
    ) -> QueryResult:
        """Run ``query`` like :meth:`sql`; its rows as Python values, as ``lakehouse sql`` prints.

        A statement that names no table runs without pyarrow: :func:`lakehouse.query.fetch`.
        """
        from lakehouse.query import fetch

        return fetch(self, query, ref, max_rows=max_rows)

    def run(
        self,
        pipeline: str | Path,
        *,
        ref: str | None = None,
        run_id: str | None = None,
        pipelines_dir: str | Path | None = None,
    ) -> RunResult:
        """Run a pipeline with write-audit-publish; see :func:`lakehouse.pipelines.run_pipeline`."""
        from lakehouse.pipelines import run_pipeline

        return run_pipeline(self, pipeline, ref=ref, run_id=run_id, pipelines_dir=pipelines_dir)

    # -- state ------------------------------------------------------------------------

    def status(self, ref: RefLike | None = None) -> Status:
        """Settings (secrets masked) and the state of ``ref``."""
        resolved = self.resolve(ref)
        refs = self.references()
        at = "@" + resolved.hash
        head = self.log(at, limit=1)
        return Status(
            settings=self._settings.summary(),
            ref=str(resolved),
            hash=resolved.hash,
            branches=sum(1 for r in refs if isinstance(r, Branch)),
            tags=sum(1 for r in refs if isinstance(r, Tag)),
            tables=len(self.tables(at)),
            last_commit=head[0].meta if head else None,
        )

    def close(self) -> None:
        """Release the catalog's connections (if it was opened); publish this process's
        metrics if configured.

        Metrics go where the ``metrics`` settings say (a textfile, a Pushgateway; see
        :mod:`lakehouse.observability`): batch processes publish when they are done.
        """
        metrics = self._settings.metrics
        if metrics.textfile_dir is not None or metrics.pushgateway_url is not None:
            from lakehouse.observability import publish_metrics  # only when configured

            publish_metrics(self._settings)
        if self._opened is not None:
            self._opened.close()

    def __enter__(self) -> Lakehouse:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Lakehouse(catalog={self._settings.summary()['catalog']!r}, "
            f"warehouse={self._settings.summary()['warehouse']!r})"
        )

    def _ref(self, ref: RefLike | None) -> RefLike:
        return self.default_ref if ref is None else ref


def _strategy(value: MergeStrategy | str) -> MergeStrategy:
    try:
        return MergeStrategy(value)
    except ValueError:
        choices = ", ".join(m.value for m in MergeStrategy)
        raise InvalidInputError(f"unknown merge strategy {value!r}: use {choices}") from None


def _with_resolutions(result: MergeResult, tables: Sequence[TableOutcome]) -> MergeResult:
    """``result`` with each table merged by content described on its key's detail."""
    merged = {o.key: o.description for o in tables if o.merged}
    if not merged:
        return result
    details = tuple(
        replace(d, resolution=merged[d.key]) if d.key in merged and d.conflict is None else d
        for d in result.details
    )
    return replace(result, details=details)


def _key_behaviors(
    force_keys: Iterable[str | ContentKey], drop_keys: Iterable[str | ContentKey]
) -> dict[ContentKey, MergeBehavior]:
    def key(k: str | ContentKey) -> ContentKey:
        return k if isinstance(k, ContentKey) else ContentKey.parse(k)

    behaviors = {key(k): MergeBehavior.FORCE for k in force_keys}
    behaviors.update({key(k): MergeBehavior.DROP for k in drop_keys})
    return behaviors


@dataclass(frozen=True)
class Ref:
    """A read-only handle on a reference spec: ``lh.ref("main~1").table("bronze.orders")``."""

    lakehouse: Lakehouse = field(repr=False, compare=False)
    name: str

    def resolve(self) -> ResolvedRef:
        """The commit this handle points at now."""
        return self.lakehouse.resolve(self.name)

    @property
    def hash(self) -> str:
        """The commit hash this handle points at now."""
        return self.resolve().hash

    def catalog(self) -> RefCatalog:
        """A PyIceberg catalog bound to this reference."""
        return self.lakehouse.catalog(self.name)

    def table(self, name: str) -> Table:
        """Load table ``name`` as it is on this reference."""
        return self.lakehouse.table(name, self.name)

    def tables(self, namespace: str | None = None) -> list[Entry]:
        """Tables and views on this reference."""
        return self.lakehouse.tables(self.name, namespace=namespace)

    def log(self, limit: int | None = 100) -> list[LogEntry]:
        """The newest ``limit`` commits, newest first."""
        return self.lakehouse.log(self.name, limit)

    def diff(self, other: RefLike) -> list[DiffEntry]:
        """Keys whose content differs from this reference to ``other``."""
        return self.lakehouse.diff(self.name, other)

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class BranchRef(Ref):
    """A handle on a branch: ``lh.branch("dev").table("silver.orders")``, ``.merge_into()``."""

    def __post_init__(self) -> None:
        validate_ref_name(self.name)

    def create(self, from_ref: RefLike | None = None) -> BranchRef:
        """Create this branch at ``from_ref`` (default: the lakehouse's default ref)."""
        self.lakehouse.create_branch(self.name, from_ref)
        return self

    def delete(self) -> None:
        """Delete this branch."""
        self.lakehouse.delete_branch(self.name)

    def head(self) -> Branch:
        """The branch with its current hash (raises ReferenceNotFoundError)."""
        return self.lakehouse.store.writable_branch(self.name)

    def merge_into(
        self,
        target: str | None = None,
        *,
        dry_run: bool = False,
        force_keys: Iterable[str | ContentKey] = (),
        drop_keys: Iterable[str | ContentKey] = (),
        message: str | None = None,
    ) -> MergeResult:
        """Merge this branch into ``target`` (default: the default branch)."""
        return self.lakehouse.merge(
            self.name,
            target,
            dry_run=dry_run,
            force_keys=force_keys,
            drop_keys=drop_keys,
            message=message,
        )


@dataclass(frozen=True)
class TagRef(Ref):
    """A handle on a tag (read-only contents): ``lh.tag("release-1").table("gold.kpis")``."""

    def __post_init__(self) -> None:
        validate_ref_name(self.name)

    def create(self, ref: RefLike | None = None) -> TagRef:
        """Create this tag at ``ref`` (default: the lakehouse's default ref)."""
        self.lakehouse.create_tag(self.name, ref)
        return self

    def delete(self) -> None:
        """Delete this tag."""
        self.lakehouse.delete_tag(self.name)


__all__ = ["BranchRef", "Lakehouse", "Ref", "Status", "TagRef", "connect", "sqlite_path"]
