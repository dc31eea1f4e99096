"""The public surface of the `lakehouse` package is deliberate: changing it fails here."""

from __future__ import annotations

import importlib.metadata

import lakehouse


def test_all_is_pinned() -> None:
    assert lakehouse.__all__ == ["Lakehouse", "__version__", "connect"]


def test_every_exported_member_exists_and_comes_from_the_client() -> None:
    for name in lakehouse.__all__:
        assert hasattr(lakehouse, name), name
    assert lakehouse.Lakehouse.__module__ == "lakehouse.client"
    assert lakehouse.connect.__module__ == "lakehouse.client"


def test_version_matches_the_installed_distribution() -> None:
    assert lakehouse.__version__ == importlib.metadata.version("lakehouse")
