"""What every command works on: a workspace, the project config and the MLflow store."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from churnkit.config import (
    ChurnkitConfig,
    ProblemConfig,
    is_yaml_path,
    load_churnkit_config,
    load_problem,
)
from churnkit.io import tracking
from churnkit.io.workspace import Workspace

# Every command builds a Project before it runs (``churnkit ingest --help`` too), so this
# module imports no engine: Ibis, pandas and DuckDB load in the methods that use them.
if TYPE_CHECKING:
    import ibis.expr.types as ir


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

    def problem(self, name_or_path: str | ProblemConfig) -> ProblemConfig:
        """A problem by YAML path or by name (``configs/problems/``, then the problems this
        workspace was given by path, then the presets). A problem given by path is recorded
        in the workspace under its ``name``, so promote, score and the service find it by
        that name later, wherever the YAML was."""
        if isinstance(name_or_path, ProblemConfig):
            return name_or_path
        problem = load_problem(name_or_path, self.workspace.problems_dir)
        if is_yaml_path(name_or_path):
            text = Path(name_or_path).read_text(encoding="utf-8")
            target = self.workspace.problem_path(problem.name)
            if not target.exists() or target.read_text(encoding="utf-8") != text:
                from churnkit.io.artifacts import publish

                with publish({"problem": target}) as staged:
                    staged["problem"].write_text(text, encoding="utf-8")
        return problem

    def problem_name(self, name_or_path: str) -> str:
        """The registry's name for a problem: its ``name`` when given by path, else as given
        (a registered model needs no YAML to be scored)."""
        return self.problem(name_or_path).name if is_yaml_path(name_or_path) else name_or_path

    def connect(self) -> Any:
        """An embedded DuckDB in UTC, capped at the configured memory."""
        from churnkit.io.warehouse import duckdb_connection

        return duckdb_connection(self.config.ingest.duckdb_memory_limit)

    def tables(self, con: Any | None = None) -> tuple[ir.Table, ir.Table | None]:
        """The workspace's events and users table (None without one) on ``con``."""
        from churnkit.io.warehouse import workspace_events, workspace_users

        con = con if con is not None else self.connect()
        return workspace_events(con, self.workspace), workspace_users(con, self.workspace)
