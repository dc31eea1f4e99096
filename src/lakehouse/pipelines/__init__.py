"""Pipelines: SQL models over the medallion layers, quality checks, write-audit-publish.

::

    import lakehouse
    from lakehouse.pipelines import run_pipeline

    with lakehouse.connect() as lh:
        result = run_pipeline(lh, "tpch")          # pipelines/tpch/pipeline.yaml
        if not result.ok:
            for check in result.failed_checks:
                print(check.name, check.failing_rows, check.sample)

A pipeline folder holds ``pipeline.yaml`` (sources, per-model settings, checks),
``silver/*.sql`` and ``gold/*.sql`` (one SELECT per file, building ``silver.<file>`` and
``gold.<file>``) and optional ``checks/*.sql`` (docs/pipelines-spec.md).

* :mod:`~lakehouse.pipelines.config` — the ``pipeline.yaml`` models;
* :mod:`~lakehouse.pipelines.definition` — loading a folder, dependencies, build order;
* :mod:`~lakehouse.pipelines.checks` — data-quality checks;
* :mod:`~lakehouse.pipelines.engines` — the engine interface and the DuckDB engine;
* :mod:`~lakehouse.pipelines.incremental` — incremental models: only new source rows;
* :mod:`~lakehouse.pipelines.runner` — write-audit-publish runs.
"""

from __future__ import annotations

from lakehouse.pipelines.checks import CheckResult as CheckResult
from lakehouse.pipelines.config import ModelConfig as ModelConfig
from lakehouse.pipelines.config import PipelineConfig as PipelineConfig
from lakehouse.pipelines.definition import Model as Model
from lakehouse.pipelines.definition import Pipeline as Pipeline
from lakehouse.pipelines.definition import load_pipeline as load_pipeline
from lakehouse.pipelines.engines import Engine as Engine
from lakehouse.pipelines.engines import WriteResult as WriteResult
from lakehouse.pipelines.engines import get_engine as get_engine
from lakehouse.pipelines.errors import DependencyCycleError as DependencyCycleError
from lakehouse.pipelines.errors import IngestStepError as IngestStepError
from lakehouse.pipelines.errors import ModelError as ModelError
from lakehouse.pipelines.errors import PipelineConfigError as PipelineConfigError
from lakehouse.pipelines.errors import PipelineError as PipelineError
from lakehouse.pipelines.errors import PipelineNotFoundError as PipelineNotFoundError
from lakehouse.pipelines.runner import RunEvent as RunEvent
from lakehouse.pipelines.runner import RunResult as RunResult
from lakehouse.pipelines.runner import run_pipeline as run_pipeline

__all__ = [
    "CheckResult",
    "DependencyCycleError",
    "Engine",
    "IngestStepError",
    "Model",
    "ModelConfig",
    "ModelError",
    "Pipeline",
    "PipelineConfig",
    "PipelineConfigError",
    "PipelineError",
    "PipelineNotFoundError",
    "RunEvent",
    "RunResult",
    "WriteResult",
    "get_engine",
    "load_pipeline",
    "run_pipeline",
]
