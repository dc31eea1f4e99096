"""Fixtures of the TPC-H pipeline tests: a small generated data set and derived batches.

The data set comes from the shared cache (``~/.cache/lakehouse/tpch/sf0.01``, generated
once by ``tpchgen-cli`` in a few seconds); batches are written per session.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lakehouse import tpch

#: Small enough that a whole pipeline run takes seconds; big enough for every status,
#: flag and segment to occur (Q1 has its 4 groups, Q3 its 10 rows).
SCALE_FACTOR = 0.01
PIPELINE_DIR = Path(__file__).resolve().parents[2] / "pipelines" / "tpch"


@pytest.fixture(scope="session")
def tpch_data() -> Path:
    """Folder of the generated CSV files (``<table>.csv``)."""
    return tpch.generate(SCALE_FACTOR).path


@pytest.fixture(scope="session")
def change_batch(tpch_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tpch.ChangeBatch:
    """The deterministic CDC batch (orders and line items with ``_op``)."""
    return tpch.write_change_batch(tpch_data, tmp_path_factory.mktemp("changes"))


@pytest.fixture(scope="session")
def broken_batch(tpch_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tpch.BrokenBatch:
    """A batch the checks must reject."""
    return tpch.write_broken_batch(tpch_data, tmp_path_factory.mktemp("broken"))
