"""tracking.py through a real ``mlflow server`` (HTTP store, proxied artefacts)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from churnkit import tracking

pytestmark = pytest.mark.slow

PROBLEM = "purchase_server"
START_TIMEOUT_S = 120


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, log_path: Path) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < START_TIMEOUT_S:
        if proc.poll() is not None:
            pytest.fail(f"mlflow server exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as resp:
                if resp.status == 200:
                    return time.perf_counter() - t0
        except OSError:
            time.sleep(0.25)
    pytest.fail(f"mlflow server not healthy after {START_TIMEOUT_S} s:\n{log_path.read_text()}")


def _stop(proc: subprocess.Popen) -> None:
    """Stop the server and the workers it forked (its own process group)."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    log_path = root / "server.log"
    cmd = [
        str(mlflow_bin),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{root}/mlflow.db",
        "--artifacts-destination",
        str(root / "artifacts"),
    ]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            cmd, cwd=root, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        elapsed = _wait_healthy(url, proc, log_path)
        print(f"\nmlflow server healthy after {elapsed:.1f} s")
        yield url
    finally:
        t0 = time.perf_counter()
        _stop(proc)
        print(f"\nmlflow server stopped in {time.perf_counter() - t0:.1f} s")


def test_log_register_load_through_server(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.integers(0, 20, size=(200, 4)), columns=list("abcd"))
    y = (X["a"] + rng.normal(0, 3, 200) > 10).astype(int)
    model = LogisticRegression().fit(X.astype(float), y)
    manifest = {"features": [{"name": c, "description": c, "unit": "count"} for c in X]}

    t0 = time.perf_counter()
    tracking.open_store(tmp_path / "ws", configured=None, override=server)
    assert tracking.current_uri() == server
    with tracking.training_run(PROBLEM, run_name="server") as run:
        tracking.log_params({"model": {"C": 1.0}})
        tracking.log_metrics({"roc_auc": 0.7}, prefix="test")
        tracking.log_model(model, name="model", manifest=manifest, X_example=X)
    version = tracking.register(run.run_id, PROBLEM, "model", metrics={"roc_auc": 0.7})
    first = tracking.promote(PROBLEM, None, "roc_auc", "maximize")
    loaded = tracking.load_model(PROBLEM)
    print(f"log+register+promote+load via server: {time.perf_counter() - t0:.2f} s")

    assert first.decision.promote and loaded.version == version
    assert loaded.manifest == manifest
    np.testing.assert_allclose(
        loaded.model.predict_proba(X.astype(float)), model.predict_proba(X.astype(float))
    )
    assert tracking.promotion_history(PROBLEM)[-1]["to"] == version
    # artefacts went through the server's proxy, not into the client's working directory
    assert not (tmp_path / "mlruns").exists()
    assert not (tmp_path / "mlartifacts").exists()
