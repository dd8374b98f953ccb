"""The ``churnkit`` command line: parse options, call a flow, print what it returned.

User errors (:class:`ChurnkitError`) become one line on stderr and exit code 1; any other
exception is reported in one line too (exit 2) unless ``CHURNKIT_DEBUG=1`` asks for the
traceback. ``--as-of DATE`` means the same for every command: everything before DATE's
midnight, UTC.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from churnkit import __version__
from churnkit.cli.output import Printer
from churnkit.config import DEFAULT_SOURCE, SimulateSettings, load_churnkit_config, presets
from churnkit.contracts import as_of_cutoff
from churnkit.errors import ChurnkitError
from churnkit.flows.project import Project

# Start-up cost: every command (and ``--help``) imports this module, so it imports only what
# parsing needs. Each command imports its flow (and with it MLflow, LightGBM, SciPy ...)
# when it runs; ``tests/unit/cli/test_startup.py`` pins that.

app = typer.Typer(
    name="churnkit",
    help="Churn, purchase and lifetime-value scores from behaviour logs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)
show = Printer(out)


class IngestMode(enum.StrEnum):
    replace = "replace"
    append = "append"


class State:
    project: Project
    config_path: Path | None


state = State()


def _fail(message: str, code: int) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn exceptions into a one-line message and a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except ChurnkitError as e:
            _fail(str(e).splitlines()[0] if str(e) else type(e).__name__, 1)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except Exception as e:  # a bug, not a user error: still one line by default
            if os.environ.get("CHURNKIT_DEBUG"):
                raise
            first = (str(e).splitlines() or [""])[0]
            _fail(f"internal error: {type(e).__name__}: {first} (set CHURNKIT_DEBUG=1 for details)", 2)

    return wrapper


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[float, float | None, str | None], None]]:
    """Yields ``update(done, total, note)``; a rich bar on a terminal, silent otherwise."""
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[note]}"), TimeElapsedColumn(), console=err, transient=True,
        disable=not err.is_terminal,
    ) as progress:
        task = progress.add_task(description, total=None, note="")

        def update(done: float, total: float | None = None, note: str | None = None) -> None:
            progress.update(task, completed=done, total=total, note=note or "")

        yield update


@contextmanager
def steps(description: str) -> Iterator[Callable[[str], None]]:
    """A progress bar that shows named steps (``say("tuning")``)."""
    with progress_bar(description) as update:
        yield lambda msg: update(0, None, msg)


def _version_callback(value: bool) -> None:
    if value:
        out.print(f"churnkit {__version__}")
        raise typer.Exit()


@app.callback()
@handle_errors
def main(
    workspace: Annotated[
        Path | None,
        typer.Option("--workspace", "-w", help="Folder for events, datasets, scores and the MLflow store."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Project config (default: configs/churnkit.yaml if present)."),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    cfg = load_churnkit_config(config)
    state.project = Project.at(Path(workspace) if workspace else cfg.workspace, cfg)
    state.config_path = config


# --------------------------------------------------------------------------- parsing


def parse_date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ChurnkitError(f"{option}: '{value}' is not a date (expected YYYY-MM-DD)") from None


def parse_as_of(value: str | None) -> dt.datetime | None:
    """A date is its UTC midnight (everything before it); a timestamp is taken as given."""
    if value is None:
        return None
    if len(value) == 10:
        return as_of_cutoff(parse_date(value, "--as-of"))
    try:
        ts = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ChurnkitError(f"--as-of: '{value}' is not a date or timestamp (YYYY-MM-DD[THH:MM])") from None
    return (ts.replace(tzinfo=dt.UTC) if ts.tzinfo is None else ts).astimezone(dt.UTC)


def _int_list(value: str, option: str) -> list[int]:
    try:
        items = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise ChurnkitError(f"{option}: expected comma-separated whole numbers, got '{value}'") from None
    if not items or any(i <= 0 for i in items):
        raise ChurnkitError(f"{option}: expected positive whole numbers, got '{value}'")
    return items


AsOfDate = Annotated[
    str | None, typer.Option("--as-of", help="Date YYYY-MM-DD: use events before its midnight, UTC (default: data end).")
]
FormatOption = Annotated[str | None, typer.Option("--format", help="csv, xlsx or parquet (default: from --out, else csv).")]
TrackingOption = Annotated[
    str | None,
    typer.Option(help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, the config, or the workspace's SQLite)."),
]
PseudonymiseOption = Annotated[
    bool, typer.Option("--pseudonymise", help="Replace user ids by keyed hashes (key from CHURNKIT_PSEUDONYM_KEY).")
]
ProblemOption = Annotated[
    str, typer.Option(help="Problem YAML path, or name: configs/problems/, problems this workspace was given by path, presets.")
]


def _date(value: str | None) -> dt.date | None:
    return parse_date(value, "--as-of") if value else None


# --------------------------------------------------------------------------- commands


@app.command()
@handle_errors
def simulate(
    out_dir: Annotated[Path | None, typer.Option("--out", help="Folder for events, users, truth and campaigns.")] = None,
    users: Annotated[int | None, typer.Option(help="Number of users.")] = None,
    days: Annotated[int | None, typer.Option(help="Days of behaviour to simulate.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (same seed, same output).")] = None,
    start: Annotated[str | None, typer.Option(help="First day, YYYY-MM-DD.")] = None,
    cutoffs: Annotated[
        str | None, typer.Option(help="Comma-separated truth cutoff dates (default: every cutoff_step_days).")
    ] = None,
    horizons: Annotated[str | None, typer.Option(help="Comma-separated truth horizons in days.")] = None,
) -> None:
    """Simulate behaviour logs with known ground truth."""
    from churnkit.flows import simulate as simulate_flow
    given = {
        "users": users, "days": days, "seed": seed,
        "start": parse_date(start, "--start") if start else None,
        "horizons": _int_list(horizons, "--horizons") if horizons else None,
        "cutoffs": [parse_date(c.strip(), "--cutoffs") for c in cutoffs.split(",")] if cutoffs else None,
    }
    base = state.project.config.simulate.model_dump()
    params = SimulateSettings.model_validate(base | {k: v for k, v in given.items() if v is not None})
    target = Path(out_dir) if out_dir else state.project.workspace.simulation_dir
    with progress_bar("simulating") as update, progress_bar("writing") as write:
        result, paths = simulate_flow.simulate_to(params, target, update, write)
    show.simulation(result.n_users, params.days, result.n_events, paths)


@app.command()
@handle_errors
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders of raw events.")],
    source: Annotated[str, typer.Option(help="Source YAML path, or a built-in source name (see `churnkit sources`); "
                                            "default: files already in the event contract's columns.")] = DEFAULT_SOURCE,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Reject events at or after this date's midnight, UTC, or timestamp (default: now).")
    ] = None,
    users: Annotated[Path | None, typer.Option(help="Users table, overriding the source's.")] = None,
    assignments: Annotated[
        Path | None, typer.Option(help="Campaign assignments table, overriding the source's `assignments: path`.")
    ] = None,
    mode: Annotated[
        IngestMode, typer.Option(help="replace: rebuild the events from these files; append: add them to the stored events.")
    ] = IngestMode.replace,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Validate raw logs into workspace events, with a quarantine of rejected rows."""
    from churnkit.flows import ingest as ingest_flow
    with progress_bar(f"ingesting ({mode.value})") as update:
        summary = ingest_flow.ingest(state.project, paths, source, as_of=parse_as_of(as_of), users=users,
                                     assignments=assignments, mode=mode.value, progress=update)
    if as_json:
        out.print_json(json.dumps(summary))
    else:
        show.ingest(summary)


