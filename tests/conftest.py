"""Shared fixtures: repository paths and the real data shipped beside the repo."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def cdnow_dir() -> Path:
    path = SHARED_DATA / "cdnow"
    if not path.is_dir():
        pytest.skip(f"real CDNOW data not found at {path} (shared/ sits beside the repo)")
    return path


@pytest.fixture(scope="session")
def hillstrom_dir() -> Path:
    path = SHARED_DATA / "hillstrom"
    if not path.is_dir():
        pytest.skip(f"real Hillstrom data not found at {path} (shared/ sits beside the repo)")
    return path


@pytest.fixture(scope="session")
def spark_backend():
    """One local Spark session (through Ibis) for the whole test run: starting one costs ~5 s."""
    pytest.importorskip("pyspark", reason="the spark extra is not installed (pip install '.[spark]')")
    from churnkit.io.warehouse import spark_connection

    con = spark_connection("local[2]", {"spark.sql.shuffle.partitions": "4"})
    con._session.sparkContext.setLogLevel("ERROR")
    yield con
    con._session.stop()
