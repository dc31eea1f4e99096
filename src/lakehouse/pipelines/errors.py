"""Errors of pipelines, all under :class:`PipelineError`.

The subtree (a branch of :class:`~lakehouse.errors.LakehouseError`)::

    PipelineError                              a pipeline could not be loaded or run
    ├── PipelineNotFoundError (LookupError)    no pipeline folder / pipeline.yaml
    ├── PipelineConfigError (ConfigError)      pipeline.yaml is invalid (names file and field)
    ├── DependencyCycleError                   models read each other in a cycle
    ├── ModelError                             a model failed (names the model and its file)
    ├── IngestStepError                        a source of the pipeline failed to ingest
    ├── MergeError (ValueError)                a merge model's keys are missing, NULL or repeated
    │                                          (engines/duckdb.py; wrapped in a ModelError)
    └── SchemaChangeError (ValueError)         a result does not fit its table's schema
                                               (materialize.py; wrapped in a ModelError)

Every message is one line. Errors raised while a run is under way carry ``run_id`` and
``branch`` (the run branch, kept for inspection). A :class:`ModelError` keeps the user
code's original exception as ``__cause__``, so ``--debug`` shows its traceback.
"""

from __future__ import annotations

from collections.abc import Sequence

from lakehouse.errors import ConfigError, LakehouseError


class PipelineError(LakehouseError):
    """A pipeline could not be loaded or run."""

    #: Id of the run the error ended (``None`` before a run started).
    run_id: str | None = None
    #: The branch the run wrote to (kept for inspection).
    branch: str | None = None


class PipelineNotFoundError(PipelineError, LookupError):
    """No pipeline folder or ``pipeline.yaml`` at the given name or path."""


class PipelineConfigError(PipelineError, ConfigError):
    """``pipeline.yaml`` (or a model file) is invalid; the message names file and field."""


class DependencyCycleError(PipelineError):
    """Models read each other in a cycle; the message names the cycle."""

    def __init__(self, cycle: Sequence[str], files: Sequence[str] = ()) -> None:
        self.cycle = list(cycle)
        where = f" ({', '.join(files)})" if files else ""
        super().__init__(f"dependency cycle between models: {' -> '.join(cycle)}{where}")


class ModelError(PipelineError):
    """A model failed: SQL error, missing table, bad result or failed write."""

    def __init__(self, model: str, file: str, message: str) -> None:
        self.model = model
        self.file = file
        #: What went wrong, without the model and file.
        self.reason = " ".join(message.split())
        super().__init__(f"model {model} ({file}): {self.reason}")


class IngestStepError(PipelineError):
    """A source of the pipeline failed to ingest."""


__all__ = [
    "DependencyCycleError",
    "IngestStepError",
    "ModelError",
    "PipelineConfigError",
    "PipelineError",
    "PipelineNotFoundError",
]
