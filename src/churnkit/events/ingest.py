"""``churnkit ingest``: raw logs -> validated events, a quarantine and a summary, atomically.

Steps: expand the inputs and check every file's header/schema (fail fast, nothing written);
stream each file in chunks through mapping and validation, staging accepted rows and
writing rejected ones to the quarantine with their reason; read the users table the same way;
let DuckDB drop duplicates across all files, sort and partition; then move events,
quarantine, users table and summary into the workspace. All work happens in a staging folder
inside the workspace, so a failure (or Ctrl-C) leaves the previous ingest untouched.

``read = accepted + duplicates + rejected`` is asserted before anything is moved into place.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from churnkit.config import CsvOptions, IngestSettings, SourceConfig, UsersTableSource
from churnkit.errors import ConfigError, InputFileError
from churnkit.events.files import InputFile, base_folder, expand_inputs, infer_format
from churnkit.events.mapping import map_events, required_columns
from churnkit.events.pipeline import prefetch
from churnkit.events.readers import JsonlReader, ParquetReader, RawChunk, Reader, open_reader
from churnkit.events.schema import MALFORMED_ROW
from churnkit.events.store import (
    QuarantineWriter,
    StagedEvents,
    connect,
    finalize_events,
    sequence,
)
from churnkit.events.users import UsersTable, check_users_spec, users_required_columns
from churnkit.events.validate import (
    ROW_REASONS,
    Rules,
    accepted_table,
    explain,
    iso_utc,
    to_us,
    validate_events,
)
from churnkit.io.artifacts import replace_path, staging_dir
from churnkit.io.workspace import Workspace

Progress = Callable[[float, "float | None", "str | None"], None]


def ingest(
    paths: list[Path],
    source: SourceConfig,
    workspace: Workspace,
    *,
    as_of: dt.datetime | None,
    settings: IngestSettings,
    users_path: Path | None = None,
    progress: Progress | None = None,
) -> dict:
    """Ingest ``paths`` as ``source`` into ``workspace``; returns (and writes) the summary."""
    started = time.monotonic()
    as_of = _utc(as_of) if as_of is not None else dt.datetime.now(dt.UTC)
    paths = [Path(p) for p in paths]
    rules = Rules(
        min_us=to_us(dt.datetime.combine(settings.min_ts, dt.time(), dt.UTC)),
        as_of_us=to_us(as_of),
        vocabulary=tuple(source.vocabulary) if source.vocabulary is not None else None,
        allow_negative_amount=source.allow_negative_amount,
        ts_formats=tuple(source.fields.ts.formats),
        user_id_spec=source.fields.user_id,
        event_spec=source.fields.event,
    )
    _check_csv_options(source.csv, source.name)
    files = expand_inputs(paths, source.pattern, source.format)
    required = required_columns(source.fields)
    for file in files:  # fail fast: every header and schema before any row
        _close(_open_checked(file, source.csv, settings.chunk_rows, required))
    users_file, users_spec = _users_input(source, paths, users_path)
    if users_file is not None and users_spec is not None:
        _close(
            _open_checked(
                users_file, users_spec.csv, settings.chunk_rows, users_required_columns(users_spec)
            )
        )

    sizes = [f.path.stat().st_size for f in files] + (
        [users_file.path.stat().st_size] if users_file else []
    )
    total_bytes = float(sum(sizes)) or 1.0
    report = progress or (lambda done, total, note: None)
    workspace.root.mkdir(parents=True, exist_ok=True)

    with staging_dir(workspace.root) as stage:
        con = connect(stage / "duckdb-tmp", settings.duckdb_memory_limit)
        try:
            quarantine = QuarantineWriter(stage / "quarantine.parquet")
            staged = StagedEvents(stage / "staged-events", con)
            counts = _Counts()
            done_before = 0
            for file, size in zip(files, sizes):
                reader = _open_checked(file, source.csv, settings.chunk_rows, required)
                per_file = {
                    "path": file.name,
                    "format": file.format,
                    "read": 0,
                    "rejected": 0,
                    "blank_lines": 0,
                }
                for chunk in prefetch(reader.chunks()):
                    _process_chunk(chunk, file, source, rules, staged, quarantine, counts, per_file)
                    report(
                        done_before + chunk.bytes_done,
                        total_bytes,
                        f"{file.path.name}: {per_file['read']:,} rows",
                    )
                if isinstance(reader, JsonlReader):
                    reader.check_keys_seen(
                        {
                            c: f
                            for c, f in required.items()
                            if f in ("fields.user_id", "fields.ts", "fields.event")
                        }
                    )
                _close(reader)
                counts.files.append(per_file)
                done_before += size

            users_block = None
            if users_file is not None and users_spec is not None:
                report(done_before, total_bytes, f"users table {users_file.path.name}")
                reader = _open_checked(
                    users_file,
                    users_spec.csv,
                    settings.chunk_rows,
                    users_required_columns(users_spec),
                )
                table = UsersTable(
                    users_file,
                    users_spec,
                    reader,
                    min_us=rules.min_us,
                    as_of_us=rules.as_of_us,
                    stage=stage,
                    con=con,
                    quarantine=quarantine,
                )
                table.load()
                _close(reader)
            read_done = time.monotonic()
            report(total_bytes, total_bytes, "deduplicating, sorting and writing events")
            stats = finalize_events(
                con,
                staged,
                stage / "events",
                drop_duplicates=source.duplicates == "drop",
                partition_by=settings.partition_by,
                row_group_rows=max(settings.chunk_rows, 100_000),
            )
            if users_file is not None and users_spec is not None:
                users_block = table.finalize(
                    stage / "users.parquet", staged.glob if staged.parts else None
                )
                users_block["users_path"] = str(workspace.users_path)
            quarantine.close()
        finally:
            con.close()

        accepted = stats.written
        duplicates = stats.duplicates
        assert stats.valid == counts.valid, (stats.valid, counts.valid)
        assert counts.read == accepted + duplicates + counts.rejected, (
            counts.read,
            accepted,
            duplicates,
            counts.rejected,
        )
        summary: dict = {
            "source": source.name,
            "as_of": iso_utc(rules.as_of_us),
            "read": counts.read,
            "accepted": accepted,
            "duplicates": duplicates,
            "rejected": counts.rejected,
            "rejected_by_reason": {r: n for r, n in sorted(counts.by_reason.items()) if n},
            "blank_lines": counts.blank_lines,
            "users": stats.users,
            "first_ts": iso_utc(stats.first_us) if stats.first_us is not None else None,
            "last_ts": iso_utc(stats.last_us) if stats.last_us is not None else None,
            "duplicates_policy": source.duplicates,
            "min_ts": settings.min_ts.isoformat(),
            "partition_by": settings.partition_by,
            "partitions": stats.partitions,
            "files": counts.files,
            "events_path": str(workspace.events_dir),
            "quarantine_path": str(workspace.quarantine_path),
            "summary_path": str(workspace.summary_path),
            "users_path": str(workspace.users_path) if users_block is not None else None,
            "elapsed_s": round(time.monotonic() - started, 3),
            "timings_s": {
                "read_validate": round(read_done - started, 3),
                "dedup_sort_write": round(time.monotonic() - read_done, 3),
            },
        }
        if source.duplicates == "keep":
            summary["identical_rows_kept"] = stats.identical_rows
        if users_block is not None:
            summary["users_table"] = users_block
        (stage / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")

        # Commit: each move is atomic; the summary goes last and marks a complete ingest.
        replace_path(stage / "events", workspace.events_dir)
        workspace.ingest_dir.mkdir(parents=True, exist_ok=True)
        replace_path(stage / "quarantine.parquet", workspace.quarantine_path)
        if users_block is not None:
            replace_path(stage / "users.parquet", workspace.users_path)
        elif workspace.users_path.exists():
            workspace.users_path.unlink()  # a users table from an earlier ingest would not match
        replace_path(stage / "summary.json", workspace.summary_path)
    return summary


class _Counts:
    def __init__(self) -> None:
        self.read = 0
        self.valid = 0
        self.rejected = 0
        self.blank_lines = 0
        self.by_reason: dict[str, int] = {}
        self.files: list[dict] = []

    def reject(self, reason: str, n: int) -> None:
        if n:
            self.rejected += n
            self.by_reason[reason] = self.by_reason.get(reason, 0) + n


def _process_chunk(
    chunk: RawChunk,
    file: InputFile,
    source: SourceConfig,
    rules: Rules,
    staged: StagedEvents,
    quarantine: QuarantineWriter,
    counts: _Counts,
    per_file: dict,
) -> None:
    """Map, validate, quarantine the bad rows, stage the good ones: all vectorised per chunk."""
    n_read = chunk.n + len(chunk.malformed)
    counts.read += n_read
    counts.blank_lines += chunk.blank_lines
    per_file["read"] += n_read
    per_file["blank_lines"] += chunk.blank_lines
    lines = [m[0] for m in chunk.malformed]
    reasons = [MALFORMED_ROW] * len(chunk.malformed)
    details = [m[1] for m in chunk.malformed]
    raws = [m[2] for m in chunk.malformed]
    counts.reject(MALFORMED_ROW, len(chunk.malformed))
    per_file["rejected"] += len(chunk.malformed)
    if chunk.n:
        mapped = map_events(chunk.columns, source.fields, chunk.n, chunk.text_clean)
        codes = validate_events(mapped, rules)
        bad = np.flatnonzero(codes)
        if len(bad):
            lines.extend(chunk.line[bad].tolist())
            reasons.extend(ROW_REASONS[c - 1] for c in codes[bad])
            details.extend(explain(mapped, codes, bad, rules))
            raws.extend(chunk.raw_of(bad))
            for code, n in enumerate(
                np.bincount(codes, minlength=len(ROW_REASONS) + 1)[1:], start=1
            ):
                counts.reject(ROW_REASONS[code - 1], int(n))
            per_file["rejected"] += len(bad)
        ok = codes == 0
        table = accepted_table(mapped, ok)
        counts.valid += table.num_rows
        staged.add(
            table,
            sequence(file.index, chunk.line[ok]),
            chunk.key.filter(ok) if len(bad) else chunk.key,
        )
    if lines:
        order = np.argsort(np.asarray(lines, dtype=np.int64), kind="stable")
        quarantine.add(
            "events",
            file.name,
            [lines[i] for i in order],
            [reasons[i] for i in order],
            [details[i] for i in order],
            [raws[i] for i in order],
        )


def _open_checked(
    file: InputFile, csv_options: CsvOptions, chunk_rows: int, required: dict[str, str]
) -> Reader:
    reader = open_reader(file, csv_options, chunk_rows)
    reader.check_columns(required)
    return reader


def _close(reader: Reader) -> None:
    if isinstance(reader, ParquetReader):
        reader.close()


def _users_input(
    source: SourceConfig, paths: list[Path], override: Path | None
) -> tuple[InputFile | None, UsersTableSource | None]:
    spec = source.users
    if override is None and spec is None:
        return None, None
    if spec is None:
        raise ConfigError(
            f"--users given, but source '{source.name}' has no `users:` mapping for a users table"
        )
    check_users_spec(spec, source.name)
    _check_csv_options(spec.csv, source.name, "users.csv")
    path = Path(override) if override is not None else spec.path
    if override is None and not path.is_absolute():
        path = base_folder(paths) / path
    if not path.exists():
        raise InputFileError(f"{path}: users table not found")
    if not path.is_file():
        raise InputFileError(f"{path}: users table must be a file")
    fmt, compressed = infer_format(path, spec.format)
    return InputFile(path=path, format=fmt, index=0, compressed=compressed), spec


def _check_csv_options(options: CsvOptions, source_name: str, where: str = "csv") -> None:
    if not options.header and not options.columns:
        raise ConfigError(
            f"source '{source_name}': {where}.header is false, so {where}.columns must name the columns"
        )


def _utc(ts: dt.datetime) -> dt.datetime:
    return ts.replace(tzinfo=dt.UTC) if ts.tzinfo is None else ts.astimezone(dt.UTC)
