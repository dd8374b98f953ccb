"""Why a score is what it is: SHAP contributions grouped into facts and said in plain words.

``facts``: a model's features grouped by what they state (from the feature specs);
``reasons``: ranking facts per row and rendering the top ones; ``basis``: what they are
compared with (the population being scored).
"""

from churnkit.scoring.explain.basis import ReasonBasis, reason_basis
from churnkit.scoring.explain.facts import Explainer, Fact, build_facts, merge_facts
from churnkit.scoring.explain.reasons import Reason, reason_codes, reasons_frame

__all__ = [
    "Explainer", "Fact", "Reason", "ReasonBasis", "build_facts", "merge_facts", "reason_basis", "reason_codes",
    "reasons_frame",
]