@app.command()
@handle_errors
def build(
    problem: ProblemOption,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Training set Parquet (default: WORKSPACE/datasets/NAME.parquet).")
    ] = None,
    engine: Annotated[
        str, typer.Option(help="Feature engine: duckdb (embedded) or spark (local Spark via Ibis; needs churnkit[spark]).")
    ] = "duckdb",
) -> None:
    """Build a problem's point-in-time training set and its feature manifest."""
    from churnkit.flows import build as build_flow
    from churnkit.flows import uplift as uplift_flow
    with steps(f"building {problem}") as say:
        say("features and labels")
        spec = state.project.problem(problem)
        if spec.kind == "uplift":  # past campaigns' users at the day of assignment, with their arm and outcome
            data = uplift_flow.uplift_dataset(state.project, spec, engine=engine, out=out_file)
        else:
            data = build_flow.build_dataset(state.project, problem, engine=engine, out=out_file)
    show.dataset(data)


@app.command()
@handle_errors
def train(
    problem: ProblemOption,
    trials: Annotated[int | None, typer.Option(help="Optuna trials (default: the problem's tuning.n_trials).")] = None,
    timeout: Annotated[float | None, typer.Option(help="Stop tuning after this many seconds.")] = None,
    tracking_uri: TrackingOption = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: from the config).")] = None,
    storage: Annotated[
        str | None, typer.Option(help="Optuna storage shared by parallel workers: a journal file path or an RDB URL.")
    ] = None,
    study_name: Annotated[str | None, typer.Option(help="Optuna study name (resume or share one).")] = None,
    folds: Annotated[int, typer.Option(help="Backtest folds for tuning.")] = 3,
    bgnbd: Annotated[
        bool | None, typer.Option("--bgnbd/--no-bgnbd", help="BG/NBD baseline (default: when pymc-marketing is installed).")
    ] = None,
    stack_bgnbd: Annotated[
        bool, typer.Option("--stack-bgnbd", help="Also report the model refitted with BG/NBD outputs as features.")
    ] = False,
) -> None:
    """Tune and train a problem's model on time-ordered backtests; log to MLflow; register a challenger."""
    from churnkit.flows import train as train_flow
    from churnkit.flows import uplift as uplift_flow
    from churnkit.training.fit import TrainOptions
    project = state.project.with_tracking(tracking_uri)
    options = TrainOptions(
        trials=trials, timeout=timeout, seed=seed if seed is not None else project.config.seed,
        storage=storage, study_name=study_name, n_folds=folds, bgnbd=bgnbd, stack_bgnbd=stack_bgnbd,
    )
    if project.problem(problem).kind == "uplift":
        with steps(f"training {problem}") as say:
            uplift = uplift_flow.train_uplift(project, project.problem(problem), options.seed, say)
        show.uplift_training(uplift)
        return
    with steps(f"training {problem}") as say:
        outcome = train_flow.train(project, problem, options, say)
    show.training(outcome)


