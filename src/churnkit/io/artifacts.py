"""Writing artefacts atomically: Parquet with its JSON beside it, lists as CSV, XLSX or Parquet.

Everything is written into a staging folder next to its destination and moved into place
only once complete (:func:`publish`), so a failure or Ctrl-C never leaves a half-written
file where a reader would find it.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from churnkit.errors import ChurnkitError
from churnkit.io.workspace import STAGING_PREFIX

LIST_FORMATS = ("csv", "xlsx", "parquet")


@contextmanager
def staging_dir(parent: Path) -> Iterator[Path]:
    """A scratch folder beside the final outputs; removed on exit whatever happens."""
    parent.mkdir(parents=True, exist_ok=True)
    path = parent / f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}"
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


@contextmanager
def publish(targets: Mapping[str, Path], parent: Path | None = None) -> Iterator[dict[str, Path]]:
    """Staging paths for named targets, moved onto them when the block succeeds.

    ``with publish({"data": out, "meta": meta}) as tmp: write(tmp["data"]) ...``; nothing
    reaches a target unless every write in the block finished.
    """
    first = next(iter(targets.values()))
    with staging_dir(Path(parent) if parent is not None else Path(first).parent) as tmp:
        staged = {name: tmp / f"{name}{Path(path).suffix}" for name, path in targets.items()}
        yield staged
        for name, path in targets.items():
            replace_path(staged[name], Path(path))


def to_json(obj: Any) -> str:
    """JSON for records of runs: dates, paths, numpy values and pydantic models allowed."""
    return json.dumps(obj, indent=2, default=_json_default)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "model_dump"):  # pydantic
        return obj.model_dump(mode="json")
    if hasattr(obj, "isoformat"):  # dates and timestamps
        return obj.isoformat()
    if hasattr(obj, "tolist"):  # numpy scalars and arrays
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    return str(obj)


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, compression="zstd")


def save_parquet(df: pd.DataFrame, path: Path) -> Path:
    """``df`` at ``path`` (folders made), all or nothing: a reader never sees half a file."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with publish({"data": Path(path)}) as tmp:
        write_parquet(df, tmp["data"])
    return Path(path)


def write_table_with_meta(df: pd.DataFrame, meta: Any, path: Path, meta_path: Path) -> tuple[Path, Path]:
    """A Parquet table and the JSON that describes it, moved into place together."""
    with publish({"data": Path(path), "meta": Path(meta_path)}) as tmp:
        write_parquet(df, tmp["data"])
        tmp["meta"].write_text(meta if isinstance(meta, str) else to_json(meta))
    return Path(path), Path(meta_path)


def read_json(path: Path, what: str) -> Any:
    if not Path(path).exists():
        raise ChurnkitError(f"no {what} at {path}")
    return json.loads(Path(path).read_text())


# --------------------------------------------------------------------------- lists


def list_format(fmt: str | None, out: Path | None) -> str:
    """The format asked for, else the output's extension, else CSV."""
    chosen = (fmt or (Path(out).suffix.lstrip(".") if out else "") or "csv").lower()
    if chosen not in LIST_FORMATS:
        raise ChurnkitError(f"unknown list format '{chosen}': use csv, xlsx or parquet")
    return chosen


def write_list(df: pd.DataFrame, path: Path, fmt: str) -> Path:
    """A list for people to open: CSV, XLSX or Parquet, written atomically."""
    fmt = list_format(fmt, None)
    path = Path(path)
    with publish({"list": path}) as tmp:
        target = tmp["list"]
        if fmt == "csv":
            df.to_csv(target, index=False, float_format="%.6g")
        elif fmt == "parquet":
            df.to_parquet(target, index=False)
        else:
            write_xlsx(df, target)
    return path


HEADER_FILL = "1F4E78"
HEADER_FONT = "FFFFFF"


def write_xlsx(df: pd.DataFrame, path: Path, sheet: str = "list") -> None:
    """One sheet: bold white header on dark blue, first row frozen, filter, sensible widths."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    ws = wb.active
    ws.title = sheet
    ws.append([str(c) for c in df.columns])
    for row in df.itertuples(index=False):
        ws.append([_cell(v) for v in row])
    bold = Font(bold=True, color=HEADER_FONT)
    fill = PatternFill("solid", start_color=HEADER_FILL, end_color=HEADER_FILL)
    for cell in ws[1]:
        cell.font, cell.fill = bold, fill
    ws.freeze_panes = "A2"
    if len(df.columns):
        ws.auto_filter.ref = f"A1:{get_column_letter(len(df.columns))}{len(df) + 1}"
    for j, col in enumerate(df.columns, 1):
        sample = [str(col)] + [str(v) for v in df[col].head(200).tolist()]
        ws.column_dimensions[get_column_letter(j)].width = min(60, max(8, max(len(s) for s in sample) + 2))
        if pd.api.types.is_float_dtype(df[col]):
            for (cell,) in ws.iter_rows(min_row=2, min_col=j, max_col=j):
                cell.number_format = "0.000" if "probability" in str(col) else "#,##0.00"
    wb.save(path)


def _cell(v: Any) -> Any:
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime().replace(tzinfo=None)
    return v
