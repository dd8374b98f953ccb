"""Finding and loading YAMLs: the project's ``configs/`` first, then the package presets."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

import yaml

from churnkit.config.base import load_yaml
from churnkit.config.problems import ProblemConfig
from churnkit.config.project import ChurnkitConfig
from churnkit.config.sources import SourceConfig
from churnkit.errors import ChurnkitError

PROJECT_CONFIG = Path("configs") / "churnkit.yaml"
PROJECT_PROBLEMS = Path("configs") / "problems"


def load_churnkit_config(path: Path | str | None) -> ChurnkitConfig:
    """The project config; ``configs/churnkit.yaml`` when present, else embedded defaults."""
    if path is None:
        return load_yaml(PROJECT_CONFIG, ChurnkitConfig) if PROJECT_CONFIG.exists() else ChurnkitConfig()
    return load_yaml(path, ChurnkitConfig)


def presets(kind: Literal["problems", "sources"]) -> dict[str, Path]:
    """The YAML presets shipped inside the package (``churnkit/defaults/<kind>/``), by name."""
    folder = Path(str(resources.files("churnkit") / "defaults" / kind))
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def problem_files(*folders: Path) -> dict[str, Path]:
    """Problem name -> YAML: the package presets, overridden by each of ``folders`` (e.g. a
    workspace's recorded problems), overridden by the project's ``configs/problems/``."""
    found = presets("problems")
    for folder in (*reversed(folders), PROJECT_PROBLEMS):
        if folder.is_dir():
            found |= {p.stem: p for p in sorted(folder.glob("*.yaml"))}
    return found


def is_yaml_path(name_or_path: str) -> bool:
    """A YAML path (a .yaml/.yml suffix, a path separator, or an existing file), not a
    preset's or a problem's name."""
    p = Path(name_or_path)
    return p.suffix.lower() in (".yaml", ".yml") or "/" in name_or_path or "\\" in name_or_path or p.is_file()


def load_problem(name_or_path: str, *folders: Path) -> ProblemConfig:
    """A YAML path, or a problem's ``name``: ``configs/problems/`` in the working directory
    first, then ``folders`` in order (a workspace records the problems it was given by
    path), then the package presets. A file is found by its stem or by the ``name`` it holds."""
    if is_yaml_path(name_or_path):
        return load_yaml(Path(name_or_path), ProblemConfig)
    known = problem_files(*folders)
    if name_or_path in known:
        return load_yaml(known[name_or_path], ProblemConfig)
    for path in known.values():  # a file named otherwise than the problem it holds
        if _declared_name(path) == name_or_path:
            return load_yaml(path, ProblemConfig)
    where = f"{PROJECT_PROBLEMS}/" + (", the workspace's problems" if folders else "") + " or the presets"
    raise ChurnkitError(
        f"unknown problem '{name_or_path}': not in {where} (known: {', '.join(sorted(known)) or 'none'});"
        " give the YAML's path"
    )


def _declared_name(path: Path) -> str | None:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    return str(data.get("name")) if isinstance(data, dict) and data.get("name") is not None else None


def load_source(name_or_path: str) -> SourceConfig:
    """A YAML path (anything with a path separator or a .yaml/.yml suffix) or a preset name."""
    if is_yaml_path(name_or_path):
        return load_yaml(Path(name_or_path), SourceConfig)
    builtins = presets("sources")
    if name_or_path in builtins:
        return load_yaml(builtins[name_or_path], SourceConfig)
    raise ChurnkitError(
        f"unknown source '{name_or_path}': not a file and not a built-in source"
        f" (built-in: {', '.join(builtins) or 'none'})"
    )
