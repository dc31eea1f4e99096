"""Fixtures of the DAG tests (``dags/``).

Two tiers live here:

* ``test_nessie_client.py`` — fast, runs in the development venv: the ``nessie_client``
  helper against an embedded lakehouse, without Airflow;
* ``test_airflow_dags.py`` — integration tier, runs with the Python of the Airflow venv
  that ``scripts/services/airflow.sh`` installs (``make test-airflow``, part of
  ``make test-integration``). Where Airflow is not installed (the development venv) the
  file is not collected; in the Airflow venv a broken Airflow is a failure, not a skip.

Airflow reads its configuration when first imported, so the Airflow fixtures set
``AIRFLOW_HOME`` & co. before anything imports ``airflow``: each session gets its own
metadata DB, a copy of the one ``airflow.sh`` migrated (or a fresh ``airflow db migrate``).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
PIPELINES_DIR = Path(__file__).resolve().parents[2] / "pipelines"


def _airflow_installed() -> bool:
    # by distribution, not by `import airflow`: the repo's airflow/ folder (constraints)
    # would pass for a namespace package
    try:
        importlib.metadata.distribution("apache-airflow-core")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


collect_ignore_glob = [] if _airflow_installed() else ["test_airflow_*.py"]


@pytest.fixture(scope="session")
def nessie_client() -> ModuleType:
    """``dags/nessie_client.py``, imported as the DAGs import it (from the DAGs folder)."""
    spec = importlib.util.spec_from_file_location("nessie_client", DAGS_DIR / "nessie_client.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- Airflow (integration tier) -----------------------------------------------------------------


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private AIRFLOW_HOME with a migrated SQLite metadata DB, set in the environment."""
    if "airflow" in sys.modules:  # pragma: no cover - a guard against fixture misuse
        pytest.fail("airflow was imported before its configuration was set", pytrace=False)
    home = tmp_path_factory.mktemp("airflow_home")
    db = home / "airflow.db"
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{db}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }
    template = Path(os.environ.get("LAKEHOUSE_AIRFLOW_HOME") or os.environ.get("AIRFLOW_HOME", ""))
    if template.name and (template / "airflow.db").is_file():
        shutil.copyfile(template / "airflow.db", db)
    else:
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            env={**os.environ, **env},
            check=True,
            capture_output=True,
        )
    os.environ.update(env)
    return home


@pytest.fixture(scope="session")
def dagbag(airflow_home: Path) -> Any:
    """The DAGs folder parsed as Airflow's DAG processor parses it (a bundle on sys.path)."""
    from airflow.dag_processing.dagbag import BundleDagBag

    return BundleDagBag(DAGS_DIR, bundle_path=DAGS_DIR, bundle_name="dags-folder")


@pytest.fixture
def tiny_pipeline(tmp_path: Path) -> Iterator[Path]:
    """A small pipeline folder ``pipelines/tiny``: one CSV source, a silver and a gold model.

    Its check ``silver.orders`` amount not null fails when a row without amount arrives
    (write ``data/orders_2.csv`` with one).
    """
    folder = tmp_path / "pipelines" / "tiny"
    (folder / "data").mkdir(parents=True)
    (folder / "silver").mkdir()
    (folder / "gold").mkdir()
    (folder / "pipeline.yaml").write_text(
        "name: tiny\n"
        "sources:\n"
        "  - name: shop\n"
        "    type: folder\n"
        "    path: data\n"
        "    format: csv\n"
        "    tables:\n"
        "      - {table: orders, pattern: 'orders*.csv'}\n"
        "checks:\n"
        "  - {model: silver.orders, type: not_null, columns: [id, amount]}\n"
        "  - {model: gold.revenue, type: row_count, min: 1, max: 1}\n",
        encoding="utf-8",
    )
    (folder / "silver" / "orders.sql").write_text(
        "SELECT CAST(id AS BIGINT) AS id, CAST(amount AS DOUBLE) AS amount FROM bronze.orders\n",
        encoding="utf-8",
    )
    (folder / "gold" / "revenue.sql").write_text(
        "SELECT count(*) AS orders, sum(amount) AS revenue FROM silver.orders\n", encoding="utf-8"
    )
    (folder / "data" / "orders_1.csv").write_text(
        "id,amount\n1,10.5\n2,20.0\n3,30.25\n", encoding="utf-8"
    )
    yield folder
