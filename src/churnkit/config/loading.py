"""Finding and loading YAMLs: the project's ``configs/`` first, then the package presets."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

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


def problem_files() -> dict[str, Path]:
    """Problem name -> YAML: the project's ``configs/problems/`` over the package presets."""
    project = {p.stem: p for p in sorted(PROJECT_PROBLEMS.glob("*.yaml"))} if PROJECT_PROBLEMS.is_dir() else {}
    return presets("problems") | project


def load_problem(name_or_path: str) -> ProblemConfig:
    """A YAML path, or a name: ``configs/problems/NAME.yaml`` in the working directory
    first, then the package presets."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return load_yaml(p, ProblemConfig)
    known = problem_files()
    if name_or_path in known:
        return load_yaml(known[name_or_path], ProblemConfig)
    raise ChurnkitError(f"unknown problem '{name_or_path}'; known: {', '.join(sorted(known)) or 'none'}")


def load_source(name_or_path: str) -> SourceConfig:
    """A YAML path (anything with a path separator or a .yaml/.yml suffix) or a preset name."""
    candidate = Path(name_or_path)
    looks_like_path = (
        candidate.suffix.lower() in (".yaml", ".yml") or "/" in name_or_path or "\\" in name_or_path
    )
    if looks_like_path or candidate.is_file():
        return load_yaml(candidate, SourceConfig)
    builtins = presets("sources")
    if name_or_path in builtins:
        return load_yaml(builtins[name_or_path], SourceConfig)
    raise ChurnkitError(
        f"unknown source '{name_or_path}': not a file and not a built-in source"
        f" (built-in: {', '.join(builtins) or 'none'})"
    )
