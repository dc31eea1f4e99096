"""What every command shares: global state, option types, output, the error handler.

Only light modules are imported here (typer, stdlib): the library, rich and
pydantic are imported by the commands that need them, so ``lakehouse --help`` is fast.

Output for pipes: when stdout is not a terminal, nothing is cut to the terminal's
width (:func:`console` is as wide as the longest line).

Errors: ``Error: <one line>`` on stderr and exit code 1; with ``--output json`` (global
or the command's own) the error is one JSON object on stderr instead::

    {"error": {"type": "ReferenceNotFoundError", "message": "...", "hint": "..." | null}}

``type`` is the exception's class name (the tree in :mod:`lakehouse.errors`), ``hint``
a suggestion such as ``did you mean silver.orders?`` (also appended to the text line).
An interrupt (Ctrl-C) exits with 130, also when an engine turned it into its own error:
DuckDB checks for signals while a query runs and raises ``Query interrupted``, an
ordinary exception, so the handler also notes the SIGINT itself (:func:`sigint_seen`).
"""

from __future__ import annotations

import difflib
import json
import logging
import re
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:
    from rich.console import Console

    from lakehouse.client import Lakehouse


class Output(StrEnum):
    """Output formats of every command."""

    TEXT = "text"
    JSON = "json"


#: Width of a console that does not write to a terminal: no line is ever cut.
PIPE_WIDTH = 1_000_000


def remember_output(ctx: typer.Context, value: StrEnum | None) -> StrEnum | None:
    """Option callback of a command's ``--output``: errors follow the chosen format too."""
    if value is not None and value.value == Output.JSON.value:
        State.of(ctx).errors_as_json = True
    return value


OutputOpt = Annotated[
    Output | None,
    typer.Option(
        "--output",
        "-o",
        case_sensitive=False,
        help="Output format: text or json (default: the global --output).",
        show_default=False,
        callback=remember_output,
    ),
]


def _completing(ctx: typer.Context, names: Callable[[Lakehouse], list[str]]) -> list[str]:
    """``names`` of the lakehouse the command line points at; nothing when it cannot open.

    Shell completion runs this: it must be quiet and never fail.
    """
    try:
        from lakehouse.client import connect
        from lakehouse.config import load_settings

        root = ctx.find_root().params
        settings = load_settings(home=root.get("home"), ref=root.get("ref"))
        with connect(settings=settings) as lh:
            return names(lh)
    except Exception:
        return []


def complete_ref(ctx: typer.Context, incomplete: str) -> list[str]:
    """Branch and tag names starting with ``incomplete`` (shell completion)."""
    found = _completing(ctx, lambda lh: [r.name for r in lh.references()])
    return [n for n in found if n.startswith(incomplete)]


def complete_table(ctx: typer.Context, incomplete: str) -> list[str]:
    """Table names (of the command's ``--ref``) starting with ``incomplete``."""
    ref = ctx.params.get("ref")
    found = _completing(ctx, lambda lh: [str(e.key) for e in lh.tables(ref)])
    return [n for n in found if n.startswith(incomplete)]


RefOpt = Annotated[
    str | None,
    typer.Option(
        "--ref",
        "-r",
        help="Branch, tag or hash (name@hash, @hash, name~N) (default: NESSIE_REF, else main).",
        show_default=False,
        autocompletion=complete_ref,
    ),
]


