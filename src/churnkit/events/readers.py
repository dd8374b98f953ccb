"""Readers: one file in, chunks of raw rows out (all source columns, line numbers, row keys).

Each reader streams: CSV and JSON Lines in blocks of ``chunk_rows`` lines, Parquet in record
batches of ``chunk_rows`` rows, so memory does not grow with the file. A chunk carries

- ``columns``: every source column of the well-formed rows (text formats: stripped strings,
  empty -> null; Parquet: the stored Arrow types);
- ``line``: 1-based line (text) or row (Parquet) number of each row;
- ``key``: the row's source values joined into one string, the identity used for duplicates;
- ``malformed``: rows that could not be split into fields at all, with line, detail and raw text.
"""

from __future__ import annotations

import csv
import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from churnkit.config import CsvOptions
from churnkit.errors import InputFileError
from churnkit.events.csvparse import Dialect, Records, RecordSplitter, parse_header_line
from churnkit.events.files import InputFile
from churnkit.events.lines import LineBlock, iter_line_blocks

KEY_SEP = "\x1f"
HEADER_BLOCK_LINES = 1_000
KEY_NULL = "\x00"
NULL_STR = pa.scalar(None, pa.string())


@dataclass
class RawChunk:
    columns: dict[str, pa.Array]
    line: np.ndarray
    key: pa.Array
    raw_of: Callable[[np.ndarray], list[str]]
    """Original text of the rows at the given positions (JSON of the row for Parquet)."""
    malformed: list[tuple[int, str, str]] = field(default_factory=list)
    blank_lines: int = 0
    bytes_done: int = 0
    text_clean: bool = True
    """Columns are already stripped strings with empty as null (text formats)."""

    @property
    def n(self) -> int:
        return len(self.line)


class MissingColumnError(InputFileError):
    """A column (or JSON key) the source maps is not in the file."""


class Reader:
    """Base: ``columns`` (known after open for CSV/Parquet), ``chunks()`` to stream rows."""

    file: InputFile
    columns: list[str] | None = None
    encoding: str = "utf-8"
    chunk_rows: int

    def chunks(self) -> Iterator[RawChunk]:  # pragma: no cover - abstract
        raise NotImplementedError

    def stages(self) -> tuple[Iterator[Any], Callable[[Any], RawChunk]]:
        """The chunks as two steps, for a pipeline: items a reader thread makes, and what
        turns an item into a chunk on the consumer's thread (here: nothing, the items are
        the chunks). ``map(finish, items)`` is :meth:`chunks`."""
        return self.chunks(), _same


    def _blocks(self, block_lines: int | None = None) -> Iterator[LineBlock]:
        """Line blocks of a text file; unreadable or undecodable files become one-line errors."""
        try:
            yield from iter_line_blocks(
                self.file.path,
                self.encoding,
                block_lines or self.chunk_rows,
                compressed=self.file.compressed,
            )
        except (OSError, EOFError, zlib.error) as err:
            raise InputFileError(f"{self.file.name}: cannot read ({_os_reason(err)})") from None
        except UnicodeDecodeError as err:
            # CSV and JSON Lines both take their encoding from the source's csv.encoding
            raise InputFileError(
                f"{self.file.name}: not valid {self.encoding} ({err.reason}); set csv.encoding"
            ) from None

    def check_columns(self, required: dict[str, str]) -> None:
        """Whole-file check: every column the mapping needs is there (``column -> field``)."""
        if self.columns is None:
            return
        for column, needed_by in required.items():
            if column not in self.columns:
                found = ", ".join(self.columns) or "<none>"
                raise MissingColumnError(
                    f"{self.file.name}: missing column '{column}' (needed by {needed_by}); columns found: {found}"
                )


def _same(chunk: RawChunk) -> RawChunk:
    return chunk


def clean_text(arr: pa.Array) -> pa.Array:
    """Strip padding; empty means missing."""
    fast = _unpadded(arr)
    if fast is not None:
        return fast
    arr = pc.utf8_trim_whitespace(arr)
    return pc.if_else(pc.equal(arr, ""), NULL_STR, arr)


