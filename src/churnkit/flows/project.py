"""What every command works on: a workspace, the project config and the MLflow store."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import ibis.expr.types as ir

from churnkit.config import ChurnkitConfig, load_churnkit_config
from churnkit.io import tracking
from churnkit.io.warehouse import duckdb_connection, workspace_events, workspace_users
from churnkit.io.workspace import Workspace


@dataclass(frozen=True)
class Project:
    """The workspace, the project config, and an MLflow URI that overrides the config's."""

    workspace: Workspace
    config: ChurnkitConfig = field(default_factory=ChurnkitConfig)
    tracking_uri: str | None = None

    @classmethod
    def at(cls, root: Path | str | Workspace, config: ChurnkitConfig | None = None,
           tracking_uri: str | None = None) -> Project:
        """A project on ``root`` with ``config``, else the project config the CLI would read
        (``configs/churnkit.yaml`` in the working directory, or the embedded defaults)."""
        ws = root if isinstance(root, Workspace) else Workspace(Path(root))
        return cls(ws, config or load_churnkit_config(None), tracking_uri)

    def with_tracking(self, uri: str | None) -> Project:
        """The same project with ``--tracking-uri`` (None keeps the current choice)."""
        return self if uri is None else replace(self, tracking_uri=uri)

    def open_tracking(self) -> str:
        """Select the MLflow store: ``--tracking-uri`` > ``MLFLOW_TRACKING_URI`` > config >
        the workspace's SQLite. Returns the URI in use."""
        tracking.open_store(self.workspace.root, self.config.tracking_uri, self.tracking_uri)
        return tracking.current_uri() or ""

    def connect(self) -> Any:
        """An embedded DuckDB in UTC, capped at the configured memory."""
        return duckdb_connection(self.config.ingest.duckdb_memory_limit)

    def tables(self, con: Any | None = None) -> tuple[ir.Table, ir.Table | None]:
        """The workspace's events and users table (None without one) on ``con``."""
        con = con if con is not None else self.connect()
        return workspace_events(con, self.workspace), workspace_users(con, self.workspace)
