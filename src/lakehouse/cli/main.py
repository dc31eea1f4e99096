"""The ``lakehouse`` command: a thin layer over :mod:`lakehouse.client`.

::

    lakehouse [--home PATH] [--output text|json] [--ref REF] [--debug] COMMAND
      init                                   create home, warehouse buckets, catalog
      status [--ref REF]                     settings and the state of a reference
      branch create NAME [--from REF] | list | delete NAME | approve NAME
             | reset NAME --to REF | prune [--pattern P [--older-than AGE]] [--dry-run]
      tag create NAME [--ref REF] | list | delete NAME
      log [--ref REF] [-n N]
      diff FROM TO [--rows [--sample N]]
      merge SOURCE [--into BRANCH] [--strategy normal|source-wins|target-wins] [--dry-run]
            [--force-key KEY]... [--drop-key KEY]...
      revert COMMIT [--on BRANCH] | cherry-pick COMMIT... --onto BRANCH
      table list [--ref REF] [--namespace NS] | show NAME [--ref REF] | history NAME [--ref REF]
      maintenance expire|compact|gc|run [--dry-run] [--ref BRANCH]... [--table T]...
      run PIPELINE [--select MODEL[+]]... [--dry-run] [--ref REF] [--full-refresh [MODEL…]]
      plan PIPELINE [--select MODEL[+]]... [--ref REF]     bind models and checks, write nothing
      test [PIPELINE] [--model MODEL]...                  model unit tests (*.test.yaml)
      pipeline new NAME                                   scaffold a pipeline that runs
      trino-catalog [--ref REF] [--api rest|nessie] [--server URL] [--format properties|sql]
                                                          a Trino catalog for a reference

Every command accepts ``--output`` (and reading commands ``--ref``) after its name
too. Errors print ``Error: <one line>`` on stderr (with ``did you mean …?`` for a
misspelled table or reference) and exit with 1; ``--debug`` adds the traceback. With
``--output json`` an error is ``{"error": {"type", "message", "hint"}}`` on stderr. A
usage error (an unknown command or option) is click's: text with the usage line, exit 2.
Ctrl-C exits with 130. Piped or redirected, output is never cut to a terminal's width.
Options read ``LAKEHOUSE_HOME``, ``LAKEHOUSE_OUTPUT``, ``LAKEHOUSE_DEBUG`` and
``NESSIE_REF`` from the environment.

Only typer and the standard library are imported at module level: commands import
what they need, and a command's module is imported and the command built by Typer when
it is first used (:data:`LATER`), so ``lakehouse --help`` and a single command stay fast.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Annotated, Any, cast

import typer
import typer.main
from typer.core import TyperGroup

from lakehouse.cli._common import (
    LakehouseGroup,
    Output,
    OutputOpt,
    RefOpt,
    State,
    complete_ref,
    console,
    print_json,
)

# -- commands built when first used ------------------------------------------------------------
#
# Typer turns every command's signature into click parameters when the command tree is
# built, and that is most of a short command's start-up: so the root group holds only
# ``init``, ``status`` and ``log`` up front; every other command is registered (on its own
# Typer, exactly as on the root) and built, its module imported, when it is first looked
# up: running it, completing it, or listing it in ``--help``.


def _history(t: typer.Typer) -> None:
    from lakehouse.cli import history

    t.command("diff")(history.diff_command)
    t.command("merge")(history.merge_command)
    t.command("revert")(history.revert_command)
    t.command("cherry-pick")(history.cherry_pick_command)


def _run(t: typer.Typer) -> None:
    from lakehouse.cli import run

    t.command("run")(run.run_command)


def _pipeline(t: typer.Typer) -> None:
    from lakehouse.cli import pipeline

    t.command("plan")(pipeline.plan_command)
    t.command("test")(pipeline.model_tests_command)
    t.add_typer(pipeline.pipeline_app, name="pipeline")


def _sql(t: typer.Typer) -> None:
    from lakehouse.cli import sql

    t.command("sql")(sql.sql_command)


def _serve(t: typer.Typer) -> None:
    from lakehouse.cli import serve

    t.command("serve")(serve.serve_command)
    t.command("ui")(serve.ui_command)


def _trino(t: typer.Typer) -> None:
    from lakehouse.cli import trino

    t.command("trino-catalog")(trino.trino_catalog_command)


def _login(t: typer.Typer) -> None:
    from lakehouse.cli import login

    t.command("login")(login.login_command)
    t.command("logout")(login.logout_command)


def _refs(t: typer.Typer) -> None:
    from lakehouse.cli import refs
    from lakehouse.cli.maintenance import approve_command

    if not any(c.name == "approve" for c in refs.branch_app.registered_commands):
        refs.branch_app.command("approve")(approve_command)
    t.add_typer(refs.branch_app, name="branch")
    t.add_typer(refs.tag_app, name="tag")


def _tables(t: typer.Typer) -> None:
    from lakehouse.cli import tables

    t.add_typer(tables.table_app, name="table")


def _ingest(t: typer.Typer) -> None:
    from lakehouse.cli.ingest import ingest_app

    t.add_typer(ingest_app, name="ingest")


def _backup(t: typer.Typer) -> None:
    from lakehouse.cli.backup import backup_app

    t.add_typer(backup_app, name="backup")


def _ops(t: typer.Typer) -> None:
    from lakehouse.cli.ops import catalog_app, dr_app

    t.add_typer(catalog_app, name="catalog")
    t.add_typer(dr_app, name="dr")


def _maintenance(t: typer.Typer) -> None:
    from lakehouse.cli.maintenance import maintenance_app

    t.add_typer(maintenance_app, name="maintenance")


#: Each command (in ``--help`` order: commands, then groups) and what registers it.
LATER: dict[str, Callable[[typer.Typer], None]] = {
    "diff": _history,
    "merge": _history,
    "revert": _history,
    "cherry-pick": _history,
    "run": _run,
    "plan": _pipeline,
    "test": _pipeline,
    "sql": _sql,
    "serve": _serve,
    "ui": _serve,
    "trino-catalog": _trino,
    "login": _login,
    "logout": _login,
    "branch": _refs,
    "tag": _refs,
    "table": _tables,
    "ingest": _ingest,
    "backup": _backup,
    "catalog": _ops,
    "dr": _ops,
    "maintenance": _maintenance,
    "pipeline": _pipeline,
}


class LazyCommands(MutableMapping[str, Any]):
    """A group's commands by name: the built ones, then those of :data:`LATER`, built on use.

    Every name is known up front (listing, ``did you mean``, completion see them all);
    a value is built by Typer from its registration the first time it is read.
    """

    def __init__(self, built: MutableMapping[str, Any], root: typer.Typer) -> None:
        self._built = dict(built)
        self._order = [*built, *(name for name in LATER if name not in built)]
        self._root = root

    def __getitem__(self, name: str) -> Any:
        if name not in self._built and name in LATER:
            self._build(LATER[name])
        return self._built[name]

    def _build(self, register: Callable[[typer.Typer], None]) -> None:
        # a holder with the root's settings and a callback, so Typer builds a group of
        # exactly what ``register`` adds, as it would have built them under the root
        holder = typer.Typer(
            pretty_exceptions_enable=self._root.pretty_exceptions_enable,
            rich_markup_mode=self._root.rich_markup_mode,
            add_completion=False,
        )
        holder.callback()(_holder_callback)
        register(holder)
        group = cast(TyperGroup, typer.main.get_command(holder))
        for name, command in group.commands.items():
            self._built.setdefault(name, command)

    def __setitem__(self, name: str, command: Any) -> None:
        if name not in self._order:
            self._order.append(name)
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        self._order.remove(name)
        self._built.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, name: object) -> bool:
        return name in self._order


def _holder_callback() -> None:
    """Never run: makes Typer build a group."""


class RootGroup(LakehouseGroup):
    """The ``lakehouse`` group: :class:`LakehouseGroup` whose commands are built on use."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = LazyCommands(self.commands, app)