@app.command()
@handle_errors
def promote(
    problem: ProblemOption,
    force: Annotated[bool, typer.Option(help="Promote even if the challenger does not beat the champion.")] = False,
    version: Annotated[int | None, typer.Option(help="Promote this version instead of the challenger.")] = None,
    rollback: Annotated[bool, typer.Option(help="Set champion back to the previous champion (or --version).")] = False,
    tracking_uri: TrackingOption = None,
) -> None:
    """Make the challenger the champion if it beats it on the same test cutoffs (recorded either way)."""
    from churnkit.flows import promote as promote_flow
    from churnkit.io import tracking
    project = state.project.with_tracking(tracking_uri)
    if rollback:
        name, v = promote_flow.rollback_problem(project, problem, version)
        out.print(f"{tracking.model_name(name)}: champion is now version {v} (rollback recorded)")
        return
    show.promotion(promote_flow.promote_problem(project, problem, force=force, version=version))


@app.command()
@handle_errors
def score(
    as_of: AsOfDate = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Scores Parquet (default: WORKSPACE/scores/scores_DATE.parquet).")
    ] = None,
    tracking_uri: TrackingOption = None,
) -> None:
    """Score every user with history at a date: churn, purchase, LTV, value at risk, tier, stage, reasons."""
    from churnkit.flows import score as score_flow
    with steps("scoring") as say:
        outcome = score_flow.score(state.project.with_tracking(tracking_uri), _date(as_of), out=out_file,
                                   progress=say)
    show.scores(outcome)


