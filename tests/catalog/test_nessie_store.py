"""NessieStore's HTTP behaviour against a scripted server (httpx.MockTransport).

The behaviour suite (test_store_behaviour.py, param `nessie`) runs the contract against
the real Nessie server; these tests pin what a real server cannot be made to do on
demand: timeouts, 5xx, refused connections, and the exact requests sent.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from lakehouse.catalog.model import (
    NO_ANCESTOR,
    Branch,
    ConflictType,
    ContentKey,
    IcebergTable,
    MergeBehavior,
    Put,
    RefSpec,
)
from lakehouse.catalog.nessie_store import NessieStore, key_to_path, ref_path
from lakehouse.errors import (
    CatalogError,
    CommitConflictError,
    CommitStateUnknownError,
    InvalidInputError,
    MergeConflictError,
    ReadOnlyReferenceError,
    ReferenceConflictError,
    TransientCatalogError,
)

URI = "http://nessie.test:19120/api/v2"
HEAD = "a" * 64
OTHER = "b" * 64
NEW = "c" * 64
T1 = ContentKey.of("bronze", "orders")
T2 = ContentKey.of("bronze", "customers")

Reply = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


class FakeNessie:
    """Answers scripted per (method, path); each route replays its replies in order."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Reply]] = {}
        self.requests: list[httpx.Request] = []
        self.on("GET", "/api/v2/config", _json(200, _CONFIG))

    def on(self, method: str, path: str, *replies: Reply) -> FakeNessie:
        self.routes[(method, path)] = list(replies)
        return self

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        replies = self.routes.get((request.method, request.url.raw_path.decode().split("?")[0]))
        if not replies:
            return _json(404, {"errorCode": "NOT_SCRIPTED", "message": str(request.url)})
        reply = replies.pop(0) if len(replies) > 1 else replies[0]
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, httpx.Response):
            return reply
        return reply(request)

    def calls(self, method: str, path: str) -> list[httpx.Request]:
        return [
            r
            for r in self.requests
            if r.method == method and r.url.raw_path.decode().split("?")[0] == path
        ]

    def store(self, **kwargs: Any) -> NessieStore:
        kwargs.setdefault("retry_backoff", 0)
        return NessieStore(URI, transport=httpx.MockTransport(self.handle), **kwargs)


_CONFIG = {
    "defaultBranch": "main",
    "maxSupportedApiVersion": 2,
    "specVersion": "2.2.0",
    "noAncestorHash": NO_ANCESTOR,
}


def _json(status: int, body: Any) -> httpx.Response:
    return httpx.Response(status, json=body)


def _error(status: int, code: str, message: str, **details: Any) -> httpx.Response:
    body: dict[str, Any] = {"status": status, "errorCode": code, "message": message}
    if details:
        body["errorDetails"] = {"type": "REFERENCE_CONFLICTS", **details}
    return _json(status, body)


def _ref(name: str, h: str, kind: str = "BRANCH") -> httpx.Response:
    return _json(200, {"reference": {"type": kind, "name": name, "hash": h}})


def _conflict(key: ContentKey | None, kind: str, message: str) -> dict[str, Any]:
    return {"conflictType": kind, "key": key.to_json() if key else None, "message": message}


def _table(n: int) -> IcebergTable:
    return IcebergTable(f"file:///wh/v{n}.metadata.json", snapshot_id=n)


COMMIT_PATH = f"/api/v2/trees/main@{HEAD}/history/commit"


# -- error mapping -----------------------------------------------------------------------


def test_a_409_with_conflicts_raises_a_commit_conflict_naming_each_key() -> None:
    fake = FakeNessie().on(
        "POST",
        COMMIT_PATH,
        _error(
            409,
            "REFERENCE_CONFLICT",
            "There are multiple conflicts",
            conflicts=[
                _conflict(T1, "VALUE_DIFFERS", "values differ"),
                _conflict(T2, "KEY_EXISTS", "key exists"),
            ],
        ),
    )
    with fake.store() as store, pytest.raises(CommitConflictError) as exc:
        store.commit("main", [Put(T1, _table(1)), Put(T2, _table(2))], "x", expected_hash=HEAD)
    assert {str(c.key): c.type for c in exc.value.conflicts} == {
        "bronze.orders": ConflictType.VALUE_DIFFERS,
        "bronze.customers": ConflictType.KEY_EXISTS,
    }
    assert "bronze.orders" in str(exc.value) and "bronze.customers" in str(exc.value)