@dataclass
class State:
    """Global options and the lakehouse opened for this invocation (lazily)."""

    home: Path | None = None
    output: Output = Output.TEXT
    debug: bool = False
    ref: str | None = None
    #: The reference the command reads (set by commands that take ``--ref``), for hints.
    read_ref: str | None = None
    #: Report errors as JSON on stderr (``--output json``, global or the command's).
    errors_as_json: bool = False
    #: ``--log-format`` / ``--log-level`` (or their environment variables), if given.
    log_format: str | None = None
    log_level: str | None = None
    _lakehouse: Lakehouse | None = field(default=None, repr=False)

    @staticmethod
    def of(ctx: typer.Context) -> State:
        """The state of the current invocation."""
        obj = ctx.find_root().obj
        if not isinstance(obj, State):  # a command invoked without the root callback
            obj = State()
            ctx.find_root().obj = obj
        return obj

    def format(self, override: Output | None) -> Output:
        """The output format: the command's ``--output``, else the global one."""
        return override or self.output

    def lakehouse(self, *, create: bool = False) -> Lakehouse:
        """Open the lakehouse the global options and settings point at (once)."""
        if self._lakehouse is None:
            from lakehouse.client import connect
            from lakehouse.config import load_settings

            settings = load_settings(
                home=self.home, ref=self.ref, log_format=self.log_format, log_level=self.log_level
            )
            # the settings file (.env) may set the log format and level too
            self.configure_logging(settings.log_format, settings.log_level)
            self._lakehouse = connect(settings=settings, create=create)
        return self._lakehouse

    def configure_logging(self, fmt: str | None = None, level: str | None = None) -> None:
        """Log to stderr in the chosen format and level (``--debug``: level DEBUG)."""
        from lakehouse.errors import ConfigError
        from lakehouse.observability import configure_logging

        fmt = (fmt or self.log_format or "text").lower()
        level = "DEBUG" if self.debug else (level or self.log_level or "WARNING")
        try:
            configure_logging(fmt, level)
        except ValueError as exc:
            raise ConfigError(f"{exc} (LAKEHOUSE_LOG_FORMAT / LAKEHOUSE_LOG_LEVEL)") from None

    def opened(self) -> Lakehouse | None:
        """The lakehouse if this invocation opened one (hints never open it)."""
        return self._lakehouse

    def close(self) -> None:
        """Close the lakehouse if one was opened; publish metrics recorded without one."""
        if self._lakehouse is not None:
            self._lakehouse.close()  # publishes the metrics (lakehouse.observability)
            self._lakehouse = None
        observability = sys.modules.get("lakehouse.observability")  # never import it here
        if observability is not None and observability.pending():  # e.g. `backup verify`
            from lakehouse.config import load_settings

            observability.publish_metrics(load_settings(home=self.home, ref=self.ref))


def stdout_is_terminal() -> bool:
    """Whether stdout is a terminal (a person), not a pipe, file or test runner."""
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):  # closed or replaced stream
        return False


def console() -> Console:
    """A rich console on stdout (created per call: tests swap ``sys.stdout``).

    On a terminal it wraps and cuts to the terminal's width; otherwise it is
    :data:`PIPE_WIDTH` wide, so values reach the next program whole.
    """
    from rich.console import Console

    if stdout_is_terminal():
        return Console(highlight=False, soft_wrap=True)
    return Console(highlight=False, soft_wrap=True, width=PIPE_WIDTH)


