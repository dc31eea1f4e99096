"""Settings → PyIceberg FileIO properties and pyarrow file systems (no server needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
import pytest
from pyiceberg.io.pyarrow import PyArrowFileIO

import lakehouse
import lakehouse.storage
from lakehouse.config import S3Settings, load_settings
from lakehouse.errors import StorageError
from lakehouse.ingest._fs import resolve, storage_properties
from lakehouse.storage import Warehouse, arrow_filesystem, fileio_properties, s3_properties

ENDPOINT = "http://127.0.0.1:19000"
S3 = {"endpoint": ENDPOINT, "access_key_id": "key-id", "secret_access_key": "s3cr3t-value"}


def s3_client_args(fs: pafs.FileSystem) -> dict[str, Any]:
    """The arguments a pyarrow S3FileSystem was made with (no network involved)."""
    assert isinstance(fs, pafs.S3FileSystem)
    _, (kwargs,) = fs.__reduce__()
    return dict(kwargs)


def test_storage_exports_are_pinned() -> None:
    assert lakehouse.storage.__all__ == [
        "BUCKETS",
        "DEFAULT_ZONE",
        "METADATA_BUCKET",
        "ZONES",
        "TableLocations",
        "Warehouse",
        "arrow_filesystem",
        "fileio_properties",
        "s3_properties",
    ]


def test_s3_settings_map_to_pyiceberg_properties_with_path_style_access() -> None:
    props = s3_properties(S3Settings.model_validate({**S3, "region": "eu-west-1"}))
    assert props == {
        "s3.endpoint": ENDPOINT,
        "s3.region": "eu-west-1",
        "s3.access-key-id": "key-id",
        "s3.secret-access-key": "s3cr3t-value",
        "s3.force-virtual-addressing": "false",
    }


def test_custom_endpoint_without_region_gets_us_east_1_so_pyiceberg_never_asks_aws() -> None:
    assert s3_properties(S3Settings(endpoint=ENDPOINT))["s3.region"] == "us-east-1"


def test_virtual_host_addressing_when_path_style_is_off() -> None:
    props = s3_properties(S3Settings(endpoint=ENDPOINT, path_style_access=False))
    assert props["s3.force-virtual-addressing"] == "true"


def test_aws_without_endpoint_sets_only_what_is_given() -> None:
    assert s3_properties(S3Settings()) == {}
    assert s3_properties(S3Settings(region="eu-central-1")) == {"s3.region": "eu-central-1"}


def test_settings_give_s3_properties_only_for_an_s3_warehouse(tmp_path: Path) -> None:
    local = load_settings(s3=S3)
    assert fileio_properties(local) == {} == local.fileio_properties()

    for warehouse in ("s3://{bucket}", "s3a://lake/prefix", "S3://Lake"):
        on_s3 = load_settings(warehouse=warehouse, s3=S3)
        assert fileio_properties(on_s3)["s3.endpoint"] == ENDPOINT
        assert on_s3.fileio_properties() == fileio_properties(on_s3)
        assert on_s3.s3.fileio_properties() == s3_properties(on_s3.s3)


def test_settings_come_from_lakehouse_s3_environment_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE", "s3://{bucket}")
    monkeypatch.setenv("LAKEHOUSE_S3__ENDPOINT", ENDPOINT)
    monkeypatch.setenv("LAKEHOUSE_S3__ACCESS_KEY_ID", "env-key")
    monkeypatch.setenv("LAKEHOUSE_S3__SECRET_ACCESS_KEY", "env-secret")
    monkeypatch.setenv("LAKEHOUSE_S3__PATH_STYLE_ACCESS", "false")
    # Variables of scripts/services/minio.sh share the prefix but are not settings.
    monkeypatch.setenv("LAKEHOUSE_S3_PORT", "19000")
    props = load_settings().fileio_properties()
    assert props["s3.endpoint"] == ENDPOINT
    assert props["s3.access-key-id"] == "env-key"
    assert props["s3.secret-access-key"] == "env-secret"
    assert props["s3.force-virtual-addressing"] == "true"


def test_arrow_filesystem_for_s3_uses_the_same_endpoint_and_credentials() -> None:
    props = s3_properties(S3Settings.model_validate(S3))
    fs, path = arrow_filesystem("s3://raw/shop/2026/a.csv", props)
    args = s3_client_args(fs)
    assert path == "raw/shop/2026/a.csv"
    assert args["endpoint_override"] == ENDPOINT
    assert args["access_key"] == "key-id"
    assert args["secret_key"] == "s3cr3t-value"
    assert args["region"] == "us-east-1"
    assert args["force_virtual_addressing"] is False
    # The very client PyIceberg's FileIO builds for table files, from the same properties.
    io_fs = PyArrowFileIO(props).fs_by_scheme("s3", "raw")
    assert s3_client_args(io_fs) == args


def test_arrow_filesystem_is_reused_per_endpoint_and_credentials() -> None:
    props = s3_properties(S3Settings.model_validate(S3))
    first, _ = arrow_filesystem("s3://bronze/a", props)
    again, _ = arrow_filesystem("s3://bronze/b", dict(props))
    other, _ = arrow_filesystem("s3://bronze/a", {**props, "s3.access-key-id": "someone-else"})
    assert first is again
    assert other is not first
    assert s3_client_args(other)["access_key"] == "someone-else"


def test_arrow_filesystem_for_local_paths_and_file_uris(tmp_path: Path) -> None:
    for uri in (str(tmp_path), f"file://{tmp_path}"):
        fs, path = arrow_filesystem(uri)
        assert isinstance(fs, pafs.LocalFileSystem)
        assert path == str(tmp_path)


def test_arrow_filesystem_refuses_an_unknown_scheme() -> None:
    with pytest.raises(StorageError, match="cannot open 'nope://x/y'"):
        arrow_filesystem("nope://x/y")


def test_raw_landing_resolves_s3_through_the_shared_helper() -> None:
    props = s3_properties(S3Settings.model_validate(S3))
    ref = resolve("s3://raw", props)
    assert ref.uri == "s3://raw"
    assert ref.path == "raw"
    assert s3_client_args(ref.fs)["endpoint_override"] == ENDPOINT
    assert ref.child("shop", "a.csv").uri == "s3://raw/shop/a.csv"


def test_source_uris_resolve_with_the_warehouse_settings_during_an_ingest() -> None:
    props = s3_properties(S3Settings.model_validate(S3))
    with storage_properties(props):
        inside = resolve("s3://exports/in")
        explicit = resolve("s3://exports/in", {"s3.region": "eu-west-1"})
    assert s3_client_args(inside.fs)["endpoint_override"] == ENDPOINT
    assert s3_client_args(explicit.fs)["endpoint_override"] == ""
    assert s3_client_args(explicit.fs)["region"] == "eu-west-1"


def test_catalog_of_an_s3_lakehouse_gets_fileio_properties_from_settings(tmp_path: Path) -> None:
    # Embedded catalog (SQLite) with an S3 warehouse: explicit settings, no network needed.
    with lakehouse.connect(tmp_path / "home", create=True, warehouse="s3://{bucket}", s3=S3) as lh:
        assert lh.warehouse == Warehouse.s3()
        props = lh.catalog().properties
        assert props["s3.endpoint"] == ENDPOINT
        assert props["s3.secret-access-key"] == "s3cr3t-value"
        assert props["s3.force-virtual-addressing"] == "false"
        assert "s3cr3t-value" not in repr(lh) and "s3cr3t-value" not in repr(lh.settings)
        assert not (tmp_path / "home" / "warehouse").exists()