def _unpadded(arr: pa.Array) -> pa.Array | None:
    """:func:`clean_text` of a string array whose values all start and end with a visible ASCII
    character (the usual field): nothing to trim, so only the empty values become null, by a
    validity bitmap on the same buffers. None when some value may have padding."""
    n = len(arr)
    if not pa.types.is_string(arr.type) or arr.null_count or n == 0 or arr.buffers()[2] is None:
        return None
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset : arr.offset + n + 1]
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)
    lengths = np.diff(offsets)
    filled = lengths > 0
    first = data[offsets[:-1][filled]]
    last = data[offsets[1:][filled] - 1]
    if ((first <= 0x20) | (first >= 0x7F) | (last <= 0x20) | (last >= 0x7F)).any():
        return None
    if filled.all():
        return arr
    if arr.offset:
        return pc.if_else(pa.array(filled), arr, NULL_STR)
    validity = pa.py_buffer(np.packbits(filled, bitorder="little"))
    return pa.Array.from_buffers(pa.string(), n, [validity, *arr.buffers()[1:]])


def row_keys(columns: dict[str, pa.Array], n: int) -> pa.Array:
    """One string per row from all source values, in column-name order (files may order differently)."""
    if not columns:
        return pa.array([""] * n, pa.string())
    parts = [_as_key_text(columns[name]) for name in sorted(columns)]
    if len(parts) == 1:
        return parts[0].fill_null(KEY_NULL)
    return pc.binary_join_element_wise(
        *parts, KEY_SEP, null_handling="replace", null_replacement=KEY_NULL
    )


