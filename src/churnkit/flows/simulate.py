"""``churnkit simulate``: a synthetic log with known truth, written as Parquet and JSON."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq

from churnkit.config import SimulateSettings
from churnkit.io.artifacts import publish, to_json
from churnkit.io.workspace import simulation_files
from churnkit.simulate import TABLES, SimulationResult, simulate

Progress = Callable[[float, float | None, str | None], None]


def write_simulation(result: SimulationResult, out_dir: Path, progress: Progress | None = None) -> dict[str, Path]:
    """Every table as ``out_dir/<name>.parquet`` plus ``simulation.json``, moved into place
    together; returns their paths (``meta`` for the JSON)."""
    out_dir = Path(out_dir)
    targets = simulation_files(out_dir, TABLES)
    with publish(targets, out_dir) as tmp:
        for i, name in enumerate(TABLES):
            pq.write_table(result.table(name), tmp[name], compression="zstd")
            if progress is not None:
                progress(i + 1, len(TABLES), name)
        tmp["meta"].write_text(to_json(result.meta()))
    return targets


def simulate_to(settings: SimulateSettings, out_dir: Path, progress: Progress | None = None,
                write_progress: Progress | None = None) -> tuple[SimulationResult, dict[str, Path]]:
    """Simulate and write; the result stays in memory for whoever wants more of it."""
    result = simulate(settings, progress=progress)
    return result, write_simulation(result, out_dir, write_progress)
