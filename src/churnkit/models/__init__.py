"""Estimators (sklearn style: ``__init__`` stores parameters, ``fit`` returns self, fitted
attributes end in ``_``).

``classifier``: calibrated churn/purchase propensity; ``ltv``: lifetime value with an
interval; ``baselines``: RFM heuristic, last-period revenue, BG/NBD; ``lgbm``: LightGBM
parameters and TreeSHAP; ``checks``: the input contract; ``outputs``: what each kind outputs.
"""
