"""Reading landed files into Arrow: CSV, JSON Lines and Parquet, with pyarrow's readers.

Nothing here parses by hand. :func:`open_file` reads a file in record batches, never
whole: :func:`pyarrow.csv.open_csv` one block (``ingest.block_bytes``) at a time, a
Parquet file one row group at a time; JSON Lines (and a file in a text encoding other
than UTF-8) are read whole. :func:`read_file` reads a file whole with
:func:`pyarrow.csv.read_csv`, :func:`pyarrow.json.read_json` or
:func:`pyarrow.parquet.read_table`. Both map the Arrow types to the ones an Iceberg table
stores with :func:`normalize` (microsecond timestamps in UTC, 32/64-bit integers, plain
strings …).

The streaming CSV reader infers the types of a file's columns from its first block,
where :func:`read_csv` looks at all of it: a later block that does not convert to those
types stops the stream with :class:`ReadWholeFile`, and the caller reads the file with
:func:`read_file` instead (same result as before, at the memory cost of the file).

CSV columns that the bronze table already has are read with the table's types
(``hints``), so a column of zip codes stays a string and a column that is empty in one
file keeps its type. Type inference only decides the types of new columns.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from lakehouse.ingest._fs import FileRef
from lakehouse.ingest.errors import BadInputError, SourceConfigError

#: The file formats sources deliver.
Format = Literal["csv", "jsonl", "parquet"]
FORMATS: tuple[Format, ...] = ("csv", "jsonl", "parquet")

_SUFFIXES: Mapping[str, Format] = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".zst", ".lz4")

_DECIMAL = re.compile(r"^decimal(?:128)?\(\s*(\d+)\s*,\s*(\d+)\s*\)$")
_NAMED_TYPES: Mapping[str, pa.DataType] = {
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
    "time": pa.time64("us"),
    "integer": pa.int32(),
    "int": pa.int32(),
    "long": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "bool": pa.bool_(),
    "string": pa.string(),
    "binary": pa.binary(),
}


def parse_type(text: str) -> pa.DataType:
    """An Arrow type from a name: ``int64``, ``string``, ``decimal(12,2)``, ``timestamptz`` …"""
    name = text.strip().lower()
    if name in _NAMED_TYPES:
        return _NAMED_TYPES[name]
    match = _DECIMAL.match(name)
    if match:
        return pa.decimal128(int(match.group(1)), int(match.group(2)))
    try:
        return pa.type_for_alias(name)
    except (ValueError, KeyError):
        raise SourceConfigError(
            f"unknown column type {text!r} (use e.g. int64, double, string, date, "
            "timestamp, timestamptz, decimal(12,2))"
        ) from None


class FormatOptions(BaseModel):
    """How to read the files of a source (``options:`` in ``pipeline.yaml``).

    CSV uses every field; JSON Lines uses ``encoding``, ``column_types`` and
    ``include_columns``; Parquet uses ``include_columns``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Field separator (CSV).
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    #: Whether the first row holds the column names (CSV).
    header: bool = True
    #: Column names when the file has no header, or to replace the header's (CSV).
    column_names: tuple[str, ...] | None = None
    #: Quote character, or ``None`` for no quoting (CSV).
    quote_char: str | None = Field(default='"', min_length=1, max_length=1)
    #: Escape character inside quoted values (CSV).
    escape_char: str | None = Field(default=None, min_length=1, max_length=1)
    #: Strings that mean NULL (CSV; default: pyarrow's, e.g. empty, ``NULL``, ``NaN``).
    null_values: tuple[str, ...] | None = None
    #: Rows to skip at the start of the file, before the header (CSV).
    skip_rows: int = Field(default=0, ge=0)
    #: Text encoding of CSV and JSON Lines files.
    encoding: str = "utf-8"
    #: Only keep these columns (CSV, JSON Lines, Parquet).
    include_columns: tuple[str, ...] | None = None
    #: Types of columns instead of inferring them: ``{o_orderkey: int64, o_orderdate: date}``.
    column_types: dict[str, str] | None = None

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            return codecs.lookup(value).name
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}") from None

    @field_validator("column_types")
    @classmethod
    def _known_types(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for text in (value or {}).values():
            parse_type(text)
        return value

    def arrow_column_types(self) -> dict[str, pa.DataType]:
        """``column_types`` as Arrow types."""
        return {name: parse_type(text) for name, text in (self.column_types or {}).items()}


def infer_format(name: str) -> Format | None:
    """The format a file name's suffix implies (``orders.csv.gz`` → ``csv``), else ``None``."""
    lower = name.lower()
    for suffix in _COMPRESSION_SUFFIXES:
        if lower.endswith(suffix):
            lower = lower[: -len(suffix)]
            break
    for suffix, fmt in _SUFFIXES.items():
        if lower.endswith(suffix):
            return fmt
    return None


def _is_compressed(name: str) -> bool:
    return name.lower().endswith(_COMPRESSION_SUFFIXES)


def encoding_checker(
    fmt: Format, options: FormatOptions, name: str, *, source: str | None = None
) -> Callable[[bytes], None] | None:
    """A function that raises :class:`BadInputError` on the first chunk not in the encoding.

    Feed it every chunk of an uncompressed text file, in order (``None`` for Parquet and
    compressed files, whose bytes are not text).
    """
    if fmt == "parquet" or _is_compressed(name):
        return None
    decoder = codecs.getincrementaldecoder(options.encoding)(errors="strict")
    offset = 0

    def check(chunk: bytes) -> None:
        nonlocal offset
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            position = offset + exc.start
            raise BadInputError(
                f"cannot read {name}: not valid {options.encoding} text at byte {position} "
                f"(set the source's encoding option if the file uses another encoding)",
                source=source,
                file=name,
            ) from None
        offset += len(chunk)

    return check


def read_file(
    ref: FileRef,
    fmt: Format,
    options: FormatOptions,
    *,
    name: str,
    hints: Mapping[str, pa.DataType] | None = None,
    source: str | None = None,
) -> pa.Table:
    """Read one file into an Arrow table with normalized types (see :func:`normalize`).

    ``hints`` are the types of columns the target table has already (used for CSV; a
    value that does not fit its hinted type makes the file be read without hints, so
    the type change is reported by the schema check, not as unreadable input).
    Raises :class:`BadInputError` naming ``name`` when the file cannot be read, is
    empty or has no rows.
    """

    def bad(reason: str) -> BadInputError:
        return BadInputError(f"cannot read {name} as {fmt}: {reason}", source=source, file=name)

    try:
        if fmt == "csv":
            try:
                table = _read_csv(ref, options, hints or {})
            except pa.ArrowInvalid:
                if not hints:
                    raise
                table = _read_csv(ref, options, {})
        elif fmt == "jsonl":
            table = _read_jsonl(ref, options)
        else:
            table = _read_parquet(ref, options)
    except BadInputError:
        raise
    except (pa.ArrowException, OSError, ValueError, TypeError) as exc:
        raise _bad_input(exc, name, fmt, source) from None

    if table.num_columns == 0:
        raise bad("the file is empty")
    if table.num_rows == 0:
        raise bad("the file has no rows")
    problem = _check_schema(table.schema, fmt, options)
    if problem is not None:
        raise bad(problem)
    try:
        return normalize(table)
    except (pa.ArrowException, ValueError) as exc:
        raise bad(str(exc).splitlines()[0]) from None


#: Bytes of a CSV file parsed at a time by :func:`open_file` (``ingest.block_bytes``).
DEFAULT_BLOCK_BYTES = 16 * 1024**2


class ReadWholeFile(Exception):  # noqa: N818 - a signal, not an error people see
    """A streamed file cannot be read block by block (a later block does not convert to
    the types its first block gave): read it whole with :func:`read_file`."""


@dataclass
class FileBatches:
    """A file opened by :func:`open_file`: its normalized schema and its record batches.

    :attr:`batches` can be iterated once; :attr:`rows` counts the rows read so far.
    """

    name: str
    schema: pa.Schema
    _batches: Iterator[pa.RecordBatch]
    rows: int = 0

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The file's rows, batch by batch, with the types of :attr:`schema`."""
        for batch in self._batches:
            self.rows += batch.num_rows
            yield batch

    def close(self) -> None:
        """Stop reading (closes the file)."""
        close = getattr(self._batches, "close", None)
        if close is not None:
            close()


def _bad_input(exc: BaseException, name: str, fmt: Format, source: str | None) -> BadInputError:
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "Empty" in message and "file" in message:
        message = "the file is empty"
    return BadInputError(f"cannot read {name} as {fmt}: {message}", source=source, file=name)


def _check_schema(schema: pa.Schema, fmt: Format, options: FormatOptions) -> str | None:
    """Why a file of ``schema`` cannot be read (``None``: it can)."""
    if len(schema) == 0:
        return "the file is empty"
    names = schema.names
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        return f"duplicate column name(s) {', '.join(duplicates)}"
    if fmt != "parquet":
        for field in schema:
            # pyarrow falls back to binary for text that is not valid UTF-8
            if pa.types.is_binary(field.type) and field.name not in options.arrow_column_types():
                return f"column {field.name!r} is not valid {options.encoding} text"
    return None


def normalize_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with every type replaced by :func:`normalize_type` (names kept)."""
    return pa.schema([f.with_type(normalize_type(f.type)) for f in schema])


def _normalized(
    batches: Iterator[pa.RecordBatch], schema: pa.Schema, target: pa.Schema
) -> Iterator[pa.RecordBatch]:
    if target.equals(schema):
        yield from batches
        return
    lossy = any(_lossy_units(f.type) for f in schema)
    for batch in batches:
        yield batch.cast(target, safe=not lossy)


def open_file(
    ref: FileRef,
    fmt: Format,
    options: FormatOptions,
    *,
    name: str,
    hints: Mapping[str, pa.DataType] | None = None,
    source: str | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    batch_rows: int = 65536,
    whole: bool = False,
) -> FileBatches:
    """Open one file to read it in record batches with normalized types.

    CSV is parsed ``block_bytes`` at a time, Parquet read ``batch_rows`` rows at a time
    (a row group at most); JSON Lines, and CSV in an encoding other than UTF-8, are read
    whole (:func:`read_file`) and handed out in batches, as is any file with ``whole``.
    ``hints`` as for
    :func:`read_file`. Raises :class:`BadInputError` naming ``name`` when the file
    cannot be opened or its header is unusable; while batches are read, a block that does
    not convert raises :class:`ReadWholeFile` (CSV) and a damaged file
    :class:`BadInputError`. An empty stream is the caller's to report (``rows`` is 0).
    """
    if whole or fmt == "jsonl" or (fmt == "csv" and options.encoding not in ("utf-8", "utf-8-sig")):
        table = read_file(ref, fmt, options, name=name, hints=hints, source=source)
        return FileBatches(name, table.schema, iter(table.to_batches(max_chunksize=batch_rows)))
    try:
        if fmt == "csv":
            try:
                schema, batches = _open_csv(ref, options, hints or {}, block_bytes)
            except pa.ArrowInvalid:
                if not hints:
                    raise
                schema, batches = _open_csv(ref, options, {}, block_bytes)
        else:
            schema, batches = _open_parquet(ref, options, batch_rows)
    except BadInputError:
        raise
    except (pa.ArrowException, OSError, ValueError, TypeError) as exc:
        raise _bad_input(exc, name, fmt, source) from None
    problem = _check_schema(schema, fmt, options)
    if problem is not None:
        batches.close()
        raise BadInputError(f"cannot read {name} as {fmt}: {problem}", source=source, file=name)
    try:
        target = normalize_schema(schema)
    except ValueError as exc:
        batches.close()
        raise BadInputError(
            f"cannot read {name} as {fmt}: {str(exc).splitlines()[0]}", source=source, file=name
        ) from None
    return FileBatches(
        name, target, _guarded(_normalized(batches, schema, target), fmt, name, source)
    )


def _guarded(
    batches: Iterator[pa.RecordBatch], fmt: Format, name: str, source: str | None
) -> Iterator[pa.RecordBatch]:
    """``batches``, with a conversion failure as :class:`ReadWholeFile` (CSV) or
    :class:`BadInputError`."""
    try:
        yield from batches
    except pa.ArrowInvalid as exc:
        if fmt == "csv":
            raise ReadWholeFile(str(exc)) from exc
        raise _bad_input(exc, name, fmt, source) from None
    except (pa.ArrowException, OSError) as exc:
        raise _bad_input(exc, name, fmt, source) from None
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()


def _csv_options(
    options: FormatOptions, hints: Mapping[str, pa.DataType], block_bytes: int | None = None
) -> tuple[Any, Any, Any]:
    import pyarrow.csv as pacsv

    names = list(options.column_names) if options.column_names else None
    read_kwargs: dict[str, Any] = {}
    if block_bytes is not None:
        read_kwargs["block_size"] = block_bytes
    read = pacsv.ReadOptions(
        encoding=options.encoding,
        skip_rows=options.skip_rows,
        column_names=names,
        autogenerate_column_names=not options.header and names is None,
        skip_rows_after_names=1 if options.header and names is not None else 0,
        **read_kwargs,
    )
    parse = pacsv.ParseOptions(
        delimiter=options.delimiter,
        quote_char=options.quote_char if options.quote_char is not None else False,
        escape_char=options.escape_char if options.escape_char is not None else False,
    )
    types = {name: _hint_type(t) for name, t in hints.items()}
    types.update(options.arrow_column_types())
    convert_kwargs: dict[str, Any] = {"column_types": types}
    if options.null_values is not None:
        convert_kwargs["null_values"] = list(options.null_values)
        convert_kwargs["strings_can_be_null"] = True
    if options.include_columns is not None:
        convert_kwargs["include_columns"] = list(options.include_columns)
    convert = pacsv.ConvertOptions(**convert_kwargs)
    return read, parse, convert


def _open_csv(
    ref: FileRef, options: FormatOptions, hints: Mapping[str, pa.DataType], block_bytes: int
) -> tuple[pa.Schema, Generator[pa.RecordBatch]]:
    import pyarrow.csv as pacsv

    read, parse, convert = _csv_options(options, hints, block_bytes)
    stream = ref.fs.open_input_stream(ref.path, compression="detect")
    try:
        reader = pacsv.open_csv(
            stream, read_options=read, parse_options=parse, convert_options=convert
        )
    except BaseException:
        stream.close()
        raise

    def batches() -> Generator[pa.RecordBatch]:
        try:
            yield from reader
        finally:
            stream.close()

    return reader.schema, batches()


def _open_parquet(
    ref: FileRef, options: FormatOptions, batch_rows: int
) -> tuple[pa.Schema, Generator[pa.RecordBatch]]:
    import pyarrow.parquet as pq

    stream = ref.fs.open_input_file(ref.path)
    try:
        parquet = pq.ParquetFile(stream)
        columns = list(options.include_columns) if options.include_columns else None
        schema = parquet.schema_arrow
        if columns is not None:
            missing = [c for c in columns if c not in schema.names]
            if missing:
                raise ValueError(f"No match for FieldRef.Name({missing[0]})")
            schema = pa.schema([schema.field(c) for c in columns])
    except BaseException:
        stream.close()
        raise

    def batches() -> Generator[pa.RecordBatch]:
        try:
            yield from parquet.iter_batches(batch_size=batch_rows, columns=columns)
        finally:
            stream.close()

    return schema, batches()


#: Field separators a CSV file is commonly written with.
USUAL_DELIMITERS: tuple[str, ...] = (",", ";", "|", "\t")


def wrong_delimiter(
    data: pa.Table, fmt: Format, options: FormatOptions, *, name: str
) -> str | None:
    """Why ``data``, read from the CSV file ``name``, looks read with the wrong delimiter.

    The sign: the header gave ONE column whose name contains another usual separator
    (``id;name;amount`` read with ``,``). Only checked for CSV files whose header names
    the columns (not with ``header: false`` or ``column_names``). ``None``: looks fine.
    """
    if fmt != "csv" or not options.header or options.column_names or data.num_columns != 1:
        return None
    column = data.column_names[0]
    found = [d for d in USUAL_DELIMITERS if d != options.delimiter and d in column]
    if not found:
        return None
    shown = ", ".join(repr(d) for d in found)
    return (
        f"{name} has a single column {column!r} whose name contains {shown}: the file looks "
        f"delimited by {found[0]!r}, not {options.delimiter!r} (set the source's delimiter)"
    )


def _read_csv(ref: FileRef, options: FormatOptions, hints: Mapping[str, pa.DataType]) -> pa.Table:
    import pyarrow.csv as pacsv

    read, parse, convert = _csv_options(options, hints)
    with ref.fs.open_input_stream(ref.path, compression="detect") as stream:
        return pacsv.read_csv(
            stream, read_options=read, parse_options=parse, convert_options=convert
        )


def _read_jsonl(ref: FileRef, options: FormatOptions) -> pa.Table:
    import pyarrow.json as pajson

    with ref.fs.open_input_stream(ref.path, compression="detect") as stream:
        if options.encoding in ("utf-8", "utf-8-sig"):
            table = pajson.read_json(stream)
        else:  # JSON Lines is UTF-8 by definition; transcode others first
            text = bytes(stream.read()).decode(options.encoding)
            table = pajson.read_json(pa.py_buffer(text.encode("utf-8")))
    table.validate(full=True)  # pyarrow's JSON reader does not check UTF-8 in strings
    table = table.select(options.include_columns) if options.include_columns else table
    for name, type_ in options.arrow_column_types().items():
        if name in table.column_names:
            index = table.column_names.index(name)
            table = table.set_column(index, name, table.column(name).cast(type_))
    return table


def _read_parquet(ref: FileRef, options: FormatOptions) -> pa.Table:
    import pyarrow.parquet as pq

    with ref.fs.open_input_file(ref.path) as stream:
        columns = list(options.include_columns) if options.include_columns else None
        return pq.read_table(stream, columns=columns)


def _hint_type(type_: pa.DataType) -> pa.DataType:
    """A table column's Arrow type as the CSV reader should produce it."""
    if pa.types.is_large_string(type_):
        return pa.string()
    if pa.types.is_large_binary(type_):
        return pa.binary()
    return type_


def normalize_type(type_: pa.DataType) -> pa.DataType:
    """The Arrow type a column of ``type_`` is stored as in an Iceberg table.

    Timestamps become microseconds (with time zone → UTC), small and unsigned integers
    32/64-bit, half floats single, dates 32-bit, large/view strings plain strings,
    dictionaries their values; lists, maps and structs are normalized inside. Raises
    :class:`ValueError` for types Iceberg cannot store (durations, intervals, …).
    """
    t = pa.types
    if t.is_dictionary(type_):
        return normalize_type(type_.value_type)
    if t.is_timestamp(type_):
        return pa.timestamp("us", tz="UTC" if type_.tz is not None else None)
    if t.is_time(type_):
        return pa.time64("us")
    if t.is_date(type_):
        return pa.date32()
    if t.is_int8(type_) or t.is_int16(type_) or t.is_uint8(type_) or t.is_uint16(type_):
        return pa.int32()
    if t.is_uint32(type_) or t.is_uint64(type_):
        return pa.int64()
    if t.is_float16(type_):
        return pa.float32()
    if t.is_large_string(type_) or t.is_string_view(type_):
        return pa.string()
    if t.is_large_binary(type_) or t.is_binary_view(type_):
        return pa.binary()
    if t.is_decimal(type_):
        if type_.precision > 38:
            raise ValueError(f"decimal precision {type_.precision} is more than 38")
        return pa.decimal128(type_.precision, type_.scale)
    if t.is_list(type_) or t.is_large_list(type_) or t.is_fixed_size_list(type_):
        return pa.list_(type_.value_field.with_type(normalize_type(type_.value_type)))
    if t.is_map(type_):
        return pa.map_(
            type_.key_field.with_type(normalize_type(type_.key_type)),
            type_.item_field.with_type(normalize_type(type_.item_type)),
        )
    if t.is_struct(type_):
        return pa.struct(
            [
                type_.field(i).with_type(normalize_type(type_.field(i).type))
                for i in range(type_.num_fields)
            ]
        )
    if t.is_duration(type_) or t.is_interval(type_) or t.is_union(type_):
        raise ValueError(f"type {type_} cannot be stored in an Iceberg table")
    return type_


def _lossy_units(type_: pa.DataType) -> bool:
    """True if casting to the normalized type may drop sub-microsecond digits."""
    t = pa.types
    if t.is_timestamp(type_) or t.is_time(type_):
        return str(type_.unit) == "ns"
    return False


def normalize(table: pa.Table) -> pa.Table:
    """``table`` with every column cast to :func:`normalize_type` (names and nulls kept)."""
    columns = []
    fields = []
    for field, column in zip(table.schema, table.columns, strict=True):
        target = normalize_type(field.type)
        if target != field.type:
            try:
                column = column.cast(target, safe=not _lossy_units(field.type))
            except pa.ArrowInvalid as exc:
                raise ValueError(f"column {field.name!r}: {exc}") from None
        columns.append(column)
        fields.append(field.with_type(target))
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


__all__ = [
    "DEFAULT_BLOCK_BYTES",
    "FORMATS",
    "USUAL_DELIMITERS",
    "FileBatches",
    "Format",
    "FormatOptions",
    "ReadWholeFile",
    "encoding_checker",
    "infer_format",
    "normalize",
    "normalize_schema",
    "normalize_type",
    "open_file",
    "parse_type",
    "read_file",
    "wrong_delimiter",
]
