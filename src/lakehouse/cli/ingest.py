"""``lakehouse ingest …``: land a source's new data in ``raw`` and load it into bronze.

::

    lakehouse ingest folder PATH --table bronze.orders [--format csv] [--pattern GLOB]
        [--key-column COL]... [--new-columns add|reject] [--min-shared-columns SHARE]
    lakehouse ingest http URL --table bronze.rates [--format jsonl] [-H "Name: value"]
    lakehouse ingest sql URL (--from-table T | --query Q) [--cursor COL] --table bronze.x
    lakehouse ingest kafka --topic T --table silver.x --key COL [--max-batches N]

Every command takes ``--source NAME`` (the folder under ``raw/``), ``--ref BRANCH``
(default: ``NESSIE_REF``, else ``main``) and ``--output text|json``. Re-running loads
nothing twice. A batch that does not fit its table is quarantined under
``raw/_rejected/`` and the command exits with 1. Only typer is imported at module level.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lakehouse.cli._common import Output, OutputOpt, State, console, print_json

if TYPE_CHECKING:
    from lakehouse.ingest import IngestResult, Source

ingest_app = typer.Typer(
    help="Land new data from a folder, a URL, a database or Kafka CDC in raw and load it.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)

TableOpt = Annotated[
    str,
    typer.Option(
        "--table",
        "-t",
        help="Bronze table to load: bronze.orders (a bare name gets the bronze namespace).",
    ),
]
SourceOpt = Annotated[
    str | None,
    typer.Option(
        "--source",
        "-s",
        help="Source name: the folder raw/<source>/ (default: derived from the location).",
        show_default=False,
    ),
]
BranchOpt = Annotated[
    str | None,
    typer.Option(
        "--ref",
        "-r",
        help="Branch to commit to (default: NESSIE_REF, else main).",
        show_default=False,
    ),
]
FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format",
        "-f",
        help="csv, jsonl or parquet (default: from the file suffix).",
        show_default=False,
    ),
]
DelimiterOpt = Annotated[
    str | None, typer.Option("--delimiter", help="CSV field separator.", show_default=",")
]
NoHeaderOpt = Annotated[bool, typer.Option("--no-header", help="CSV files have no header row.")]
EncodingOpt = Annotated[
    str | None, typer.Option("--encoding", help="Text encoding.", show_default="utf-8")
]
OptionOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--option",
        "-O",
        metavar="KEY=VALUE",
        help="Reader option (as in pipeline.yaml), e.g. -O null_values=[NA] -O skip_rows=1.",
    ),
]
KeyColumnOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--key-column",
        metavar="COLUMN",
        help="Column a file must have for its new columns to be added to the table "
        "(repeatable; schema_policy.key_columns).",
        show_default=False,
    ),
]
NewColumnsOpt = Annotated[
    str | None,
    typer.Option(
        "--new-columns",
        metavar="add|reject",
        help="Whether files may add columns to the table (schema_policy.new_columns).",
        show_default="add",
    ),
]
MinSharedOpt = Annotated[
    float | None,
    typer.Option(
        "--min-shared-columns",
        metavar="SHARE",
        help="Without key columns: the share of the table's columns a file must have for "
        "its new columns to be added (schema_policy.min_shared_columns).",
        show_default="0.5",
    ),
]


def _policy(
    key_column: list[str] | None, new_columns: str | None, min_shared: float | None
) -> dict[str, Any] | None:
    """The ``schema_policy`` entry the options give (``None``: the source's default)."""
    policy: dict[str, Any] = {}
    if key_column:
        policy["key_columns"] = list(key_column)
    if new_columns is not None:
        policy["new_columns"] = new_columns
    if min_shared is not None:
        policy["min_shared_columns"] = min_shared
    return policy or None


def _options(
    delimiter: str | None, no_header: bool, encoding: str | None, pairs: list[str] | None
) -> dict[str, Any]:
    import yaml

    from lakehouse.ingest import SourceConfigError

    options: dict[str, Any] = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SourceConfigError(f"--option {pair!r}: use KEY=VALUE")
        options[key.strip()] = yaml.safe_load(value) if value.strip() else ""
    if delimiter is not None:
        options["delimiter"] = "\t" if delimiter in ("\\t", "tab") else delimiter
    if no_header:
        options["header"] = False
    if encoding is not None:
        options["encoding"] = encoding
    return options


def _run(ctx: typer.Context, entry: dict[str, Any], ref: str | None, output: Output | None) -> None:
    """Build the source, ingest with a progress display, print the result."""
    from lakehouse.ingest import ingest, parse_source

    state = State.of(ctx)
    source = parse_source({k: v for k, v in entry.items() if v is not None})
    lh = state.lakehouse()
    fmt = state.format(output)
    if fmt is Output.TEXT and sys.stderr.isatty():
        results = _with_progress(lh, source, ref)
    else:
        results = ingest(lh, source, branch=ref)
    if fmt is Output.JSON:
        print_json(results[0].to_json() if len(results) == 1 else [r.to_json() for r in results])
    else:
        for result in results:
            _print(result)
    for result in results:
        result.raise_for_quarantine()


def _with_progress(lh: Any, source: Source, ref: str | None) -> list[IngestResult]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from lakehouse.ingest import ingest

    labels = {"check": "Checking", "read": "Reading", "land": "Landing", "load": "Loading"}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[item]}"),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        tasks: dict[str, Any] = {}

        def progress(stage: str, item: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(labels.get(stage, stage), total=total, item="")
            bar.update(tasks[stage], completed=done, total=total, item=item)

        return ingest(lh, source, branch=ref, progress=progress)


def _print(result: IngestResult) -> None:
    from lakehouse.cli.render import short

    out = console()
    if result.quarantined is not None:
        q = result.quarantined
        out.print(f"Quarantined batch {q.batch_id} of source '{result.source}' for {result.table}")
        for reason in q.reasons:
            out.print(f"  reason:   {reason}")
        out.print(f"  files:    {q.location}")
        return
    if result.batch_id is None:
        out.print(
            f"Nothing new from source '{result.source}' for {result.table} on {result.branch}"
        )
    else:
        out.print(
            f"Loaded batch {result.batch_id} of source '{result.source}' into "
            f"{result.table} on {result.branch}"
        )
        out.print(f"  files:    {result.files_landed} landed in {result.manifest}")
        out.print(f"  rows:     {result.rows_loaded:,}")
        if result.added_columns:
            out.print(f"  columns:  added {', '.join(result.added_columns)}")
        out.print(f"  snapshot: {result.snapshot_id}  commit {short(result.commit_hash)}")
    if result.skipped:
        reasons: dict[str, int] = {}
        for skipped in result.skipped:
            reasons[skipped.reason] = reasons.get(skipped.reason, 0) + 1
        text = ", ".join(f"{n} {reason}" for reason, n in reasons.items())
        out.print(f"  skipped:  {len(result.skipped)} file(s) ({text})")


@ingest_app.command("folder")
def ingest_folder(
    ctx: typer.Context,
    path: Annotated[str, typer.Argument(help="Folder (local path or URI) holding the files.")],
    table: TableOpt,
    source: SourceOpt = None,
    format: FormatOpt = None,
    pattern: Annotated[
        str, typer.Option("--pattern", "-p", help="Glob selecting the files.")
    ] = "*",
    recursive: Annotated[
        bool, typer.Option("--recursive", help="Look into sub-folders too.")
    ] = False,
    delimiter: DelimiterOpt = None,
    no_header: NoHeaderOpt = False,
    encoding: EncodingOpt = None,
    option: OptionOpt = None,
    key_column: KeyColumnOpt = None,
    new_columns: NewColumnsOpt = None,
    min_shared_columns: MinSharedOpt = None,
    ref: BranchOpt = None,
    output: OutputOpt = None,
) -> None:
    """Load the files of a folder that bronze does not hold yet (CSV, JSON Lines, Parquet)."""
    from lakehouse.ingest.sources.base import source_name_from

    name = source or source_name_from(path.rstrip("/").rsplit("/", 1)[-1])
    entry = {
        "name": name,
        "type": "folder",
        "path": path,
        "table": table,
        "pattern": pattern,
        "recursive": recursive,
        "format": format,
        "options": _options(delimiter, no_header, encoding, option),
        "schema_policy": _policy(key_column, new_columns, min_shared_columns),
    }
    _run(ctx, entry, ref, output)


@ingest_app.command("http")
def ingest_http(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="http(s) URL of the file.")],
    table: TableOpt,
    source: SourceOpt = None,
    format: FormatOpt = None,
    http_header: Annotated[
        list[str] | None,
        typer.Option("--http-header", "-H", metavar="'NAME: VALUE'", help="Request header."),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds to wait for the server.")
    ] = 30.0,
    delimiter: DelimiterOpt = None,
    no_header: NoHeaderOpt = False,
    encoding: EncodingOpt = None,
    option: OptionOpt = None,
    key_column: KeyColumnOpt = None,
    new_columns: NewColumnsOpt = None,
    min_shared_columns: MinSharedOpt = None,
    ref: BranchOpt = None,
    output: OutputOpt = None,
) -> None:
    """Download a URL and load it unless bronze holds that exact content already."""
    from urllib.parse import urlsplit

    from lakehouse.ingest import SourceConfigError
    from lakehouse.ingest.sources.base import source_name_from

    headers: dict[str, str] = {}
    for line in http_header or ():
        key, sep, value = line.partition(":")
        if not sep or not key.strip():
            raise SourceConfigError(f"--http-header {key.strip() or line!r}: use 'Name: value'")
        headers[key.strip()] = value.strip()
    name = source or source_name_from(urlsplit(url).hostname or "http")
    entry = {
        "name": name,
        "type": "http",
        "url": url,
        "table": table,
        "format": format,
        "headers": headers,
        "timeout": timeout,
        "options": _options(delimiter, no_header, encoding, option),
        "schema_policy": _policy(key_column, new_columns, min_shared_columns),
    }
    _run(ctx, entry, ref, output)


