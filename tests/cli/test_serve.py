"""``lakehouse serve`` as a user meets it before the server starts: a port in use."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lakehouse.cli.main import app

runner = CliRunner()


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port another process listens on (as a real Nessie holds 19120)."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen(1)
        yield other.getsockname()[1]


def test_a_port_in_use_says_how_to_choose_another(
    _isolate_lakehouse_config: Path, taken_port: int
) -> None:
    assert runner.invoke(app, ["init"]).exit_code == 0
    done = runner.invoke(app, ["serve", "--port", str(taken_port)])
    assert done.exit_code == 1, done.output
    assert done.stderr.splitlines() == [
        f"Error: cannot listen on 127.0.0.1:{taken_port}: Address already in use "
        "(another server has it; choose a port with --port N, or --port 0)"
    ]
