"""``dags/nessie_client.py``: the branch helper of the DAGs, against an embedded lakehouse.

Fast tier: no Airflow needed (the helper must not import it).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pyarrow as pa
import pytest

from lakehouse.client import Lakehouse
from lakehouse.errors import MergeConflictError, ReferenceNotFoundError

from .conftest import DAGS_DIR

ROWS = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "amount": pa.array([1.0, 2.0, 3.0])})


@pytest.fixture
def lh(nessie_client: ModuleType) -> Iterator[Lakehouse]:
    """A new embedded lakehouse in the isolated LAKEHOUSE_HOME, opened by the helper."""
    with nessie_client.connect(create=True) as opened:
        yield opened


def add_rows(lh: Lakehouse, branch: str, table: str = "bronze.orders") -> None:
    catalog = lh.catalog(branch)
    namespace = table.split(".")[0]
    if (namespace,) not in catalog.list_namespaces():
        catalog.create_namespace(namespace)
    if not catalog.table_exists(table):
        catalog.create_table(table, schema=ROWS.schema)
    catalog.load_table(table).append(ROWS)


def test_does_not_import_airflow() -> None:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import nessie_client; "
        "assert 'airflow' not in sys.modules, 'nessie_client imported airflow'"
    )
    subprocess.run([sys.executable, "-c", code, str(DAGS_DIR)], check=True)


def test_connect_reads_environment_and_arguments(
    nessie_client: ModuleType, tmp_path: Path, _isolate_lakehouse_config: Path
) -> None:
    with nessie_client.connect(create=True) as lh:  # LAKEHOUSE_HOME from the environment
        assert lh.settings.home == _isolate_lakehouse_config
    other = tmp_path / "other"
    with nessie_client.connect(str(other), create=True) as lh:
        assert lh.settings.home == other
    uri = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    with nessie_client.connect("", uri, create=True) as lh:  # "" = an unset Airflow Variable
        assert lh.settings.catalog_uri == uri
        assert lh.settings.home == _isolate_lakehouse_config


def test_branch_merge_and_delete(nessie_client: ModuleType, lh: Lakehouse) -> None:
    base = nessie_client.head(lh, "main")
    created = nessie_client.create_branch(lh, "feature/foo", from_ref="main")
    assert created == base
    assert nessie_client.list_branches(lh) == ["feature/foo", "main"]

    add_rows(lh, "feature/foo")
    dry = nessie_client.merge_branch(lh, "feature/foo", into="main", dry_run=True)
    assert dry["applied"] is False
    assert nessie_client.head(lh, "main") == base

    merged = nessie_client.merge_branch(lh, "feature/foo", message="ship foo")
    assert merged["applied"] is True
    assert merged["target"] == "main"
    assert merged["hash"] == nessie_client.head(lh, "main") != base
    assert lh.log("main", limit=1)[0].meta.message == "ship foo"
    assert lh.table("bronze.orders", "main").scan().to_arrow().num_rows == 3

    nessie_client.delete_branch(lh, "feature/foo")
    assert nessie_client.list_branches(lh) == ["main"]
    with pytest.raises(ReferenceNotFoundError):
        nessie_client.head(lh, "feature/foo")


def test_merge_conflict_leaves_target_unchanged(nessie_client: ModuleType, lh: Lakehouse) -> None:
    add_rows(lh, "main")
    nessie_client.create_branch(lh, "dev")
    # both sides rewrite the same data file: no content merge can keep both
    lh.catalog("dev").load_table("bronze.orders").overwrite(ROWS)
    lh.catalog("main").load_table("bronze.orders").overwrite(ROWS)
    before = nessie_client.head(lh, "main")
    with pytest.raises(MergeConflictError):
        nessie_client.merge_branch(lh, "dev")
    assert nessie_client.head(lh, "main") == before


def test_tag_release(nessie_client: ModuleType, lh: Lakehouse) -> None:
    add_rows(lh, "main")
    hash_ = nessie_client.tag_release(lh, "prod-20260101")
    assert hash_ == nessie_client.head(lh, "main")
    assert nessie_client.list_tags(lh) == ["prod-20260101"]
    add_rows(lh, "main")
    assert nessie_client.head(lh, "prod-20260101") == hash_ != nessie_client.head(lh, "main")


def test_approved_branches_are_merged(nessie_client: ModuleType, lh: Lakehouse) -> None:
    add_rows(lh, "main")
    for name in ("approved", "unapproved"):
        nessie_client.create_branch(lh, name)
        add_rows(lh, name, f"silver.{name}")
    approval = nessie_client.approve_branch(lh, "approved")
    assert approval["branch"] == "approved"
    assert nessie_client.list_approved_branches(lh) == ["approved"]

    dry = nessie_client.merge_approved_branches(lh, dry_run=True)
    assert [b["branch"] for b in dry["branches"] if b["state"] == "would-merge"] == ["approved"]
    assert not lh.tables("main", namespace="silver")

    report = nessie_client.merge_approved_branches(lh)
    states = {b["branch"]: b["state"] for b in report["branches"]}
    assert states["approved"] == "merged"
    assert states["unapproved"] == "not-approved"
    assert [str(e.key) for e in lh.tables("main", namespace="silver")] == ["silver.approved"]
