"""An embedded lakehouse served by ``lakehouse serve`` in a thread, with a Spark session on it.

For the Spark integration tests that talk to our server: :func:`served_spark` starts the
server over a new embedded lakehouse, opens a second :class:`~lakehouse.client.Lakehouse`
whose Spark settings point at it, starts the process's Spark session and registers the
Iceberg catalogs asked for (``name → (ref, extra properties)``), each through the same
:func:`~lakehouse.pipelines.engines.spark.catalog_properties` the Spark engine uses.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from lakehouse.client import Lakehouse, connect
from lakehouse.pipelines.engines.spark import (
    catalog_conf,
    catalog_properties,
    spark_session,
    stop_spark_session,
)


@contextmanager
def served_spark(
    home: Path,
    catalogs: Mapping[str, tuple[str, Mapping[str, str]]],
    *,
    catalog_type: Literal["nessie", "rest"] = "nessie",
    branches: tuple[str, ...] = (),
) -> Iterator[tuple[Lakehouse, Any]]:
    """``(lakehouse, spark)`` over a new embedded lakehouse at ``home`` and our server on it.

    ``branches`` are created from ``main`` before the server starts.
    """
    from lakehouse.server.app import make_server, serving
    from lakehouse.server.iceberg_rest import IcebergRestSettings

    first = connect(home, create=True)
    for branch in branches:
        first.create_branch(branch)
    iceberg = IcebergRestSettings.from_settings(first.settings)
    server = make_server(first.store, "127.0.0.1", 0, log_level="warning", iceberg=iceberg)
    api = "iceberg" if catalog_type == "rest" else "api/v2"
    with serving(server) as port:
        lh = connect(
            home,
            spark={
                "master": "local[2]",
                "catalog_type": catalog_type,
                "catalog_uri": f"http://127.0.0.1:{port}/{api}",
                "conf": {"spark.sql.shuffle.partitions": "2"},
            },
        )
        try:
            spark = spark_session(lh.settings)
            for name, (ref, extra) in catalogs.items():
                properties = {**catalog_properties(lh.settings, ref), **extra}
                for key, value in catalog_conf(name, properties).items():
                    spark.conf.set(key, value)
            yield lh, spark
        finally:
            stop_spark_session()
            lh.close()
            first.close()
