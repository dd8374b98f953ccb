"""From a training set to a registered challenger: tuning, fitting, judging, promoting.

``tuning``: Optuna over time-ordered folds; ``fit``: the final model and its test report;
``comparisons``: baselines and references on the same test rows; ``promotion``: the pure
policy that decides whether a challenger replaces the champion.
"""
