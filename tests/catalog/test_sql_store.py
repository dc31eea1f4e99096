"""SqlStore specifics: a history walk from a cold process reads commits in few statements.

The behaviour every store shares is in ``test_store_behaviour.py``; this file pins what
only the SQL store promises: the merge base of two branches far from their fork is
found by a process that has never read those commits (a fresh ``lakehouse merge``, an
Airflow task, a restarted server) in a handful of statements, not one per commit.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from lakehouse.catalog.merge import common_ancestor
from lakehouse.catalog.model import ContentKey, IcebergTable, Namespace, Put, ReferenceType
from lakehouse.catalog.sql_store import SqlStore

NS = ContentKey.of("bronze")
ON_MAIN = ContentKey.of("bronze", "on_main")
ON_DEV = ContentKey.of("bronze", "on_dev")
SHARED = ContentKey.of("bronze", "shared")
COMMITS_A_SIDE = 150


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A new, empty catalog database on each SQL backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('catalog')}/catalog.db"
    return str(request.getfixturevalue("fresh_postgres_url"))


def put(store: SqlStore, branch: str, key: ContentKey, n: int) -> str:
    existing = store.get_contents(branch, [key]).get(key)
    content = IcebergTable(
        f"file:///wh/iceberg-metadata/{key}-v{n}.metadata.json",
        snapshot_id=n,
        id=existing.id if existing else None,
    )
    return store.commit(branch, [Put(key, content)], f"put {key} v{n}").hash


@pytest.fixture
def history(url: str) -> Iterator[dict[str, str]]:
    """``main`` and ``dev`` with COMMITS_A_SIDE commits each since ``dev`` last merged ``main``.

    ``dev`` forks, both sides commit, ``dev`` merges ``main`` (a commit with a merge
    parent), then both sides commit COMMITS_A_SIDE more times: the merge base of ``dev``
    into ``main`` is the ``main`` commit that merge brought in, reached only through the
    merge parent.
    """
    store = SqlStore(url)
    store.commit("main", [Put(NS, Namespace(NS.elements))], "create namespace")
    put(store, "main", SHARED, 0)
    fork = store.get_reference("main").hash
    store.create_reference("dev", ReferenceType.BRANCH, f"@{fork}")
    put(store, "dev", ON_DEV, 0)
    base = put(store, "main", ON_MAIN, 0)
    store.merge("main", "dev")
    for n in range(1, COMMITS_A_SIDE + 1):
        put(store, "main", ON_MAIN, n)
        put(store, "dev", ON_DEV, n)
    store.close()
    yield {"fork": fork, "base": base}


def statements(store: SqlStore) -> list[str]:
    """Every SQL statement ``store`` runs from now on (appended as they run)."""
    seen: list[str] = []

    def record(*args: object) -> None:
        seen.append(str(args[2]))

    sa.event.listen(store.engine, "before_cursor_execute", record)
    return seen


def test_a_cold_store_finds_the_merge_base_through_merge_parents(
    url: str, history: dict[str, str]
) -> None:
    store = SqlStore(url)
    try:
        result = store.merge("dev", "main", dry_run=True)
    finally:
        store.close()
    assert result.common_ancestor == history["base"]
    assert result.was_successful


def test_a_cold_store_reads_the_history_since_the_fork_in_a_few_statements(
    url: str, history: dict[str, str]
) -> None:
    store = SqlStore(url)
    try:
        ran = statements(store)
        store.merge("dev", "main", dry_run=True)
    finally:
        store.close()
    reads = [s for s in ran if "lh_commits" in s]
    # one statement per commit would be 2 * COMMITS_A_SIDE; read-ahead doubling its depth
    # takes about log2(COMMITS_A_SIDE) a side, plus the merge parent's chain
    assert len(reads) <= 24, f"{len(reads)} statements read lh_commits"


def test_a_history_walk_reads_parents_and_generations_not_whole_commits(
    url: str, history: dict[str, str]
) -> None:
    # a commit row carries its operations (about a kilobyte each): a walk needs none
    store = SqlStore(url)
    try:
        ran = statements(store)
        result = store.merge("dev", "main", dry_run=True)
    finally:
        store.close()
    walks = [s for s in ran if "WITH RECURSIVE" in s]
    assert walks and result.common_ancestor == history["base"]
    assert not [s for s in walks if "operations" in s or "message" in s]


def test_a_warm_store_walks_the_history_without_reading_it_again(
    url: str, history: dict[str, str]
) -> None:
    store = SqlStore(url)
    try:
        store.merge("dev", "main", dry_run=True)
        ran = statements(store)
        again = store.merge("dev", "main", dry_run=True)
    finally:
        store.close()
    assert again.common_ancestor == history["base"]
    assert not [s for s in ran if "WITH RECURSIVE" in s]


def test_a_merge_after_its_dry_run_does_not_walk_the_history_again(
    url: str, history: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakehouse.catalog import sql_store

    walks: list[tuple[str, str]] = []

    def counted(a: str, b: str, lookup: sql_store.ParentsLookup) -> str | None:
        walks.append((a, b))
        return common_ancestor(a, b, lookup)

    monkeypatch.setattr(sql_store, "common_ancestor", counted)
    store = SqlStore(url)
    try:
        preview = store.merge("dev", "main", dry_run=True)
        merged = store.merge("dev", "main", expected_target_hash=preview.effective_target_hash)
    finally:
        store.close()
    assert len(walks) == 1
    assert merged.common_ancestor == preview.common_ancestor == history["base"]


def test_commit_rows_are_read_in_the_field_order_of_the_commit_record() -> None:
    from dataclasses import fields

    from lakehouse.catalog.sql_store import _Commit, commits_table

    assert [c.name for c in commits_table.columns] == [f.name for f in fields(_Commit)]
