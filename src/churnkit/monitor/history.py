"""The monitoring history of one problem: one row per scoring run its model scored.

Written by ``churnkit monitor`` (``Workspace.monitor_history_path``), read by the model card
and the weekly report. A row is first written while the run's outcomes are still to come
(``status`` "awaiting outcomes": drift and the expected headline only) and rewritten once
the log reaches ``outcomes_on`` (``status`` "realised": every ``realised_<metric>`` too).

Columns (``COLUMNS``, then one ``realised_<metric>`` per key of
:func:`churnkit.metrics.classifier_metrics` or :func:`churnkit.metrics.ltv_metrics`):

- ``as_of`` (ISO date), ``checked_at`` (when judged; a date rescored by another version
  keeps a row per version, the last judged last), ``problem``, ``role`` (churn, purchase, ltv), ``kind``, ``version``,
  ``scores_file`` (name), ``users`` (scored users inside the model's population);
- ``headline`` (roc_auc for classifiers, gini_norm for revenue) and ``test_value`` (its value
  on the model's test cutoffs at training);
- drift: ``features_checked``, ``features_drifted``, ``drifted_features`` and
  ``drifted_drivers`` (comma-separated; drivers are the model's top features by mean |SHAP|),
  ``score_psi``, ``score_drifted``;
- ``expected_value``: the headline expected from the calibrated scores alone, before
  outcomes (classifiers; NaN for revenue);
- ``status``, ``outcomes_on`` (ISO date the outcome window closes), ``realised_value``,
  ``predicted_total`` and ``realised_total`` (churners / buyers / revenue), ``drop``
  (``test_value`` minus ``value_now``: the realised headline, or the expected one before
  outcomes; the one place that choice is made);
- ``retrain_advised`` (bool) and ``why`` (one line);
- ``in_training``: the run's outcome window overlaps the training set's label windows, so
  its realised figures are partly in-sample (flattering) and say little about decay.
"""

from __future__ import annotations

COLUMNS = ("as_of", "checked_at", "problem", "role", "kind", "version", "scores_file", "users", "headline", "test_value",
           "features_checked", "features_drifted", "drifted_features", "drifted_drivers", "score_psi",
           "score_drifted", "expected_value", "status", "outcomes_on", "realised_value", "predicted_total",
           "realised_total", "value_now", "drop", "retrain_advised", "why", "in_training")
REALISED = "realised"
AWAITING = "awaiting outcomes"
