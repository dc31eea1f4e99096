"""Lakehouse: Apache Iceberg tables in a versioned catalog with git semantics.

Start with :func:`connect`::

    import lakehouse

    with lakehouse.connect() as lh:
        lh.create_branch("dev")
        lh.branch("dev").table("bronze.orders")

``connect`` and ``Lakehouse`` come from :mod:`lakehouse.client`, imported on first use:
importing a subpackage (``lakehouse.cli`` for ``lakehouse --help``, ``lakehouse.errors``)
does not load the client and the catalog behind it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lakehouse.client import Lakehouse as Lakehouse
    from lakehouse.client import connect as connect

__version__ = "0.1.0"

__all__ = ["Lakehouse", "__version__", "connect"]

_FROM_CLIENT = frozenset({"Lakehouse", "connect"})


def __getattr__(name: str) -> Any:
    """``lakehouse.connect`` and ``lakehouse.Lakehouse``, from :mod:`lakehouse.client` (PEP 562)."""
    if name in _FROM_CLIENT:
        from lakehouse import client

        value = getattr(client, name)
        globals()[name] = value  # once: later lookups are plain attribute reads
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_FROM_CLIENT})
