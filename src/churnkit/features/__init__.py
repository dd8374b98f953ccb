"""Point-in-time features as Ibis expressions (DuckDB or Spark).

``context``: the per-(user, day) table and the cutoff join every family reads; ``families``:
one module per feature family, each feature declared once as a ``FeatureSpec`` beside its
expression, with the wording its reasons use; ``build``: the one entry point, for training
sets, batch scoring and single users alike; ``catalogue``: every spec by name;
``wording``: formats and the rows a wording reads.
"""
