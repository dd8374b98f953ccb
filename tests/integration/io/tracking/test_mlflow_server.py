"""io.tracking through a real ``mlflow server`` (HTTP store, proxied artefacts); the server
is the ``mlflow_server`` fixture (tests/integration/conftest.py)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from churnkit.flows.promote import promote_version
from churnkit.io import tracking

pytestmark = pytest.mark.slow

PROBLEM = "purchase_server"


def test_log_register_load_through_server(
    mlflow_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = mlflow_server
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
    first = promote_version(PROBLEM, None, "roc_auc", "maximize")
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