def _as_key_text(arr: pa.Array) -> pa.Array:
    if pa.types.is_string(arr.type):
        return arr
    if pa.types.is_large_string(arr.type):
        return arr.cast(pa.string())
    try:
        return arr.cast(pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return pa.array(
            [
                None if v is None else json.dumps(v, default=str, sort_keys=True)
                for v in arr.to_pylist()
            ],
            pa.string(),
        )


# --------------------------------------------------------------------------- CSV


class CsvReader(Reader):
    def __init__(self, file: InputFile, options: CsvOptions, chunk_rows: int) -> None:
        self.file = file
        self.options = options
        self.encoding = options.encoding
        self.chunk_rows = chunk_rows
        delimiter = options.delimiter
        if file.is_tsv and "delimiter" not in options.model_fields_set:
            delimiter = "\t"  # a .tsv with no explicit delimiter is tab-separated
        self.dialect = Dialect(delimiter=delimiter, quote=options.quote)
        self.columns = self._read_columns()

    def _read_columns(self) -> list[str]:
        opts = self.options
        if not opts.header:
            assert opts.columns is not None  # checked with the source config
            return list(opts.columns)
        header = self._header_record()
        if header is None:
            raise InputFileError(f"{self.file.name}: file is empty (expected a header line)")
        line, text, problem = header
        if problem:
            hint = " (set csv.encoding)" if problem.startswith("undecodable") else ""
            raise InputFileError(
                f"{self.file.name}: header (line {line}) is unreadable: {problem}{hint}"
            )
        try:
            names = parse_header_line(text, self.dialect)
        except csv.Error as err:  # e.g. a field over the csv module's limit (128 KiB)
            raise InputFileError(
                f"{self.file.name}: header (line {line}) is unreadable: {err}; is this the right file and delimiter?"
            ) from None
        if opts.columns is not None:
            if len(opts.columns) != len(names):
                raise InputFileError(
                    f"{self.file.name}: header has {len(names)} columns but csv.columns names"
                    f" {len(opts.columns)}; columns found: {', '.join(names)}"
                )
            names = list(opts.columns)
        empty = [i + 1 for i, c in enumerate(names) if not c]
        if empty:
            raise InputFileError(f"{self.file.name}: header column {empty[0]} has no name")
        dupes = sorted({c for c in names if names.count(c) > 1})
        if dupes:
            raise InputFileError(
                f"{self.file.name}: header names column '{dupes[0]}' more than once"
            )
        return names

    def _header_record(self) -> tuple[int, str, str | None] | None:
        """(line, text, problem) of the first record, read without holding more than a block."""
        splitter = RecordSplitter(self.dialect)
        for block in self._blocks(HEADER_BLOCK_LINES):  # small blocks: the header is at the top
            recs = splitter.feed(block)
            first_ok = int(recs.line[0]) if len(recs.line) else None
            first_err = recs.errors[0] if recs.errors else None
            if first_err is not None and (first_ok is None or first_err[0] < first_ok):
                return first_err[0], first_err[2], first_err[1]
            if first_ok is not None:
                return first_ok, recs.raw_of(np.array([0]))[0], None
        return None

    def chunks(self) -> Iterator[RawChunk]:
        items, finish = self.stages()
        return map(finish, items)

    def stages(self) -> tuple[Iterator[Any], Callable[[Any], RawChunk]]:
        """Reading and tokenising on the reader thread; taking the columns and row keys out of
        the records on the consumer's (measured: the reader thread was the slower one)."""
        return self._tokenised(), self._to_chunk

    def _tokenised(self) -> Iterator[tuple[Records, int, bool]]:
        """(records, bytes done, whether the first record is the header and is skipped)."""
        splitter = RecordSplitter(self.dialect)
        need_header = self.options.header
        for block in self._blocks():
            recs = splitter.feed(block)
            skip_first = False
            if need_header:
                first_ok = int(recs.line[0]) if len(recs.line) else None
                if first_ok is not None and (not recs.errors or recs.errors[0][0] > first_ok):
                    skip_first, need_header = True, False
                elif recs.errors:  # unreadable header; _read_columns already refused such files
                    recs.errors = recs.errors[1:]
                    need_header = False
            yield recs, block.bytes_done, skip_first

    def _to_chunk(self, item: tuple[Records, int, bool]) -> RawChunk:
        recs, bytes_done, skip_first = item
        names = self.columns or []
        ncols = len(names)
        line, counts = recs.line, recs.counts
        keep = np.ones(len(line), dtype=bool)
        if skip_first:
            keep[0] = False
        ok = keep & (counts == ncols)
        malformed = list(recs.errors)
        bad = np.flatnonzero(keep & ~ok)
        if len(bad):
            malformed.extend(
                (int(line[i]), f"expected {ncols} fields, found {int(counts[i])}", r)
                for i, r in zip(bad, recs.raw_of(bad))
            )
            malformed.sort(key=lambda m: m[0])
        good = np.flatnonzero(ok)
        columns = {name: clean_text(recs.column(j, good)) for j, name in enumerate(names)}
        return RawChunk(
            columns=columns,
            line=line[good],
            key=row_keys(columns, len(good)),
            raw_of=lambda idx, r=recs, g=good: r.raw_of(g[np.asarray(idx, dtype=np.int64)]),
            malformed=malformed,
            blank_lines=recs.blank_lines,
            bytes_done=bytes_done,
        )


# --------------------------------------------------------------------------- JSON Lines


class JsonlReader(Reader):
    def __init__(self, file: InputFile, encoding: str, chunk_rows: int) -> None:
        self.file = file
        self.encoding = encoding
        self.chunk_rows = chunk_rows
        self.columns = None
        self.keys_seen: set[str] = set()
        self._check_not_array()

    def _check_not_array(self) -> None:
        for block in self._blocks(HEADER_BLOCK_LINES):
            for i, text in enumerate(block.lines.to_pylist()):
                if i in block.undecodable or not text.strip():
                    continue
                if text.lstrip().startswith("["):
                    raise InputFileError(
                        f"{self.file.name}: starts with '[' (a JSON array?); expected JSON Lines, one object per line"
                    )
                return

    def chunks(self) -> Iterator[RawChunk]:
        for block in self._blocks():
            n = len(block.lines)
            trimmed = pc.utf8_trim_whitespace(block.lines)
            blank = np.asarray(pc.equal(trimmed, "").to_numpy(zero_copy_only=False), dtype=bool)
            texts = block.lines.to_pylist()
            objs: list[dict[str, Any]] = []
            lines: list[int] = []
            raws: list[str] = []
            malformed: list[tuple[int, str, str]] = []
            for i in range(n):
                if blank[i] and i not in block.undecodable:
                    continue
                line_no = block.first_line + i
                text = texts[i]
                if i in block.undecodable:
                    malformed.append((line_no, block.undecodable[i], text))
                    continue
                try:
                    obj = json.loads(text)
                except json.JSONDecodeError as err:
                    malformed.append(
                        (line_no, f"invalid JSON: {err.msg} at column {err.colno}", text)
                    )
                    continue
                if not isinstance(obj, dict):
                    malformed.append(
                        (line_no, f"JSON line is not an object (got {type(obj).__name__})", text)
                    )
                    continue
                objs.append(obj)
                lines.append(line_no)
                raws.append(text)
            names: dict[str, None] = {}
            for obj in objs:
                names.update(dict.fromkeys(obj))
            self.keys_seen.update(names)
            columns = {
                name: clean_text(pa.array([_json_text(o.get(name)) for o in objs], pa.string()))
                for name in names
            }
            raw_arr = pa.array(raws, pa.string())
            yield RawChunk(
                columns=columns,
                line=np.asarray(lines, dtype=np.int64),
                key=row_keys(columns, len(objs)),
                raw_of=lambda idx, r=raw_arr: r.take(pa.array(idx, pa.int64())).to_pylist(),
                malformed=malformed,
                blank_lines=int(np.count_nonzero(blank))
                - sum(1 for i in block.undecodable if blank[i]),
                bytes_done=block.bytes_done,
            )

    def check_keys_seen(self, required: dict[str, str]) -> None:
        """After reading: a key the mapping needs that no object in the file had is a file error."""
        if not self.keys_seen:
            return
        for column, needed_by in required.items():
            if column not in self.keys_seen:
                found = ", ".join(sorted(self.keys_seen))
                raise MissingColumnError(
                    f"{self.file.name}: missing key '{column}' in every object (needed by {needed_by});"
                    f" keys found: {found}"
                )


def _json_text(v: Any) -> str | None:
    """JSON values as text so every format meets the same parsers (numbers round-trip via repr)."""
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(v, sort_keys=True)


# --------------------------------------------------------------------------- Parquet


class ParquetReader(Reader):
    def __init__(self, file: InputFile, chunk_rows: int) -> None:
        self.file = file
        self.chunk_rows = chunk_rows
        try:
            self._pf = pq.ParquetFile(file.path)
        except (pa.ArrowException, OSError) as err:
            raise InputFileError(
                f"{file.name}: not a readable Parquet file ({_first_line(err)})"
            ) from None
        self.columns = list(self._pf.schema_arrow.names)
        self.size = file.path.stat().st_size

    def check_columns(self, required: dict[str, str]) -> None:
        """Also: a field's column holds one value per row (text, a number, a time), not a
        struct, list or map, whose rows no mapping could read."""
        super().check_columns(required)
        schema = self._pf.schema_arrow
        for column, needed_by in required.items():
            kind = schema.field(column).type
            if pa.types.is_nested(kind) or pa.types.is_dictionary(kind) and pa.types.is_nested(kind.value_type):
                raise InputFileError(
                    f"{self.file.name}: column '{column}' (needed by {needed_by}) has type {kind}; "
                    "an event field needs text, a number or a timestamp per row"
                )

    def chunks(self) -> Iterator[RawChunk]:
        total = max(self._pf.metadata.num_rows, 1)
        row = 0
        batches = self._pf.iter_batches(batch_size=self.chunk_rows)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                break
            except (pa.ArrowException, OSError) as err:
                raise InputFileError(
                    f"{self.file.name}: corrupt Parquet data after row {row} ({_first_line(err)})"
                ) from None
            n = batch.num_rows
            columns = {name: batch.column(i) for i, name in enumerate(batch.schema.names)}
            line = np.arange(row + 1, row + n + 1, dtype=np.int64)
            row += n
            yield RawChunk(
                columns=columns,
                line=line,
                key=row_keys(columns, n),
                raw_of=lambda idx, b=batch: [
                    json.dumps(r, default=str, ensure_ascii=False)
                    for r in b.take(pa.array(idx, pa.int64())).to_pylist()
                ],
                bytes_done=int(self.size * row / total),
                text_clean=False,
            )

    def close(self) -> None:
        self._pf.close()


# --------------------------------------------------------------------------- dispatch


def open_reader(file: InputFile, csv_options: CsvOptions, chunk_rows: int) -> Reader:
    """A reader for ``file``; raises :class:`InputFileError` for unreadable files and headers."""
    if file.format == "csv":
        return CsvReader(file, csv_options, chunk_rows)
    if file.format == "jsonl":
        return JsonlReader(file, csv_options.encoding, chunk_rows)
    return ParquetReader(file, chunk_rows)


def _first_line(err: BaseException) -> str:
    return (str(err).splitlines() or [type(err).__name__])[0]


def _os_reason(err: BaseException) -> str:
    return getattr(err, "strerror", None) or _first_line(err)
