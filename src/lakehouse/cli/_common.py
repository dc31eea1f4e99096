"""What every command shares: global state, option types, output, the error handler.

Only light modules are imported here (typer, stdlib): the library, rich and
pydantic are imported by the commands that need them, so ``lakehouse --help`` is fast.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
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


OutputOpt = Annotated[
    Output | None,
    typer.Option(
        "--output",
        "-o",
        case_sensitive=False,
        help="Output format: text or json (default: the global --output).",
        show_default=False,
    ),
]
RefOpt = Annotated[
    str | None,
    typer.Option(
        "--ref",
        "-r",
        help="Branch, tag or hash (name@hash, @hash, name~N) (default: NESSIE_REF, else main).",
        show_default=False,
    ),
]


@dataclass
class State:
    """Global options and the lakehouse opened for this invocation (lazily)."""

    home: Path | None = None
    output: Output = Output.TEXT
    debug: bool = False
    ref: str | None = None
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

            settings = load_settings(home=self.home, ref=self.ref)
            self._lakehouse = connect(settings=settings, create=create)
        return self._lakehouse

    def close(self) -> None:
        """Close the lakehouse if one was opened."""
        if self._lakehouse is not None:
            self._lakehouse.close()
            self._lakehouse = None


def console() -> Console:
    """A rich console on stdout (created per call: tests swap ``sys.stdout``)."""
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


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


class LakehouseGroup(TyperGroup):
    """The root command group: turns any error into ``Error: <one line>`` and exit code 1."""

    def invoke(self, ctx: Any) -> Any:  # ctx: typer's (vendored click) Context
        """Run the command; report failures without a traceback unless ``--debug``."""
        try:
            return super().invoke(ctx)
        except (typer.TyperException, typer.Exit, typer.Abort):  # usage errors, exits
            raise
        except Exception as exc:
            debug = isinstance(ctx.obj, State) and ctx.obj.debug
            if debug:
                traceback.print_exc(file=sys.stderr)
            logging.getLogger("lakehouse.cli").debug("command failed", exc_info=True)
            typer.echo(f"Error: {one_line(exc)}", err=True)
            raise typer.Exit(1) from None