def print_json(data: Any) -> None:
    """Write ``data`` as indented JSON on stdout."""
    typer.echo(json.dumps(data, indent=2, default=str))


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line; unexpected errors keep their type name."""
    from lakehouse.errors import LakehouseError

    text = " ".join(str(exc).split())
    expected = isinstance(exc, (LakehouseError, OSError)) or type(exc).__module__.startswith(
        "pyiceberg"
    )
    if expected:
        return text or type(exc).__name__
    name = type(exc).__name__
    return f"{name}: {text} (run with --debug for the traceback)" if text else name


_MISSING_TABLE = re.compile(r"table '([^']+)' does not exist on '([^']+)'")
_MISSING_DUCKDB_TABLE = re.compile(r"Table with name (\S+?) does not exist")
_DUCKDB_SUGGESTION = re.compile(r"\s*Did you mean \"[^\"]*\"\?")


def _close(name: str, lowered: list[str]) -> list[str]:
    """Up to three of the lower-case ``lowered`` that look like ``name``, closest first."""
    return difflib.get_close_matches(name.lower(), lowered, n=3, cutoff=0.6)


def _did_you_mean(name: str, candidates: list[str]) -> str | None:
    lowered = {c.lower(): c for c in candidates}
    matches = _close(name, list(lowered))
    if not matches:
        return None
    return f"did you mean {' or '.join(lowered[m] for m in matches)}?"


def _table_hint(lh: Lakehouse, name: str, ref: str | None) -> str | None:
    tables = [str(e.key) for e in lh.tables(ref)]
    if "." not in name:  # an unqualified name: tables are namespace.table
        by_short: dict[str, list[str]] = {}
        for table in tables:
            by_short.setdefault(table.rsplit(".", 1)[-1].lower(), []).append(table)
        # the name itself, else a misspelling of it ("ordrs": silver.orders)
        shorts = [name.lower()] if name.lower() in by_short else _close(name, list(by_short))
        same = [t for short in shorts for t in by_short[short]][:3]
        suggestion = f"did you mean {' or '.join(same)}?" if same else None
        return "tables are namespace.table" + (f": {suggestion}" if suggestion else "")
    return _did_you_mean(name, tables) or (
        f"no such table on {ref or lh.settings.ref or lh.default_branch}; "
        "`lakehouse table list` lists them"
    )


def hint(exc: BaseException, state: State | None) -> str | None:
    """A suggestion for a misspelled reference or table name (``did you mean …?``).

    Only looks at a lakehouse the command already opened; never fails.
    """
    from lakehouse.errors import LakehouseError, ReferenceNotFoundError

    lh = state.opened() if state is not None else None
    if lh is None:
        return None
    try:
        if isinstance(exc, ReferenceNotFoundError):
            name = re.split(r"[@~]", exc.ref, maxsplit=1)[0]
            if not name:
                return None
            return _did_you_mean(name, [r.name for r in lh.references()]) or (
                "`lakehouse branch list` and `lakehouse tag list` show the references"
            )
        text = str(exc)
        if match := _MISSING_TABLE.search(text):
            return _table_hint(lh, match.group(1), match.group(2))
        if isinstance(exc, LakehouseError) and (match := _MISSING_DUCKDB_TABLE.search(text)):
            name = match.group(1).strip("\"'")
            return _table_hint(lh, name, state.read_ref if state is not None else None)
    except Exception:  # a hint is a courtesy: never replace the real error
        logging.getLogger("lakehouse.cli").debug("no hint", exc_info=True)
    return None


def report_error(exc: BaseException, state: State | None) -> None:
    """Write ``exc`` on stderr: one text line, or one JSON object with ``--output json``."""
    message = one_line(exc)
    suggestion = hint(exc, state)
    if suggestion and _MISSING_DUCKDB_TABLE.search(message):
        # DuckDB suggests its own system tables ("pg_prepared_statements"): ours is better.
        message = _DUCKDB_SUGGESTION.sub("", message)
    if state is not None and (state.errors_as_json or state.output is Output.JSON):
        error = {"type": type(exc).__name__, "message": message, "hint": suggestion}
        typer.echo(json.dumps({"error": error}), err=True)
        return
    typer.echo(f"Error: {message}" + (f" ({suggestion})" if suggestion else ""), err=True)


_sigint = threading.Event()


def sigint_seen() -> bool:
    """Whether Ctrl-C was pressed during the running command (see :func:`watch_sigint`)."""
    return _sigint.is_set()


@contextmanager
def watch_sigint() -> Iterator[None]:
    """Note every SIGINT in :func:`sigint_seen`, then raise KeyboardInterrupt as Python does.

    Only when Python's own handler is in place, in the main thread: a shell's background
    job ignores SIGINT, and that choice is kept.
    """
    _sigint.clear()
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return

    def note(signum: int, frame: Any) -> None:
        _sigint.set()
        signal.default_int_handler(signum, frame)

    signal.signal(signal.SIGINT, note)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


class LakehouseGroup(TyperGroup):
    """The root command group: turns any error into ``Error: <one line>`` and exit code 1."""

    def invoke(self, ctx: Any) -> Any:  # ctx: typer's (vendored click) Context
        """Run the command; report failures without a traceback unless ``--debug``."""
        try:
            with watch_sigint():
                return super().invoke(ctx)
        except (typer.TyperException, typer.Exit, typer.Abort):  # usage errors, exits
            raise
        except KeyboardInterrupt:  # Ctrl-C: no traceback, the shell's exit code for SIGINT
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None
        except Exception as exc:
            if sigint_seen():  # e.g. DuckDB's "Query interrupted": still Ctrl-C
                logging.getLogger("lakehouse.cli").debug("interrupted", exc_info=True)
                typer.echo("interrupted", err=True)
                raise typer.Exit(130) from None
            state = ctx.obj if isinstance(ctx.obj, State) else None
            if state is not None and state.debug:
                traceback.print_exc(file=sys.stderr)
            logging.getLogger("lakehouse.cli").debug("command failed", exc_info=True)
            report_error(exc, state)
            raise typer.Exit(1) from None