def _list(kind: str, select: Callable[[Any], Any], as_of: str | None, fmt: str | None,
          out_file: Path | None, pseudonymise: bool, tracking_uri: str | None) -> None:
    from churnkit.flows import lists as lists_flow
    with steps(f"{kind} list") as say:
        say("scores")
        made = lists_flow.make_list(state.project.with_tracking(tracking_uri), kind, select,
                                    as_of=_date(as_of), fmt=fmt, out=out_file, pseudonymise=pseudonymise)
    if made.scored is not None:
        out.print(f"no scores for {made.as_of} yet: scored first")
        show.scores(made.scored)
    show.list(f"{kind} list as of {made.as_of}", made.value.replace("_", " "), made)


@app.command("risk-list")
@handle_errors
def risk_list_command(
    as_of: AsOfDate = None,
    top: Annotated[int | None, typer.Option(help="Keep the N users with the most value at risk.")] = None,
    min_value: Annotated[float | None, typer.Option(help="Only users with value at risk >= X.")] = None,
    stage: Annotated[list[str] | None, typer.Option(help="Lifecycle stage(s): new, active, recalled ...")] = None,
    tier: Annotated[list[str] | None, typer.Option(help="RFM tier(s), e.g. champions, 'at risk'.")] = None,
    min_probability: Annotated[float | None, typer.Option(help="Only users with churn probability >= P.")] = None,
    fmt: FormatOption = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Output file (default: WORKSPACE/lists/risk_DATE.FORMAT).")] = None,
    pseudonymise: PseudonymiseOption = False,
    tracking_uri: TrackingOption = None,
) -> None:
    """Users likely to churn, ranked by value at risk (churn probability x predicted LTV), with reasons."""
    from churnkit.scoring.lists import risk_list
    _list("risk",
          lambda scores: risk_list(scores, top=top, min_value=min_value, stage=stage or None, tier=tier or None,
                                   min_probability=min_probability),
          as_of, fmt, out_file, pseudonymise, tracking_uri)


@app.command("target")
@handle_errors
def target_command(
    problem: ProblemOption,
    contacts: Annotated[int | None, typer.Option(help="Contact at most N users.")] = None,
    budget: Annotated[float | None, typer.Option(help="Spend at most X on contacts (their cost per channel).")] = None,
    channel: Annotated[str | None, typer.Option(help="Channel, for its contact cost (default: targeting.channel).")] = None,
    cost: Annotated[float | None, typer.Option(help="Cost of one contact, overriding targeting.contact_cost.")] = None,
    as_of: AsOfDate = None,
    version: Annotated[int | None, typer.Option(help="Model version (default: champion, else the latest challenger).")] = None,
    fmt: FormatOption = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Output file (default: WORKSPACE/lists/target_PROBLEM_DATE.FORMAT).")] = None,
    pseudonymise: PseudonymiseOption = False,
    tracking_uri: TrackingOption = None,
) -> None:
    """Whom to contact under a budget: users ranked by expected incremental value (uplift x value) minus contact cost;
    users a contact would put off are left out."""
    from churnkit.flows import target as target_flow
    project = state.project.with_tracking(tracking_uri)
    with steps("target list") as say:
        say("estimating each user's effect")
        made = target_flow.run_target(project, problem, contacts=contacts, money=budget, channel=channel, cost=cost,
                                      as_of=_date(as_of), version=version, fmt=fmt, out=out_file,
                                      pseudonymise=pseudonymise)
    show.target(made)


@app.command("recall-list")
@handle_errors
def recall_list_command(
    as_of: AsOfDate = None,
    top: Annotated[int | None, typer.Option(help="Keep the N users most worth winning back.")] = None,
    tier: Annotated[list[str] | None, typer.Option(help="RFM tier(s).")] = None,
    fmt: FormatOption = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Output file (default: WORKSPACE/lists/recall_DATE.FORMAT).")] = None,
    pseudonymise: PseudonymiseOption = False,
    tracking_uri: TrackingOption = None,
) -> None:
    """Silent and churned users, ranked by purchase probability x predicted LTV."""
    from churnkit.scoring.lists import recall_list
    _list("recall", lambda scores: recall_list(scores, top=top, tier=tier or None),
          as_of, fmt, out_file, pseudonymise, tracking_uri)


