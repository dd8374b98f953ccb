"""From features to learning data: cutoffs, labels, eligibility, training sets, manifests, folds.

- ``span``: what a table of events covers (first day, data end) and its fingerprint;
- ``cutoffs``: a problem's cutoff grid; ``labels``: outcomes in ``[cutoff, cutoff + H)``;
- ``eligibility``: who a model is about (the one rule, for training and scoring);
- ``build``: training sets and feature rows at a date; ``manifest``: their typed description;
- ``profile``: the population a model learnt from; ``folds``: time-ordered backtest plans.
"""
