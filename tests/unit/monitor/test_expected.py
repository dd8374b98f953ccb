"""Expected performance from calibrated scores (CBPE): the pair formula is what it says, and
by simulation it matches the mean of the metrics over labels drawn from the scores."""

from __future__ import annotations

import numpy as np
import pytest

from churnkit.metrics import classifier_metrics
from churnkit.monitor.expected import expected_metrics, expected_roc_auc, recalibrated


def brute_force(p: np.ndarray) -> float:
    correct = pairs = 0.0
    for i in range(len(p)):
        for j in range(len(p)):
            if i == j:
                continue
            w = p[i] * (1 - p[j])
            pairs += w
            correct += w * (1.0 if p[i] > p[j] else 0.5 if p[i] == p[j] else 0.0)
    return correct / pairs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_sorted_formula_equals_the_sum_over_every_pair_ties_included(seed):
    rng = np.random.default_rng(seed)
    p = np.round(rng.beta(1.0, 3.0, 60), 1)  # rounded: many ties
    assert expected_roc_auc(p) == pytest.approx(brute_force(p), abs=1e-12)


@pytest.mark.parametrize("shape", [(0.6, 3.0), (2.0, 2.0), (0.3, 0.3)])
def test_by_simulation_it_is_the_mean_auc_of_labels_drawn_from_the_scores(shape):
    rng = np.random.default_rng(7)
    p = rng.beta(*shape, 1500)
    draws = [classifier_metrics(rng.random(p.size) < p, p) for _ in range(120)]
    realised = {k: float(np.mean([d[k] for d in draws])) for k in ("roc_auc", "base_rate", "capture_top10",
                                                                    "log_loss")}
    expected = expected_metrics(p)
    assert expected["roc_auc"] == pytest.approx(realised["roc_auc"], abs=0.003)
    assert expected["base_rate"] == pytest.approx(realised["base_rate"], abs=0.003)
    assert expected["capture_top10"] == pytest.approx(realised["capture_top10"], abs=0.005)
    assert expected["log_loss"] == pytest.approx(realised["log_loss"], abs=0.005)


def test_a_model_that_cannot_tell_users_apart_is_expected_at_a_half():
    assert expected_roc_auc(np.full(500, 0.3)) == pytest.approx(0.5)
    assert np.isnan(expected_roc_auc([0.4]))
    assert np.isnan(expected_roc_auc(np.zeros(10)))  # no expected positive: no pairs


def test_certain_scores_are_expected_to_rank_perfectly():
    y = np.array([0, 1, 1, 0, 1, 0, 0, 1], dtype=float)
    assert expected_roc_auc(y) == pytest.approx(1.0)  # p in {0, 1}: the expected labels are the labels


def test_recalibrating_an_over_confident_model_on_reference_rows_recovers_its_expected_auc():
    """Scores twice as extreme as the truth in logit: the raw estimate is too high; re-mapped
    on 2,000 reference rows with outcomes it matches the AUC the scores really reach."""
    rng = np.random.default_rng(11)

    def rows(n):
        true = 1 / (1 + np.exp(-rng.normal(-1.5, 1.0, n)))
        score = 1 / (1 + np.exp(-2 * np.log(true / (1 - true))))
        return true, score

    _, ref_score = rows(2000)
    ref_y = rng.random(2000) < 1 / (1 + np.exp(-0.5 * np.log(ref_score / (1 - ref_score))))
    true, score = rows(2000)
    realised = np.mean([classifier_metrics(rng.random(2000) < true, score)["roc_auc"] for _ in range(80)])
    believed = recalibrated(score, ref_score, ref_y)
    assert expected_roc_auc(score) - realised > 0.03  # over-confident: promises too much
    assert expected_roc_auc(believed, score) == pytest.approx(realised, abs=0.01)
    assert np.array_equal(np.argsort(believed, kind="stable"), np.argsort(score, kind="stable"))  # same ranking
