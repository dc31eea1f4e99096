"""The audit trail of catalog writes: one JSON line per write, and a counter per outcome.

Every write through the Nessie API (commit, merge, transplant, reference create, assign
and delete) is recorded, whether it succeeded or not, as one JSON object on the logger
``lakehouse.audit`` (route it to a file or to stdout with the logging configuration;
``lakehouse serve`` logs it to stderr)::

    {"time": "2026-12-06T13:01:02.345Z", "principal": "wendy", "operation": "commit",
     "ref": "dev1", "outcome": "ok", "expectedHash": "2e1c…", "resultHash": "9a0f…",
     "keys": ["bronze.orders"]}

``outcome`` is ``ok``, ``denied`` (403), ``conflict`` (409) or ``error``. The counter
``lakehouse_audit_writes_total{operation,outcome}`` counts the same events.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter

from lakehouse.errors import CommitConflictError, ReferenceConflictError
from lakehouse.server.authz import AccessDeniedError
from lakehouse.server.middleware import current_principal

log = logging.getLogger("lakehouse.audit")


class AuditLog:
    """Records writes on :data:`log` and counts them on ``counter``."""

    def __init__(self, counter: Counter) -> None:
        self.counter = counter

    @contextmanager
    def write(self, operation: str, ref: str, keys: Iterable[str] = ()) -> Iterator[dict[str, Any]]:
        """Record the write the block performs; the block may add fields (hashes)."""
        record: dict[str, Any] = {}
        outcome = "ok"
        try:
            yield record
        except AccessDeniedError:
            outcome = "denied"
            raise
        except (CommitConflictError, ReferenceConflictError):
            outcome = "conflict"
            raise
        except Exception:
            outcome = "error"
            raise
        finally:
            principal = current_principal.get()
            all_keys = set(keys) | set(record.pop("keys", ()))
            line = {
                "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "principal": principal.name if principal is not None else None,
                "operation": operation,
                "ref": ref,
                "outcome": outcome,
                **record,
                "keys": sorted(all_keys),
            }
            log.info(json.dumps(line, sort_keys=False))
            self.counter.labels(operation, outcome).inc()


__all__ = ["AuditLog"]