@ingest_app.command("sql")
def ingest_sql(
    ctx: typer.Context,
    url: Annotated[
        str,
        typer.Argument(
            help="SQLAlchemy URL of the database (postgresql+psycopg://user:pw@host/db).",
            envvar="LAKEHOUSE_INGEST_SQL_URL",
            show_envvar=True,
        ),
    ],
    table: TableOpt,
    from_table: Annotated[
        str | None,
        typer.Option(
            "--from-table", help="Database table to read (schema.table).", show_default=False
        ),
    ] = None,
    query: Annotated[
        str | None,
        typer.Option(
            "--query", "-q", help="SELECT to read instead of a table.", show_default=False
        ),
    ] = None,
    cursor: Annotated[
        str | None,
        typer.Option(
            "--cursor",
            help="Column whose growing values select new rows (incremental load).",
            show_default=False,
        ),
    ] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Rows fetched at a time.")
    ] = 10_000,
    source: SourceOpt = None,
    key_column: KeyColumnOpt = None,
    new_columns: NewColumnsOpt = None,
    min_shared_columns: MinSharedOpt = None,
    ref: BranchOpt = None,
    output: OutputOpt = None,
) -> None:
    """Extract a database table or query (all rows, or rows past the cursor) into bronze."""
    from lakehouse.ingest.sources.base import source_name_from

    name = source or source_name_from((from_table or "query").rsplit(".", 1)[-1])
    entry = {
        "name": name,
        "type": "sql",
        "url": url,
        "table": table,
        "source_table": from_table,
        "query": query,
        "cursor": cursor,
        "batch_size": batch_size,
        "schema_policy": _policy(key_column, new_columns, min_shared_columns),
    }
    _run(ctx, entry, ref, output)


