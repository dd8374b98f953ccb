"""Operations monitoring: KPIs (cohorts, alerts, drift and realised-vs-predicted to come)."""
