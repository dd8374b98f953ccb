"""Simulator throughput: users x days -> events, truth and files, with time and peak memory.

Baseline measured in the same run: drawing the same number of raw Poisson counts with
NumPy (the floor any vectorised simulator pays), so the ratio says how much the
behaviour model, event expansion, truth and Parquet writing add.

    python bench/bench_simulate.py --users 100000 --days 365
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from machine import cpu_model  # bench/machine.py (the script's own folder is on sys.path)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from churnkit.config import SimulateSettings
from churnkit.flows.simulate import write_simulation
from churnkit.simulate import simulate


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def baseline(users: int, days: int, seed: int) -> float:
    """One Poisson draw per user-day and event type: the unavoidable random-number cost."""
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    rate = rng.random(users) * 0.3
    for _ in range(days):
        for _k in range(4):
            rng.poisson(rate)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-observable", action="store_true", help="skip the observer (the *_observable truth)")
    args = ap.parse_args()

    base = baseline(args.users, args.days, args.seed)
    # truth every 28 days, as the figures in bench/RESULTS.md were measured (the settings' default is 7)
    params = SimulateSettings(users=args.users, days=args.days, seed=args.seed, cutoff_step_days=28,
                              observable=not args.no_observable)
    t0 = time.perf_counter()
    result = simulate(params)
    t_sim = time.perf_counter() - t0
    out = Path(tempfile.mkdtemp(prefix="churnkit-bench-sim-"))
    try:
        t1 = time.perf_counter()
        paths = write_simulation(result, out)
        t_write = time.perf_counter() - t1
        size = sum(p.stat().st_size for p in paths.values()) / 2**20
    finally:
        shutil.rmtree(out, ignore_errors=True)
    total = t_sim + t_write
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    print(f"date: {dt.date.today()}  machine: {os.cpu_count()} cores, {mem:.0f} GiB, {cpu_model()}")
    flag = " --no-observable" if args.no_observable else ""
    print(f"command: python bench/bench_simulate.py --users {args.users} --days {args.days} --seed {args.seed}{flag}")
    print(f"users={args.users:,} days={args.days} events={result.n_events:,} truth_rows={len(result.truth):,}")
    print(f"simulate+truth {t_sim:.1f}s, write {t_write:.1f}s, total {total:.1f}s, output {size:.0f} MiB")
    print(f"events/s {result.n_events / total:,.0f}; peak RSS {peak_rss_mib():,.0f} MiB")
    print(f"baseline (bare Poisson draws, same user-days) {base:.1f}s; ratio total/baseline {total / base:.1f}x")


if __name__ == "__main__":
    main()