@ingest_app.command("kafka")
def ingest_kafka(
    ctx: typer.Context,
    topic: Annotated[
        list[str],
        typer.Option("--topic", help="Topic of Debezium change events (repeat for more)."),
    ],
    table: Annotated[str, typer.Option("--table", "-t", help="Silver table: silver.orders.")],
    key: Annotated[
        str, typer.Option("--key", "-k", help="Primary-key column(s), comma-separated.")
    ],
    bronze_table: Annotated[
        str | None,
        typer.Option(
            "--bronze-table",
            help="Bronze change log (default: bronze.<table name>_changes).",
            show_default=False,
        ),
    ] = None,
    max_batches: Annotated[
        int | None,
        typer.Option("--max-batches", min=1, help="Stop after N committed batches."),
    ] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Records per batch (one commit) at most.")
    ] = 10_000,
    batch_timeout: Annotated[
        float,
        typer.Option("--batch-timeout", min=0.01, help="Seconds a batch waits for records."),
    ] = 1.0,
    idle_timeout: Annotated[
        float | None,
        typer.Option(
            "--idle-timeout",
            min=0.1,
            help="Stop after S seconds without a record (default: run until stopped).",
            show_default=False,
        ),
    ] = None,
    bootstrap_servers: Annotated[
        str | None,
        typer.Option(
            "--bootstrap-servers",
            help="Kafka brokers host:port[,…] (default: LAKEHOUSE_KAFKA__BOOTSTRAP_SERVERS).",
            show_default=False,
        ),
    ] = None,
    ref: BranchOpt = None,
    output: OutputOpt = None,
) -> None:
    """Apply Debezium change events to a silver table by key, exactly once.

    Each batch is landed in raw/kafka/<topic>/, appended to the bronze change log and
    applied to silver in one catalog commit that also records the next Kafka offsets;
    a restart resumes at those offsets. Ctrl-C or SIGTERM commits the batch being
    gathered and exits.
    """
    import signal
    import threading

    from lakehouse.ingest.kafka import BatchResult, KafkaCdcSource, consume_cdc
    from lakehouse.ops.errors import PausedError

    state = State.of(ctx)
    source = KafkaCdcSource.create(
        topics=topic,
        table=table,
        key=[k for k in key.split(",") if k.strip()],
        bronze_table=bronze_table,
        batch_size=batch_size,
        batch_timeout=batch_timeout,
        bootstrap_servers=bootstrap_servers,
    )
    lh = state.lakehouse()
    fmt = state.format(output)
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        if stop.is_set():  # a second Ctrl-C: give up on the current batch
            raise KeyboardInterrupt
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    out = console()

    def on_batch(batch: BatchResult) -> None:
        if fmt is Output.TEXT:
            out.print(
                f"batch {batch.batch_id}: {batch.records} record(s), {batch.upserts} upsert(s), "
                f"{batch.deletes} delete(s), {batch.duplicates} duplicate(s), "
                f"{batch.rejected} rejected"
            )

    try:
        result = consume_cdc(
            lh,
            source,
            branch=ref,
            max_batches=max_batches,
            idle_timeout=idle_timeout,
            stop=stop,
            on_batch=on_batch,
        )
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if fmt is Output.JSON:
        print_json(result.to_json())
    else:
        offsets = ", ".join(
            f"{t}[{p}]@{o}"
            for t, parts in sorted(result.offsets.items())
            for p, o in sorted(parts.items())
        )
        out.print(
            f"Applied {result.changes:,} change(s) from {', '.join(result.topics)} to "
            f"{result.table} (log {result.bronze_table}) on {result.branch} in "
            f"{result.batches} batch(es); stopped: {result.stopped}"
        )
        out.print(f"  next offsets: {offsets or '-'}")
    if result.stopped == "paused":
        raise PausedError(
            "Kafka ingestion stopped after its last commit: the lakehouse was paused for "
            "disaster recovery; run `lakehouse dr resume` when recovery is done"
        )
