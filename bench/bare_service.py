"""The least a BentoML API costs for ``/score_features``'s request, on this machine.

Same body (``{"rows": [{"user_id": ..., "features": {name: number | null}}]}``), validated
into the same shape of pydantic models, same worker and thread settings and the same
``traffic`` timeout as the churnkit service, but no scoring: each row answers its
``user_id``. ``bench_service.py`` times its ``/healthz`` and a single row in the same run,
so the single-row target (churnkit's p50 at most 2x its ``/healthz``) can be read against
what the framework's API dispatch costs before any scoring.

    .venv/bin/python -m bentoml serve bench/bare_service.py:Bare --port 3001
"""

from __future__ import annotations

import bentoml
from pydantic import BaseModel, ConfigDict


class Row(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: str | None = None
    features: dict[str, float | None]


@bentoml.service(name="bare", workers=1, threads=4, traffic={"timeout": 120})
class Bare:
    @bentoml.api(route="/score_features")
    async def score_features(self, rows: list[Row]) -> list[dict[str, str | None]]:
        return [{"user_id": r.user_id} for r in rows]