@app.command()
@handle_errors
def kpi(
    grain: Annotated[list[str] | None, typer.Option(help="day, week or month (repeat; default: all three).")] = None,
) -> None:
    """Operations KPIs per day, week and month (active users, buyers, revenue, funnel ...) in the business time zone."""
    from churnkit.flows import kpi as kpi_flow
    grains = tuple(grain or kpi_flow.GRAINS)
    bad = [g for g in grains if g not in kpi_flow.GRAINS]
    if bad:
        raise ChurnkitError(f"--grain {bad[0]!r}: use day, week or month")
    with steps("KPIs") as say:
        say("events")
        outcome = kpi_flow.kpis(state.project, grains)  # type: ignore[arg-type]
    show.kpis(outcome)


@app.command()
@handle_errors
def cohorts(
    grain: Annotated[str, typer.Option(help="day, week or month.")] = "month",
    start: Annotated[str, typer.Option(help="first_purchase, first_active or signup.")] = "first_purchase",
    measure: Annotated[str, typer.Option(help="purchase (repeat-purchase retention) or active.")] = "purchase",
) -> None:
    """Retention cohorts: users by when they started, retained per later day, week or month."""
    from churnkit.flows import kpi as kpi_flow
    for name, value, allowed in (("grain", grain, kpi_flow.GRAINS), ("start", start, kpi_flow.STARTS),
                                 ("measure", measure, kpi_flow.MEASURES)):
        if value not in allowed:
            raise ChurnkitError(f"--{name} {value!r}: use {', '.join(allowed)}")
    with steps("cohorts") as say:
        say("events")
        table, average, path = kpi_flow.cohorts(state.project, grain, start, measure)  # type: ignore[arg-type]
    show.cohorts(table, average, path, f"{start.replace('_', ' ')} {grain} cohorts, {measure} retention")


@app.command()
@handle_errors
def monitor(
    scores: Annotated[list[Path] | None, typer.Option("--scores", help="Scores file(s) to judge (repeat; default: every stored scoring run).")] = None,
    tracking_uri: TrackingOption = None,
    no_log: Annotated[bool, typer.Option("--no-log", help="Do not log the figures to MLflow.")] = False,
) -> None:
    """Model health per scoring run: feature and score drift, expected and realised performance, retrain advice, alerts."""
    from churnkit.flows import monitor as monitor_flow
    with steps("monitoring") as say:
        outcome = monitor_flow.monitor(state.project.with_tracking(tracking_uri), scores, log_run=not no_log,
                                       progress=say)
    show.monitoring(outcome)


alerts_app = typer.Typer(help="KPI anomaly alerts: check the rules, list, acknowledge, resolve.",
                         invoke_without_command=True)
app.add_typer(alerts_app, name="alerts")


@alerts_app.callback()
@handle_errors
def alerts(ctx: typer.Context) -> None:
    """Check every alert rule on the KPIs and update the ledger (alone: ``churnkit alerts``)."""
    from churnkit.flows import alerts as alerts_flow
    if ctx.invoked_subcommand is not None:
        return
    with steps("alerts") as say:
        say("KPIs")
        outcome = alerts_flow.check(state.project)
    show.alerts(outcome.open, f"{len(outcome.new)} new alert(s); open or acknowledged:", outcome.path)
    for note in outcome.notes:
        out.print(f"note: {note}")


@alerts_app.command("list")
@handle_errors
def alerts_list(
    status: Annotated[str | None, typer.Option(help="open, acknowledged or resolved (default: all).")] = None,
) -> None:
    """The ledger's alerts, newest last."""
    from churnkit.flows import alerts as alerts_flow
    table = alerts_flow.read_ledger(state.project)
    if status is not None:
        if status not in alerts_flow.L.STATUSES:
            raise ChurnkitError(f"--status {status!r}: use {', '.join(alerts_flow.L.STATUSES)}")
        table = table[table["status"] == status]
    show.alerts(table, f"{len(table)} alert(s)", state.project.workspace.alerts_path)


