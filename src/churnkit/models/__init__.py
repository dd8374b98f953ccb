"""Estimators (sklearn style: ``fit`` returns self, fitted attributes end in ``_``).

Classifier for churn and purchase here; the LTV regressor and the baselines live in
``models.ltv`` and ``models.baselines`` (import them from there).
"""

from churnkit.models.checks import check_binary_target, check_features
from churnkit.models.classifier import (
    SKOPS_TRUSTED_TYPES,
    ClassifierSettings,
    PropensityClassifier,
    choose_calibration,
    classifier_settings,
)
from churnkit.models.lgbm import DEFAULT_TREE_PARAMS, canonical_params, lgbm_params

__all__ = [
    "DEFAULT_TREE_PARAMS",
    "SKOPS_TRUSTED_TYPES",
    "ClassifierSettings",
    "PropensityClassifier",
    "canonical_params",
    "check_binary_target",
    "check_features",
    "choose_calibration",
    "classifier_settings",
    "lgbm_params",
]