def test_a_timeout_after_sending_a_commit_is_unknown_and_not_retried() -> None:
    fake = FakeNessie().on("POST", COMMIT_PATH, httpx.ReadTimeout("read timed out"))
    with fake.store() as store, pytest.raises(CommitStateUnknownError, match="may or may not"):
        store.commit("main", [Put(T1, _table(1))], "x", expected_hash=HEAD)
    assert len(fake.calls("POST", COMMIT_PATH)) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_after_sending_a_write_is_unknown_and_not_retried(status: int) -> None:
    merge_path = f"/api/v2/trees/main@{HEAD}/history/merge"
    fake = (
        FakeNessie()
        .on("POST", COMMIT_PATH, _error(status, "UNKNOWN", "boom"))
        .on("POST", merge_path, _error(status, "UNKNOWN", "boom"))
        .on("GET", "/api/v2/trees/dev", _ref("dev", OTHER))
    )
    with fake.store() as store:
        with pytest.raises(CommitStateUnknownError, match=f"HTTP {status}"):
            store.commit("main", [Put(T1, _table(1))], "x", expected_hash=HEAD)
        with pytest.raises(CommitStateUnknownError):
            store.merge("dev", "main", expected_target_hash=HEAD)
    assert len(fake.calls("POST", COMMIT_PATH)) == 1
    assert len(fake.calls("POST", merge_path)) == 1


def test_a_503_on_a_read_is_retried_then_succeeds() -> None:
    unavailable = _error(503, "SERVICE_UNAVAILABLE", "backend unavailable")
    fake = FakeNessie().on(
        "GET", "/api/v2/trees/main", unavailable, unavailable, _ref("main", HEAD)
    )
    with fake.store(max_retries=3) as store:
        assert store.get_reference("main") == Branch("main", HEAD)
    assert len(fake.calls("GET", "/api/v2/trees/main")) == 3


def test_reads_retry_a_bounded_number_of_times_then_are_transient() -> None:
    fake = FakeNessie().on("GET", "/api/v2/trees/main", _error(503, "SERVICE_UNAVAILABLE", "down"))
    with fake.store(max_retries=2) as store, pytest.raises(TransientCatalogError) as exc:
        store.get_reference("main")
    assert exc.value.transient
    assert len(fake.calls("GET", "/api/v2/trees/main")) == 3


def test_a_refused_connection_is_transient() -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = NessieStore(f"http://127.0.0.1:{port}/api/v2", max_retries=1, retry_backoff=0)
    with store, pytest.raises(TransientCatalogError, match="unreachable"):
        store.get_reference("main")


def test_a_write_that_never_left_the_client_is_retried() -> None:
    ok = _json(200, {"targetBranch": {"type": "BRANCH", "name": "main", "hash": NEW}})
    fake = FakeNessie().on("POST", COMMIT_PATH, httpx.ConnectError("connection refused"), ok)
    with fake.store() as store:
        result = store.commit("main", [Put(T1, _table(1))], "x", expected_hash=HEAD)
    assert result.hash == NEW
    assert len(fake.calls("POST", COMMIT_PATH)) == 2


def test_a_refused_update_without_content_id_is_named_as_a_key_exists_conflict() -> None:
    existing = {"key": T1.to_json(), "content": {**_table(1).to_json(), "id": "cid-1"}}
    fake = (
        FakeNessie()
        .on("POST", COMMIT_PATH, _error(400, "BAD_REQUEST", "New value has no content ID"))
        .on("GET", "/api/v2/trees/main", _ref("main", HEAD))
        .on("POST", f"/api/v2/trees/main@{HEAD}/contents", _json(200, {"contents": [existing]}))
    )
    with fake.store() as store, pytest.raises(CommitConflictError) as exc:
        store.commit("main", [Put(T1, _table(2))], "x", expected_hash=HEAD)
    assert [(str(c.key), c.type) for c in exc.value.conflicts] == [
        ("bronze.orders", ConflictType.KEY_EXISTS)
    ]


def test_a_commit_to_a_tag_is_read_only() -> None:
    fake = FakeNessie().on("GET", "/api/v2/trees/v1", _ref("v1", HEAD, "TAG"))
    with fake.store() as store, pytest.raises(ReadOnlyReferenceError, match="v1"):
        store.commit("v1", [Put(T1, _table(1))], "x")
    assert not [r for r in fake.requests if r.method == "POST"]


def test_an_unexpected_hash_on_assign_is_a_reference_conflict() -> None:
    fake = (
        FakeNessie()
        .on(
            "PUT",
            f"/api/v2/trees/dev@{OTHER}",
            _error(
                409,
                "REFERENCE_CONFLICT",
                "not at expected hash",
                conflicts=[_conflict(None, "UNEXPECTED_HASH", "not at expected hash")],
            ),
        )
        .on("GET", "/api/v2/trees/dev", _ref("dev", HEAD))
        .on("GET", "/api/v2/trees/main", _ref("main", NEW))
    )
    with fake.store() as store, pytest.raises(ReferenceConflictError) as exc:
        store.assign_reference("dev", OTHER, "main")
    assert (exc.value.expected, exc.value.actual) == (OTHER, HEAD)


