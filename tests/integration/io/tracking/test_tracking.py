"""tracking.py against a real SQLite MLflow store in a temporary workspace."""

from __future__ import annotations

import json
import math
import shutil
import socket
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from churnkit.errors import ChurnkitError
from churnkit.flows.promote import promote_version, rollback
from churnkit.io import tracking

PROBLEM = "churn_test"


def _data(seed: int = 0, n: int = 300) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    # integer columns on purpose: log_model must still produce a float64 signature
    X = pd.DataFrame(
        {
            "days_since_last": rng.integers(0, 60, n),
            "sessions_30d": rng.integers(0, 40, n),
            "revenue_90d": rng.gamma(2.0, 20.0, n),
        }
    )
    logit = 0.08 * X["days_since_last"] - 0.1 * X["sessions_30d"] + rng.normal(0, 1, n)
    return X, (logit > 0).astype(int)


def _fit(C: float = 1.0, seed: int = 0):
    X, y = _data(seed)
    return make_pipeline(StandardScaler(), LogisticRegression(C=C)).fit(X.astype(float), y), X


MANIFEST = {
    "features": [
        {"name": "days_since_last", "description": "days since last activity", "unit": "days"},
        {"name": "sessions_30d", "description": "sessions in the last 30 days", "unit": "count"},
        {"name": "revenue_90d", "description": "revenue in the last 90 days", "unit": "EUR"},
    ],
    "problem": {"name": PROBLEM, "kind": "churn", "horizon_days": 7},
    "fingerprint": "abc123",
}


