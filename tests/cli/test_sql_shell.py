"""``lakehouse sql`` without a query (the shell), and shell completion of the command.

The interactive tests run the command in a pseudo-terminal, as a person meets it:
readline prompts, multi-line statements, ``\\ref``, Tab completion, history on disk.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from lakehouse.cli.main import app
from lakehouse.client import Lakehouse, connect

runner = CliRunner()


@pytest.fixture
def lh() -> Lakehouse:
    """A lakehouse with silver.orders on main and a branch dev."""
    with connect(create=True) as lh:
        catalog = lh.catalog("main")
        catalog.create_namespace("silver")
        data = pa.table({"id": [1, 2, 3], "status": ["open", "open", "shipped"]})
        catalog.create_table("silver.orders", schema=data.schema).append(data)
        lh.create_branch("dev")
        lh.table("silver.orders", "dev").delete("id = 3")
    return lh


def test_a_piped_script_runs_every_statement_and_command(lh: Lakehouse) -> None:
    script = (
        "select count(*) as n\n"
        "  from silver.orders;\n"
        "\\ref dev\n"
        "select count(*) as n from silver.orders;\n"
        "\\tables\n"
    )
    result = runner.invoke(app, ["sql"], input=script)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "n",
        "3",
        f"on dev at {lh.resolve('dev').hash[:12]}",
        "n",
        "2",
        "silver.orders",
    ]


def test_a_failing_statement_reports_and_the_script_goes_on_then_exits_1(lh: Lakehouse) -> None:
    script = "select * from silver.ordrs;\n\\ref nosuch\nselect 42 as answer;\n"
    result = runner.invoke(app, ["sql"], input=script)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == ["answer", "42"]
    assert result.stderr.splitlines() == [
        "Error: table 'silver.ordrs' does not exist on 'main' (did you mean silver.orders?)",
        "Error: reference 'nosuch' does not exist (`lakehouse branch list` and "
        "`lakehouse tag list` show the references)",
    ]


def test_quit_stops_reading_and_a_bad_ref_fails_before_the_shell(lh: Lakehouse) -> None:
    result = runner.invoke(app, ["sql"], input="select 1 as a;\n\\q\nselect 2 as b;\n")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == ["a", "1"]
    bad = runner.invoke(app, ["sql", "--ref", "nope"], input="select 1;\n")
    assert bad.exit_code == 1
    assert bad.stderr.startswith("Error: reference 'nope' does not exist")


class Terminal:
    """``lakehouse sql`` in a pseudo-terminal."""

    def __init__(self, *args: str) -> None:
        master, slave = os.openpty()
        self.master = master
        code = "import sys; from lakehouse.cli.main import main; sys.argv[0] = 'lakehouse'; main()"
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, "sql", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**os.environ, "TERM": "dumb"},
        )
        os.close(slave)
        self.seen = b""

    def expect(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while text.encode() not in self.seen:
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not seen in {self.seen.decode(errors='replace')!r}")
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    self.seen += os.read(self.master, 4096)
                except OSError:
                    break
        return self.seen.decode(errors="replace")

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def close(self) -> int:
        code = self.process.wait(timeout=30)
        os.close(self.master)
        return code


def test_the_interactive_shell_prompts_continues_lines_switches_refs_and_completes(
    lh: Lakehouse, tmp_path: Path
) -> None:
    term = Terminal()
    term.expect("main> ")
    term.type("select count(*)\n")
    term.expect("...> ")
    term.type("  as n from silver.orders;\n")
    term.expect("(1 row)")
    term.type("\\ref dev\n")
    term.expect("dev> ")
    term.type("select count(*) as n from silver.ord\t")  # Tab completes the table name
    term.expect("silver.orders")
    term.type(";\n")
    shown = term.expect("(1 row)\r\ndev> ")
    term.type("\\q\n")
    assert term.close() == 0
    assert "on dev at" in shown
    history = (tmp_path / "lakehouse_home" / "sql_history").read_text()
    assert "select count(*) as n from silver.orders;" in history


def complete(*words: str) -> list[str]:
    """What the bash completion of ``lakehouse WORDS…`` offers for the last word."""
    code = "import sys; from lakehouse.cli.main import main; sys.argv[0] = 'lakehouse'; main()"
    env = {
        **os.environ,
        "_LAKEHOUSE_COMPLETE": "complete_bash",
        "COMP_WORDS": " ".join(["lakehouse", *words]),
        "COMP_CWORD": str(len(words)),
    }
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.split()


def test_shell_completion_offers_commands_refs_and_tables(lh: Lakehouse) -> None:
    assert "pipeline" in complete("pi")
    assert complete("log", "--ref", "d") == ["dev"]
    assert complete("diff", "main", "") == ["dev", "main"]
    assert complete("table", "show", "silver.o") == ["silver.orders"]
    assert "--install-completion" in complete("--inst")