app = typer.Typer(
    name="lakehouse",
    cls=RootGroup,
    help="Iceberg tables in a versioned catalog: branches, tags, commits and merges.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from lakehouse import __version__

        typer.echo(f"lakehouse {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            envvar="LAKEHOUSE_HOME",
            help="Lakehouse home folder (catalog database and local warehouse).",
            show_default="./.lakehouse",
        ),
    ] = None,
    output: Annotated[
        Output,
        typer.Option(
            "--output",
            "-o",
            envvar="LAKEHOUSE_OUTPUT",
            case_sensitive=False,
            help="Output format.",
        ),
    ] = Output.TEXT,
    ref: Annotated[
        str | None,
        typer.Option(
            "--ref",
            "-r",
            help="Reference for reads when a command gets none (default: NESSIE_REF, else main).",
            show_default=False,
            autocompletion=complete_ref,
        ),
    ] = None,
    debug: Annotated[
        bool,
        typer.Option("--debug", envvar="LAKEHOUSE_DEBUG", help="Show tracebacks and debug logs."),
    ] = False,
    log_format: Annotated[
        str | None,
        typer.Option(
            "--log-format",
            envvar="LAKEHOUSE_LOG_FORMAT",
            help="Log lines on stderr as text or json (one object per line).",
            show_default="text",
        ),
    ] = None,
    log_level: Annotated[
        str | None,
        typer.Option(
            "--log-level",
            envvar="LAKEHOUSE_LOG_LEVEL",
            help="Lowest level logged: critical, error, warning, info, debug.",
            show_default="warning",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Iceberg tables in a versioned catalog: branches, tags, commits and merges."""
    state = State(home=home, output=output, debug=debug, ref=ref)
    state.log_format, state.log_level = log_format, log_level
    ctx.obj = state
    ctx.call_on_close(state.close)
    state.configure_logging()


@app.command()
def init(ctx: typer.Context, output: OutputOpt = None) -> None:
    """Create the home folder, the warehouse buckets and the catalog (safe to re-run)."""
    state = State.of(ctx)
    lh = state.lakehouse(create=True)
    info = {**lh.settings.summary(), "buckets": dict(lh.warehouse.buckets)}
    if state.format(output) is Output.JSON:
        print_json(info)
        return
    out = console()
    out.print(f"Initialized lakehouse in {info['home']}")
    out.print(f"  catalog:   {info['catalog']}  (default branch {info['default_branch']})")
    out.print(f"  warehouse: {info['warehouse']}")


@app.command()
def status(ctx: typer.Context, ref: RefOpt = None, output: OutputOpt = None) -> None:
    """Show the settings and the state of a reference."""
    state = State.of(ctx)
    data = state.lakehouse().status(ref).to_json()
    if state.format(output) is Output.JSON:
        print_json(data)
        return
    from lakehouse.cli.render import short

    out = console()
    for key in ("profile", "home", "catalog", "warehouse", "default_branch", "author"):
        out.print(f"{key + ':':<16}{data[key] or '-'}")
    out.print(f"{'ref:':<16}{data['ref']} at {short(data['hash'])}")
    out.print(f"{'references:':<16}{data['branches']} branch(es), {data['tags']} tag(s)")
    out.print(f"{'tables:':<16}{data['tables']}")
    last = data["last_commit"]
    if last:
        out.print(f"{'last commit:':<16}{short(last.get('hash'))} {last.get('message', '')}")


@app.command()
def log(
    ctx: typer.Context,
    ref: RefOpt = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="Show at most N commits.")
    ] = 20,
    output: OutputOpt = None,
) -> None:
    """Show the commits of a reference, newest first."""
    from lakehouse.cli import render

    state = State.of(ctx)
    entries = state.lakehouse().log(ref, limit)
    if state.format(output) is Output.JSON:
        print_json(render.log_json(entries))
    else:
        render.print_log(console(), entries)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="lakehouse")


if __name__ == "__main__":
    main()