def test_merge_conflicts_leave_out_nessies_placeholders_for_clean_keys() -> None:
    fake = (
        FakeNessie()
        .on("GET", "/api/v2/trees/dev", _ref("dev", OTHER))
        .on(
            "POST",
            f"/api/v2/trees/main@{HEAD}/history/merge",
            _error(
                409,
                "REFERENCE_CONFLICT",
                "The following keys have been changed in conflict: 'bronze.orders'",
                conflicts=[
                    _conflict(T2, "KEY_CONFLICT", "UNKNOWN"),
                    _conflict(T1, "VALUE_DIFFERS", "values differ"),
                ],
            ),
        )
    )
    with fake.store() as store, pytest.raises(MergeConflictError) as exc:
        store.merge("dev", "main", expected_target_hash=HEAD)
    assert [(str(c.key), c.type) for c in exc.value.conflicts] == [
        ("bronze.orders", ConflictType.VALUE_DIFFERS)
    ]


@pytest.mark.parametrize(
    "extra, offered",
    [
        (None, False),  # the real Nessie 0.99: no additionalProperties at all
        ({"other.server": "x"}, False),
        ({"lakehouse.content-merge": "yes"}, False),
        ({"lakehouse.content-merge": "1"}, True),
        ({"lakehouse.content-merge": "2"}, True),  # a later version keeps version 1's request
    ],
)
def test_content_merge_is_used_only_when_the_config_advertises_it(
    extra: dict[str, str] | None, offered: bool
) -> None:
    fake = FakeNessie()
    if extra is not None:
        fake.on("GET", "/api/v2/config", _json(200, {**_CONFIG, "additionalProperties": extra}))
    with fake.store() as store:
        assert store.offers_content_merge is offered
        if not offered:  # nothing sent: the caller merges on the client
            assert store.merge_by_content("dev", "main", expected_target_hash=HEAD) is None
            assert fake.calls("POST", f"/api/v2/trees/main@{HEAD}/history/merge") == []


def test_the_servers_per_table_report_comes_back_from_a_content_merge() -> None:
    merged = "merged by content (appends on the source (1 data file(s)) applied on top …)"
    refused = "conflict: both sides changed the schema, differently"
    config = {**_CONFIG, "additionalProperties": {"lakehouse.content-merge": "1"}}
    response = {
        "wasApplied": False,
        "wasSuccessful": False,
        "resultantTargetHash": None,
        "commonAncestor": OTHER,
        "targetBranch": "main",
        "effectiveTargetHash": HEAD,
        "expectedHash": HEAD,
        "details": [
            {
                "key": T2.to_json(),
                "mergeBehavior": "NORMAL",
                "contentMerge": {"merged": True, "description": merged},
            },
            {
                "key": T1.to_json(),
                "mergeBehavior": "NORMAL",
                "conflict": _conflict(T1, "VALUE_DIFFERS", refused),
                "contentMerge": {"merged": False, "description": refused},
            },
        ],
    }
    merge_path = f"/api/v2/trees/main@{HEAD}/history/merge"
    fake = (
        FakeNessie()
        .on("GET", "/api/v2/config", _json(200, config))
        .on("GET", "/api/v2/trees/dev", _ref("dev", NEW))
        .on("POST", merge_path, _json(200, response))
    )
    with fake.store() as store:
        result = store.merge_by_content(
            "dev", "main", expected_target_hash=HEAD, dry_run=True, raise_on_conflict=False
        )
        assert result is not None
        assert [(str(t.key), t.merged, t.description) for t in result.tables] == [
            ("bronze.customers", True, merged),
            ("bronze.orders", False, refused),
        ]
        assert [c.message for c in result.result.conflicts] == [refused]
        [sent] = fake.calls("POST", merge_path)
        body = json.loads(sent.content)
        assert body["contentMerge"] is True and body["dryRun"] is True
        assert "resolvedContent" not in str(body)


# -- what is sent -------------------------------------------------------------------------


