"""Nessie's own REST API conformance tests (API v2 and v1) against ``lakehouse serve``.

Starts ``lakehouse serve`` (a fresh SQLite catalog, a free loopback port) in a
subprocess, runs the Maven/JUnit harness of this folder (``pom.xml``: Nessie's
``BaseTestNessieRest``, which includes ``BaseTestNessieApi``, and
``AbstractRelativeReferences``) and reads the Surefire reports. ``ITLakehouseNessieRest``
runs the tests with Nessie's Java client on API v2, ``ITLakehouseNessieRestV1`` on API v1
(test ids start with the class, so the two are told apart).

Every test must pass except those in ``known_failures.txt`` (one per line, each with
its reason; the groups are explained in ``docs/compatibility.md``). A listed test that
passes fails this test too, so that the list only ever shrinks. Needs Maven and a
JDK 17+; the dependencies are cached in ``~/.m2`` after the first run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
KNOWN_FAILURES = HERE / "known_failures.txt"
MAVEN_TIMEOUT_S = 20 * 60
#: the harness has 171 tests per API version (v2: 159 run; v1: about 50 run, the rest are
#: v2-only); far fewer means that it did not really run
MIN_TESTS = 300
#: test ids of the API v1 run start with this class name
V1_CLASS = "ITLakehouseNessieRestV1."


@dataclass(frozen=True)
class Outcome:
    test: str  # Class$Nested.method(params)[n]
    status: str  # passed | failed | skipped
    message: str


def read_known_failures(path: Path = KNOWN_FAILURES) -> dict[str, str]:
    """``test id -> reason`` from ``known_failures.txt`` (``id  # reason`` per line)."""
    known: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        test, sep, reason = line.partition(" # ")
        if not sep or not reason.strip():
            raise ValueError(f"{path.name}:{number}: expected 'test-id  # reason', got {line!r}")
        known[test.strip()] = reason.strip()
    return known


def read_reports(reports: Path) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for report in sorted(reports.glob("TEST-*.xml")):
        for case in ET.parse(report).getroot().iter("testcase"):
            test = f"{case.get('classname', '').rsplit('.', 1)[-1]}.{case.get('name')}"
            status, message = "passed", ""
            for tag in ("failure", "error", "skipped"):
                element = case.find(tag)
                if element is not None:
                    status = "skipped" if tag == "skipped" else "failed"
                    message = (element.get("message") or element.text or "").strip()
                    break
            outcomes.append(Outcome(test, status, message))
    return outcomes


def test_known_failures_file_is_well_formed() -> None:
    known = read_known_failures()  # raises on a malformed line; empty since all 159 pass
    assert all(reason for reason in known.values())


@pytest.fixture
def lakehouse_server(tmp_path: Path) -> Iterator[str]:
    """Root URL of ``lakehouse serve`` on a fresh catalog (a subprocess)."""
    env = {**os.environ, "LAKEHOUSE_HOME": str(tmp_path / "home")}
    cli = [sys.executable, "-m", "lakehouse.cli"]  # this interpreter's lakehouse
    subprocess.run([*cli, "init"], env=env, check=True, capture_output=True, timeout=300)
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [*cli, "--output", "json", "serve", "--port", "0", "--log-level", "warning"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        assert process.stdout is not None
        document = ""  # the JSON document with the URIs, printed once the port is bound
        for line in process.stdout:
            document += line
            if line.rstrip() == "}":
                break
        else:
            process.wait(timeout=30)
            pytest.fail(f"lakehouse serve exited: {(tmp_path / 'serve.log').read_text()}")
        yield json.loads(document)["nessie_uri"].removesuffix("api/v2")
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
        assert process.stdout is not None
        process.stdout.close()
        log.close()


@pytest.mark.integration
def test_nessie_rest_conformance(lakehouse_server: str, tmp_path: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        pytest.fail("Maven is needed for Nessie's conformance tests: apt-get install -y maven")
    build = tmp_path / "maven"
    command = [
        mvn,
        "-B",
        "-q",
        f"-Dlakehouse.nessie.uri={lakehouse_server}",
        f"-Dcompat.build.dir={build}",
        "test",
    ]
    run = subprocess.run(command, cwd=HERE, capture_output=True, text=True, timeout=MAVEN_TIMEOUT_S)
    outcomes = read_reports(build / "surefire-reports")
    assert len(outcomes) >= MIN_TESTS, (
        f"only {len(outcomes)} conformance tests ran (exit {run.returncode}):\n"
        + run.stdout[-4000:]
        + run.stderr[-4000:]
    )
    known = read_known_failures()
    failed = {o.test: o.message for o in outcomes if o.status == "failed"}
    passed = {o.test for o in outcomes if o.status == "passed"}
    for api, runs in (
        ("v2", [o for o in outcomes if not o.test.startswith(V1_CLASS)]),
        ("v1", [o for o in outcomes if o.test.startswith(V1_CLASS)]),
    ):
        counts = {s: sum(o.status == s for o in runs) for s in ("passed", "failed", "skipped")}
        print(f"Nessie conformance, API {api}: {counts}")
    print(f"known failures listed: {len(known)}")
    assert any(o.test.startswith(V1_CLASS) and o.status == "passed" for o in outcomes), (
        "no API v1 conformance test passed: did ITLakehouseNessieRestV1 run?"
    )
    unexpected = {t: m[:300] for t, m in failed.items() if t not in known}
    assert not unexpected, "conformance tests failing that known_failures.txt does not list:\n" + (
        "\n".join(f"- {t}: {m}" for t, m in sorted(unexpected.items()))
    )
    fixed = sorted(t for t in known if t in passed)
    assert not fixed, f"now passing, remove from known_failures.txt: {fixed}"
