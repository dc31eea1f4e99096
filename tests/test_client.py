"""The Python API: connect(), Lakehouse and the branch/tag handles."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.exceptions import NoSuchTableError

import lakehouse
from lakehouse.catalog.model import Branch, ContentKey, IcebergTable, Namespace, Put, Tag
from lakehouse.catalog.store import ResolvedRef
from lakehouse.client import BranchRef, Lakehouse, TagRef, connect, sqlite_path
from lakehouse.config import load_settings
from lakehouse.errors import (
    ConfigError,
    InvalidInputError,
    MergeConflictError,
    ReadOnlyReferenceError,
    ReferenceAlreadyExistsError,
    ReferenceNotFoundError,
)

ROWS = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "amount": pa.array([1.0, 2.0, 3.0])})


@pytest.fixture
def lh(_isolate_lakehouse_config: Path) -> Iterator[Lakehouse]:
    """A new lakehouse in the isolated LAKEHOUSE_HOME."""
    with connect(create=True) as opened:
        yield opened


def put_namespace(lh: Lakehouse, branch: str, name: str) -> str:
    key = ContentKey.of(name)
    return lh.store.commit(branch, [Put(key, Namespace(key.elements))], f"add {name}").hash


def put_table(lh: Lakehouse, branch: str, key: str, location: str) -> str:
    content_key = ContentKey.parse(key)
    old = lh.store.get_contents(branch, [content_key]).get(content_key)
    content = IcebergTable(location, id=old.id if old else None)
    return lh.store.commit(branch, [Put(content_key, content)], f"write {key}").hash


# -- connect ------------------------------------------------------------------------------


def test_connect_refuses_a_missing_embedded_catalog(_isolate_lakehouse_config: Path) -> None:
    with pytest.raises(ConfigError, match="lakehouse init"):
        connect()
    assert not _isolate_lakehouse_config.exists()  # nothing was created by the failed call


def test_connect_create_makes_home_buckets_and_catalog(_isolate_lakehouse_config: Path) -> None:
    home = _isolate_lakehouse_config
    with connect(create=True) as lh:
        assert lh.settings.home == home
        assert [b.name for b in lh.branches()] == ["main"]
    assert (home / "catalog.db").is_file()
    for bucket in ("raw", "bronze", "silver", "gold", "iceberg-metadata"):
        assert (home / "warehouse" / bucket).is_dir()


def test_connect_by_home_path_or_catalog_uri(tmp_path: Path) -> None:
    home = tmp_path / "h"
    with connect(home, create=True) as lh:
        put_namespace(lh, "main", "bronze")
    with connect(str(home)) as lh:
        assert lh.log()[0].meta.message == "add bronze"
    with connect(f"sqlite:///{home}/catalog.db", warehouse=str(home / "warehouse")) as lh:
        assert lh.log()[0].meta.message == "add bronze"
        assert lh.settings.warehouse_location == str(home / "warehouse")


def test_connect_with_settings_object(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "s", author="ada")
    with connect(settings=settings, create=True) as lh:
        assert lh.settings is settings
    with pytest.raises(TypeError):
        connect(tmp_path, settings=settings)


def test_an_existing_embedded_catalog_resolves_names_as_its_store_does(
    _isolate_lakehouse_config: Path,
) -> None:
    # connect() opens an existing SQLite catalog on first use; until then a branch or tag
    # name is read from the file (lakehouse.catalog.sqlite_refs), with the store's answer
    with connect(create=True) as lh:
        root = lh.resolve("main").hash
        head = put_namespace(lh, "main", "bronze")
        lh.create_tag("v1", "main")
    with connect() as lh:
        assert lh.resolve() == ResolvedRef(Branch("main", head), head)
        assert lh.resolve("v1") == ResolvedRef(Tag("v1", head), head)
        assert lh.resolve("main~1").hash == root  # anything but a name: the store
        with pytest.raises(ReferenceNotFoundError, match="nope"):
            lh.resolve("nope")
        assert lh.resolve("main") == lh.store.resolve("main")
        assert lh.resolve("v1") == lh.store.resolve("v1")


def test_a_catalog_opened_on_first_use_still_refuses_a_newer_schema(
    _isolate_lakehouse_config: Path,
) -> None:
    with connect(create=True) as lh:
        db = sqlite_path(lh.settings.catalog_uri)
    assert db is not None
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE lh_meta SET value = '99' WHERE key = 'schema_version'")
    with connect() as lh, pytest.raises(InvalidInputError, match="newer"):
        lh.resolve("main")


def test_sqlite_path() -> None:
    assert sqlite_path("sqlite:////abs/catalog.db") == Path("/abs/catalog.db")
    assert sqlite_path("sqlite:///rel/catalog.db") == Path("rel/catalog.db")
    assert sqlite_path("sqlite:///:memory:") is None
    assert sqlite_path("sqlite://") is None
    assert sqlite_path("postgresql+psycopg://u@h/db") is None
    assert sqlite_path("/abs/catalog.db") == Path("/abs/catalog.db")


def test_package_exports_connect() -> None:
    assert lakehouse.connect is connect
    assert lakehouse.Lakehouse is Lakehouse


# -- references ---------------------------------------------------------------------------


def test_branches_and_tags(lh: Lakehouse) -> None:
    head = put_namespace(lh, "main", "bronze")
    dev = lh.create_branch("dev")
    assert dev == Branch("dev", head)
    tag = lh.create_tag("release-1", ref="main")
    assert tag == Tag("release-1", head)
    assert [b.name for b in lh.branches()] == ["dev", "main"]
    assert [t.name for t in lh.tags()] == ["release-1"]
    assert [r.name for r in lh.references()] == ["dev", "main", "release-1"]

    with pytest.raises(ReferenceAlreadyExistsError):
        lh.create_branch("dev")
    with pytest.raises(InvalidInputError, match="is a tag, not a branch"):
        lh.delete_branch("release-1")  # a tag is not a branch (Nessie: 400)
    lh.delete_tag("release-1")
    lh.delete_branch("dev")
    assert [r.name for r in lh.references()] == ["main"]


def test_the_default_branch_cannot_be_deleted(lh: Lakehouse) -> None:
    with pytest.raises(InvalidInputError):
        lh.delete_branch("main")


def test_defaults_follow_nessie_ref(
    _isolate_lakehouse_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with connect(create=True) as lh:
        lh.create_branch("dev")
        dev_head = put_namespace(lh, "dev", "bronze")
    monkeypatch.setenv("NESSIE_REF", "dev")
    with connect() as lh:
        assert lh.default_ref == "dev"
        assert lh.default_branch == "main"
        assert lh.resolve().hash == dev_head
        assert lh.log()[0].meta.message == "add bronze"
        assert lh.create_branch("feature").hash == dev_head
        assert lh.ref().name == "dev"


def test_handles_are_lazy_and_validate_names(lh: Lakehouse) -> None:
    handle = lh.branch("feature/x")
    assert isinstance(handle, BranchRef)
    assert "feature/x" not in [b.name for b in lh.branches()]
    assert handle.create() is handle
    assert handle.head().name == "feature/x"
    assert handle.hash == lh.resolve("main").hash
    with pytest.raises(InvalidInputError):
        lh.branch("bad..name")
    with pytest.raises(InvalidInputError):
        lh.tag("-x")
    tag = lh.tag("v1").create("feature/x")
    assert isinstance(tag, TagRef)
    with pytest.raises(ReadOnlyReferenceError):
        lh.branch("v1").head()
    tag.delete()
    handle.delete()
    assert [b.name for b in lh.branches()] == ["main"]


# -- history ------------------------------------------------------------------------------


def test_log_limit_and_diff(lh: Lakehouse) -> None:
    for name in ("a", "b", "c"):
        put_namespace(lh, "main", name)
    assert [e.meta.message for e in lh.log(limit=2)] == ["add c", "add b"]
    assert len(lh.log(limit=None)) >= 3
    lh.create_branch("dev", "main~2")
    diff = lh.diff("dev", "main")
    assert [str(d.key) for d in diff] == ["b", "c"]
    assert lh.branch("dev").diff("main") == diff
    assert [str(d.key) for d in lh.diff("dev", "main", namespace="c")] == []


def test_merge_dry_run_then_merge(lh: Lakehouse) -> None:
    put_namespace(lh, "main", "bronze")
    lh.create_branch("dev")
    put_table(lh, "dev", "bronze.orders", "file:///x/1.json")
    before = lh.resolve("main").hash

    dry = lh.merge("dev", dry_run=True)
    assert not dry.was_applied
    assert lh.resolve("main").hash == before

    result = lh.branch("dev").merge_into("main", message="publish orders")
    assert result.was_applied
    assert lh.resolve("main").hash == result.resultant_target_hash
    head = lh.log("main", limit=1)[0].meta
    assert head.message == "publish orders"
    assert len(head.parent_hashes) == 2
    assert lh.diff("main", "dev") == []


def test_merge_conflict_and_force_keys(lh: Lakehouse) -> None:
    put_namespace(lh, "main", "bronze")
    put_table(lh, "main", "bronze.orders", "file:///x/1.json")
    lh.create_branch("dev")
    put_table(lh, "dev", "bronze.orders", "file:///dev/2.json")
    put_table(lh, "main", "bronze.orders", "file:///main/2.json")
    before = lh.resolve("main").hash

    with pytest.raises(MergeConflictError) as info:
        lh.merge("dev")
    assert [str(c.key) for c in info.value.conflicts] == ["bronze.orders"]
    assert lh.resolve("main").hash == before
    assert lh.merge("dev", dry_run=True, raise_on_conflict=False).conflicts

    lh.merge("dev", drop_keys=["bronze.orders"])  # keep main's version
    table = lh.store.get_content("main", ContentKey.parse("bronze.orders"))
    assert isinstance(table, IcebergTable)
    assert table.metadata_location == "file:///main/2.json"


def test_merge_into_a_tag_is_refused(lh: Lakehouse) -> None:
    lh.create_branch("dev")
    put_namespace(lh, "dev", "bronze")
    lh.create_tag("release-1")
    with pytest.raises(ReadOnlyReferenceError):
        lh.merge("dev", into="release-1")


def test_transplant(lh: Lakehouse) -> None:
    lh.create_branch("dev")
    first = put_namespace(lh, "dev", "bronze")
    put_namespace(lh, "dev", "silver")
    result = lh.transplant([first], into="main")
    assert result.was_applied
    assert [str(e.key) for e in lh.store.entries("main")] == ["bronze"]


# -- tables -------------------------------------------------------------------------------


def test_tables_on_branches(lh: Lakehouse) -> None:
    main = lh.catalog("main")
    main.create_namespace("bronze")
    main.create_table("bronze.orders", schema=ROWS.schema).append(ROWS)
    assert [str(e.key) for e in lh.tables()] == ["bronze.orders"]
    assert [str(k) for k in lh.namespaces()] == ["bronze"]

    dev = lh.branch("dev").create()
    dev.table("bronze.orders").append(ROWS)
    assert len(lh.table("bronze.orders").scan().to_arrow()) == 3
    assert len(dev.table("bronze.orders").scan().to_arrow()) == 6

    dev.merge_into("main")
    assert len(lh.table("bronze.orders", ref="main").scan().to_arrow()) == 6

    release = lh.tag("release-1").create("main")
    assert len(release.table("bronze.orders").scan().to_arrow()) == 6
    with pytest.raises(ReadOnlyReferenceError):
        release.table("bronze.orders").append(ROWS)
    with pytest.raises(NoSuchTableError):
        lh.table("bronze.nope")


def test_commits_record_the_author(
    _isolate_lakehouse_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAKEHOUSE_AUTHOR", "ada")
    with connect(create=True) as lh:
        lh.catalog().create_namespace("bronze")
        lh.create_branch("dev")
        lh.catalog("dev").create_namespace("silver")
        lh.merge("dev")
        assert [e.meta.author for e in lh.log(limit=2)] == ["ada", "ada"]


def test_status(lh: Lakehouse) -> None:
    put_namespace(lh, "main", "bronze")
    lh.create_tag("t")
    status = lh.status()
    assert (status.ref, status.branches, status.tags, status.tables) == ("main", 1, 1, 0)
    assert status.last_commit is not None and status.last_commit.message == "add bronze"
    assert status.to_json()["hash"] == lh.resolve("main").hash