def _move(alert_id: str, status: str, by: str | None, note: str | None) -> None:
    from churnkit.flows import alerts as alerts_flow
    row = alerts_flow.set_status(state.project, alert_id, status, by or os.environ.get("USER"), note)
    out.print(f"{row['id']}: {row['status']}" + (f" by {row['by']}" if row["by"] else "") + (f" ({row['note']})" if row["note"] else ""))


@alerts_app.command("ack")
@handle_errors
def alerts_ack(
    alert_id: Annotated[str, typer.Argument(help="The alert's id (churnkit alerts list).")],
    by: Annotated[str | None, typer.Option(help="Who (default: $USER).")] = None,
    note: Annotated[str | None, typer.Option(help="Why, or what is being done.")] = None,
) -> None:
    """Acknowledge an alert: someone is on it."""
    _move(alert_id, "acknowledged", by, note)


@alerts_app.command("resolve")
@handle_errors
def alerts_resolve(
    alert_id: Annotated[str, typer.Argument(help="The alert's id (churnkit alerts list).")],
    by: Annotated[str | None, typer.Option(help="Who (default: $USER).")] = None,
    note: Annotated[str | None, typer.Option(help="What it was.")] = None,
) -> None:
    """Resolve an alert."""
    _move(alert_id, "resolved", by, note)


campaign_app = typer.Typer(help="Campaign A/B tests: evaluate.", no_args_is_help=True)
app.add_typer(campaign_app, name="campaign")


@campaign_app.command("evaluate")
@handle_errors
def campaign_evaluate(
    campaign_ids: Annotated[list[str] | None, typer.Argument(help="Campaign ids (default: every campaign).")] = None,
    table: Annotated[
        Path | None, typer.Option("--table", help="A per-customer experiment table (CSV or Parquet) instead of ingested assignments.")
    ] = None,
    variant_column: Annotated[str, typer.Option(help="With --table: the column naming each customer's arm.")] = "variant",
    control: Annotated[str | None, typer.Option(help="With --table: the control arm's value in the variant column.")] = None,
    metrics: Annotated[str | None, typer.Option(help="With --table: outcome columns, comma-separated.")] = None,
    covariates: Annotated[
        str | None, typer.Option(help="With --table: pre-period columns for CUPED, comma-separated (several: their OLS fit).")
    ] = None,
    table_id: Annotated[str | None, typer.Option("--id", help="With --table: the campaign id (default: the file's stem).")] = None,
    uplift_metric: Annotated[
        str | None, typer.Option(help="With --table: fit uplift models on this metric and judge them on a held-out split.")
    ] = None,
    features: Annotated[
        str | None, typer.Option(help="With --uplift-metric: feature columns (default: every column but the variant, outcomes and ids).")
    ] = None,
    seed: Annotated[int, typer.Option(help="With --uplift-metric: seed of the split, the models and the bootstrap.")] = 0,
) -> None:
    """A/B results per campaign: metrics per variant, effects with intervals, SRM, guardrails."""
    from churnkit.flows import campaigns as campaign_flow
    from churnkit.flows import experiments as experiment_flow
    if table is None:
        with steps("campaigns") as say:
            say("outcomes and statistics")
            results = campaign_flow.evaluate(state.project, campaign_ids)
        show.campaigns(results)
        return
    if campaign_ids:
        raise ChurnkitError("give campaign ids or --table, not both (--id names a table's campaign)")
    if control is None or not metrics:
        raise ChurnkitError("--table needs --control (the control arm's value) and --metrics (outcome columns)")
    with steps("experiment table") as say:
        say("checks, statistics" + (", uplift models" if uplift_metric else ""))
        result = experiment_flow.evaluate_table(
            state.project, table, variant_col=variant_column, control=control, metrics=_names(metrics),
            covariates=_names(covariates or ""), campaign_id=table_id, uplift_metric=uplift_metric,
            features=_names(features) if features else None, seed=seed)
    show.campaigns([result])


