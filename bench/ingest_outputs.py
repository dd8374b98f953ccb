"""Record an ingest's outputs and compare two recordings: the proof that a faster ingest
changed nothing a user can see.

A recording (a folder) holds, from one workspace's current data version:

- ``events/<partition>.parquet``: every events file's rows in stored order (partition name
  from its folder, e.g. ``month=2024-01``);
- ``quarantine.parquet``: the quarantine as written (table, file, line, reason, detail, raw);
- ``row_keys.parquet``: the stored rows' keys (what a later append deduplicates against);
- ``users.parquet`` / ``assignments.parquet`` when the ingest wrote them;
- ``counts.json``: the summary without what differs on every run (paths, timings, times).

``compare`` checks the events row for row in stored order (partition files, then rows), the
quarantine row for row, the tables and the counts; it prints one line per difference.

    python bench/ingest_outputs.py save WORKSPACE DIR
    python bench/ingest_outputs.py compare DIR_BEFORE DIR_AFTER
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

VOLATILE = {"elapsed_s", "timings_s", "at", "events_path", "quarantine_path", "summary_path",
            "users_path", "assignments_path", "carried_from"}
"""Summary keys that differ on every run (paths, clocks): left out of ``counts.json``."""


def _stable(value: object) -> object:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def _data_version(workspace: Path) -> Path:
    data = workspace / "data"
    return data / (data / "CURRENT").read_text().strip()


def save(workspace: Path, out: Path) -> None:
    """Write ``workspace``'s current outputs into ``out`` (replaced if there)."""
    version = _data_version(workspace)
    if out.exists():
        shutil.rmtree(out)
    (out / "events").mkdir(parents=True)
    events = version / "events"
    for f in sorted(events.glob("**/*.parquet")):
        name = "__".join(f.relative_to(events).parts[:-1]) or "all"
        pq.write_table(pq.read_table(f, partitioning=None), out / "events" / f"{name}.parquet")
    ingest = version / "ingest"
    shutil.copyfile(ingest / "quarantine.parquet", out / "quarantine.parquet")
    for table in ("users", "assignments"):
        found = sorted(version.glob(f"**/{table}.parquet"))
        if found:
            shutil.copyfile(found[0], out / f"{table}.parquet")
    keys = sorted((ingest / "row_keys").glob("*.parquet"))
    if keys:
        pq.write_table(pa.concat_tables([pq.read_table(k) for k in keys]), out / "row_keys.parquet")
    summary = json.loads((ingest / "summary.json").read_text())
    (out / "counts.json").write_text(json.dumps(_stable(summary), indent=2, sort_keys=True) + "\n")


def _table_diff(what: str, a: pa.Table, b: pa.Table) -> list[str]:
    if a.schema != b.schema:
        return [f"{what}: schema differs: {a.schema} vs {b.schema}"]
    if a.num_rows != b.num_rows:
        return [f"{what}: {a.num_rows:,} rows before, {b.num_rows:,} after"]
    if a.equals(b):
        return []
    for name in a.column_names:
        ca, cb = a.column(name), b.column(name)
        if not ca.equals(cb):
            la, lb = ca.to_pylist(), cb.to_pylist()
            i = next(i for i, (x, y) in enumerate(zip(la, lb)) if x != y or type(x) is not type(y))
            return [f"{what}: column {name} first differs at row {i}: {la[i]!r} vs {lb[i]!r}"]
    return [f"{what}: differs"]  # pragma: no cover - equal columns make equal tables


def compare(before: Path, after: Path) -> list[str]:
    """Differences between two recordings, one line each (empty: identical)."""
    out: list[str] = []
    names_a = sorted(p.name for p in (before / "events").glob("*.parquet"))
    names_b = sorted(p.name for p in (after / "events").glob("*.parquet"))
    if names_a != names_b:
        out.append(f"events: partitions differ: {names_a} vs {names_b}")
    for name in sorted(set(names_a) & set(names_b)):
        out += _table_diff(f"events/{name}", pq.read_table(before / "events" / name),
                           pq.read_table(after / "events" / name))
    for name in ("quarantine.parquet", "row_keys.parquet", "users.parquet", "assignments.parquet"):
        a, b = before / name, after / name
        if a.exists() != b.exists():
            out.append(f"{name}: present {a.exists()} before, {b.exists()} after")
        elif a.exists():
            out += _table_diff(name, pq.read_table(a), pq.read_table(b))
    ca = json.loads((before / "counts.json").read_text())
    cb = json.loads((after / "counts.json").read_text())
    if ca != cb:
        for key in sorted(set(ca) | set(cb)):
            if ca.get(key) != cb.get(key):
                out.append(f"counts: {key}: {ca.get(key)!r} vs {cb.get(key)!r}")
    return out


def describe(recording: Path) -> str:
    """One line: how many event rows, quarantine rows and partitions a recording holds."""
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in (recording / "events").glob("*.parquet"))
    parts = len(list((recording / "events").glob("*.parquet")))
    q = pq.ParquetFile(recording / "quarantine.parquet").metadata.num_rows
    return f"{rows:,} event rows in {parts} partition files, {q:,} quarantine rows"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("save")
    s.add_argument("workspace", type=Path)
    s.add_argument("out", type=Path)
    c = sub.add_parser("compare")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    args = ap.parse_args()
    if args.cmd == "save":
        save(args.workspace, args.out)
        print(f"saved {args.out}: {describe(args.out)}")
        return
    diffs = compare(args.before, args.after)
    for line in diffs:
        print(line)
    print(f"{'IDENTICAL' if not diffs else 'DIFFERENT'}: {args.after} vs {args.before} ({describe(args.after)})")
    sys.exit(1 if diffs else 0)


if __name__ == "__main__":
    main()
