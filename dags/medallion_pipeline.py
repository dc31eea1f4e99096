"""The medallion pipeline with write-audit-publish: raw → bronze → silver → gold, audited, merged.

One task group per layer, each calling the pipelines library (:mod:`lakehouse.pipelines`)
on the run's branch:

* ``branch`` — a new branch ``run/<pipeline>/<run-id>`` from ``main``; or, when a ref is
  given (run conf ``ref``, Airflow Variable or environment ``NESSIE_REF``), that branch,
  which is then written to and never merged;
* ``ingest`` — the pipeline's sources into their bronze tables;
* ``silver``, ``gold`` — that layer's SQL models, in dependency order;
* ``audit`` — the data-quality checks; a blocking failure fails the run here, so nothing
  is merged and the branch is kept for inspection;
* ``publish`` — merge the run branch into ``main`` (one merge commit), then delete it.

Configuration, highest first: the run's conf (``pipeline``, ``pipelines_dir``, ``ref``),
Airflow Variables (``LAKEHOUSE_HOME``, ``LAKEHOUSE_CATALOG__URI``,
``LAKEHOUSE_PIPELINES_DIR``, ``NESSIE_REF``), then the worker's environment (same names;
``LAKEHOUSE_PIPELINE`` sets the default pipeline). While the lakehouse is paused for
disaster recovery (``lakehouse dr pause``) a run skips all of its tasks.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import nessie_client
import pendulum
from airflow.sdk import Param, dag, task, task_group

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


def _run_part(
    lakehouse: dict[str, str],
    run: dict[str, Any],
    *,
    sources: bool = False,
    layer: str | None = None,
    checks: bool = False,
) -> dict[str, Any]:
    """Run one step of the pipeline on the run's branch with the library's runner.

    The step is :meth:`~lakehouse.pipelines.Pipeline.step` of the pipeline, run by
    :func:`~lakehouse.pipelines.run_pipeline` on the run branch (so it never merges).
    Fails the task when the runner reports a quarantined batch or a blocking check.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from lakehouse.pipelines import load_pipeline, run_pipeline

    part = load_pipeline(run["pipeline_path"]).step(
        sources=sources, layers=[layer] if layer else [], checks=checks
    )
    with nessie_client.connect(**lakehouse) as lh:
        result = run_pipeline(lh, part, ref=run["branch"], run_id=run["run_id"], in_place=True)
    if not result.ok:
        problems = [f"{c.name}: {c.message}" for c in result.failed_checks]
        problems += [f"{i.table} quarantined: {i.message}" for i in result.quarantined]
        raise AirflowFailException(
            f"{result.status}: {'; '.join(problems[:10])}; "
            f"branch '{run['branch']}' kept, nothing merged"
        )
    return result.to_json()


@dag(
    dag_id="medallion_pipeline",
    description="raw -> bronze -> silver -> gold with write-audit-publish on a branch",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": dt.timedelta(minutes=5), "owner": "lakehouse"},
    params={
        "pipeline": Param(os.environ.get("LAKEHOUSE_PIPELINE", "tpch"), type="string"),
        "pipelines_dir": Param("", type="string", description="default: the repo's pipelines/"),
        "ref": Param("", type="string", description="work on this branch, do not merge"),
    },
    tags=["lakehouse", "pipeline"],
    doc_md=__doc__,
)
def medallion_pipeline() -> None:
    @task_group
    def branch() -> Any:
        @task
        def ensure_not_paused(lakehouse: dict[str, str]) -> None:
            """Skip the run while the lakehouse is paused for disaster recovery."""
            from airflow.sdk.exceptions import AirflowSkipException

            from lakehouse.ops.dr import ensure_not_paused
            from lakehouse.ops.errors import PausedError

            with nessie_client.connect(**lakehouse) as lh:
                try:
                    ensure_not_paused(lh, "pipeline runs")
                except PausedError as exc:
                    raise AirflowSkipException(str(exc)) from exc

        @task
        def create_run_branch(
            lakehouse: dict[str, str], pipeline: str, pipelines_dir: str, ref: str
        ) -> dict[str, Any]:
            """The branch this run writes: ``ref`` when given, else a new run branch."""
            from lakehouse.pipelines import load_pipeline
            from lakehouse.pipelines.runner import new_run_id, run_branch

            loaded = load_pipeline(pipeline, pipelines_dir or PIPELINES_DIR)
            run_id = new_run_id()
            with nessie_client.connect(**lakehouse) as lh:
                given = ref or lh.settings.ref
                target = None if given else lh.default_branch
                name = given or run_branch(loaded.name, run_id)
                if target is not None:
                    nessie_client.create_branch(lh, name, from_ref=target)
            return {
                "pipeline": loaded.name,
                "pipeline_path": str(loaded.path),
                "run_id": run_id,
                "branch": name,
                "target": target,
            }

        guard = ensure_not_paused(LAKEHOUSE)
        run = create_run_branch(LAKEHOUSE, PIPELINE, PIPELINES, REF)
        guard >> run
        return run

    @task_group
    def ingest(run: Any) -> Any:
        @task
        def load_bronze(lakehouse: dict[str, str], run: dict[str, Any]) -> dict[str, Any]:
            """Every source of the pipeline into its bronze tables."""
            return _run_part(lakehouse, run, sources=True)

        return load_bronze(LAKEHOUSE, run)

    @task_group
    def silver(run: Any) -> Any:
        @task
        def build_silver(lakehouse: dict[str, str], run: dict[str, Any]) -> dict[str, Any]:
            """The silver models."""
            return _run_part(lakehouse, run, layer="silver")

        return build_silver(LAKEHOUSE, run)

    @task_group
    def gold(run: Any) -> Any:
        @task
        def build_gold(lakehouse: dict[str, str], run: dict[str, Any]) -> dict[str, Any]:
            """The gold models."""
            return _run_part(lakehouse, run, layer="gold")

        return build_gold(LAKEHOUSE, run)

    @task_group
    def audit(run: Any) -> Any:
        @task
        def run_checks(lakehouse: dict[str, str], run: dict[str, Any]) -> dict[str, Any]:
            """The data-quality checks; a blocking failure stops the run before publishing."""
            return _run_part(lakehouse, run, checks=True)

        return run_checks(LAKEHOUSE, run)

    @task_group
    def publish(run: Any) -> Any:
        @task
        def merge_run(lakehouse: dict[str, str], run: dict[str, Any]) -> dict[str, Any]:
            """Merge the audited run branch into ``main`` in one commit."""
            from airflow.sdk.exceptions import AirflowSkipException

            if run["target"] is None:
                raise AirflowSkipException(f"ran on the given ref '{run['branch']}': no merge")
            message = (
                f"Run {run['run_id']} of pipeline {run['pipeline']}: success "
                f"(merged {run['branch']})"
            )
            with nessie_client.connect(**lakehouse) as lh:
                return nessie_client.merge_branch(
                    lh, run["branch"], into=run["target"], message=message
                )

        @task
        def delete_run_branch(lakehouse: dict[str, str], run: dict[str, Any]) -> None:
            """Delete the merged run branch."""
            with nessie_client.connect(**lakehouse) as lh:
                nessie_client.delete_branch(lh, run["branch"])

        merged = merge_run(LAKEHOUSE, run)
        merged >> delete_run_branch(LAKEHOUSE, run)
        return merged

    run = branch()
    bronze = ingest(run)
    built_silver = silver(run)
    built_gold = gold(run)
    audited = audit(run)
    published = publish(run)
    bronze >> built_silver >> built_gold >> audited >> published


medallion_pipeline()
