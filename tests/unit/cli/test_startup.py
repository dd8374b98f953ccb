"""Start-up cost: ``churnkit --help`` and every command's parsing load no heavy library.

Every command pays what ``import churnkit.cli`` and the root callback (which builds the
Project) import, ``churnkit ingest`` of a large file included. MLflow alone took ~3 s of
CPU, SciPy, scikit-learn, LightGBM, Optuna and matplotlib ~2 s more. Each command imports
its flow when it runs; these tests keep a top-level import from bringing the cost back.
Each runs in a fresh interpreter, since this test session has imported everything already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import churnkit

MODELLING = ("mlflow", "scipy", "sklearn", "lightgbm", "shap", "optuna", "matplotlib", "bentoml",
             "statsmodels", "tea_tasting")
"""What ingesting raw logs has no use for."""
HEAVY = (*MODELLING, "pandas", "duckdb", "polars", "ibis")
"""Libraries no command needs before it runs (each costs 0.1 s to seconds of CPU to import)."""


def _loaded_after(code: str, cwd: Path, watch: tuple[str, ...] = HEAVY) -> list[str]:
    """The ``watch`` libraries in ``sys.modules`` after ``code`` ran in a fresh interpreter
    (on the same churnkit source as this test)."""
    probe = f"""
import sys
try:
{chr(10).join('    ' + line for line in code.strip().splitlines())}
except SystemExit:
    pass
import json
print(json.dumps(sorted(m for m in {watch!r} if m in sys.modules)))
"""
    src = str(Path(churnkit.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_the_cli_loads_no_heavy_library(tmp_path):
    assert _loaded_after("import churnkit.cli", tmp_path) == []


@pytest.mark.parametrize("args", [["--help"], ["ingest", "--help"], ["train", "--help"], ["--version"]])
def test_help_loads_no_heavy_library(tmp_path, args):
    """``churnkit CMD --help`` runs the root callback (config, Project) before the help."""
    code = f"from churnkit.cli import app\napp({['--workspace', str(tmp_path / 'ws'), *args]!r})"
    assert _loaded_after(code, tmp_path) == []


def test_the_ingest_command_loads_no_modelling_library(tmp_path):
    """``churnkit ingest`` (benchmarked against a bare DuckDB copy) imports its flow only."""
    code = "from churnkit.cli import app\nimport churnkit.flows.ingest"
    assert _loaded_after(code, tmp_path, MODELLING) == []
