"""The stored layout of events: one file per UTC month (or one file), the row keys of each
ingest run, and hard links that let a new data version share the files it does not change.
"""

from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from churnkit.contracts import EVENT_ARROW_SCHEMA, EVENT_COLUMNS, OPTIONAL_STRING_FIELDS

PART_NAME = "part-0.parquet"
DICTIONARY_COLUMNS = ("event", *OPTIONAL_STRING_FIELDS)
"""Columns with few distinct values, dictionary-encoded. User ids and times are nearly all
distinct per month: their dictionaries only cost time (measured at 1M rows: writing 0.43 s ->
0.28 s of CPU, files 14.1 -> 10.6 MiB)."""
KEYS_SCHEMA = pa.schema([("_month", pa.int32()), ("h1", pa.uint64()), ("h2", pa.uint64())])
"""Row keys of stored events: month (to read only the months a new run touches) and hash."""


def month_index(us: np.ndarray) -> np.ndarray:
    """Months since 1970-01 of UTC microsecond timestamps (the partition key)."""
    return us.astype("datetime64[us]").astype("datetime64[M]").astype(np.int64).astype(np.int32)


def month_name(index: int) -> str:
    year, month0 = divmod(int(index), 12)
    return f"{1970 + year:04d}-{month0 + 1:02d}"


def split_stored(events_dir: Path, out_dir: Path, touched: set[int], partition_by: str) -> tuple[list[Path], int]:
    """The stored files to rewrite (those of touched months; the single file when not
    partitioned), after linking every other one into ``out_dir``; and how many were linked."""
    files = sorted(p for p in events_dir.rglob("*.parquet") if p.is_file())
    if partition_by != "month":
        return (files if touched else []), _link_all(files, events_dir, out_dir) if not touched else 0
    rewrite, keep = [], []
    for f in files:
        month = f.parent.name.removeprefix("month=")
        (rewrite if month in {month_name(m) for m in touched} else keep).append(f)
    return rewrite, _link_all(keep, events_dir, out_dir)


def _link_all(files: list[Path], root: Path, out_dir: Path) -> int:
    for f in files:
        link_or_copy(f, out_dir / f.relative_to(root))
    return len(files)


def link_or_copy(src: Path, dst: Path) -> None:
    """A hard link (versions share unchanged files at no cost), a copy across devices."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


class PartitionedWriter:
    """Writes a (month, user, ts)-sorted stream as one file per month (or one file), and the
    keys of its rows that have one (this run's) to ``keys_path``."""

    def __init__(self, out_dir: Path, partition_by: str, row_group_rows: int, keys_path: Path | None = None) -> None:
        self.out_dir, self.partition_by, self.row_group_rows = out_dir, partition_by, row_group_rows
        self.keys_path = keys_path
        self._keys: pq.ParquetWriter | None = None
        self._writer: pq.ParquetWriter | None = None
        self._month: int | None = None
        self._buffer: list[pa.Table] = []
        self._buffered = 0
        self.rows = 0
        self.new_rows = 0
        self.files = 0

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        months = batch.column("_month").to_numpy()
        new = pc.equal(batch.column("_src"), 1)
        self.new_rows += pc.sum(new).as_py() or 0
        if self.keys_path is not None:
            self._write_keys(pa.table({"_month": batch.column("_month"), "h1": batch.column("_h1"),
                                       "h2": batch.column("_h2")}).filter(new))
        table = pa.Table.from_batches([batch]).select(list(EVENT_COLUMNS)).cast(EVENT_ARROW_SCHEMA)
        if self.partition_by != "month":
            self._append(table, None)
            return
        cuts = [0, *(np.flatnonzero(np.diff(months)) + 1).tolist(), len(months)]
        for a, b in itertools.pairwise(cuts):
            self._append(table.slice(a, b - a), int(months[a]))

    def _write_keys(self, keys: pa.Table) -> None:
        if keys.num_rows == 0:
            return
        keys = keys.cast(KEYS_SCHEMA)
        if self._keys is None:
            self.keys_path.parent.mkdir(parents=True, exist_ok=True)
            self._keys = pq.ParquetWriter(self.keys_path, KEYS_SCHEMA, compression="zstd", use_dictionary=False)
        self._keys.write_table(keys)

    def _append(self, table: pa.Table, month: int | None) -> None:
        if self._writer is None or month != self._month:
            self._close_file()
            folder = self.out_dir if month is None else self.out_dir / f"month={month_name(month)}"
            folder.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(folder / PART_NAME, EVENT_ARROW_SCHEMA, compression="snappy",
                                            use_dictionary=list(DICTIONARY_COLUMNS))
            self._month = month
            self.files += 1
        self._buffer.append(table)
        self._buffered += table.num_rows
        self.rows += table.num_rows
        if self._buffered >= self.row_group_rows:
            self._flush()

    def _flush(self) -> None:
        if self._buffer and self._writer is not None:
            self._writer.write_table(
                pa.concat_tables(self._buffer), row_group_size=max(self._buffered, 1)
            )
        self._buffer, self._buffered = [], 0

    def _close_file(self) -> None:
        self._flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def close(self) -> None:
        self._close_file()
        if self._keys is not None:
            self._keys.close()
        if self.files == 0 and self.partition_by != "month" and not (self.out_dir / PART_NAME).exists():
            pq.write_table(EVENT_ARROW_SCHEMA.empty_table(), self.out_dir / PART_NAME)


