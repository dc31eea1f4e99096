"""The public surface of `lakehouse.pipelines` is deliberate: changing it fails here."""

from __future__ import annotations

import lakehouse.pipelines


def test_all_is_pinned() -> None:
    assert lakehouse.pipelines.__all__ == [
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
    for name in lakehouse.pipelines.__all__:
        assert hasattr(lakehouse.pipelines, name), name


def test_errors_are_lakehouse_errors() -> None:
    from lakehouse.errors import ConfigError, LakehouseError

    assert issubclass(lakehouse.pipelines.PipelineError, LakehouseError)
    assert issubclass(lakehouse.pipelines.PipelineConfigError, ConfigError)
