"""Reading the platform metrics back in tests (:mod:`lakehouse.observability`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lakehouse import observability


@pytest.fixture
def fresh_metrics() -> Iterator[None]:
    """Start the test with no recorded metric (they are per process) and leave none behind."""
    observability.reset_metrics()
    yield
    observability.reset_metrics()


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of exposition ``text``: (name, labels) -> value."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(name: str, text: str | None = None, **labels: str) -> float | None:
    """The value of sample ``name`` with exactly ``labels`` (default: of this process)."""
    found = parse(observability.recorded_text() if text is None else text)
    return found.get((name, frozenset(labels.items())))


def names(text: str | None = None) -> set[str]:
    """The sample names present."""
    found = parse(observability.recorded_text() if text is None else text)
    return {name for name, _ in found}
