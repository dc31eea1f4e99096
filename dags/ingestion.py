"""Ingestion: land what is new at each source of a pipeline in ``raw``, load it into ``bronze``.

One mapped task per ``sources:`` entry of the pipeline's ``pipeline.yaml``, each a call to
:func:`lakehouse.ingest.ingest` (idempotent: files already loaded are skipped, so a retry
or a re-run loads nothing twice). A batch that does not fit its table is quarantined by
the library and fails its task, so somebody looks at it.

Configuration, highest first: the run's conf (``pipeline``, ``pipelines_dir``, ``ref``),
Airflow Variables (``LAKEHOUSE_HOME``, ``LAKEHOUSE_CATALOG__URI``,
``LAKEHOUSE_PIPELINES_DIR``, ``NESSIE_REF``), then the worker's environment (same names;
``LAKEHOUSE_PIPELINE`` sets the default pipeline). Without a ref the data goes to
``NESSIE_REF``, else ``main``. While the lakehouse is paused for disaster recovery
(``lakehouse dr pause``) a run skips all of its tasks; pausing this DAG in Airflow stops
new runs as well (runbook step 1).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import nessie_client
import pendulum
from airflow.sdk import Param, dag, task

LAKEHOUSE = {
    "home": "{{ var.value.get('LAKEHOUSE_HOME', '') }}",
    "catalog_uri": "{{ var.value.get('LAKEHOUSE_CATALOG__URI', '') }}",
}
#: Pipelines folder when neither the run nor a Variable names one: the repository's.
PIPELINES_DIR = os.environ.get("LAKEHOUSE_PIPELINES_DIR") or str(
    Path(__file__).resolve().parents[1] / "pipelines"
)
PIPELINE = "{{ params.pipeline }}"
PIPELINES = "{{ params.pipelines_dir or var.value.get('LAKEHOUSE_PIPELINES_DIR', '') }}"
REF = "{{ params.ref or var.value.get('NESSIE_REF', '') }}"


@dag(
    dag_id="ingestion",
    description="Sources of a pipeline -> raw landing -> bronze Iceberg tables",
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 3, "retry_delay": dt.timedelta(minutes=2), "owner": "lakehouse"},
    params={
        "pipeline": Param(os.environ.get("LAKEHOUSE_PIPELINE", "tpch"), type="string"),
        "pipelines_dir": Param("", type="string", description="default: the repo's pipelines/"),
        "ref": Param("", type="string", description="branch to load (default NESSIE_REF/main)"),
    },
    tags=["lakehouse", "ingestion"],
    doc_md=__doc__,
)
def ingestion() -> None:
    @task
    def ensure_not_paused(lakehouse: dict[str, str]) -> None:
        """Skip the run while the lakehouse is paused for disaster recovery."""
        from airflow.sdk.exceptions import AirflowSkipException

        from lakehouse.ops.dr import ensure_not_paused
        from lakehouse.ops.errors import PausedError

        with nessie_client.connect(**lakehouse) as lh:
            try:
                ensure_not_paused(lh, "ingestion")
            except PausedError as exc:
                raise AirflowSkipException(str(exc)) from exc

    @task
    def list_sources(pipeline: str, pipelines_dir: str) -> list[str]:
        """Names of the pipeline's sources."""
        from lakehouse.pipelines import load_pipeline

        return [s.name for s in load_pipeline(pipeline, pipelines_dir or PIPELINES_DIR).sources]

    @task(map_index_template="{{ source }}")
    def ingest_source(
        lakehouse: dict[str, str], pipeline: str, pipelines_dir: str, ref: str, source: str
    ) -> list[dict[str, Any]]:
        """Ingest one source into its bronze table(s)."""
        from airflow.sdk.exceptions import AirflowFailException

        from lakehouse.ingest import ingest
        from lakehouse.pipelines import load_pipeline

        loaded = load_pipeline(pipeline, pipelines_dir or PIPELINES_DIR)
        [found] = [s for s in loaded.sources if s.name == source]
        with nessie_client.connect(**lakehouse) as lh:
            results = ingest(lh, found, branch=ref or None)
        quarantined = [r.table for r in results if not r.ok]
        if quarantined:
            raise AirflowFailException(
                f"source {source}: batch quarantined for {', '.join(quarantined)} "
                "(see raw/_rejected/)"
            )
        return [r.to_json() for r in results]

    guard = ensure_not_paused(LAKEHOUSE)
    sources = list_sources(PIPELINE, PIPELINES)
    loaded = ingest_source.partial(
        lakehouse=LAKEHOUSE, pipeline=PIPELINE, pipelines_dir=PIPELINES, ref=REF
    ).expand(source=sources)
    guard >> sources >> loaded


ingestion()