@pytest.fixture(scope="session")
def empty_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite file with its schema: creating one costs ~6 s of migrations."""
    folder = tmp_path_factory.mktemp("mlflow-template")
    tracking.use_store(f"sqlite:///{folder}/mlflow.db")
    return folder / "mlflow.db"


@pytest.fixture()
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_db: Path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)  # anything written to ./mlruns would show up here
    ws = tmp_path / "ws"
    ws.mkdir()
    shutil.copyfile(empty_db, ws / "mlflow.db")
    client = tracking.open_store(ws)
    return ws, client


def _train_and_register(C: float = 1.0, auc: float = 0.8, seed: int = 0) -> tuple[int, object]:
    model, X = _fit(C, seed)
    with tracking.training_run(PROBLEM, run_name=f"C={C}", tags={"seed": seed}) as run:
        tracking.log_params({"model": {"C": C, "solver": "lbfgs"}, "features": ["a", "b"]})
        tracking.log_metrics({"roc_auc": auc, "brier": 0.1}, prefix="test")
        tracking.log_dataset_info("abc123", "2024-01-01", "2024-06-30", rows=len(X))
        tracking.log_model(model, name="model", manifest=MANIFEST, X_example=X)
    version = tracking.register(run.run_id, PROBLEM, "model", metrics={"roc_auc": auc})
    return version, model


def test_store_resolution_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    ws = tmp_path / "ws"
    default = tracking.tracking_uri(ws, None, None)
    assert default == f"sqlite:///{ws.resolve()}/mlflow.db"
    assert tracking.tracking_uri(ws, "sqlite:///c.db", None) == "sqlite:///c.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://env:5000")
    assert tracking.tracking_uri(ws, "sqlite:///c.db", None) == "http://env:5000"
    assert tracking.tracking_uri(ws, "sqlite:///c.db", "http://cli:1") == "http://cli:1"
    assert tracking.artifact_root_for(default, ws) == ws.resolve() / "mlartifacts"
    assert tracking.artifact_root_for("http://x:5000", ws) is None


def test_log_register_load_round_trip(store, tmp_path: Path) -> None:
    ws, client = store
    t0 = time.perf_counter()
    model, X = _fit()
    with tracking.training_run(PROBLEM, run_name="trial-parent") as run:
        flat = tracking.log_params(
            {"model": {"C": 1.0, "nested": {"depth": 3}}, "long": "x" * 10_000, "none": None}
        )
        skipped = tracking.log_metrics(
            {"roc_auc": 0.8, "bad": float("nan"), "inf": math.inf}, prefix="test"
        )
        with tracking.child_run("trial-0") as child:
            tracking.log_metrics({"cv_auc": 0.7})
        tracking.log_json({"when": pd.Timestamp("2024-01-01"), "arr": np.arange(3)}, "cfg.json")
        tracking.log_dataset_info({"rows": 300, "sha": "abc"}, "2024-01-01", "2024-06-30", rows=300)
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots()
        ax.plot([0, 1], [0, 1])
        tracking.log_figure(fig, "plots/roc.png")
        plt.close(fig)
        ref = tracking.log_model(model, name="model", manifest=MANIFEST, X_example=X)
    version = tracking.register(run.run_id, PROBLEM, "model", metrics={"roc_auc": 0.8})
    loaded = tracking.load_model(PROBLEM, alias="challenger")
    elapsed = time.perf_counter() - t0
    print(f"log+register+load round trip: {elapsed:.2f} s")

    assert flat["model.nested.depth"] == "3"
    assert len(flat["long"]) <= tracking.MAX_PARAM_VALUE
    assert sorted(skipped) == ["test.bad", "test.inf"]
    data = client.get_run(run.run_id).data
    assert data.metrics == {"test.roc_auc": 0.8}
    assert data.params["model.C"] == "1.0"
    assert data.tags["churnkit.skipped_metrics"] == "test.bad, test.inf"
    assert data.tags["churnkit.data.fingerprint"].startswith("{")
    assert client.get_run(child.run_id).data.tags["mlflow.parentRunId"] == run.run_id
    names = {a.path for a in client.list_artifacts(run.run_id)}
    assert {"cfg.json", "plots", "data"} <= names

    # artefacts live in the workspace, not in ./mlruns of the working directory
    assert (ws / "mlartifacts").is_dir()
    assert not (tmp_path / "mlruns").exists()
    assert ref.model_id

    assert version == 1
    assert loaded.version == 1 and loaded.run_id == run.run_id
    assert tracking.aliases(PROBLEM) == {"challenger": 1}
    assert loaded.manifest == MANIFEST
    assert loaded.metrics == {"roc_auc": 0.8}
    np.testing.assert_allclose(
        loaded.model.predict_proba(X.astype(float)), model.predict_proba(X.astype(float))
    )
    mv = client.get_model_version("churnkit-" + PROBLEM, "1")
    assert mv.tags["metric.roc_auc"] == "0.8"


def test_signature_is_float64(store) -> None:
    _train_and_register()
    import mlflow

    info = mlflow.models.get_model_info(f"models:/churnkit-{PROBLEM}/1")
    types = {spec.type.name for spec in info.signature.inputs.inputs}
    assert types == {"double"}


def test_load_is_pinned_to_the_version_resolved(store) -> None:
    v1, m1 = _train_and_register(C=1.0, auc=0.7, seed=1)
    promote_version(PROBLEM, None, "roc_auc", "maximize")
    loaded = tracking.load_model(PROBLEM)  # champion -> v1
    v2, _ = _train_and_register(C=0.01, auc=0.9, seed=2)
    promote_version(PROBLEM, None, "roc_auc", "maximize")
    assert tracking.aliases(PROBLEM)["champion"] == v2
    assert loaded.version == v1  # what was loaded stays v1
    X, _ = _data(1)
    np.testing.assert_allclose(
        loaded.model.predict_proba(X.astype(float)), m1.predict_proba(X.astype(float))
    )
    assert tracking.load_model(PROBLEM, version=v1).version == v1


def test_load_errors(store) -> None:
    with pytest.raises(ChurnkitError, match="no registered model churnkit-churn_test"):
        tracking.load_model(PROBLEM)
    _train_and_register()
    with pytest.raises(ChurnkitError) as err:
        tracking.load_model(PROBLEM)
    assert str(err.value) == (
        f"no champion for {PROBLEM}; run churnkit promote --problem {PROBLEM}"
    )
    with pytest.raises(ChurnkitError, match=r"no version 7 .*versions: 1\)"):
        tracking.load_model(PROBLEM, version=7)
    with pytest.raises(ChurnkitError, match="alias 'staging'"):
        tracking.load_model(PROBLEM, alias="staging")


def test_promotion_flow_with_history(store) -> None:
    _, client = store
    scores = {1: {"roc_auc": 0.70}, 2: {"roc_auc": 0.75}, 3: {"roc_auc": 0.72}}

    v1, _ = _train_and_register(auc=0.70)
    first = promote_version(PROBLEM, scores, "roc_auc", "maximize")
    assert first.decision.promote and "no champion yet" in first.decision.reason
    assert tracking.aliases(PROBLEM)["champion"] == v1

    v2, _ = _train_and_register(auc=0.75)
    beats = promote_version(PROBLEM, scores, "roc_auc", "maximize")
    assert beats.decision.promote and beats.previous_champion == v1 and beats.champion == v2

    v3, _ = _train_and_register(auc=0.72)
    loses = promote_version(PROBLEM, scores, "roc_auc", "maximize")
    assert not loses.decision.promote and loses.champion == v2
    last = client.get_model_version(f"churnkit-{PROBLEM}", str(v3)).tags["churnkit.last_decision"]
    assert last.startswith("promote rejected")
    assert tracking.aliases(PROBLEM) == {"champion": v2, "challenger": v3}

    forced = promote_version(PROBLEM, scores, "roc_auc", "maximize", force=True)
    assert forced.decision.promote and forced.decision.reason.startswith("forced")
    assert tracking.aliases(PROBLEM)["champion"] == v3

    assert rollback(PROBLEM) == v2  # v3 replaced v2
    assert rollback(PROBLEM) == v1  # v2 replaced v1: walks back, not forth
    with pytest.raises(ChurnkitError, match="no earlier champion"):
        rollback(PROBLEM)
    assert rollback(PROBLEM, version=3) == v3

    history = tracking.promotion_history(PROBLEM)
    assert [(h["action"], h["promoted"], h["from"], h["to"]) for h in history] == [
        ("promote", True, None, 1),
        ("promote", True, 1, 2),
        ("promote", False, 2, 2),
        ("promote", True, 2, 3),
        ("rollback", True, 3, 2),
        ("rollback", True, 2, 1),
        ("rollback", True, 1, 3),
    ]
    assert history[3]["forced"] is True
    assert history[1]["challenger_metrics"] == {"roc_auc": 0.75}
    assert all(h["by"] and h["at"] for h in history)

    name = f"churnkit-{PROBLEM}"
    assert "replaced by v3" in client.get_model_version(name, "1").tags["churnkit.retired"]
    assert client.get_model_version(name, "3").tags["churnkit.champion_since"]
    assert (
        client.get_model_version(name, "3")
        .tags["churnkit.last_decision"]
        .startswith("rollback promoted")
    )

    runs = client.search_runs([tracking.experiment_id(PROBLEM)], "tags.`churnkit.kind` = 'promote'")
    assert len(runs) == 4
    art = client.download_artifacts(beats.run_id, "promotion.json")
    payload = json.loads(Path(art).read_text())
    assert payload["table"][0]["delta"] == pytest.approx(0.05)


def test_promote_with_evaluate_scores_both_on_same_rows(store) -> None:
    _train_and_register(C=1.0, auc=0.99, seed=1)
    promote_version(PROBLEM, None, "roc_auc", "maximize")
    _train_and_register(C=1.0, auc=0.10, seed=2)  # registered metrics say worse...
    X, y = _data(3)
    seen: dict[int, float] = {}

    def evaluate(loaded: tracking.LoadedModel) -> dict[str, float]:
        from sklearn.metrics import log_loss

        assert loaded.manifest == MANIFEST
        p = loaded.model.predict_proba(X.astype(float))[:, 1]
        seen[loaded.version] = log_loss(y, p)
        return {"log_loss": seen[loaded.version]}

    result = promote_version(PROBLEM, evaluate, "log_loss", "minimize", min_delta=1.0)
    assert sorted(seen) == [1, 2]
    assert not result.decision.promote  # two near-identical fits: no gain > 1.0
    assert "does not beat" in result.decision.reason
    assert [r["metric"] for r in result.decision.table] == ["log_loss"]
    # the table holds each version's own score on those rows, and the rule follows them
    row = result.decision.table[0]
    assert row["challenger"] == seen[2] and row["champion"] == seen[1] and seen[1] != seen[2]
    again = promote_version(PROBLEM, evaluate, "log_loss", "minimize", min_delta=0.0)
    assert again.decision.promote == (seen[2] < seen[1])
    assert tracking.aliases(PROBLEM)["champion"] == (2 if seen[2] < seen[1] else 1)


def test_lightgbm_classifier_loads_back_with_probabilities(store) -> None:
    lightgbm = pytest.importorskip("lightgbm")
    X, y = _data(4)
    model = lightgbm.LGBMClassifier(n_estimators=20, verbose=-1).fit(X.astype(float), y)
    with tracking.training_run(PROBLEM) as run:
        tracking.log_model(model, manifest=MANIFEST, X_example=X)
    version = tracking.register(run.run_id, PROBLEM)
    loaded = tracking.load_model(PROBLEM, alias="challenger")
    assert loaded.version == version
    np.testing.assert_allclose(
        loaded.model.predict_proba(X.astype(float)), model.predict_proba(X.astype(float))
    )
    import mlflow

    reqs = Path(mlflow.artifacts.download_artifacts(f"{loaded.uri}/requirements.txt")).read_text()
    assert "lightgbm==" in reqs and "scikit-learn==" in reqs


def test_child_runs_from_worker_threads(store) -> None:
    from concurrent.futures import ThreadPoolExecutor

    _, client = store

    def trial(i: int) -> str:
        with tracking.child_run(f"trial-{i}") as child:
            tracking.log_metrics({"cv_auc": 0.5 + i / 100})
            return child.run_id

    with tracking.training_run(PROBLEM, "tune") as parent, ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(trial, range(6)))
    for run_id in ids:
        run = client.get_run(run_id)
        assert run.data.tags["mlflow.parentRunId"] == parent.run_id
        assert run.info.status == "FINISHED" and "cv_auc" in run.data.metrics
    with pytest.raises(ChurnkitError, match="enclosing training_run"), tracking.child_run("x"):
        pass


def test_promote_without_challenger(store) -> None:
    with pytest.raises(ChurnkitError, match="no registered model"):
        promote_version(PROBLEM, None, "roc_auc", "maximize")
    _train_and_register()
    promote_version(PROBLEM, None, "roc_auc", "maximize")
    again = promote_version(PROBLEM, None, "roc_auc", "maximize")
    assert not again.decision.promote and "already the champion" in again.decision.reason


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("http://127.0.0.1:{port}", "connection refused"),
        ("sqlite:///{tmp}/missing/dir/mlflow.db", "does not exist"),
        ("bogus://nowhere", "unsupported URI scheme"),
        ("file://{tmp}/mlruns", "no longer accepts file stores"),
    ],
)
def test_bad_tracking_uri_fails_fast_in_one_line(tmp_path: Path, uri: str, says: str) -> None:
    uri = uri.format(port=_closed_port(), tmp=tmp_path)
    t0 = time.perf_counter()
    with pytest.raises(ChurnkitError) as err:
        tracking.use_store(uri)
    assert time.perf_counter() - t0 < 5
    message = str(err.value)
    assert uri in message and says in message and "\n" not in message


def test_silent_server_times_out_quickly() -> None:
    """A server that accepts connections but never answers must not hang the CLI."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        uri = f"http://127.0.0.1:{listener.getsockname()[1]}"
        t0 = time.perf_counter()
        with pytest.raises(ChurnkitError, match="no answer"):
            tracking.use_store(uri)
        assert time.perf_counter() - t0 < 15


