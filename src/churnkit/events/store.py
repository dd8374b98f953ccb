"""Staging, the DuckDB pass (global duplicates, sort, month partitions) and reading events back.

Layout of a workspace's events (``workspace.events_dir``)::

    events/month=1997-01/part-0.parquet     # partition_by: month (default), hive style
    events/month=1997-02/part-0.parquet
    events/part-0.parquet                   # partition_by: none

Each file holds the event contract (``user_id``, ``ts`` timestamp[us, UTC], ``event``,
``amount``, ``category``, ``channel``, ``campaign_id``, ``variant``), rows sorted by
(``user_id``, ``ts``). The month is the UTC month of ``ts`` and lives only in the folder name.
Read it with

- pandas: :func:`read_events` (contract columns, sorted by user and time);
- DuckDB: ``SELECT * FROM read_parquet('<events_dir>/**/*.parquet', hive_partitioning=true)``
  (:func:`events_sql` writes that expression; ``month`` comes back as a VARCHAR column);
- Ibis: ``con.read_parquet(events_glob(ws), hive_partitioning=True)``.

Bounded memory: chunks are staged as Parquet files, each month's rows in their own row
groups; DuckDB then finds duplicates (a hash aggregate on a 128-bit MD5 of each row's source
values), sorts and streams the result back in batches that are written one month at a time.
A new month-partitioned store is deduplicated and sorted one month at a time (identical rows
share a month), so no sort spans the whole file: a month of up to ``monthpass.MAX_ROWS`` rows
in Arrow straight from its staged row groups (:mod:`monthpass`), a larger one by DuckDB, and
each month is written on a thread while the next is sorted. An append and ``partition_by:
none`` sort all rows in one DuckDB query. DuckDB runs under ``memory_limit`` and spills to a
temp folder inside the staging folder.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from churnkit.contracts import EVENT_ARROW_SCHEMA, EVENT_COLUMNS
from churnkit.events.monthpass import MAX_ROWS, RowGroup, read_month, sort_and_dedup
from churnkit.events.partitions import (
    PART_NAME,
    PartitionedWriter,
    month_index,
    split_stored,
)
from churnkit.events.pipeline import Behind
from churnkit.events.schema import QUARANTINE_SCHEMA
from churnkit.io.workspace import Workspace

SEQ_FILE_SHIFT = 40
"""``_seq = file_index << 40 | line``: one sortable number for 'first by file order, then line'."""

SORTERS = 2
"""Months read and sorted ahead at once in Arrow. Two use both cores of a small machine (at
10M rows on 2 cores: dedup + sort + write 14.0-16.8 s with one, 11.2 s with two); each more
holds one more month (up to ``monthpass.MAX_ROWS`` rows) in memory."""


def sequence(file_index: int, line: np.ndarray) -> np.ndarray:
    return (np.int64(file_index) << np.int64(SEQ_FILE_SHIFT)) | line.astype(np.int64)


def connect(temp_dir: Path, memory_limit: str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with a memory cap, spilling into ``temp_dir``, times in UTC."""
    con = duckdb.connect(config={"memory_limit": memory_limit})
    run(con, f"SET temp_directory = '{_sql_path(temp_dir)}'")
    run(con, "SET preserve_insertion_order = false")
    run(con, "SET TimeZone = 'UTC'")
    return con


