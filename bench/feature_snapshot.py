"""Write the feature frames of fixed inputs to Parquet, or compare them with a stored set.

Proof that a change to the feature build changes no value: run ``write`` with the old code
on ``PYTHONPATH`` (e.g. a checkout of main), then ``compare`` with the new code. Unlike
``bench_features.py`` this script does not put its own tree's ``src`` on ``sys.path``: the
code measured is the one ``PYTHONPATH`` names (printed first).

Inputs: the bench's simulated ~1M events (1 and 12 cutoffs, all families, attribute
levels; 12 cutoffs also with a narrower activity rule), a small simulation with the default
problem grid, and the real CDNOW master and Complete Journey logs (ingested as a user
would).

    PYTHONPATH=/work/main/src .venv/bin/python bench/feature_snapshot.py write /tmp/feat-before
    PYTHONPATH=src .venv/bin/python bench/feature_snapshot.py compare /tmp/feat-before
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data"
"""The real data sets: ``shared/`` sits beside the repository."""
SIM = HERE / "out" / "features" / "sim_7000"
STEP_DAYS = 30


def _frame(events, users, cutoffs, *, include=None, families=None, levels=True) -> pd.DataFrame:
    from churnkit.config import ActivityEvents, FeatureSelection
    from churnkit.features.build import discover_levels, feature_frame
    from churnkit.features.context import cutoff_table

    sel = FeatureSelection() if families is None else FeatureSelection(families=families)
    act = ActivityEvents() if include is None else ActivityEvents(include=include)
    ff = feature_frame(events, cutoff_table(cutoffs), users, selection=sel, activity=act,
                       attribute_levels=discover_levels(users) if (levels and users is not None) else None)
    return ff.table.order_by(["cutoff", "user_id"]).to_pandas()


def _sim_inputs(con):
    from churnkit.io.warehouse import contract_events

    ev = contract_events(con.read_parquet(str(SIM / "events.parquet")))
    us = con.read_parquet(str(SIM / "users.parquet"))
    us = us.mutate(signup_ts=us.signup_ts.cast("timestamp('UTC')"))
    end = dt.date.fromisoformat(json.loads((SIM / "simulation.json").read_text())["period"]["end_exclusive"])
    return ev, us, end


def cases() -> Iterator[tuple[str, Callable[[], pd.DataFrame]]]:
    from churnkit.io.warehouse import duckdb_connection

    def grid(end: dt.date, n: int) -> list[dt.date]:
        return sorted(end - dt.timedelta(days=STEP_DAYS * k) for k in range(n))

    def sim(n: int, include=None):
        def run():
            con = duckdb_connection(memory_limit="3GB", threads=2)
            ev, us, end = _sim_inputs(con)
            return _frame(ev, us, grid(end, n), include=include)
        return run

    if (SIM / "simulation.json").exists():
        yield "sim1m_1", sim(1)
        yield "sim1m_12", sim(12)
        yield "sim1m_12_sessions_purchases", sim(12, include=["session", "purchase"])

    def small():
        from churnkit.config import SimulateSettings
        from churnkit.flows.simulate import write_simulation
        from churnkit.simulate import simulate

        d = Path(tempfile.mkdtemp()) / "small"
        write_simulation(simulate(SimulateSettings(users=300, days=150, seed=21, horizons=[7])), d)
        con = duckdb_connection()
        from churnkit.io.warehouse import contract_events

        ev = contract_events(con.read_parquet(str(d / "events.parquet")))
        us = con.read_parquet(str(d / "users.parquet"))
        us = us.mutate(signup_ts=us.signup_ts.cast("timestamp('UTC')"))
        # daily cutoffs around the start of the log: users with one day, none, gaps of one
        return _frame(ev, us, [dt.date(2024, 1, 1) + dt.timedelta(days=k) for k in range(0, 150, 7)])

    yield "small_weekly", small

    def cdnow():
        from churnkit.config import IngestSettings, load_source
        from churnkit.events.ingest import ingest
        from churnkit.io.warehouse import workspace_events
        from churnkit.io.workspace import Workspace

        ws = Workspace(Path(tempfile.mkdtemp()))
        ingest([SHARED / "cdnow" / "CDNOW_master.txt"], load_source("cdnow_master"), ws, as_of=None,
               settings=IngestSettings())
        ev = workspace_events(duckdb_connection(), ws)
        cut = [dt.date(1997, 2, 1) + dt.timedelta(days=STEP_DAYS * k) for k in range(18)]
        return _frame(ev, None, cut)

    def journey():
        from churnkit.flows.ingest import ingest
        from churnkit.flows.project import Project
        from churnkit.io.warehouse import workspace_events, workspace_users
        from churnkit.io.workspace import Workspace

        ws = Workspace(Path(tempfile.mkdtemp()))
        ingest(Project.at(ws), [SHARED / "completejourney" / "transactions_sample.csv"], "completejourney",
               as_of=dt.datetime(2018, 1, 2, tzinfo=dt.UTC))
        con = duckdb_connection()
        ev, us = workspace_events(con, ws), workspace_users(con, ws)
        cut = [dt.date(2017, 2, 1) + dt.timedelta(days=STEP_DAYS * k) for k in range(12)]
        return _frame(ev, us, cut)

    if (SHARED / "cdnow" / "CDNOW_master.txt").exists():
        yield "cdnow_master_18", cdnow
    if (SHARED / "completejourney" / "transactions_sample.csv").exists():
        yield "completejourney_12", journey


def compare_frames(a: pd.DataFrame, b: pd.DataFrame) -> tuple[bool, list[str]]:
    """Same columns, dtypes, keys; every value equal (floats within 1e-9 relative)."""
    lines, ok = [], True
    if list(a.columns) != list(b.columns):
        return False, [f"columns differ: before-only {set(a.columns) - set(b.columns)}, after-only "
                       + f"{set(b.columns) - set(a.columns)}, order same: {sorted(a.columns) == sorted(b.columns)}"]
    if len(a) != len(b):
        return False, [f"rows differ: {len(a)} vs {len(b)}"]
    worst_abs, worst_rel, n_exact = 0.0, 0.0, 0
    for c in a.columns:
        if a[c].dtype != b[c].dtype:
            ok = False
            lines.append(f"  {c}: dtype {a[c].dtype} vs {b[c].dtype}")
            continue
        if a[c].dtype.kind != "f":
            same = a[c].equals(b[c])
            ok &= same
            if not same:
                lines.append(f"  {c}: values differ")
            continue
        x, y = a[c].to_numpy(), b[c].to_numpy()
        nan_same = bool((np.isnan(x) == np.isnan(y)).all())
        m = ~np.isnan(x) & ~np.isnan(y)
        d = np.abs(x[m] - y[m])
        mabs = float(d.max()) if d.size else 0.0
        rel = d / np.maximum(np.abs(x[m]), 1e-300)
        mrel = float(rel.max()) if rel.size else 0.0
        worst_abs, worst_rel = max(worst_abs, mabs), max(worst_rel, mrel)
        n_exact += int(mabs == 0.0 and nan_same)
        good = nan_same and mrel <= 1e-9
        ok &= good
        if not good or mabs > 0:
            lines.append(f"  {c}: nulls same {nan_same}, max abs diff {mabs:.3g}, max rel diff {mrel:.3g}")
    lines.insert(0, f"  {len(a):,} rows x {len(a.columns)} cols; float columns bit-identical: {n_exact}; "
                    f"max abs diff {worst_abs:.3g}, max rel diff {worst_rel:.3g}")
    return ok, lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=["write", "compare"])
    ap.add_argument("dir", type=Path)
    ap.add_argument("--only", nargs="*", help="case names to run (default: all)")
    args = ap.parse_args()
    import churnkit

    print(f"churnkit from {Path(churnkit.__file__).parent}", flush=True)
    args.dir.mkdir(parents=True, exist_ok=True)
    all_ok = True
    for name, make in cases():
        if args.only and name not in args.only:
            continue
        df = make()
        path = args.dir / f"{name}.parquet"
        if args.action == "write":
            df.to_parquet(path)
            print(f"{name}: wrote {len(df):,} rows x {len(df.columns)} cols -> {path}", flush=True)
            continue
        ok, lines = compare_frames(pd.read_parquet(path), df)
        all_ok &= ok
        print(f"{name}: {'IDENTICAL' if ok else 'DIFFERENT'}", *lines, sep="\n", flush=True)
    if args.action == "compare":
        print("ALL IDENTICAL" if all_ok else "SOME DIFFER")
        sys.exit(0 if all_ok else 1)


if __name__ == "__main__":
    main()
