"""Why a score is what it is: SHAP contributions grouped into facts and said in plain words.

``facts``: a model's features grouped by what they state (from the feature specs);
``reasons``: ranking facts per row and rendering the top ones.
"""

from churnkit.scoring.explain.facts import Explainer, Fact, build_facts
from churnkit.scoring.explain.reasons import Reason, reason_codes, reasons_frame

__all__ = ["Explainer", "Fact", "Reason", "build_facts", "reason_codes", "reasons_frame"]
