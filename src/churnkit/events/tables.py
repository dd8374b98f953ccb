"""What the tables read beside the events (users, campaign assignments) share.

Each is one file streamed in chunks through the event readers; a subclass maps and checks a
chunk (``_chunk``), quarantining bad rows under its own table name and staging the good ones
with their sequence, a hash of their values, line and raw text (``_stage``); repeats are then
resolved in DuckDB by the subclass's ``finalize``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from churnkit.events.files import InputFile
from churnkit.events.readers import RawChunk, Reader, row_keys
from churnkit.events.schema import MALFORMED_ROW
from churnkit.events.store import QuarantineWriter, hash128, sequence


@dataclass
class TableResult:
    """Counts of one table; ``read = accepted + duplicates + rejected`` once finalized."""

    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    blank_lines: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)

    def reject(self, reason: str, n: int) -> None:
        if n:
            self.rejected += n
            self.rejected_by_reason[reason] = self.rejected_by_reason.get(reason, 0) + n

    def check(self) -> None:
        assert self.read == self.accepted + self.duplicates + self.rejected, self

    def counts(self) -> dict:
        self.check()
        return {
            "read": self.read,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "rejected_by_reason": dict(sorted(self.rejected_by_reason.items())),
            "blank_lines": self.blank_lines,
        }


class StagedTable:
    """Streams one file of table ``name`` into ``stage/staged-<name>/`` as Parquet parts."""

    name: str = ""

    def __init__(
        self,
        file: InputFile,
        spec: Any,
        reader: Reader,
        *,
        min_us: int,
        as_of_us: int,
        stage: Path,
        con: duckdb.DuckDBPyConnection,
        quarantine: QuarantineWriter,
    ) -> None:
        self.file, self.spec, self.reader = file, spec, reader
        self.min_us, self.as_of_us = min_us, as_of_us
        self.folder = stage / f"staged-{self.name}"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.con, self.quarantine = con, quarantine
        self.result = TableResult()
        self._parts = 0
        self._prepare()

    def _prepare(self) -> None:
        """What a table of this kind derives from ``self.spec`` (its Arrow schema at least)."""

    def load(self) -> None:
        for chunk in self.reader.chunks():
            res = self.result
            res.read += chunk.n + len(chunk.malformed)
            res.blank_lines += chunk.blank_lines
            lines: list[int] = [m[0] for m in chunk.malformed]
            reasons: list[str] = [MALFORMED_ROW] * len(chunk.malformed)
            details: list[str] = [m[1] for m in chunk.malformed]
            raws: list[str] = [m[2] for m in chunk.malformed]
            res.reject(MALFORMED_ROW, len(chunk.malformed))
            if chunk.n:
                self._chunk(chunk, lines, reasons, details, raws)
            order = np.argsort(np.asarray(lines, dtype=np.int64), kind="stable")
            self.quarantine.add(
                self.name,
                self.file.name,
                [lines[i] for i in order],
                [reasons[i] for i in order],
                [details[i] for i in order],
                [raws[i] for i in order],
            )

    def _chunk(
        self,
        chunk: RawChunk,
        lines: list[int],
        reasons: list[str],
        details: list[str],
        raws: list[str],
    ) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _stage(self, table: pa.Table, chunk: RawChunk, ok: np.ndarray) -> None:
        """Write the accepted rows ``table`` (rows ``ok`` of ``chunk``) with ``_seq`` (file
        order), ``_vh1``/``_vh2`` (a hash of all their values), ``_line`` and ``_raw``."""
        h1, h2 = hash128(
            self.con,
            row_keys(
                {c: table.column(c).combine_chunks() for c in table.column_names}, table.num_rows
            ),
        )
        ok_idx = np.flatnonzero(ok)
        table = (
            table.append_column(
                "_seq", pa.array(sequence(self.file.index, chunk.line[ok]), pa.int64())
            )
            .append_column("_vh1", h1)
            .append_column("_vh2", h2)
            .append_column("_line", pa.array(chunk.line[ok], pa.int64()))
            .append_column("_raw", pa.array(chunk.raw_of(ok_idx), pa.string()))
        )
        pq.write_table(table, self.folder / f"part-{self._parts:06d}.parquet")
        self._parts += 1


def quote_ident(name: str) -> str:
    """A DuckDB identifier for any column name."""
    return '"' + name.replace('"', '""') + '"'
