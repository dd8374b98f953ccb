"""``churnkit ingest``: raw logs -> validated events, quarantine and summary in the workspace."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from churnkit.config import SourceConfig, load_source
from churnkit.events.ingest import ingest as ingest_files
from churnkit.flows.project import Project

Progress = Callable[[float, float | None, str | None], None]


def ingest(
    project: Project,
    paths: list[Path],
    source: str | SourceConfig,
    *,
    as_of: dt.datetime | None = None,
    users: Path | None = None,
    assignments: Path | None = None,
    mode: str = "replace",
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Ingest ``paths`` mapped by ``source`` (a preset name, a YAML path or a config); events
    at or after ``as_of`` (default: now) are rejected as from the future; ``mode`` is
    ``replace`` (rebuild from these files) or ``append`` (add them to the stored events).
    ``users`` and ``assignments`` replace the paths of the source's tables. Returns the summary."""
    src = source if isinstance(source, SourceConfig) else load_source(source)
    return ingest_files(paths, src, project.workspace, as_of=as_of, settings=project.config.ingest,
                        users_path=users, assignments_path=assignments, mode=mode, progress=progress)
