"""Faults armed at an exact moment: just before a chosen request leaves the client.

Toxiproxy applies a toxic to open connections at once, so adding one right before a
request is sent decides what happens to that request and no other:

* :class:`ArmedTransport` (an httpx transport for :class:`~lakehouse.catalog.nessie_store.
  NessieStore`) runs an action before the first request matching a predicate, e.g. a
  ``limit_data`` toxic on the downstream before a commit: the server receives and applies
  the commit, its reply is cut — the ambiguous commit.
* :func:`arm_before_commit` does the same for the SQL store's PostgreSQL connection,
  before a transaction's ``COMMIT`` is sent;
* :func:`arm_on_call` before the n-th call of a library function (e.g. the second file
  GC deletes, the third file a backup copies): a fault that starts mid-operation.
"""

from __future__ import annotations

import inspect
import json
import threading
from collections.abc import Callable

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import event

Action = Callable[[], object]


def is_commit(request: httpx.Request) -> bool:
    """A Nessie API v2 commit (``POST …/history/commit``)."""
    return request.method == "POST" and request.url.path.endswith("history/commit")


def is_merge(request: httpx.Request) -> bool:
    """A Nessie API v2 merge that commits (``POST …/history/merge``, not a dry run).

    A content-aware merge sends a dry run first; a dry run changes nothing, so its lost
    reply is retried like any read and is not the ambiguous case under test.
    """
    if request.method != "POST" or not request.url.path.endswith("history/merge"):
        return False
    body = json.loads(request.content or b"{}")
    return not (body.get("dryRun") or body.get("isDryRun"))


class ArmedTransport(httpx.HTTPTransport):
    """An HTTP transport that runs an action once, before a matching request is sent."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._armed: list[tuple[Callable[[httpx.Request], bool], Action, Action | None]] = []
        self._lock = threading.Lock()
        self.fired: list[str] = []

    def arm(
        self, when: Callable[[httpx.Request], bool], action: Action, *, then: Action | None = None
    ) -> None:
        """Run ``action`` before the next request for which ``when`` is true (once).

        ``then`` runs once that request is over (answered or failed): e.g. removing the
        toxic, so that only this one request meets the fault.
        """
        with self._lock:
            self._armed.append((when, action, then))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Fire a matching armed action, then send the request."""
        action: Action | None = None
        then: Action | None = None
        with self._lock:
            for i, (when, armed, after) in enumerate(self._armed):
                if when(request):
                    del self._armed[i]
                    action, then = armed, after
                    break
        if action is None:
            return super().handle_request(request)
        action()
        self.fired.append(f"{request.method} {request.url.path}")
        try:
            return super().handle_request(request)
        finally:
            if then is not None:
                then()


def arm_before_commit(
    engine: sa.Engine, action: Action, *, skip: int = 0, writes_only: bool = False
) -> list[int]:
    """Run ``action`` once, just before the ``skip``-th next transaction ``COMMIT`` is sent.

    ``writes_only`` counts only the SQL store's write transactions (not its reads).
    Returns a list that gets one element when the action fired.
    """
    fired: list[int] = []
    seen = [0]

    def before_commit(conn: sa.Connection) -> None:
        if fired:
            return
        if writes_only and not conn.get_execution_options().get("lakehouse_write"):
            return
        if seen[0] < skip:
            seen[0] += 1
            return
        fired.append(1)
        action()

    event.listen(engine, "commit", before_commit)
    return fired


def arm_on_call(
    monkeypatch: pytest.MonkeyPatch, owner: object, name: str, action: Action, *, skip: int = 0
) -> list[int]:
    """Run ``action`` once, just before the ``skip``-th next call of ``owner.name`` (from 0).

    ``owner`` is a module or a class (then every instance's calls count, from any thread):
    a fault that starts in the middle of an operation, at a point the test chose.
    Returns a list that gets one element when the action fired.
    """
    real = getattr(owner, name)
    static = isinstance(inspect.getattr_static(owner, name), staticmethod)
    lock = threading.Lock()
    calls = [0]
    fired: list[int] = []

    def wrapper(*args: object, **kwargs: object) -> object:
        with lock:
            fire = calls[0] == skip and not fired
            calls[0] += 1
            if fire:
                fired.append(1)
        if fire:
            action()
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, staticmethod(wrapper) if static else wrapper)
    return fired
