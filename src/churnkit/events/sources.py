"""Source configs: the built-in ones shipped with the package, or any YAML by path."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from churnkit.config import SourceConfig, load_yaml
from churnkit.errors import ChurnkitError


def builtin_sources() -> dict[str, Path]:
    """Built-in source name -> its YAML file (``src/churnkit/sources/*.yaml``)."""
    folder = Path(str(resources.files("churnkit") / "sources"))
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def resolve_source(name_or_path: str) -> SourceConfig:
    """A YAML path (anything with a path separator or a .yaml/.yml suffix) or a built-in name."""
    candidate = Path(name_or_path)
    looks_like_path = (
        candidate.suffix.lower() in (".yaml", ".yml") or "/" in name_or_path or "\\" in name_or_path
    )
    if looks_like_path or candidate.is_file():
        return load_yaml(candidate, SourceConfig)
    builtins = builtin_sources()
    if name_or_path in builtins:
        return load_yaml(builtins[name_or_path], SourceConfig)
    raise ChurnkitError(
        f"unknown source '{name_or_path}': not a file and not a built-in source"
        f" (built-in: {', '.join(builtins) or 'none'})"
    )
