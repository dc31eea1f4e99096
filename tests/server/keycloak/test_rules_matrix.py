"""One rules file configures both servers: the same allow/deny for every case of a matrix.

``docker/nessie/authorization-rules.properties`` is given to ``lakehouse serve`` and to the
real Nessie. Then 7 principals (Keycloak users through the password grant, service accounts
through client credentials) x 75 operations (list, view, log, entries, read, create, update
and delete a table, merge, per reference and per namespace, plus branch and tag changes)
= 525 real HTTP calls with real tokens run on each server, in the same order from the same
starting state (the two sequences run at the same time, one thread per server). Every
case must be allowed (2xx) or denied (403) on both, the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.server.keycloak.conftest import Realm, Server

pytestmark = pytest.mark.integration

PRINCIPALS = (
    "alice",  # admin (release manager)
    "bob",  # engineer
    "carol",  # analyst
    "dave",  # no role
    "sa:lakehouse-admin",
    "sa:lakehouse-etl",
    "sa:lakehouse-reports",
)
ADMIN = "sa:lakehouse-admin"
REFS = ("main", "dev", "qa")
NAMESPACES = ("bronze", "silver", "gold", "sandbox")


def slug(principal: str) -> str:
    return principal.replace("sa:", "sa_").replace("-", "_")


def table(location: str, snapshot: int = 1, content_id: str | None = None) -> dict[str, Any]:
    content: dict[str, Any] = {
        "type": "ICEBERG_TABLE",
        "metadataLocation": f"s3://iceberg-metadata/{location}/metadata/0000{snapshot}.json",
        "snapshotId": snapshot,
        "schemaId": 0,
        "specId": 0,
        "sortOrderId": 0,
    }
    if content_id is not None:
        content["id"] = content_id
    return content


def put(key: str, content: dict[str, Any]) -> dict[str, Any]:
    return {"type": "PUT", "key": {"elements": key.split(".")}, "content": content}


def namespace(name: str) -> dict[str, Any]:
    return put(name, {"type": "NAMESPACE", "elements": [name]})


class Signed:
    """The shared client, each request with ``token`` (nested uses cannot mix tokens up)."""

    def __init__(self, http: httpx.Client, token: str) -> None:
        self._http = http
        self._headers = {"Authorization": f"Bearer {token}"}

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self._http.get(url, headers=self._headers, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self._http.post(url, headers=self._headers, **kwargs)

    def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return self._http.put(url, headers=self._headers, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self._http.delete(url, headers=self._headers, **kwargs)


class Driver:
    """Runs the cases against one server; the admin prepares what each case needs."""

    def __init__(self, server: Server, realm: Realm, http: httpx.Client) -> None:
        self.server = server
        self.realm = realm
        self._http = http  # one connection pool; the token goes on each request

    @contextmanager
    def http(self, principal: str) -> Iterator[Signed]:
        yield Signed(self._http, self.realm.token(principal))

    def ok(self, response: httpx.Response) -> dict[str, Any]:
        assert response.is_success, (
            f"{self.server.name}: {response.request.method} {response.request.url}: "
            f"{response.status_code} {response.text}"
        )
        body: dict[str, Any] = response.json() if response.content else {}
        return body

    def head(self, ref: str) -> str:
        with self.http(ADMIN) as http:
            return str(self.ok(http.get(f"trees/{ref}"))["reference"]["hash"])

    def commit(self, principal: str, ref: str, operations: list[dict[str, Any]]) -> httpx.Response:
        head = self.head(ref)
        with self.http(principal) as http:
            return http.post(
                f"trees/{ref}@{head}/history/commit",
                json={"commitMeta": {"message": f"by {principal}"}, "operations": operations},
            )

    def branch(self, name: str, source: str, *, kind: str = "BRANCH") -> None:
        target = {"type": "BRANCH", "name": source, "hash": self.head(source)}
        with self.http(ADMIN) as http:
            self.ok(http.post("trees", params={"name": name, "type": kind}, json=target))

    def content_id(self, ref: str, key: str) -> str:
        with self.http(ADMIN) as http:
            return str(self.ok(http.get(f"trees/{ref}/contents/{key}"))["content"]["id"])

    def setup(self) -> None:
        """Namespaces, per-principal tables, branches and merge sources (all by the admin)."""
        operations = [namespace(ns) for ns in NAMESPACES]
        for ns in NAMESPACES:
            operations.append(put(f"{ns}.shared", table(f"{ns}/shared")))
            for p in PRINCIPALS:
                operations.append(put(f"{ns}.upd_{slug(p)}", table(f"{ns}/upd_{slug(p)}")))
                operations.append(put(f"{ns}.del_{slug(p)}", table(f"{ns}/del_{slug(p)}")))
        self.ok(self.commit(ADMIN, "main", operations))
        for ref in REFS[1:]:
            self.branch(ref, "main")
        for p in PRINCIPALS:
            self.branch(f"del-{slug(p)}", "main")
            self.branch(f"assign-{slug(p)}", "main")
            for ref in REFS:
                for ns in NAMESPACES:
                    source = f"m-{slug(p)}-{ref}-{ns}"
                    self.branch(source, ref)
                    key = f"{ns}.merged_{slug(p)}"
                    self.ok(self.commit(ADMIN, source, [put(key, table(f"{ns}/{source}"))]))


@dataclass(frozen=True)
class Case:
    principal: str
    operation: str
    ref: str = ""
    namespace: str = ""

    def __str__(self) -> str:
        where = "/".join(part for part in (self.ref, self.namespace) if part)
        return f"{self.principal} {self.operation} {where}".strip()


def cases() -> list[Case]:
    result: list[Case] = []
    for p in PRINCIPALS:
        result.append(Case(p, "list references"))
        for ref in REFS:
            result += [Case(p, op, ref) for op in ("view reference", "commit log", "entries")]
            for ns in NAMESPACES:
                result += [
                    Case(p, op, ref, ns)
                    for op in ("read table", "create table", "update table", "delete table")
                ]
                result.append(Case(p, "merge into", ref, ns))
        result += [
            Case(p, op) for op in ("create branch", "create tag", "delete branch", "assign branch")
        ]
        result.append(Case(p, "assign main to its head"))
    return result


def run(driver: Driver, case: Case) -> httpx.Response:
    p, ref, ns, s = case.principal, case.ref, case.namespace, slug(case.principal)
    actions: dict[str, Callable[[Signed], httpx.Response]] = {
        "list references": lambda http: http.get("trees"),
        "view reference": lambda http: http.get(f"trees/{ref}"),
        "commit log": lambda http: http.get(f"trees/{ref}/history"),
        "entries": lambda http: http.get(f"trees/{ref}/entries"),
        "read table": lambda http: http.get(f"trees/{ref}/contents/{ns}.shared"),
    }
    if case.operation in actions:
        with driver.http(p) as http:
            return actions[case.operation](http)
    if case.operation == "create table":
        return driver.commit(p, ref, [put(f"{ns}.new_{s}", table(f"{ns}/new_{s}_{ref}"))])
    if case.operation == "update table":
        key = f"{ns}.upd_{s}"
        content = table(f"{ns}/upd_{s}", 2, driver.content_id(ref, key))
        return driver.commit(p, ref, [put(key, content)])
    if case.operation == "delete table":
        return driver.commit(p, ref, [{"type": "DELETE", "key": {"elements": [ns, f"del_{s}"]}}])
    if case.operation == "merge into":
        source = f"m-{s}-{ref}-{ns}"
        body = {"fromRefName": source, "fromHash": driver.head(source)}
        head = driver.head(ref)
        with driver.http(p) as http:
            return http.post(f"trees/{ref}@{head}/history/merge", json=body)
    main = {"type": "BRANCH", "name": "main", "hash": driver.head("main")}
    with driver.http(p) as http:
        if case.operation == "create branch":
            return http.post("trees", params={"name": f"new-{s}", "type": "BRANCH"}, json=main)
        if case.operation == "create tag":
            return http.post("trees", params={"name": f"tag-{s}", "type": "TAG"}, json=main)
        if case.operation == "delete branch":
            return http.delete(f"trees/del-{s}@{driver.head(f'del-{s}')}")
        if case.operation == "assign branch":
            return http.put(f"trees/assign-{s}@{driver.head(f'assign-{s}')}", json=main)
        if case.operation == "assign main to its head":
            return http.put(f"trees/main@{main['hash']}", json=main)
    raise AssertionError(f"unknown operation {case.operation}")


def verdict(response: httpx.Response) -> str:
    if response.is_success:
        return "allowed"
    if response.status_code == 403:
        return "denied"
    return f"HTTP {response.status_code} {response.text[:300]}"


def test_one_rules_file_gives_the_same_verdicts_on_both_servers(
    servers: dict[str, Server], realm: Realm
) -> None:
    matrix = cases()
    assert len(matrix) >= 500

    def run_all(server: Server) -> list[str]:
        with server.client(None) as http:
            driver = Driver(server, realm, http)
            driver.setup()
            return [verdict(run(driver, case)) for case in matrix]

    # each server runs the whole sequence on its own, both at once
    with ThreadPoolExecutor(max_workers=len(servers)) as pool:
        futures = {name: pool.submit(run_all, server) for name, server in servers.items()}
        verdicts = {name: future.result() for name, future in futures.items()}

    ours, nessie = verdicts["lakehouse"], verdicts["nessie"]
    unexpected = [
        f"{case}: lakehouse {a!r}, nessie {b!r}"
        for case, a, b in zip(matrix, ours, nessie, strict=True)
        if {a, b} - {"allowed", "denied"}
    ]
    assert not unexpected, "\n".join(unexpected)
    different = [
        f"{case}: lakehouse {a}, nessie {b}"
        for case, a, b in zip(matrix, ours, nessie, strict=True)
        if a != b
    ]
    assert not different, f"{len(different)} of {len(matrix)} differ:\n" + "\n".join(different)

    # the matrix exercises the rules, not a blanket allow or deny
    by_case = {str(case): v for case, v in zip(matrix, ours, strict=True)}
    assert ours.count("allowed") > 100 and ours.count("denied") > 100
    assert by_case["alice merge into main/gold"] == "allowed"
    assert by_case["bob merge into dev/bronze"] == "allowed"
    assert by_case["bob merge into main/bronze"] == "denied"
    assert by_case["bob create table dev/gold"] == "denied"  # engineers write bronze, silver
    assert by_case["sa:lakehouse-etl update table qa/silver"] == "allowed"
    assert by_case["carol read table main/gold"] == "allowed"
    assert by_case["carol create branch"] == "denied"
    assert by_case["dave read table main/bronze"] == "denied"
    assert by_case["dave view reference main"] == "allowed"