def run(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    """Execute and drain: DuckDB refuses new work while a result is still open."""
    return con.execute(sql).fetchall()


def one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple:
    rows = run(con, sql)
    return rows[0]


def hash128(con: duckdb.DuckDBPyConnection, keys: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Two halves of the MD5 of each key: the row identity used to find duplicates."""
    keys_table = pa.table({"k": keys})  # noqa: F841 - read by DuckDB's replacement scan
    out = con.sql(
        "SELECT (md5_number(k) >> 64)::UBIGINT AS h1,"
        " (md5_number(k) & 18446744073709551615::UHUGEINT)::UBIGINT AS h2 FROM keys_table"
    ).to_arrow_table()
    return out.column("h1").combine_chunks(), out.column("h2").combine_chunks()


class StagedEvents:
    """Accepted rows of each chunk, plus sequence, row hash and month, as Parquet parts.

    Each part holds its rows grouped by month, one row group per month, so a query for one
    month (``WHERE _month = m``) reads only that month's row groups (Parquet statistics).
    Hashing and writing run on a thread of their own (:class:`~churnkit.events.pipeline.Behind`)
    while the next chunk is validated, on a cursor of their own; ``close()`` waits for them and
    must come before the parts are read or ``con`` is closed."""

    def __init__(self, folder: Path, con: duckdb.DuckDBPyConnection) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.con = con
        self.parts = 0
        self.rows = 0
        self.months: set[int] = set()
        self.groups: dict[int, list[RowGroup]] = {}
        """Month -> its row groups in the parts (filled by the staging thread; read after close)."""
        self._con = con.cursor()  # the staging thread's own connection to the same database
        self._writer = Behind("churnkit-stager")

    def add(self, table: pa.Table, seq: np.ndarray, keys: pa.Array) -> None:
        if table.num_rows == 0:
            return
        self._writer.submit(self._write, table, seq, keys, self.parts)
        self.parts += 1
        self.rows += table.num_rows

    def close(self) -> None:
        """Wait until every part is written (raises what writing one raised)."""
        try:
            self._writer.close()
        finally:
            self._con.close()

    def _write(self, table: pa.Table, seq: np.ndarray, keys: pa.Array, part: int) -> None:
        h1, h2 = hash128(self._con, keys)
        us = table.column("ts").cast(pa.int64()).to_numpy()
        month = month_index(us)
        table = (
            table.append_column("_seq", pa.array(seq, pa.int64()))
            .append_column("_h1", h1)
            .append_column("_h2", h2)
            .append_column("_month", pa.array(month, pa.int32()))
        )
        months = month
        if (np.diff(month) < 0).any():  # a time-ordered log's chunk is in month order already
            order = np.argsort(month, kind="stable")
            table, months = table.take(pa.array(order)), month[order]
        # Scratch data read back once by DuckDB: no codec, no dictionaries, statistics only for
        # the month that prunes row groups (measured: a third of the CPU of lz4 with all statistics).
        cuts = [0, *(np.flatnonzero(np.diff(months)) + 1).tolist(), len(months)]
        path = self.folder / f"part-{part:06d}.parquet"
        with pq.ParquetWriter(
            path, table.schema, compression="none", use_dictionary=False, write_statistics=["_month"],
        ) as writer:
            for k, (a, b) in enumerate(itertools.pairwise(cuts)):
                writer.write_table(table.slice(a, b - a), row_group_size=b - a)
                self.groups.setdefault(int(months[a]), []).append(RowGroup(path, k, b - a))
        self.months.update(int(m) for m in np.unique(months))

    @property
    def glob(self) -> str:
        return str(self.folder / "*.parquet")


class QuarantineWriter:
    """Rejected rows into one Parquet file, buffered into reasonably sized row groups."""

    def __init__(self, path: Path, flush_rows: int = 65_536) -> None:
        self.path = path
        self.flush_rows = flush_rows
        self._writer = pq.ParquetWriter(path, QUARANTINE_SCHEMA, compression="zstd")
        self._buffer: list[pa.Table] = []
        self._buffered = 0
        self.rows = 0

    def add(
        self,
        table: str,
        source_file: str,
        line: list[int],
        reason: list[str],
        detail: list[str],
        raw: list[str],
    ) -> None:
        n = len(line)
        if n == 0:
            return
        batch = pa.table(
            {
                "table": pa.array([table] * n, pa.string()),
                "source_file": pa.array([source_file] * n, pa.string()),
                "line": pa.array(line, pa.int64()),
                "reason": pa.array(reason, pa.string()),
                "detail": pa.array(detail, pa.string()),
                "raw": pa.array(raw, pa.string()),
            },
            schema=QUARANTINE_SCHEMA,
        )
        self._buffer.append(batch)
        self._buffered += n
        self.rows += n
        if self._buffered >= self.flush_rows:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            self._writer.write_table(pa.concat_tables(self._buffer))
            self._buffer, self._buffered = [], 0

    def carry(self, path: Path) -> int:
        """Copy an earlier quarantine's rows in first (an append keeps every rejection);
        returns how many."""
        n = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=self.flush_rows):
            self._writer.write_table(pa.Table.from_batches([batch]).cast(QUARANTINE_SCHEMA))
            n += batch.num_rows
        return n

    def close(self) -> None:
        self._flush()
        self._writer.close()


@dataclass
class EventStats:
    valid: int
    """Rows of this run that passed validation."""
    written: int
    """Rows of this run added to the store."""
    duplicates: int
    """Rows of this run not added: identical to an earlier row (``drop``)."""
    identical_rows: int
    """Rows identical to an earlier one of this run (dropped under ``drop``, kept under ``keep``)."""
    users: int
    """Distinct users in the whole store after the run (as every stat below)."""
    first_us: int | None
    last_us: int | None
    partitions: int
    events: int = 0
    """Rows in the whole store after the run."""
    stored_duplicates: int = 0
    """Of ``duplicates``: rows identical to one an earlier ingest stored (append only)."""


@dataclass(frozen=True)
class StoredEvents:
    """A committed version's events, appended to: its partitions and its row keys (the
    hashes of the stored rows' source values, one Parquet file per ingest run)."""

    events_dir: Path
    key_files: tuple[Path, ...]


MONTH_SQL = "CAST((year(ts) - 1970) * 12 + month(ts) - 1 AS INTEGER)"
"""``month_index`` in DuckDB (sessions run in UTC, see :func:`connect`)."""


def finalize_events(
    con: duckdb.DuckDBPyConnection,
    staged: StagedEvents,
    out_dir: Path,
    *,
    drop_duplicates: bool,
    partition_by: str,
    row_group_rows: int,
    keys_path: Path | None = None,
    stored: StoredEvents | None = None,
    progress: Callable[[str], None] | None = None,
) -> EventStats:
    """Deduplicate, sort by (month, user, time) and write the partitioned dataset.

    Without ``stored`` the run's rows are the whole dataset. With it (append), rows identical
    to a stored one (by their keys) are duplicates too, the months the new rows touch are
    rewritten with the stored rows first, and the other months are linked unchanged. The
    kept rows' keys go to ``keys_path`` when given (under ``drop``), for later appends.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    staged.close()
    if stored is None and partition_by == "month" and staged.parts:
        return _finalize_by_month(con, staged, out_dir, drop_duplicates=drop_duplicates,
                                  row_group_rows=row_group_rows, keys_path=keys_path, progress=progress)
    src = f"read_parquet('{_sql_path(Path(staged.glob))}')"
    valid = identical = 0
    if staged.parts:
        valid = int(one(con, f"SELECT count(*) FROM {src}")[0])
        run(
            con,
            f"CREATE OR REPLACE TEMP TABLE _dups AS SELECT _h1, _h2, min(_seq) AS _keep, count(*) - 1 AS _extra"
            f" FROM {src} GROUP BY _h1, _h2 HAVING count(*) > 1",
        )
        identical = int(one(con, "SELECT coalesce(sum(_extra), 0) FROM _dups")[0])
    kept = f"SELECT s.* FROM {src} s"
    if drop_duplicates and identical:
        kept += " LEFT JOIN _dups d ON s._h1 = d._h1 AND s._h2 = d._h2 WHERE d._keep IS NULL OR s._seq = d._keep"
    cols = ", ".join(EVENT_COLUMNS)
    order = "_month, user_id, ts, _src, _seq" if partition_by == "month" else "user_id, ts, _src, _seq"
    stored_dups = 0
    if stored is None:
        if not staged.parts:
            if partition_by == "none":
                pq.write_table(EVENT_ARROW_SCHEMA.empty_table(), out_dir / PART_NAME)
            return EventStats(0, 0, 0, 0, 0, None, None, 0)
        query = f"SELECT {cols}, _month, _h1, _h2, 1 AS _src, _seq FROM ({kept}) ORDER BY {order}"
        linked = 0
    else:
        new = "SELECT * FROM _new"
        if staged.parts:
            run(con, f"CREATE OR REPLACE TEMP TABLE _new AS {kept}")
            if drop_duplicates and stored.key_files:
                files = ", ".join(f"'{_sql_path(f)}'" for f in stored.key_files)
                run(con, f"CREATE OR REPLACE TEMP TABLE _seen AS SELECT h1, h2 FROM read_parquet([{files}])"
                    " WHERE _month IN (SELECT DISTINCT _month FROM _new)")
                before = int(one(con, "SELECT count(*) FROM _new")[0])
                run(con, "CREATE OR REPLACE TEMP TABLE _new AS SELECT n.* FROM _new n"
                    " ANTI JOIN _seen k ON n._h1 = k.h1 AND n._h2 = k.h2")
                stored_dups = before - int(one(con, "SELECT count(*) FROM _new")[0])
            touched = {int(m) for (m,) in run(con, "SELECT DISTINCT _month FROM _new")}
        else:
            touched = set()
        olds, linked = split_stored(stored.events_dir, out_dir, touched, partition_by)
        parts = [
            f"SELECT {cols}, {MONTH_SQL} AS _month, NULL::UBIGINT AS _h1, NULL::UBIGINT AS _h2, 0 AS _src,"
            f" file_row_number AS _seq FROM read_parquet('{_sql_path(f)}', file_row_number = true)"
            for f in olds
        ]
        if touched:
            parts.append(f"SELECT {cols}, _month, _h1, _h2, 1 AS _src, _seq FROM ({new})")
        query = f"SELECT * FROM ({' UNION ALL '.join(parts)}) ORDER BY {order}" if parts else None
    if progress:
        progress("sorting and writing events")
    writer = PartitionedWriter(out_dir, partition_by, row_group_rows, keys_path if drop_duplicates else None)
    if query is not None:
        for batch in con.sql(query).to_arrow_reader(batch_size=min(row_group_rows, 1_000_000)):
            writer.write(batch)
    writer.close()
    return _stats(con, out_dir, writer, valid, identical, linked, stored_dups)


def _finalize_by_month(
    con: duckdb.DuckDBPyConnection,
    staged: StagedEvents,
    out_dir: Path,
    *,
    drop_duplicates: bool,
    row_group_rows: int,
    keys_path: Path | None,
    progress: Callable[[str], None] | None,
) -> EventStats:
    """:func:`finalize_events` for a new store partitioned by month: one month at a time.

    Identical rows have the same timestamp, so the same month: duplicates are found within a
    month, and each month is sorted on its own. A month's sort fits in memory where the
    whole file's would spill to disk; the staged parts keep each month in its own row groups,
    so reading one month skips the others'.
    """
    src = f"read_parquet('{_sql_path(Path(staged.glob))}')"
    cols = ", ".join(EVENT_COLUMNS)
    writer = PartitionedWriter(out_dir, "month", row_group_rows, keys_path if drop_duplicates else None)
    valid = int(one(con, f"SELECT count(*) FROM {src}")[0])  # from the files' metadata
    if progress:
        progress("sorting and writing events")
    # Month k is written on a thread while the next months are read and sorted (Arrow
    # releases the GIL): with depth 1 and SORTERS months sorted ahead, at most SORTERS + 2
    # months are held in memory.
    behind = Behind("churnkit-writer", depth=1)
    try:
        identical = _sort_months(con, staged, src, cols, behind, writer, drop_duplicates, row_group_rows)
    finally:
        behind.close()
    writer.close()
    return _stats(con, out_dir, writer, valid, identical, 0, 0)


def _sort_months(con: duckdb.DuckDBPyConnection, staged: StagedEvents, src: str, cols: str, behind: Behind,
                 writer: PartitionedWriter, drop_duplicates: bool, row_group_rows: int) -> int:
    """Each month deduplicated and sorted, its writes handed to ``behind`` in month order;
    returns how many rows were identical to an earlier one.

    Months Arrow sorts (:mod:`monthpass`) are read and sorted :data:`SORTERS` at a time, ahead
    of their turn: Arrow sorts a month on one thread, where DuckDB's sort used both cores
    (one sorter cost 1-4 s of wall at 10M rows on 2 idle cores)."""
    identical = 0
    months = sorted(staged.months)
    in_arrow = [m for m in months if sum(g.rows for g in staged.groups[m]) <= MAX_ROWS]
    upcoming = iter(in_arrow)
    pending: dict[int, Future[tuple[pa.Table, int]]] = {}
    pool = ThreadPoolExecutor(max_workers=SORTERS, thread_name_prefix="churnkit-sort")

    def top_up() -> None:  # the next months in order, at most SORTERS in flight or done
        while len(pending) < SORTERS and (month := next(upcoming, None)) is not None:
            pending[month] = pool.submit(_sorted_month, staged.groups[month], drop_duplicates)

    try:
        top_up()
        for month in months:
            if month in pending:  # fits in memory: Arrow sorts it
                table, extra = pending.pop(month).result()
                top_up()
                identical += extra
                behind.submit(_write_table, writer, table, row_group_rows)
                continue
            rows = f"(SELECT * FROM {src} WHERE _month = {month})"
            run(
                con,
                f"CREATE OR REPLACE TEMP TABLE _dups AS SELECT _h1, _h2, min(_seq) AS _keep, count(*) - 1 AS _extra"
                f" FROM {rows} GROUP BY _h1, _h2 HAVING count(*) > 1",
            )
            extra = int(one(con, "SELECT coalesce(sum(_extra), 0) FROM _dups")[0])
            identical += extra
            kept = f"SELECT s.* FROM {rows} s"
            if drop_duplicates and extra:
                kept += " LEFT JOIN _dups d ON s._h1 = d._h1 AND s._h2 = d._h2 WHERE d._keep IS NULL OR s._seq = d._keep"
            query = f"SELECT {cols}, _month, _h1, _h2, 1 AS _src, _seq FROM ({kept}) ORDER BY user_id, ts, _seq"
            for batch in con.sql(query).to_arrow_reader(batch_size=min(row_group_rows, 1_000_000)):
                behind.submit(writer.write, batch)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return identical


def _sorted_month(groups: list[RowGroup], drop_duplicates: bool) -> tuple[pa.Table, int]:
    return sort_and_dedup(read_month(groups), drop_duplicates)


def _write_table(writer: PartitionedWriter, table: pa.Table, row_group_rows: int) -> None:
    """A sorted month to the writer in the batches DuckDB would have streamed."""
    table = table.append_column("_src", pa.array(np.ones(table.num_rows, dtype=np.int32)))
    step = min(row_group_rows, 1_000_000)
    for start in range(0, table.num_rows, step):
        for batch in table.slice(start, step).combine_chunks().to_batches():
            writer.write(batch)


def _stats(con: duckdb.DuckDBPyConnection, out_dir: Path, writer: PartitionedWriter, valid: int,
           identical: int, linked: int, stored_dups: int) -> EventStats:
    """What the store holds after the run, read back from the written files."""
    written = writer.new_rows
    glob = f"read_parquet('{_sql_path(out_dir)}/**/*.parquet')"
    events, users, first_us, last_us = one(
        con, f"SELECT count(*), count(DISTINCT user_id), epoch_us(min(ts)), epoch_us(max(ts)) FROM {glob}"
    )
    return EventStats(
        valid=valid,
        written=written,
        duplicates=valid - written,
        identical_rows=identical,
        users=int(users),
        first_us=None if first_us is None else int(first_us),
        last_us=None if last_us is None else int(last_us),
        partitions=writer.files + linked,
        events=int(events),
        stored_duplicates=stored_dups,
    )


# --------------------------------------------------------------------------- reading back


def events_glob(workspace: Workspace) -> str:
    """Glob over every events file (any partitioning), for DuckDB/Ibis ``read_parquet``."""
    return workspace.events_glob()


def events_sql(workspace: Workspace) -> str:
    """A DuckDB table expression for the workspace events, e.g. ``f"SELECT * FROM {events_sql(ws)}"``."""
    return f"read_parquet('{_sql_path(Path(events_glob(workspace)))}', hive_partitioning = true)"


def read_events(workspace: Workspace, columns: list[str] | None = None) -> pd.DataFrame:
    """The workspace events as pandas (contract columns only), sorted by user then time."""
    columns = list(columns or EVENT_COLUMNS)
    unknown = [c for c in columns if c not in EVENT_COLUMNS]
    if unknown:
        raise ValueError(f"not event contract columns: {unknown}")
    files = (
        sorted(workspace.events_dir.glob("**/*.parquet")) if workspace.events_dir.exists() else []
    )
    files = [
        f
        for f in files
        if not any(p.startswith(".") for p in f.relative_to(workspace.events_dir).parts)
    ]
    if not files:
        table = EVENT_ARROW_SCHEMA.empty_table().select(columns)
    else:
        dataset = pads.dataset([str(f) for f in files], schema=EVENT_ARROW_SCHEMA, format="parquet")
        table = dataset.to_table(columns=columns)
        keys = [(c, "ascending") for c in ("user_id", "ts") if c in columns]
        if keys:
            table = table.sort_by(keys)
    return table.to_pandas(types_mapper=None, timestamp_as_object=False)


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