def test_password_is_not_shown() -> None:
    assert tracking.redact("postgresql://me:secret@db:5432/x") == "postgresql://me:***@db:5432/x"
    assert tracking.redact("http://h:5000") == "http://h:5000"


KILLED_TRAINING = """
import os, signal, sys
import mlflow
from churnkit.io import tracking
from sklearn.linear_model import LogisticRegression
import numpy as np, pandas as pd

tracking.open_store(sys.argv[1])
X = pd.DataFrame({"a": np.arange(60.0), "b": np.arange(60.0) % 7})
model = LogisticRegression().fit(X, (X["a"] > 30).astype(int))
with tracking.training_run(sys.argv[2]) as run:
    ref = tracking.log_model(model, name="model", X_example=X)
    # registered, but killed before the challenger alias moves to it
    tracking.client().create_model_version(f"churnkit-{sys.argv[2]}", source=f"models:/{ref.model_id}",
                                           run_id=run.run_id, model_id=ref.model_id)
    mlflow.initialize_logged_model(name="half")  # a model whose upload never finished
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_training_is_marked_and_promote_names_its_version(store, tmp_path: Path) -> None:
    import subprocess
    import sys

    ws, client = store
    _train_and_register(auc=0.7)
    script = tmp_path / "killed.py"
    script.write_text(KILLED_TRAINING)
    proc = subprocess.run([sys.executable, str(script), str(ws), PROBLEM], check=False, capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    exp = client.get_experiment_by_name(f"churnkit-{PROBLEM}").experiment_id
    assert len(client.search_runs([exp], "attributes.status = 'RUNNING'")) == 1

    with tracking.training_run(PROBLEM, run_name="live"):  # a live run is never touched
        assert tracking.mark_abandoned(PROBLEM) == {"runs": 1, "models": 1}
        assert tracking.mark_abandoned(PROBLEM) == {"runs": 0, "models": 0}
    statuses = sorted(r.info.status for r in client.search_runs([exp]))
    assert statuses == ["FINISHED", "FINISHED", "KILLED"]
    models = {m.name: str(m.status) for m in client.search_logged_models([exp])}
    assert "FAILED" in models["half"] and "READY" in models["model"]

    assert tracking.aliases(PROBLEM) == {"challenger": 1}
    with pytest.raises(ChurnkitError) as err:  # not silently judging v1 instead
        promote_version(PROBLEM)
    assert "version 2" in str(err.value) and "--version 2" in str(err.value)
    result = promote_version(PROBLEM, {2: {"roc_auc": 0.9}}, version=2)
    assert result.decision.promote and tracking.aliases(PROBLEM)["champion"] == 2


def test_a_copied_workspace_uses_its_own_models_once_the_original_is_gone(store, tmp_path: Path) -> None:
    ws, client = store
    version, model = _train_and_register(auc=0.7)
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(ws, copy)
    hidden = ws.rename(tmp_path / "hidden")  # the original is gone (archived, deleted, moved)
    before = sorted(str(p) for p in hidden.rglob("*"))

    client = tracking.open_store(copy)
    loaded = tracking.load_model(PROBLEM, alias="challenger")
    X, _ = _data(0)
    np.testing.assert_allclose(loaded.model.predict_proba(X.astype(float)), model.predict_proba(X.astype(float)))
    assert loaded.manifest == MANIFEST
    version2, _ = _train_and_register(C=0.5, auc=0.75)  # training in the copy writes into the copy
    assert version2 == version + 1
    here = copy.resolve().as_uri()
    exp = client.get_experiment_by_name(f"churnkit-{PROBLEM}")
    assert exp.artifact_location.startswith(here)
    assert all(r.info.artifact_uri.startswith(here) for r in client.search_runs([exp.experiment_id]))
    assert tracking.load_model(PROBLEM, version=2).version == 2
    assert sorted(str(p) for p in hidden.rglob("*")) == before  # nothing written to the original


def test_a_copy_opened_in_the_same_process_as_its_original_writes_into_itself(store, tmp_path: Path) -> None:
    """Runs of a copied workspace keep their ids: after reading the original's run, an
    artefact logged to the same run of the copy must land in the copy (MLflow caches the
    artefact location per run id)."""
    ws, _ = store
    _train_and_register(auc=0.7)
    run_id = tracking.load_model(PROBLEM, alias="challenger").run_id
    assert tracking.list_artifacts(run_id, "")  # the original's location is now cached
    copy = tmp_path / "copy"
    shutil.copytree(ws, copy)
    before = sorted(str(p) for p in ws.rglob("*"))
    tracking.open_store(copy)
    note = tmp_path / "note.html"
    note.write_text("<p>card</p>")
    tracking.log_artifact_to(run_id, note, "model_card")
    assert list(copy.rglob("model_card/note.html")) and sorted(str(p) for p in ws.rglob("*")) == before
