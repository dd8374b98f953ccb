"""Scoring with reasons for the whole churn population, estimated: the scores without
reasons (timed), then TreeSHAP reasons timed on 10,000 rows of the population and scaled
to all of it (all 600,852 rows of the 1M-user bench at ~9 ms a row take ~1.5 h on 2 cores).
Issue 17's "before": copy it into a checkout of the old code and run it there, since it
puts its own tree's ``src`` first on the path.

    python bench/score_before.py MODELS_WORKSPACE DATA_WORKSPACE scores.parquet
"""
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
from churnkit.config import ChurnkitConfig, ScoringSettings
from churnkit.datasets.span import data_span
from churnkit.flows.project import Project
from churnkit.flows.score import load_scorer
from churnkit.scoring.scorer import churn_reasons, in_population

models, data, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
settings = ScoringSettings(reasons_for="population")
scorer = load_scorer(Project.at(models, ChurnkitConfig(scoring=settings)))
events, users = Project.at(data, ChurnkitConfig(scoring=settings)).tables()
end = data_span(events).end
t0 = time.perf_counter(); frames = scorer.features(events, users, end); t1 = time.perf_counter()
scorer.fit_segmenter(frames); scorer.fit_stages(events, end); scorer.fit_reason_basis(frames); t2 = time.perf_counter()
scores = scorer.score_features(frames, as_of=end, reasons=0); t3 = time.perf_counter()
f = frames["churn"]; churn = scorer.models["churn"]
inside = in_population(f, churn.spec).fillna(False).to_numpy(bool)
rows = f.loc[inside, churn.features].iloc[:10_000].reset_index(drop=True)
r0 = time.perf_counter(); churn_reasons(churn, scorer.explainer("churn"), rows, 3, settings.chunk_rows); r1 = time.perf_counter()
scores.to_parquet(out, index=False)
n = int(inside.sum())
print(json.dumps({"users_scored": len(scores), "population": n, "features_s": t1 - t0, "fits_s": t2 - t1,
                  "models_s": t3 - t2, "reasons_10k_s": r1 - r0, "reasons_population_s_scaled": (r1 - r0) * n / 10_000,
                  "total_s_scaled": (t3 - t0) + (r1 - r0) * n / 10_000,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
