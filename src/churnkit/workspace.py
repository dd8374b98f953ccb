"""Where each artefact lives inside a workspace folder, so every command agrees."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Workspace:
    root: Path

    def __post_init__(self) -> None:
        # notebooks pass a string; every path below is built with ``/``
        object.__setattr__(self, "root", Path(self.root))

    @property
    def events_dir(self) -> Path:
        return self.root / "events"

    @property
    def users_path(self) -> Path:
        return self.root / "users.parquet"

    @property
    def ingest_dir(self) -> Path:
        return self.root / "ingest"

    @property
    def quarantine_path(self) -> Path:
        return self.ingest_dir / "quarantine.parquet"

    @property
    def summary_path(self) -> Path:
        return self.ingest_dir / "summary.json"

    @property
    def simulation_dir(self) -> Path:
        return self.root / "simulation"

    def events_glob(self) -> str:
        return str(self.events_dir / "**" / "*.parquet")


@contextmanager
def staging_dir(parent: Path) -> Iterator[Path]:
    """A scratch folder beside the final outputs; removed on exit whatever happens.

    Writers build everything here and then :func:`replace_path` it into place, so a
    failure never leaves a half-written output behind.
    """
    parent.mkdir(parents=True, exist_ok=True)
    path = parent / f".staging-{uuid.uuid4().hex[:12]}"
    path.mkdir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def replace_path(src: Path, dst: Path) -> None:
    """Move ``src`` onto ``dst`` (file or folder), swapping out any previous ``dst``."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(dst, old)
    os.replace(src, dst)
    if old is not None:
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