def test_the_auth_token_is_sent_as_bearer_and_never_shown() -> None:
    fake = FakeNessie().on("GET", "/api/v2/trees/main", _ref("main", HEAD))
    for token in (SecretStr("s3cr3t-token"), "s3cr3t-token"):
        with fake.store(auth_token=token) as store:
            store.get_reference("main")
            assert "s3cr3t" not in repr(store) and "s3cr3t" not in repr(vars(store))
        assert fake.requests[-1].headers["Authorization"] == "Bearer s3cr3t-token"
    with fake.store() as anonymous:
        anonymous.get_reference("main")
    assert "Authorization" not in fake.requests[-1].headers


def test_every_request_announces_client_spec_2() -> None:
    fake = FakeNessie().on("GET", "/api/v2/trees/main", _ref("main", HEAD))
    with fake.store() as store:
        store.get_reference("main")
    assert fake.requests and all(r.headers["Nessie-Client-Spec"] == "2" for r in fake.requests)


def test_a_commit_without_expected_hash_is_sent_against_the_head_just_read() -> None:
    ok = _json(
        200,
        {
            "targetBranch": {"type": "BRANCH", "name": "main", "hash": NEW},
            "addedContents": [{"key": T1.to_json(), "contentId": "cid-1"}],
        },
    )
    fake = (
        FakeNessie().on("GET", "/api/v2/trees/main", _ref("main", HEAD)).on("POST", COMMIT_PATH, ok)
    )
    with fake.store() as store:
        result = store.commit("main", [Put(T1, _table(1))], "load")
    assert result.branch == Branch("main", NEW) and result.added_contents == {T1: "cid-1"}
    body = json.loads(fake.calls("POST", COMMIT_PATH)[0].content)
    assert body["commitMeta"]["message"] == "load"
    assert body["operations"] == [
        {"type": "PUT", "key": T1.to_json(), "content": _table(1).to_json()}
    ]


def test_merge_flags_go_under_both_spellings_and_an_ignored_dry_run_is_reported() -> None:
    applied = _json(
        200,
        {
            "wasApplied": True,
            "wasSuccessful": True,
            "targetBranch": "main",
            "effectiveTargetHash": HEAD,
            "resultantTargetHash": NEW,
            "details": [],
        },
    )
    merge_path = f"/api/v2/trees/main@{HEAD}/history/merge"
    fake = (
        FakeNessie()
        .on("GET", "/api/v2/trees/dev", _ref("dev", OTHER))
        .on("GET", "/api/v2/trees/main", _ref("main", HEAD))
        .on("POST", merge_path, applied)
    )
    with fake.store() as store, pytest.raises(CatalogError, match="ignored the dry-run flag"):
        store.merge("dev", "main", dry_run=True, key_behaviors={T1: MergeBehavior.FORCE}, meta="m")
    body = json.loads(fake.calls("POST", merge_path)[0].content)
    assert body["dryRun"] is True and body["isDryRun"] is True
    assert body["returnConflictAsResult"] is True and body["isReturnConflictAsResult"] is True
    assert (body["fromRefName"], body["fromHash"]) == ("dev", OTHER)
    assert body["keyMergeModes"] == [{"key": T1.to_json(), "mergeBehavior": "FORCE"}]
    assert body["commitMeta"]["message"] == "m"


def test_reference_specs_become_nessie_path_elements() -> None:
    assert ref_path(RefSpec.parse("main")) == "main"
    assert ref_path(RefSpec.parse("feature/foo")) == "feature/foo@"
    assert ref_path(RefSpec.parse(f"feature/foo@{HEAD}~2")) == f"feature/foo@{HEAD}~2"
    assert ref_path(RefSpec.parse(f"@{HEAD}^2")) == f"@{HEAD}%5E2"
    instant = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert ref_path(RefSpec("main", None, (("*", instant),))) == (
        "main*2026-01-02T03:04:05.123456Z"
    )


def test_content_keys_use_nessie_escaping() -> None:
    assert key_to_path(ContentKey.of("foo", "bar", "baz")) == "foo.bar.baz"
    assert key_to_path(ContentKey.of("foo", ".bar", "baz")) == ".foo.*.bar.baz"
    assert key_to_path(ContentKey.of("foo.", ".bar", "a/\\%aa")) == ".foo*..*.bar.a*{*}*[aa"
    assert key_to_path(ContentKey.of("a*b", "c")) == "a*b.c"
    assert key_to_path(ContentKey.of("a.b", "c"), escaped=False) == "a\u001db.c"


def test_uris_are_checked_and_completed() -> None:
    assert NessieStore("http://h:19120").uri == "http://h:19120/api/v2"
    assert NessieStore("http://h:19120/api/v2/").uri == "http://h:19120/api/v2"
    with pytest.raises(InvalidInputError, match="v2"):
        NessieStore("http://h:19120/api/v1")
    with pytest.raises(InvalidInputError):
        NessieStore("h:19120")
