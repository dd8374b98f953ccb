"""What an ingest builds on: the committed data versions, the record of the runs that made
them, and what a killed run left behind.

Appending needs the current version to be extendable (same duplicates policy and
partitioning, a later as-of, no file stored twice: files are known by their SHA-256).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from churnkit.config import IngestSettings, SourceConfig
from churnkit.contracts import EVENT_COLUMNS
from churnkit.errors import ConfigError, InputFileError
from churnkit.events.files import InputFile
from churnkit.events.store import StoredEvents
from churnkit.events.validate import Rules, iso_utc, to_us
from churnkit.io.workspace import STAGING_PREFIX, VERSION_PREFIX, Workspace, data_layout

MODES = ("replace", "append")


@dataclass(frozen=True)
class Previous:
    """The committed version an append builds on."""

    version: Path
    summary: dict
    stored: StoredEvents


def fingerprint(path: Path) -> str:
    """SHA-256 of a file's bytes: how an append recognises a file it has already stored."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def appending_to(workspace: Workspace, source: SourceConfig, settings: IngestSettings, rules: Rules,
                  files: list[InputFile], prints: list[str]) -> Previous | None:
    """The current version to append to (None when there is none yet), after checking the
    run can extend it: same duplicates policy and partitioning, as-of not earlier, no file
    stored before."""
    current = workspace.current_data()
    if current is None and not workspace.events_dir.exists():
        return None  # nothing stored yet: the first append starts the store
    summary_path = data_layout(current)["summary"] if current is not None else None
    summary = json.loads(summary_path.read_text()) if summary_path is not None and summary_path.exists() else {}
    if "runs" not in summary:
        raise ConfigError(
            f"{workspace.root}: the stored events come from an older churnkit without the record "
            "an append needs; run ingest --mode replace once, then append"
        )
    stored_files = sorted(data_layout(current)["events"].rglob("*.parquet")) if current is not None else []
    if stored_files:
        missing = [c for c in EVENT_COLUMNS if c not in pq.read_schema(stored_files[0]).names]
        if missing:
            raise ConfigError(
                f"cannot append: the stored events predate the event field(s) {', '.join(missing)}; "
                "run ingest --mode replace once, then append"
            )
    for key, now in (("duplicates_policy", source.duplicates), ("partition_by", settings.partition_by)):
        if summary[key] != now:
            raise ConfigError(
                f"cannot append: the stored events were ingested with {key} {summary[key]!r}, this run has "
                f"{now!r}; use the same setting, or --mode replace to rebuild"
            )
    stored_as_of = to_us(dt.datetime.fromisoformat(summary["as_of"]))
    if rules.as_of_us < stored_as_of:
        raise ConfigError(
            f"cannot append with as-of {iso_utc(rules.as_of_us)}: the stored events were accepted up to "
            f"{summary['as_of']}; give a later --as-of (default: now)"
        )
    seen = {f["sha256"]: run for run in summary["runs"] for f in run["files"]}
    for file, sha in zip(files, prints, strict=True):
        if sha in seen:
            run = seen[sha]
            raise InputFileError(
                f"{file.path}: already ingested at {run['at']} (as {run_file(run, sha)}); "
                "leave it out, or --mode replace to rebuild from all files"
            )
    out = data_layout(current)
    keys = tuple(sorted(out["keys"].glob("*.parquet"))) if out["keys"].is_dir() else ()
    return Previous(current, summary, StoredEvents(out["events"], keys))


def run_file(run: dict, sha: str) -> str:
    return next(f["path"] for f in run["files"] if f["sha256"] == sha)



def remove_orphans(workspace: Workspace) -> None:
    """What killed or superseded ingests left (staging folders, pointer drafts, uncommitted
    versions, versions before the previous one, a layout from before versions); called with
    the lock held.

    The previous version stays one more ingest, for a reader that opened it just before.
    """
    current = workspace.current_data()
    data = workspace.data_dir
    if data.is_dir():
        versions = sorted(p.name for p in data.iterdir() if p.name.startswith(VERSION_PREFIX) and p.is_dir())
        older = [v for v in versions if current is not None and v < current.name]
        keep = {current.name, *older[-1:]} if current is not None else set()
        for p in data.iterdir():
            if p.name.startswith((STAGING_PREFIX, ".CURRENT-")) or (
                p.name.startswith(VERSION_PREFIX) and p.name not in keep
            ):
                _remove(p)
    if current is not None:  # the layout from before versions, now superseded
        for legacy in data_layout(workspace.root).values():
            _remove(legacy)
        with contextlib.suppress(OSError):
            (workspace.root / "ingest").rmdir()


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


