"""What the CLI prints for each flow's result: short, in the order a person reads it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from churnkit.contracts import ROLE_OUTPUTS, ROLES, VALUE_AT_RISK, in_population_column
from churnkit.io import tracking
from churnkit.reports.html import number
from churnkit.training.promotion import HEADLINE

# Start-up cost: the CLI imports this module for every command, so it imports no flow and
# nothing heavy. The flows' result types are for annotations only; the domain helpers a
# method prints with (SciPy-backed metrics, stage cuts ...) are imported in that method,
# by which time the flow that made the result has loaded them.
if TYPE_CHECKING:
    import pandas as pd

    from churnkit.flows.build import Dataset
    from churnkit.flows.kpi import KpiOutcome
    from churnkit.flows.lists import ListOutcome
    from churnkit.flows.monitor import MonitorOutcome
    from churnkit.flows.project import Project
    from churnkit.flows.promote import PromotionResult
    from churnkit.flows.score import ScoringOutcome
    from churnkit.flows.target import TargetOutcome
    from churnkit.flows.train import TrainOutcome
    from churnkit.flows.uplift import UpliftOutcome


class Printer:
    def __init__(self, console: Console):
        self.out = console

    def simulation(self, users: int, days: int, events: int, paths: dict[str, Path], indent: str = "") -> None:
        self.out.print(f"simulated {users:,} users over {days} days: {events:,} events")
        for name, path in paths.items():
            self.out.print(f"{indent}{name}: {path}")

    def ingest(self, summary: dict[str, Any]) -> None:
        p = self.out.print
        stored = summary.get("duplicates_of_stored", 0)
        p(f"{summary.get('mode', 'replace')}: read {summary['read']:,} = accepted {summary['accepted']:,}"
          f" + duplicates {summary['duplicates']:,}" + (f" ({stored:,} already stored)" if stored else "")
          + f" + rejected {summary['rejected']:,}")
        for reason, n in sorted(summary["rejected_by_reason"].items(), key=lambda kv: -kv[1]):
            p(f"  rejected {reason}: {n:,}")
        total = summary.get("total")
        if total and total["runs"] > 1:
            p(f"stored: {total['events']:,} events from {total['runs']} ingests"
              f" (read {total['read']:,} = accepted {total['accepted']:,} + duplicates {total['duplicates']:,}"
              f" + rejected {total['rejected']:,})")
        p(f"users {summary['users']:,}; events from {summary['first_ts']} to {summary['last_ts']}")
        for label, key in (("users table", "users_table"), ("assignments table", "assignments_table")):
            if key in summary:
                self.side_table(label, summary[key])
        for label, key in (("events", "events_path"), ("quarantine", "quarantine_path"),
                           ("users", "users_path"), ("assignments", "assignments_path"), ("summary", "summary_path")):
            if summary.get(key):
                p(f"{label}: {summary[key]}")

    def side_table(self, label: str, t: dict[str, Any]) -> None:
        """One line on a table read beside the events (its counts, or where it was kept from),
        and for assignments the campaigns with their variants."""
        p = self.out.print
        kept = f" (kept from the ingest at {t['carried_from']})" if t.get("carried_from") else ""
        reasons = ", ".join(f"{r} {n:,}" for r, n in t["rejected_by_reason"].items())
        p(f"{label}: read {t['read']:,} = accepted {t['accepted']:,} + duplicates {t['duplicates']:,}"
          f" + rejected {t['rejected']:,}" + (f" ({reasons})" if reasons else "") + kept)
        if "by_campaign" not in t:
            return
        shown = list(t["by_campaign"].items())[:5]
        arms = "; ".join(
            f"{cid}: " + ", ".join(f"{v} {n:,}" + (" (control)" if v == c["control"] else "")
                                  for v, n in c["variants"].items())
            for cid, c in shown
        )
        more = f"; {t['campaigns'] - len(shown)} more" if t["campaigns"] > len(shown) else ""
        p(f"  {t['campaigns']} campaign{'' if t['campaigns'] == 1 else 's'}" + (f" ({arms}{more})" if arms else "")
          + f"; {t['assigned_users_without_events']:,} assigned users without events")
        if t["control_declared_by"] is None:
            p("  control not declared by the source: name each campaign's control variant in the project config")
        elif t["campaigns_without_control"]:
            p(f"  campaigns without a control variant ({t['control_declared_by']}): "
              + ", ".join(t["campaigns_without_control"]))

    def dataset(self, data: Dataset) -> None:
        m = data.manifest
        label = {"revenue": "mean revenue", "uplift": f"mean {m.problem.uplift.outcome if m.problem.uplift else ''}"
                 }.get(m.problem.kind, f"{m.problem.kind} rate")
        rate = sum(c.rows * c.label_mean for c in m.per_cutoff) / max(m.rows, 1)
        self.out.print(
            f"{m.problem.name}: {m.rows:,} rows x {len(m.features)} features over {len(m.cutoffs)} cutoffs"
            f" ({m.cutoffs[0]} .. {m.cutoffs[-1]}); {label} {rate:.3f}"
        )
        if m.dropped_features:
            names = ", ".join(d.name for d in m.dropped_features)
            self.out.print(f"dropped {len(m.dropped_features)} constant or all-null features from the model's: {names}")
        self.out.print(f"training set: {data.path}")
        self.out.print(f"manifest: {data.manifest_path}")

    def training(self, outcome: TrainOutcome) -> None:
        from churnkit.metrics import compare_table
        from churnkit.training.evaluation import comparison_text

        p, r = self.out.print, outcome.result
        p(f"{r.problem.name}: {'rebuilt' if outcome.rebuilt else 'reused'} training set {outcome.dataset}")
        p(r.plan.describe())
        p(f"tuning: {r.tuning.n_trials_done} trials, best {r.tuning.best_value:.5f}")
        p(compare_table(r.metrics).to_string(float_format=lambda v: f"{v:.4f}"))
        for key, value in r.summary_metrics().items():
            if "_share_" in key:
                p(f"{key}: {value:.3f}")
        p(comparison_text(r.comparison))
        if r.calibration:
            c, t = r.calibration["choice"], r.calibration["test"]
            p(f"calibration: {c['chosen']} (chosen on {', '.join(c['fitted_on']) or 'a holdout'}, {c['rows']:,} rows);"
              f" mean predicted {t['mean_pred']:.3f} vs realised {t['base_rate']:.3f} at the test cutoff, ECE {t['ece']:.3f}")
        for note in r.notes:
            p(f"note: {note}")
        if outcome.predictions:
            p(f"test predictions: {outcome.predictions}")
        p(f"MLflow run {outcome.run_id} at {outcome.tracking_uri}")
        p(f"registered {tracking.model_name(r.problem.name)} version {outcome.version} (alias challenger)")

    def uplift_training(self, outcome: UpliftOutcome) -> None:
        p, f, m = self.out.print, outcome.fit, outcome.fit.metrics
        p(f"uplift rows: {outcome.dataset}")
        p(f"learned from {', '.join(f.train_campaigns)}; held out {', '.join(f.test_campaigns)}")
        p("validation Qini by learner: " + ", ".join(f"{k} {v:.3f}" for k, v in f.validation.items())
          + f" -> {f.learner}")
        p(f"held out: Qini {m['qini']:.3f} [{m['qini_low']:.3f}, {m['qini_high']:.3f}], AUUC {m['auuc']:.3f} "
          f"[{m['auuc_low']:.3f}, {m['auuc_high']:.3f}], uplift@10% {m['uplift_at_10']:+.4f}, "
          f"average effect {m['average_effect']:+.4f}")
        if "true_effect_correlation" in m:
            p(f"against the true individual effects: correlation {m['true_effect_correlation']:.3f}, "
              f"share of the oracle Qini {m['share_of_oracle_qini']:.2f}")
        col = "true_incremental" if f.budget["true_incremental"].notna().any() else "estimated_incremental"
        table = f.budget.pivot(index="budget_share", columns="ranking", values=col)
        p(f"incremental outcome bought by each ranking ({col.replace('_', ' ')}), by share of users contacted:")
        p(table.to_string(float_format=lambda v: f"{v:.2f}"))
        for note in f.notes:
            p(f"note: {note}")
        p(f"test predictions: {outcome.predictions}")
        p(f"MLflow run {outcome.run_id} at {outcome.tracking_uri}")
        p(f"registered {tracking.model_name(outcome.problem)} version {outcome.version} (alias challenger)")

    def target(self, made: TargetOutcome) -> None:
        p, s = self.out.print, made.summary
        p(f"target list as of {s['as_of']} from {s['model']} ({s['outcome']} over {s['horizon_days']} days; "
          f"{s['channel']} at {s['contact_cost']:g} a contact; value: {s['value']})")
        p(f"{s['candidates']:,} candidates: {s['negative_effect']:,} a contact would put off (left out), "
          f"{s['not_worth_the_cost']:,} not worth the cost, {s['worth_contacting']:,} worth contacting")
        p(f"budget {s['budget']}: {s['chosen']:,} chosen, spend {s['spend']:,.2f}, expected incremental value "
          f"{s['expected_incremental_value']:,.2f} (net {s['expected_net_value']:,.2f})"
          + (f"; {s['left_by_the_budget']:,} more are worth it beyond the budget" if s["left_by_the_budget"] else ""))
        if len(made.frame):
            cols = [c for c in ("rank", "user_id", "uplift", "net_value", "reason_1") if c in made.frame.columns]
            p(made.frame[cols].head(10).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        p(f"list: {made.path}")

    def promotion(self, res: PromotionResult) -> None:
        self.out.print(res.decision.as_text())
        was = f" (was {res.previous_champion})" if res.previous_champion not in (None, res.champion) else ""
        self.out.print(f"{tracking.model_name(res.problem)}: champion is version {res.champion}{was}")

    def kpis(self, outcome: KpiOutcome) -> None:
        from churnkit.flows.kpi import change

        p, meta = self.out.print, outcome.meta
        p(f"KPIs from {meta['first_day']} to {meta['last_complete_day']} ({meta['time_zone']}; "
          f"active = any event but {', '.join(meta['activity']['exclude']) or 'none'})")
        for grain, table in outcome.tables.items():
            shown = []
            for name in SUMMARY_KPIS:
                c = change(table, name, grain)
                if c["value"] is None:
                    continue
                vs = [f"{label} {_pct(c['value'], c[key])}" for key, label in (("previous", "vs previous"),
                                                                              ("year_ago", "vs a year ago"))
                      if c[key] is not None and _pct(c["value"], c[key])]
                shown.append(f"{name} {number(c['value'])}" + (f" ({', '.join(vs)})" if vs else ""))
            period = change(table, SUMMARY_KPIS[0], grain)["period"]
            open_ = int((~table["complete"]).sum())
            p(f"{grain} {period}: " + "; ".join(shown) + (f"  [{open_} period in progress, not shown]" if open_ else ""))
            p(f"  table: {outcome.paths[grain]}")
            if grain in outcome.segment_paths:
                dims = ", ".join(outcome.segments[grain]["dimension"].drop_duplicates()) or "none"
                p(f"  by segment ({dims}): {outcome.segment_paths[grain]}")
        cuts = meta.get("stage_cuts")
        if cuts:
            p(f"stage moves: silent after {cuts['silent_min_days']:g}+ quiet days, churned after {cuts['churned_days']:g}")
        for note in meta.get("notes", []):
            p(f"note: {note}")

    def cohorts(self, table: pd.DataFrame, average: pd.DataFrame, path: Path, title: str) -> None:
        p = self.out.print
        p(f"{title}: {table['cohort'].nunique()} cohorts, {int(table.loc[table['k'] == 0, 'size'].sum()):,} users")
        shown = average.head(13)
        p("size-weighted over complete cells, by period k (k = 0: the cohort's own):")
        p("  k       " + " ".join(f"{k:>6d}" for k in shown["k"]))
        p("  in k    " + " ".join(f"{v:6.1%}" for v in shown["retention"]))
        p("  k+      " + " ".join(f"{v:6.1%}" for v in shown["retention_on_or_after"]))
        p(f"table: {path}")
        images = sorted(path.parent.glob(f"{path.stem}_*.png"))
        if images:
            p(f"heatmaps: {', '.join(i.name for i in images)}")

    def campaigns(self, results: list) -> None:
        p = self.out.print
        for r in results:
            t, m = r.table, r.meta
            if m.get("design") == "targeted":
                self._targeted(r)
                continue
            srm = t["srm_p_value"].iloc[0] if len(t) else float("nan")
            p(f"campaign {r.campaign_id}: {m['users']:,} users; control {m['control']}; "
              f"SRM p = {srm:.3g}{' (MISMATCH: verdicts blocked)' if len(t) and t['srm_failed'].iloc[0] else ''}"
              f"; {'read from ' + m['table'] if m.get('source') == 'table' else 'window complete' if m['complete'] else 'window still open: always-valid intervals'}",
              markup=False)
            for row in t.itertuples():
                p(f"  {row.metric:<16} {row.variant:<10} n {row.n:>7,}  {number(row.mean):>9} vs {number(row.control_mean):>9}"
                  f"  effect {row.effect:+.4g} [{row.ci_low:+.4g}, {row.ci_high:+.4g}]  p {row.p_value:.3g}"
                  f" (adj. {row.p_value_adjusted:.3g})  {row.verdict}"
                  + (f"; guardrail {row.non_inferiority}" if isinstance(row.non_inferiority, str) else "")
                  + (f"; CUPED variance -{row.variance_reduction:.2%}" if row.variance_reduction == row.variance_reduction
                     else ""),
                  markup=False)
            if m.get("uplift"):
                u = m["uplift"]
                for s in u["by_variant"]:
                    p(f"  uplift on {u['metric']}, {s['variant']} vs control: {s['learner']}-learner (best on validation),"
                      f" test split {s['n_test']:,}: Qini {s['qini']:+.3f} [{s['qini_low']:+.3f}, {s['qini_high']:+.3f}],"
                      f" AUUC {s['auuc']:+.3f} [{s['auuc_low']:+.3f}, {s['auuc_high']:+.3f}],"
                      f" uplift@10% {s['uplift_at_10']:+.4g}, @20% {s['uplift_at_20']:+.4g}"
                      f" (all: {s['test_effect']:+.4g})", markup=False)
            for note in m.get("notes", []):
                p(f"  note: {note}", markup=False)
            p(f"  results: {r.path}")

    def _targeted(self, r: Any) -> None:
        """A targeted campaign: differences (not effects) beside the pre-period's, no verdict."""
        p, t, m = self.out.print, r.table, r.meta
        p(f"campaign {r.campaign_id}: TARGETED, NOT RANDOMISED (descriptive only: differences are not effects); "
          f"{m['users']:,} users, compared with {m['control']}", markup=False)
        for row in t.itertuples():
            p(f"  {row.metric:<16} {row.variant:<10} n {row.n:>7,}  {number(row.mean):>9} vs {number(row.control_mean):>9}"
              f"  difference {row.effect:+.4g} [{row.ci_low:+.4g}, {row.ci_high:+.4g}]; before it {row.pre_difference:+.4g}",
              markup=False)
        for note in m.get("notes", []):
            p(f"  note: {note}", markup=False)
        p(f"  results: {r.path}")

    def alerts(self, table: pd.DataFrame, title: str, path: Path) -> None:
        p = self.out.print
        p(title)
        for r in table.itertuples():
            span = str(r.first_period) if r.periods == 1 else f"{r.first_period}..{r.last_period} ({r.periods} {r.grain}s)"
            p(f"  {r.severity}: {r.id}: {r.kpi} {number(r.observed)} vs expected {number(r.expected)}"
              f" ({number(r.low)} to {number(r.high)}) on {span}; {r.status}" + (f" by {r.by}" if r.by else ""),
              markup=False)
            if isinstance(getattr(r, "drivers", None), str) and r.drivers:
                p(f"    driven by {r.drivers}", markup=False)
        p(f"ledger: {path}")

    def scores(self, outcome: ScoringOutcome) -> None:
        from churnkit.scoring.stages import StageCuts

        p, meta, s = self.out.print, outcome.meta, outcome.meta["summary"]
        versions = ", ".join(f"{r} {v['problem']} v{v['version']}" for r, v in meta["versions"].items())
        p(f"scored {s['users']:,} users as of {meta['as_of']} in {meta['seconds']:.1f} s ({versions})")
        for col in (ROLE_OUTPUTS[r]["score"] for r in ROLES):
            if col in s:
                d = s[col]
                p(f"  {col}: mean {d['mean']:.3f}, median {d['p50']:.3f}, p90 {d['p90']:.3f}")
        inside = ", ".join(f"{r} {s[in_population_column(r)]:,}" for r in ROLES if in_population_column(r) in s)
        p(f"  inside each model's training population: {inside}")
        if f"{VALUE_AT_RISK}_total" in s:
            p(f"  total value at risk {s[f'{VALUE_AT_RISK}_total']:,.2f}")
        if "by_lifecycle_stage" in s:
            p("  stages: " + ", ".join(f"{k} {v:,}" for k, v in s["by_lifecycle_stage"].items()))
        if "stage_cuts" in s:
            p(f"  stage cuts: {StageCuts.from_dict(s['stage_cuts']).describe()}")
        if "realised_churn" in s:
            r = s["realised_churn"]
            shown = ", ".join(f"{k} {v['rate']:.0%} of {v['users']:,}" for k, v in r["by_stage"].items())
            p(f"  realised churn in the {r['horizon_days']} days after {meta['as_of']}: {r['rate']:.0%}"
              f" of {r['users']:,}; by stage: {shown}")
        p(f"scores: {outcome.path}")
        p(f"versions and RFM thresholds: {outcome.meta_path}")
        if outcome.run_id:
            p(f"MLflow run {outcome.run_id} (experiment churnkit-scoring)")

    def monitoring(self, outcome: MonitorOutcome) -> None:
        """Per problem: one line per scoring run (expected or realised against test), the
        latest run's most moved features, and whether a retrain is advised and why."""
        from churnkit.monitor.expected import CAVEAT

        p = self.out.print
        for problem, history in outcome.history.items():
            if not len(history):
                continue
            last = history.iloc[-1]
            p(f"{problem} (v{int(last['version'])}, {last['headline']} at test {number(last['test_value'])}):")
            for r in history.tail(8).itertuples():
                now = f"realised {number(r.value_now)}" if r.status == "realised" else \
                    f"expected {number(r.value_now)} (outcomes {r.outcomes_on})"
                psi = f"  score PSI {r.score_psi:.2f}" if math.isfinite(float(r.score_psi)) else ""
                seen = "  in training window" if bool(getattr(r, "in_training", False)) else ""
                p(f"  {r.as_of} v{int(r.version)}  {now}  drifted {int(r.features_drifted)}/{int(r.features_checked)}"
                  f"{psi}  users {int(r.users):,}{seen}")
            check = next((c for c in reversed(outcome.checks) if c.row["problem"] == problem
                          and c.row["as_of"] == last["as_of"]), None)
            if check is not None and len(check.drift):
                moved = check.drift[check.drift["feature"] != "score"].dropna(subset=["psi"])
                moved = moved.sort_values("psi", ascending=False).head(3)
                if len(moved):
                    p("  moved most: " + ", ".join(
                        f"{f} PSI {v:.2f}" + (f" (driver #{int(k)})" if math.isfinite(k) else "")
                        for f, v, k in zip(moved["feature"], moved["psi"], moved["driver_rank"])))
            p(f"  retrain advised: {'YES' if bool(last['retrain_advised']) else 'no'} - {last['why']}")
        if any((h["status"] == "awaiting outcomes").any() for h in outcome.history.values() if len(h)):
            p(f"expected figures are {CAVEAT}")
        if outcome.new_alerts:
            p(f"{len(outcome.new_alerts)} new alert(s) in the ledger: {', '.join(outcome.new_alerts[:5])}")
        for note in outcome.notes:
            p(f"note: {note}")
        p(f"history, drift and segments: {outcome.folder}")

    def list(self, title: str, value: str, made: ListOutcome) -> None:
        summary = made.summary
        self.out.print(f"{title}: {summary['users']:,} users, total {value} {summary['total']:,.2f}")
        for col, label in (("by_lifecycle_stage", "by stage"), ("by_rfm_tier", "by tier")):
            items = list(summary.get(col, {}).items())
            if items:
                shown = ", ".join(f"{k} {v['users']:,} ({v['total']:,.2f})" for k, v in items[:6])
                self.out.print(f"  {label}: {shown}{' ...' if len(items) > 6 else ''}")
        self.out.print(f"list: {made.path}")

    # -- demo ------------------------------------------------------------------

    def demo_step(self, step: str, result: Any) -> None:
        """What one demo step produced, then the heading of the next."""
        from churnkit.flows.demo import STEPS

        if step == "simulate":
            self.simulation(result["users"], result["days"], result["events"], result["paths"], "  ")
        elif step == "ingest":
            self.ingest(result)
        elif step == "build training sets":
            for data in result:
                self.dataset(data)
        elif step == "train and promote":
            for trained, promoted in result:
                self._trained(trained, promoted)
        elif step == "score":
            self.scores(result)
        elif step == "lists":
            for made, value in zip(result, ("value at risk", "recall value"), strict=True):
                self.list(f"{made.kind} list (top {len(made.frame)})", value, made)
        elif step == "monitoring and model cards":
            self.monitoring(result.monitoring)
            for card in result.cards:
                self.out.print(f"model card: {card.path}")
        elif step == "campaign A/B results":
            self.campaigns(result.campaigns)
            if result.campaign_note:
                self.out.print(f"campaigns not evaluated: {result.campaign_note}", markup=False)
        elif step == "uplift and target list":
            if result.uplift is not None:
                self.uplift_training(result.uplift)
            if result.target is not None:
                self.target(result.target)
            if result.uplift_note:
                self.out.print(f"no uplift model: {result.uplift_note}", markup=False)
        elif step == "KPIs, alerts and weekly report":
            self.kpis(result.kpis)
            self.alerts(result.alerts.open, f"{len(result.alerts.new)} alert(s) opened:", result.alerts.path)
            self.out.print(f"weekly report: {result.report.path}")
        nxt = STEPS.index(step) + 1
        self.out.rule(f"{nxt + 1}/{len(STEPS)} {STEPS[nxt]}" if nxt < len(STEPS)
                      else "done")

    def _trained(self, trained: TrainOutcome, promoted: PromotionResult) -> None:
        r = trained.result
        metric, _ = HEADLINE[r.kind]
        value = r.metrics["model"].get(metric, float("nan"))
        shares = r.summary_metrics()
        reached = ", ".join(
            f"{shares[key]:.0%} of the {label}"
            for key, label in ((f"test_truth_share_{metric}", "latent truth"),
                               (f"test_observable_share_{metric}", "observable ceiling"))
            if key in shares
        )
        c = r.comparison
        versus = f"; vs {c['baseline']} {c['estimate']:+.3f} [{c['low']:+.3f}, {c['high']:+.3f}]" if c else ""
        self.out.print(f"{r.problem.name}: version {trained.version}, test {metric} {value:.3f}"
                       f"{f' ({reached})' if reached else ''}{versus}; champion is version {promoted.champion}")

    def demo_done(self, project: Project) -> None:
        ws = project.workspace
        self.out.print(f"workspace: {ws.root.resolve()}")
        uri = tracking.current_uri() or tracking.default_tracking_uri(ws.root)
        if uri.startswith("sqlite:///"):
            self.out.print(f"MLflow UI: mlflow ui --backend-store-uri {uri}   (then open http://127.0.0.1:5000)",
                           soft_wrap=True, highlight=False)
        else:
            self.out.print(f"MLflow: {tracking.redact(uri)}")
        reports = sorted(ws.reports_dir.glob("weekly_*.html")) if ws.reports_dir.exists() else []
        if reports:
            self.out.print(f"weekly report: {reports[-1].resolve()}", soft_wrap=True, highlight=False)
        self.out.print(f"next: churnkit --workspace {ws.root} risk-list --format xlsx --top 500")


SUMMARY_KPIS = ("active_users", "new_users", "buyers", "paying_rate", "revenue", "arpu")
"""What the console says of each grain's latest complete period."""


def _pct(now: float, before: float) -> str:
    if before is None or not before or math.isnan(now) or math.isnan(before):
        return ""
    return f"{(now / before - 1) * 100:+.1f}%"
