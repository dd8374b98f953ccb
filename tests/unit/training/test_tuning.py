"""Tuning: settings and their errors, a real small search, resume, shared storage, pruning."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest

from churnkit.config import (
    DEFAULT_SPACE,
    PrunerSettings,
    SearchParam,
    TuningSettings,
    tuning_settings,
)
from churnkit.datasets.folds import plan_backtest
from churnkit.errors import ChurnkitError, ConfigError
from churnkit.models.classifier import PropensityClassifier
from churnkit.training.tuning import tune

CUTOFFS = [dt.date(2024, 3, 4) + dt.timedelta(days=7 * i) for i in range(6)]
FEATURES = ["f0", "f1", "f2", "f3"]


def training_set(users: int = 150, seed: int = 0) -> pd.DataFrame:
    """A training set in the contract's shape: keys, float64 features, 0/1 label."""
    rng = np.random.default_rng(seed)
    parts = []
    for c in CUTOFFS:
        X = rng.normal(size=(users, len(FEATURES)))
        p = 1 / (1 + np.exp(-(X[:, 0] - 0.5 * X[:, 1] - 1.0)))
        part = pd.DataFrame(X, columns=FEATURES)
        part.insert(0, "cutoff", pd.Timestamp(c, tz="UTC"))
        part.insert(0, "user_id", [f"u{i}" for i in range(users)])
        part["label"] = (rng.random(users) < p).astype("float64")
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return training_set()


@pytest.fixture(scope="module")
def plan():
    return plan_backtest(CUTOFFS, 7, n_folds=2)


class Dummy:
    """Fits nothing; its score is a known function of its parameter (fast, exact)."""

    def __init__(self, params: dict) -> None:
        self.x = params["x"]

    def fit(self, X, y, *, eval_set=None):
        assert eval_set is not None and len(eval_set[0]) == len(eval_set[1])
        self.n_valid_ = len(eval_set[0])
        return self


def dummy_score(est: Dummy, X, y) -> float:
    return (est.x - 0.3) ** 2 + 1e-6 * len(X)


def dummy_settings(**kw) -> TuningSettings:
    space = {"x": SearchParam(type="float", low=0.0, high=1.0)}
    return TuningSettings(metric="dummy", direction="minimize", space=space,
                          pruner=PrunerSettings(type="none"), n_startup_trials=2, **kw)


# --------------------------------------------------------------------------- settings


def test_defaults_per_kind() -> None:
    churn = tuning_settings("churn")
    assert churn.metric == "log_loss" and churn.direction == "minimize"
    assert set(churn.space) == set(DEFAULT_SPACE) and churn.pruner.type == "median"
    assert tuning_settings("purchase", {"metric": "pr_auc"}).direction == "maximize"
    assert tuning_settings("revenue").metric == "rmse"


def test_space_merges_over_defaults() -> None:
    s = tuning_settings("churn", {
        "n_trials": 5,
        "space": {"num_leaves": {"type": "int", "low": 4, "high": 16},
                  "lambda_l2": None,
                  "max_bin": {"type": "categorical", "choices": [63, 255]}},
    })
    assert s.n_trials == 5 and s.space["num_leaves"].high == 16
    assert "lambda_l2" not in s.space and s.space["max_bin"].choices == [63, 255]


@pytest.mark.parametrize(
    ("tuning", "pattern"),
    [
        ({"space": {"num_leafs": {"type": "int", "low": 2, "high": 9}}},
         "tuning.space: unknown LightGBM parameter 'num_leafs' \\(did you mean 'num_leaves'\\?\\)"),
        ({"space": {"num_leaves": {"type": "int", "lo": 2, "high": 9}}},
         "unknown key 'space.num_leaves.lo'"),
        ({"space": {"num_leaves": {"type": "int", "low": 9, "high": 2}}}, "low 9.0 is above high"),
        ({"space": {"eta": {"type": "float", "low": 0.1, "high": 0.2}}}, "'eta' and 'learning_rate'"),
        ({"n_trial": 3}, "unknown key 'n_trial'"),
        ({"metric": "accuracy"}, "unknown metric 'accuracy'"),
        ({"pruner": {"type": "hyperband"}}, "'pruner.type'"),
    ],
)
def test_bad_settings_are_one_line_errors(tuning, pattern) -> None:
    with pytest.raises(ConfigError, match=pattern) as err:
        tuning_settings("churn", tuning)
    assert "\n" not in str(err.value) and str(err.value).startswith("tuning")


# --------------------------------------------------------------------------- searching


def test_small_real_search(data, plan) -> None:
    settings = tuning_settings("churn", {
        "n_trials": 3,
        "space": {"num_leaves": {"type": "int", "low": 4, "high": 16},
                  "min_child_samples": {"type": "int", "low": 5, "high": 40}},
        "pruner": {"type": "none"},
    })
    seen = []
    result = tune(
        lambda p: PropensityClassifier(params=p, n_estimators=40, n_jobs=1),
        data, plan, settings, seed=1, on_trial=lambda *a: seen.append(a),
    )
    assert result.n_trials_done == 3 and len(result.study.trials) == 3
    assert set(result.best_params) == {"num_leaves", "min_child_samples", "learning_rate",
                                       "feature_fraction", "bagging_fraction", "lambda_l2"}
    assert 0.2 < result.best_value < 0.7  # a log loss
    assert [s[4] for s in seen] == ["COMPLETE"] * 3
    number, params, value, folds, _ = min(seen, key=lambda s: s[2])
    assert value == pytest.approx(np.mean(folds)) and len(folds) == 2
    assert result.best_attrs["fold_scores"] == folds
    assert result.best_params == params and result.study.best_trial.number == number
    assert all(1 <= it <= 40 for it in result.best_attrs["best_iterations"])


