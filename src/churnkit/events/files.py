"""Which files an ingest reads, and in which format: folders expanded, formats inferred.

Everything here fails early with a one-line :class:`InputFileError`, before any row is read,
so a typo in a path never costs a long run or leaves a half-written workspace.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from churnkit.errors import InputFileError

Format = Literal["csv", "parquet", "jsonl"]

EXTENSION_FORMATS: dict[str, Format] = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
COMPRESSED_SUFFIXES = (".gz",)
"""Text formats may be gzip-compressed (``events.csv.gz``); Parquet compresses internally."""


@dataclass(frozen=True)
class InputFile:
    path: Path
    format: Format
    index: int
    """Position in the ingest's file order: breaks ties when duplicates keep the first row."""
    compressed: bool = False

    @property
    def name(self) -> str:
        return str(self.path)

    @property
    def is_tsv(self) -> bool:
        return self._base_suffix() == ".tsv"

    def _base_suffix(self) -> str:
        suffixes = [s.lower() for s in self.path.suffixes]
        if suffixes and suffixes[-1] in COMPRESSED_SUFFIXES:
            suffixes = suffixes[:-1]
        return suffixes[-1] if suffixes else ""


def infer_format(
    path: Path, declared: Format | None, *, from_folder: bool = False
) -> tuple[Format, bool]:
    """The file's format and whether it is gzip-compressed; ``declared`` wins over the suffix."""
    suffixes = [s.lower() for s in path.suffixes]
    compressed = bool(suffixes) and suffixes[-1] in COMPRESSED_SUFFIXES
    if compressed:
        suffixes = suffixes[:-1]
    if declared is not None:
        fmt: Format = declared
    else:
        suffix = suffixes[-1] if suffixes else ""
        if suffix not in EXTENSION_FORMATS:
            known = ", ".join(sorted({s.lstrip(".") for s in EXTENSION_FORMATS}))
            hint = (
                "set `pattern` in the source to select the data files, or `format`"
                if from_folder
                else "set `format` in the source config"
            )
            raise InputFileError(
                f"{path}: unknown format (extension '{suffix or '<none>'}'; expected one of {known}; {hint})"
            )
        fmt = EXTENSION_FORMATS[suffix]
    if compressed and fmt == "parquet":
        raise InputFileError(
            f"{path}: gzip-compressed Parquet is not supported (Parquet compresses internally)"
        )
    return fmt, compressed


def expand_inputs(paths: list[Path], pattern: str, declared: Format | None) -> list[InputFile]:
    """Files in ingest order: each argument in turn, a folder as its matching files sorted by name."""
    if not paths:
        raise InputFileError("no input paths given")
    found: list[tuple[Path, bool]] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise InputFileError(f"{path}: no such file or folder")
        if path.is_dir():
            matches = sorted(
                p
                for p in path.glob(pattern)
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not matches:
                raise InputFileError(f"{path}: folder has no files matching pattern '{pattern}'")
            found.extend((m, True) for m in matches)
        elif path.is_file():
            found.append((path, False))
        else:
            raise InputFileError(f"{path}: not a regular file or folder")
    out: list[InputFile] = []
    seen: set[Path] = set()
    for path, from_folder in found:
        key = path.resolve()
        if key in seen:  # the same file named twice would double-count every row
            continue
        seen.add(key)
        fmt, compressed = infer_format(path, declared, from_folder=from_folder)
        out.append(InputFile(path=path, format=fmt, index=len(out), compressed=compressed))
    return out


def base_folder(paths: list[Path]) -> Path:
    """Folder that relative paths in a source config (the users table) are resolved against."""
    first = Path(paths[0])
    return first if first.is_dir() else first.parent
