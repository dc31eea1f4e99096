"""``lakehouse sql`` without a query: an interactive SQL shell over one reference.

::

    $ lakehouse sql --ref main
    lakehouse sql on main; end statements with ';', \\help for commands
    main> SELECT o_orderstatus, count(*)
     ...>   FROM silver.orders GROUP BY 1;
    main> \\ref dev
    dev> \\tables

A statement runs when a line ends with ``;`` (it may span lines). Commands, at the start
of a statement: ``\\ref NAME`` switches the reference (checked first), ``\\tables``
lists the tables of the current one, ``\\help``, ``\\q`` (or Ctrl-D) quits; Ctrl-C drops
the statement being typed. An error prints ``Error: …`` (with its "did you mean") and
the shell goes on.

On a terminal it uses readline: line editing, history kept in ``<home>/sql_history``
between sessions, and Tab completion of commands, SQL keywords, table names of the
current reference and reference names after ``\\ref``. Fed from a pipe or file
(``lakehouse sql < script.sql``) it runs the statements without prompts and exits with
1 when one failed.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from lakehouse.cli._common import State
    from lakehouse.client import Lakehouse
    from lakehouse.query.result import QueryResult

HELP = """\
  statements end with ';' and may span lines
  \\ref NAME     switch to branch, tag or hash NAME
  \\tables       tables of the current reference
  \\help         this text
  \\q            quit (or Ctrl-D)"""

KEYWORDS = (
    "SELECT", "FROM", "WHERE", "GROUP BY", "ORDER BY", "HAVING", "LIMIT", "JOIN", "LEFT JOIN",
    "ON", "AS", "AND", "OR", "NOT", "IN", "IS NULL", "DISTINCT", "COUNT", "SUM", "AVG", "MIN",
    "MAX", "WITH", "UNION ALL", "DESCRIBE", "SUMMARIZE", "EXPLAIN",
)  # fmt: skip
COMMANDS = ("\\ref", "\\tables", "\\help", "\\q")


class SqlShell:
    """Reads statements and commands, runs them on the current reference, prints results."""

    def __init__(
        self,
        state: State,
        ref: str,
        *,
        show: Callable[[QueryResult], None],
        interactive: bool,
        max_rows: int | None = None,
    ) -> None:
        self.state = state
        self.max_rows = max_rows  # rows a result holds (None: all)
        self.ref = ref
        self.show = show
        self.interactive = interactive
        self.failed = False
        self._tables: list[str] | None = None

    @property
    def lakehouse(self) -> Lakehouse:
        return self.state.lakehouse()

    # -- the loop --------------------------------------------------------------------------

    def run(self, lines: Iterator[str]) -> int:
        """Run what ``lines`` hold; 1 when a statement failed and input was not a terminal."""
        buffer: list[str] = []
        if self.interactive:
            typer.echo(f"lakehouse sql on {self.ref}; end statements with ';', \\help for commands")
        while True:
            try:
                line = next(lines)
            except StopIteration:
                break
            except KeyboardInterrupt:  # Ctrl-C: drop the statement being typed
                typer.echo("^C")
                buffer.clear()
                continue
            if not buffer and line.strip().startswith("\\"):
                if not self.command(line.strip()):
                    break
                continue
            if not buffer and not line.strip():
                continue
            buffer.append(line)
            if line.rstrip().endswith(";"):
                self.statement("\n".join(buffer))
                buffer.clear()
        if buffer and "".join(buffer).strip():
            self.statement("\n".join(buffer))  # a last statement without ';'
        return 1 if self.failed and not self.interactive else 0

    def prompt(self, continued: bool) -> str:
        """The prompt: ``REF>`` or, inside a statement, ``...>`` as wide."""
        return (" " * max(0, len(self.ref) - 3) + "...> ") if continued else f"{self.ref}> "

    # -- statements and commands -----------------------------------------------------------

    def statement(self, text: str) -> None:
        """Run one statement and show its result, or the error."""
        from lakehouse.cli._common import report_error

        self.state.read_ref = self.ref
        try:
            result = self.lakehouse.fetch(text, self.ref, max_rows=self.max_rows)
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            self.failed = True
            return
        except Exception as exc:
            report_error(exc, self.state)
            self.failed = True
            return
        self.show(result)

    def command(self, line: str) -> bool:
        """Run one ``\\`` command; False to quit."""
        from lakehouse.cli._common import report_error

        name, _, arg = line.partition(" ")
        arg = arg.strip()
        if name in ("\\q", "\\quit", "\\exit"):
            return False
        if name in ("\\help", "\\?", "\\h"):
            typer.echo(HELP)
        elif name == "\\ref":
            if not arg:
                typer.echo(f"on {self.ref} (\\ref NAME switches)")
                return True
            try:
                resolved = self.lakehouse.resolve(arg)
            except Exception as exc:
                report_error(exc, self.state)
                self.failed = True
                return True
            self.ref = arg
            self._tables = None
            typer.echo(f"on {arg} at {resolved.hash[:12]}")
        elif name == "\\tables":
            for table in self.tables():
                typer.echo(table)
        else:
            typer.echo(f"Error: unknown command {name} (\\help lists them)", err=True)
            self.failed = True
        return True

    def tables(self) -> list[str]:
        """Tables of the current reference (cached until ``\\ref``)."""
        if self._tables is None:
            self._tables = [str(e.key) for e in self.lakehouse.tables(self.ref)]
        return self._tables

    def completions(self, text: str, line: str) -> list[str]:
        """What Tab offers for ``text``, the word being typed on ``line``."""
        if line.lstrip().startswith("\\ref "):
            names = [r.name for r in self.lakehouse.references()]
            return [n for n in names if n.startswith(text)]
        if text.startswith("\\"):
            return [c for c in COMMANDS if c.startswith(text)]
        words = [*self.tables(), *KEYWORDS, *(k.lower() for k in KEYWORDS)]
        return [w for w in dict.fromkeys(words) if w.startswith(text)]


def terminal_lines(shell: SqlShell, history: Path) -> Iterator[str]:
    """Lines typed at a terminal with readline: editing, history, Tab completion."""
    import readline

    readline.set_completer_delims(" \t\n,()=;")
    matches: list[str] = []

    def complete(text: str, index: int) -> str | None:
        nonlocal matches
        if index == 0:
            try:
                matches = shell.completions(text, readline.get_line_buffer())
            except Exception:  # completion must never break the shell
                matches = []
        return matches[index] if index < len(matches) else None

    readline.set_completer(complete)
    readline.parse_and_bind("tab: complete")
    with contextlib.suppress(OSError):
        readline.read_history_file(history)
    readline.set_history_length(1000)
    continued = False
    try:
        while True:
            try:
                line = input(shell.prompt(continued))
            except EOFError:
                typer.echo()
                return
            stripped = line.rstrip()
            continued = (
                bool(stripped)
                and not stripped.endswith(";")
                and not (not continued and stripped.lstrip().startswith("\\"))
            )
            yield line
    finally:
        try:
            history.parent.mkdir(parents=True, exist_ok=True)
            readline.write_history_file(history)
        except OSError:
            pass


def piped_lines() -> Iterator[str]:
    """Lines of a script on stdin (no prompts, no editing)."""
    for line in sys.stdin:
        yield line.rstrip("\n")


__all__ = ["SqlShell", "piped_lines", "terminal_lines"]
