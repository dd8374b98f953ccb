"""From models to actions: scores with reasons, value tiers and lifecycle stages, and lists.

``scorer``: the one :class:`~churnkit.scoring.scorer.Scorer` for batch, single users and
the service; ``segments``: RFM tiers and lifecycle stages; ``explain``: reason codes;
``lists``: risk and recall lists; ``summary``: a scoring run in numbers.
"""