def _names(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


report_app = typer.Typer(help="Self-contained HTML reports.", no_args_is_help=True)
app.add_typer(report_app, name="report")


@report_app.command("campaign")
@handle_errors
def report_campaign(
    campaign_id: Annotated[str, typer.Argument(help="The campaign id.")],
    out_file: Annotated[Path | None, typer.Option("--out", help="HTML file (default: WORKSPACE/campaigns/ID/report.html).")] = None,
) -> None:
    """A campaign's report: design and SRM, metrics with intervals, guardrails, forest plot, effect over the window."""
    from churnkit.flows import report as report_flow
    with steps("campaign report") as say:
        say("outcomes, statistics, charts")
        path = report_flow.campaign(state.project, campaign_id, out_file)
    out.print(f"campaign report for {campaign_id}: {path} ({path.stat().st_size / 1024:,.0f} KiB)")


@report_app.command("weekly")
@handle_errors
def report_weekly(
    out_file: Annotated[Path | None, typer.Option("--out", help="HTML file (default: WORKSPACE/reports/weekly_WEEK.html).")] = None,
) -> None:
    """The weekly operations report: KPI tiles, lifecycle moves, segments, retention, open alerts, value at risk, lists."""
    from churnkit.flows import report as report_flow
    with steps("weekly report") as say:
        say("KPIs, cohorts, alerts, scores")
        made = report_flow.weekly(state.project, out_file)
    out.print(f"weekly report for the week of {made.week}: {made.path} ({made.path.stat().st_size / 1024:,.0f} KiB)")


@report_app.command("model")
@handle_errors
def report_model(
    problem: Annotated[str, typer.Argument(help="Problem name (or YAML path) of the registered model.")],
    version: Annotated[int | None, typer.Option(help="Version (default: the champion, else the latest).")] = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="HTML file (default: WORKSPACE/reports/model_PROBLEM_vN.html).")] = None,
) -> None:
    """A model version's card: intended use, data, features, test metrics with baselines and intervals, charts, SHAP, monitoring, limits."""
    from churnkit.flows import model_card as model_card_flow
    with steps("model card") as say:
        say("registry, test rows, SHAP, monitoring")
        made = model_card_flow.model_card(state.project, problem, version, out_file)
    out.print(f"model card for {problem} v{made.version}: {made.path} ({made.path.stat().st_size / 1024:,.0f} KiB)")


@app.command()
@handle_errors
def sources() -> None:
    """List the built-in source configs."""
    for name, path in presets("sources").items():
        out.print(f"{name}\t{path}")


@app.command()
@handle_errors
def demo(
    users: Annotated[int | None, typer.Option(help="Users to simulate.")] = None,
    days: Annotated[int | None, typer.Option(help="Days to simulate.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    trials: Annotated[int, typer.Option(help="Optuna trials per model (small: a demo, not a tuned model).")] = 3,
    top: Annotated[int, typer.Option(help="Rows in each demo list.")] = 100,
) -> None:
    """Run the whole flow on simulated data: simulate, ingest, build, train, promote, score, lists."""
    from churnkit.flows import demo as demo_flow
    out.rule(f"1/{len(demo_flow.STEPS)} {demo_flow.STEPS[0]}")
    with steps("demo") as say:
        demo_flow.demo(state.project, users=users, days=days, seed=seed, trials=trials, top=top,
                       on_step=show.demo_step, progress=say)
    show.demo_done(state.project)


@app.command()
@handle_errors
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 3000,
    tracking_uri: TrackingOption = None,
    reload_seconds: Annotated[
        float | None, typer.Option(help="Check the champion aliases every N seconds and swap in new ones.")
    ] = None,
) -> None:
    """Start the prediction service (BentoML) on the workspace's champion models and snapshot."""
    from churnkit.service import launch
    root = state.project.workspace.root
    env = launch.serve_env(root, state.config_path, tracking_uri, reload_seconds)
    for warning in launch.check_start(host, port, env):
        err.print(f"[bold yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    out.print(f"serving {root.resolve()} on http://{host}:{port} (docs: /docs.json)")
    launch.exec_server(host, port, env)