def test_seeded_search_repeats(data, plan) -> None:
    a = tune(Dummy, data, plan, dummy_settings(n_trials=5), score_fn=dummy_score, seed=3)
    b = tune(Dummy, data, plan, dummy_settings(n_trials=5), score_fn=dummy_score, seed=3)
    assert [t.params for t in a.study.trials] == [t.params for t in b.study.trials]


def test_resume_adds_trials(tmp_path: Path, data, plan) -> None:
    journal = tmp_path / "optuna" / "study.journal"
    first = tune(Dummy, data, plan, dummy_settings(n_trials=3), score_fn=dummy_score,
                 storage=journal, study_name="s", seed=0)
    second = tune(Dummy, data, plan, dummy_settings(n_trials=2), score_fn=dummy_score,
                  storage=str(journal), study_name="s", seed=0)
    assert first.n_trials_done == 3 and second.n_trials_done == 2
    study = optuna.load_study(study_name="s", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal))))
    assert len(study.trials) == 5
    # a resumed sampler does not replay the first call's random points
    xs = [t.params["x"] for t in study.trials]
    assert len(set(xs)) == 5
    assert second.best_value <= first.best_value


def test_rdb_storage_and_direction_guard(tmp_path: Path, data, plan) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    tune(Dummy, data, plan, dummy_settings(n_trials=2), score_fn=dummy_score, storage=url,
         study_name="s")
    with pytest.raises(ChurnkitError, match="already exists and minimizes"):
        tune(Dummy, data, plan, dummy_settings(n_trials=1).model_copy(update={"direction": "maximize"}),
             score_fn=dummy_score, storage=url, study_name="s")


WORKER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from test_tuning import CUTOFFS, Dummy, dummy_score, dummy_settings, training_set
    from churnkit.datasets.folds import plan_backtest
    from churnkit.training.tuning import tune

    r = tune(Dummy, training_set(users=20), plan_backtest(CUTOFFS, 7, n_folds=2),
             dummy_settings(n_trials=3), score_fn=dummy_score, storage=sys.argv[1],
             study_name="shared", seed=int(sys.argv[2]))
    print(r.n_trials_done)
""")


def test_two_processes_share_a_journal(tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(tests=str(Path(__file__).parent)))
    journal = tmp_path / "shared.journal"
    procs = [subprocess.Popen([sys.executable, str(script), str(journal), str(seed)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for seed in (1, 2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    assert [o[0].strip() for o in outs] == ["3", "3"]
    study = optuna.load_study(study_name="shared", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal))))
    assert len(study.trials) == 6
    assert len({t.user_attrs["worker"] for t in study.trials}) == 2
    assert len({t.number for t in study.trials}) == 6


def test_aggressive_pruner_prunes(data) -> None:
    plan3 = plan_backtest(CUTOFFS, 7, n_folds=3)
    settings = dummy_settings(n_trials=12).model_copy(
        update={"pruner": PrunerSettings(type="median", n_startup_trials=1, n_warmup_steps=0)})
    states = []
    result = tune(Dummy, data, plan3, settings, score_fn=dummy_score, seed=0,
                  on_trial=lambda n, p, v, folds, state: states.append((state, v, len(folds))))
    pruned = [s for s in states if s[0] == "PRUNED"]
    assert pruned and all(v is None and n < 3 for _, v, n in pruned)
    assert result.n_trials_done == 12 and result.best_value < 0.1
    halving = dummy_settings(n_trials=12).model_copy(
        update={"pruner": PrunerSettings(type="halving", min_resource=1, reduction_factor=2)})
    r2 = tune(Dummy, data, plan3, halving, score_fn=dummy_score, seed=0)
    assert any(t.state == optuna.trial.TrialState.PRUNED for t in r2.study.trials)


def test_errors_in_data_are_clear(data, plan) -> None:
    with pytest.raises(ChurnkitError, match="no 'target' column"):
        tune(Dummy, data, plan, dummy_settings(n_trials=1), score_fn=dummy_score, label="target")
    late = plan_backtest([c + dt.timedelta(days=1) for c in CUTOFFS], 7, n_folds=2)
    with pytest.raises(ChurnkitError, match="fold 0: no rows at its training cutoffs"):
        tune(Dummy, data, late, dummy_settings(n_trials=1), score_fn=dummy_score)


def test_optuna_stays_quiet(data, plan, caplog) -> None:
    before = optuna.logging.get_verbosity()
    tune(Dummy, data, plan, dummy_settings(n_trials=2), score_fn=dummy_score)
    assert optuna.logging.get_verbosity() == before
    assert not [r for r in caplog.records if "Trial" in r.getMessage()]
