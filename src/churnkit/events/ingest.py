"""``churnkit ingest``: raw logs -> validated events, a quarantine and a summary, atomically.

Steps: expand the inputs and check every file's header/schema (fail fast, nothing written);
stream each file in chunks through mapping and validation, staging accepted rows and
writing rejected ones to the quarantine with their reason; read the users table and the
campaign assignments table the same way; let DuckDB drop duplicates across all files, sort
and partition; then move events, quarantine, the tables and summary into the workspace. All work happens in a staging folder
inside the workspace, so a failure (or Ctrl-C) leaves the previous ingest untouched.

``read = accepted + duplicates + rejected`` is asserted before anything is moved into place.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from churnkit.config import (
    DEFAULT_SOURCE,
    AssignmentsTableSource,
    CsvOptions,
    IngestSettings,
    SourceConfig,
    UsersTableSource,
)
from churnkit.config.sources import TableSource
from churnkit.errors import ConfigError, InputFileError
from churnkit.events.assignments import (
    AssignmentsTable,
    assignments_required_columns,
    lookup_required_columns,
)
from churnkit.events.files import InputFile, base_folder, expand_inputs, infer_format
from churnkit.events.history import MODES, Previous, appending_to, fingerprint, remove_orphans
from churnkit.events.mapping import map_events, required_columns
from churnkit.events.partitions import link_or_copy
from churnkit.events.pipeline import prefetch
from churnkit.events.readers import (
    JsonlReader,
    MissingColumnError,
    ParquetReader,
    RawChunk,
    Reader,
    open_reader,
)
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
from churnkit.io.artifacts import staging_dir
from churnkit.io.locks import exclusive
from churnkit.io.workspace import Workspace, data_layout

Progress = Callable[[float, "float | None", "str | None"], None]


def ingest(
    paths: list[Path],
    source: SourceConfig,
    workspace: Workspace,
    *,
    as_of: dt.datetime | None,
    settings: IngestSettings,
    users_path: Path | None = None,
    assignments_path: Path | None = None,
    mode: str = "replace",
    progress: Progress | None = None,
) -> dict:
    """Ingest ``paths`` as ``source`` into ``workspace``; returns (and writes) the summary.

    ``mode="replace"`` rebuilds the events from these files alone; ``"append"`` adds them to
    the stored events (rows identical to stored ones are duplicates; a file already ingested
    is refused), keeps the quarantine and, without a new users or assignments table, the
    stored one. ``users_path`` and ``assignments_path`` replace the source's table paths.
    """
    if mode not in MODES:
        raise ConfigError(f"unknown ingest mode {mode!r}; use one of: {', '.join(MODES)}")
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
        _close(_open_checked(file, source.csv, settings.chunk_rows, required, source.name))
    users_file, users_spec = _users_input(source, paths, users_path)
    if users_file is not None and users_spec is not None:
        _close(
            _open_checked(
                users_file, users_spec.csv, settings.chunk_rows, users_required_columns(users_spec)
            )
        )
    assignments = _assignments_input(source, paths, assignments_path)
    if assignments is not None:
        _close(_open_checked(assignments[0], assignments[1].csv, settings.chunk_rows,
                             assignments_required_columns(assignments[1])))

    sizes = [f.path.stat().st_size for f in files] + (
        [users_file.path.stat().st_size] if users_file else []
    ) + ([assignments[0].path.stat().st_size] if assignments else [])
    total_bytes = float(sum(sizes)) or 1.0
    report = progress or (lambda done, total, note: None)
    report(0.0, total_bytes, "fingerprinting files")
    prints = [fingerprint(f.path) for f in files]
    workspace.root.mkdir(parents=True, exist_ok=True)
    with exclusive(workspace.lock_path, "ingest"):
        remove_orphans(workspace)
        previous = appending_to(workspace, source, settings, rules, files, prints) if mode == "append" else None
        with staging_dir(workspace.data_dir) as stage:
            summary = _build(files, sizes, total_bytes, source, rules, required, settings, users_file, users_spec,
                             workspace, stage, report, started, previous, prints, mode, assignments)
        remove_orphans(workspace)
    return summary


def _build(files, sizes, total_bytes, source, rules, required, settings, users_file, users_spec,
           workspace: Workspace, stage: Path, report: Progress, started: float,
           previous: Previous | None, prints: list[str], mode: str,
           assignments: tuple[InputFile, AssignmentsTableSource] | None = None) -> dict:
    """Read, validate and stage everything in ``stage``, then commit it as a new data version."""
    version = workspace.new_data_version()
    out = data_layout(stage / "version")
    out["quarantine"].parent.mkdir(parents=True)
    con = connect(stage / "duckdb-tmp", settings.duckdb_memory_limit)
    carried = 0
    staged: StagedEvents | None = None
    try:
        quarantine = QuarantineWriter(out["quarantine"])
        if previous is not None:
            carried = quarantine.carry(data_layout(previous.version)["quarantine"])
            for f in previous.stored.key_files:
                link_or_copy(f, out["keys"] / f.name)
        staged = StagedEvents(stage / "staged-events", con)
        counts = _Counts()
        done_before = 0
        for file, size in zip(files, sizes):
            reader = _open_checked(file, source.csv, settings.chunk_rows, required, source.name)
            per_file = {
                "path": file.name,
                "format": file.format,
                "read": 0,
                "rejected": 0,
                "blank_lines": 0,
            }
            items, finish = reader.stages()
            for item in prefetch(items):
                chunk = finish(item)
                _process_chunk(chunk, file, source, rules, staged, quarantine, counts, per_file)
                report(
                    done_before + chunk.bytes_done,
                    total_bytes,
                    f"{file.path.name}: {per_file['read']:,} rows",
                )
            if isinstance(reader, JsonlReader):
                with _source_hint(source.name):
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

        staged.close()  # every part written before anything else uses the connection
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
        if assignments is not None:
            a_file, a_spec = assignments
            report(done_before, total_bytes, f"assignments table {a_file.path.name}")
            reader = _open_checked(a_file, a_spec.csv, settings.chunk_rows, assignments_required_columns(a_spec))
            a_table = AssignmentsTable(a_file, a_spec, reader, min_us=rules.min_us, as_of_us=rules.as_of_us,
                                       stage=stage, con=con, quarantine=quarantine)
            a_table.load()
            _close(reader)
        read_done = time.monotonic()
        report(total_bytes, total_bytes, "deduplicating, sorting and writing events")
        stats = finalize_events(
            con,
            staged,
            out["events"],
            drop_duplicates=source.duplicates == "drop",
            partition_by=settings.partition_by,
            row_group_rows=max(settings.chunk_rows, 100_000),
            keys_path=out["keys"] / f"{version.name}.parquet",
            stored=previous.stored if previous is not None else None,
        )
        events_glob = str(out["events"] / "**" / "*.parquet") if stats.events else None
        if users_file is not None and users_spec is not None:
            users_block = table.finalize(out["users"], events_glob)
            users_block["users_path"] = str(data_layout(version)["users"])
        elif previous is not None and "users_table" in previous.summary:
            link_or_copy(data_layout(previous.version)["users"], out["users"])  # a table is a snapshot: kept
            users_block = {**previous.summary["users_table"], "users_path": str(data_layout(version)["users"]),
                           "carried_from": previous.summary["runs"][-1]["at"]}
        assignments_block = None
        if assignments is not None:
            assignments_block = a_table.finalize(out["assignments"], events_glob)
            assignments_block["assignments_path"] = str(data_layout(version)["assignments"])
        elif previous is not None and "assignments_table" in previous.summary:
            link_or_copy(data_layout(previous.version)["assignments"], out["assignments"])  # kept, like users
            assignments_block = {**previous.summary["assignments_table"],
                                 "assignments_path": str(data_layout(version)["assignments"]),
                                 "carried_from": previous.summary["runs"][-1]["at"]}
        quarantine.close()
    finally:
        if staged is not None:
            try:
                staged.close()  # the staging thread stops using the connection before it closes
            except BaseException:  # noqa: BLE001, S110 - the error that brought us here matters more
                pass
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
    at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    this_run = {
        "at": at, "mode": mode, "source": source.name, "as_of": iso_utc(rules.as_of_us),
        "read": counts.read, "accepted": accepted, "duplicates": duplicates, "rejected": counts.rejected,
        "files": [{"path": str(f.path.resolve()), "bytes": size, "sha256": sha}
                  for f, size, sha in zip(files, sizes, prints, strict=False)],
    }
    runs = [*(previous.summary["runs"] if previous is not None else []), this_run]
    total = {k: sum(r[k] for r in runs) for k in ("read", "accepted", "duplicates", "rejected")}
    total |= {"runs": len(runs), "events": stats.events, "users": stats.users}
    assert total["accepted"] == stats.events, (total, stats.events)
    total["quarantined"] = carried + quarantine.rows  # events', users' and assignments' rejections
    summary: dict = {
        "mode": mode,
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
        "events_path": str(data_layout(version)["events"]),
        "quarantine_path": str(data_layout(version)["quarantine"]),
        "summary_path": str(data_layout(version)["summary"]),
        "users_path": str(data_layout(version)["users"]) if users_block is not None else None,
        "assignments_path": str(data_layout(version)["assignments"]) if assignments_block is not None else None,
        "elapsed_s": round(time.monotonic() - started, 3),
        "timings_s": {
            "read_validate": round(read_done - started, 3),
            "dedup_sort_write": round(time.monotonic() - read_done, 3),
        },
    }
    if source.duplicates == "keep":
        summary["identical_rows_kept"] = stats.identical_rows
    else:
        summary["duplicates_of_stored"] = stats.stored_duplicates
    summary["total"] = total
    summary["runs"] = runs
    if users_block is not None:
        summary["users_table"] = users_block
    if assignments_block is not None:
        summary["assignments_table"] = assignments_block
    out["summary"].write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")

    # Commit: the complete version gets its name, then one atomic replace of the pointer.
    os.replace(stage / "version", version)
    workspace.commit_data(version)
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
    file: InputFile, csv_options: CsvOptions, chunk_rows: int, required: dict[str, str],
    source_name: str | None = None,
) -> Reader:
    reader = open_reader(file, csv_options, chunk_rows)
    with _source_hint(source_name):
        reader.check_columns(required)
    return reader


@contextmanager
def _source_hint(source_name: str | None) -> Iterator[None]:
    """Without ``--source`` a raw log meets the contract source: say what to do instead."""
    try:
        yield
    except MissingColumnError as err:
        if source_name != DEFAULT_SOURCE:
            raise
        raise MissingColumnError(
            f"{err}; the '{DEFAULT_SOURCE}' source (used without --source) reads files already in the"
            " event contract: pass --source with a built-in name or a YAML for this log (docs/sources.md)"
        ) from None


def _close(reader: Reader) -> None:
    if isinstance(reader, ParquetReader):
        reader.close()


def _users_input(
    source: SourceConfig, paths: list[Path], override: Path | None
) -> tuple[InputFile | None, UsersTableSource | None]:
    spec = source.users
    if override is None and spec is None:
        return None, None
    if spec is not None:
        check_users_spec(spec, source.name)
    return _table_file(source, "users", "a users table", spec, paths, override), spec


def _assignments_input(
    source: SourceConfig, paths: list[Path], override: Path | None
) -> tuple[InputFile, AssignmentsTableSource] | None:
    spec = source.assignments
    if override is None and spec is None:
        return None
    file = _table_file(source, "assignments", "an assignments table", spec, paths, override)
    if spec is not None and spec.lookup is not None:  # resolved here, read by the table itself
        lookup = _table_file(source, "assignments.lookup", "a lookup table", spec.lookup, paths, None)
        _close(_open_checked(lookup, spec.lookup.csv, 10_000, lookup_required_columns(spec.lookup)))
        spec = spec.model_copy(update={"lookup": spec.lookup.model_copy(update={"path": lookup.path})})
    return file, spec


def _table_file(
    source: SourceConfig,
    key: str,
    what: str,
    spec: TableSource | None,
    paths: list[Path],
    override: Path | None,
) -> InputFile:
    """The file of the table under ``key:`` in the source (``--KEY FILE`` replaces its path;
    a relative path resolves against the folder of the first input)."""
    if spec is None:
        raise ConfigError(f"--{key} given, but source '{source.name}' has no `{key}:` mapping for {what}")
    _check_csv_options(spec.csv, source.name, f"{key}.csv")
    path = Path(override) if override is not None else spec.path
    if override is None and not path.is_absolute():
        path = base_folder(paths) / path
    if not path.exists():
        raise InputFileError(f"{path}: {key} table not found")
    if not path.is_file():
        raise InputFileError(f"{path}: {key} table must be a file")
    fmt, compressed = infer_format(path, spec.format)
    return InputFile(path=path, format=fmt, index=0, compressed=compressed)


def _check_csv_options(options: CsvOptions, source_name: str, where: str = "csv") -> None:
    if not options.header and not options.columns:
        raise ConfigError(
            f"source '{source_name}': {where}.header is false, so {where}.columns must name the columns"
        )


def _utc(ts: dt.datetime) -> dt.datetime:
    return ts.replace(tzinfo=dt.UTC) if ts.tzinfo is None else ts.astimezone(dt.UTC)
