"""Lakehouse: Apache Iceberg tables in a versioned catalog with git semantics.

Start with :func:`connect`::

    import lakehouse

    with lakehouse.connect() as lh:
        lh.create_branch("dev")
        lh.branch("dev").table("bronze.orders")
"""

from lakehouse.client import Lakehouse as Lakehouse
from lakehouse.client import connect as connect

__version__ = "0.1.0"

__all__ = ["Lakehouse", "__version__", "connect"]
