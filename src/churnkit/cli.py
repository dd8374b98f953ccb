"""The ``churnkit`` command line: thin wrappers that parse options, call the package, print.

User errors (:class:`ChurnkitError`) become one line on stderr and exit code 1; any other
exception is reported in one line too (exit 2) unless ``CHURNKIT_DEBUG=1`` asks for the
traceback.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from churnkit import __version__
from churnkit.config import ChurnkitConfig, load_churnkit_config
from churnkit.errors import ChurnkitError
from churnkit.workspace import Workspace

app = typer.Typer(
    name="churnkit",
    help="Churn, purchase and lifetime-value scores from behaviour logs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)


class State:
    config: ChurnkitConfig
    workspace: Workspace


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
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as progress:
        task = progress.add_task(description, total=None, note="")

        def update(done: float, total: float | None = None, note: str | None = None) -> None:
            progress.update(task, completed=done, total=total, note=note or "")

        yield update


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
    state.config = load_churnkit_config(config)
    state.workspace = Workspace(Path(workspace) if workspace else state.config.workspace)


# --------------------------------------------------------------------------- helpers


def parse_date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ChurnkitError(f"{option}: '{value}' is not a date (expected YYYY-MM-DD)") from None


def parse_as_of(value: str | None) -> dt.datetime | None:
    """A date means the end of that day: events during it are accepted."""
    if value is None:
        return None
    try:
        ts = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ChurnkitError(f"--as-of: '{value}' is not a date or timestamp (YYYY-MM-DD[THH:MM])") from None
    if len(value) == 10:
        ts = ts + dt.timedelta(days=1)
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=dt.UTC)
    return ts.astimezone(dt.UTC)


def print_ingest_summary(summary: dict[str, Any]) -> None:
    out.print(
        f"read {summary['read']:,} = accepted {summary['accepted']:,}"
        f" + duplicates {summary['duplicates']:,} + rejected {summary['rejected']:,}"
    )
    for reason, n in sorted(summary["rejected_by_reason"].items(), key=lambda kv: -kv[1]):
        out.print(f"  rejected {reason}: {n:,}")
    out.print(f"users {summary['users']:,}; events from {summary['first_ts']} to {summary['last_ts']}")
    for label, key in (("events", "events_path"), ("quarantine", "quarantine_path"), ("summary", "summary_path")):
        if summary.get(key):
            out.print(f"{label}: {summary[key]}")


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
    from churnkit.simulate import simulate as run_simulation
    from churnkit.simulate import write_simulation

    params = simulation_params(
        users, days, seed,
        start=parse_date(start, "--start") if start else None,
        horizons=_int_list(horizons, "--horizons") if horizons else None,
        cutoffs=[parse_date(c.strip(), "--cutoffs") for c in cutoffs.split(",")] if cutoffs else None,
    )
    target = Path(out_dir) if out_dir else state.workspace.simulation_dir
    with progress_bar("simulating") as update:
        result = run_simulation(params, progress=update)
    with progress_bar("writing") as update:
        paths = write_simulation(result, target)
    out.print(f"simulated {result.n_users:,} users over {params.days} days: {result.n_events:,} events")
    for name, path in paths.items():
        out.print(f"{name}: {path}")


def simulation_params(
    users: int | None, days: int | None, seed: int | None, *, start: dt.date | None = None,
    horizons: list[int] | None = None, cutoffs: list[dt.date] | None = None,
) -> Any:
    """Simulation parameters: the config's ``simulate`` section, overridden by options given."""
    from churnkit.simulate import SimulationParams

    cfg = state.config.simulate
    return SimulationParams(
        users=users if users is not None else cfg.users,
        days=days if days is not None else cfg.days,
        seed=seed if seed is not None else cfg.seed,
        start=start or cfg.start,
        horizons=horizons or list(cfg.horizons),
        cutoffs=cutoffs,
        cutoff_step_days=cfg.cutoff_step_days,
        observable=cfg.observable,
    )


def _int_list(value: str, option: str) -> list[int]:
    try:
        items = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise ChurnkitError(f"{option}: expected comma-separated whole numbers, got '{value}'") from None
    if not items or any(i <= 0 for i in items):
        raise ChurnkitError(f"{option}: expected positive whole numbers, got '{value}'")
    return items


@app.command()
@handle_errors
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders of raw events.")],
    source: Annotated[str, typer.Option(help="Source YAML path, or a built-in source name (see `churnkit sources`).")],
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Reject events after this date (default: now).")
    ] = None,
    users: Annotated[Path | None, typer.Option(help="Users table, overriding the source's.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Validate raw logs into workspace events, with a quarantine of rejected rows."""
    from churnkit.events.ingest import ingest as run_ingest
    from churnkit.events.sources import resolve_source

    src = resolve_source(source)
    with progress_bar(f"ingesting {src.name}") as update:
        summary = run_ingest(
            paths,
            src,
            state.workspace,
            as_of=parse_as_of(as_of),
            settings=state.config.ingest,
            users_path=users,
            progress=update,
        )
    if as_json:
        out.print_json(json.dumps(summary))
    else:
        print_ingest_summary(summary)


@app.command()
@handle_errors
def build(
    problem: Annotated[str, typer.Option(help="Problem name (configs/problems/NAME.yaml) or a YAML path.")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Training set Parquet (default: WORKSPACE/datasets/NAME.parquet).")
    ] = None,
    engine: Annotated[
        str, typer.Option(help="Feature engine: duckdb (embedded) or spark (local Spark via Ibis; needs churnkit[spark]).")
    ] = "duckdb",
) -> None:
    """Build a problem's point-in-time training set and its feature manifest."""
    from churnkit.warehouse import connect

    build_and_write(problem, connect(engine, state.config.ingest.duckdb_memory_limit), out_file)


def build_and_write(problem: str, con: Any, out_file: Path | None = None) -> None:
    """Build one problem's training set on a connection, write it with its manifest, print."""
    from churnkit.dataset import (
        build_training_set,
        default_dataset_path,
        load_problem,
        write_training_set,
    )
    from churnkit.warehouse import workspace_events, workspace_users

    spec = load_problem(problem)
    ws = state.workspace
    with progress_bar(f"building {spec.name}") as update:
        update(0, None, "features and labels")
        df, manifest = build_training_set(workspace_events(con, ws), workspace_users(con, ws), spec)
    path, mpath = write_training_set(df, manifest, Path(out_file) if out_file else default_dataset_path(ws, spec.name))
    print_build_summary(manifest, path, mpath)


def print_build_summary(manifest: dict[str, Any], path: Path, mpath: Path) -> None:
    p = manifest["problem"]
    cuts = manifest["cutoffs"]
    label = "mean revenue" if p["kind"] == "revenue" else f"{p['kind']} rate"
    rate = sum(c["rows"] * c["label_mean"] for c in manifest["per_cutoff"]) / max(manifest["rows"], 1)
    out.print(
        f"{p['name']}: {manifest['rows']:,} rows x {len(manifest['features'])} features over {len(cuts)} cutoffs"
        f" ({cuts[0]} .. {cuts[-1]}); {label} {rate:.3f}"
    )
    out.print(f"training set: {path}")
    out.print(f"manifest: {mpath}")


@app.command()
@handle_errors
def train(
    problem: Annotated[str, typer.Option(help="Problem name (configs/problems/NAME.yaml) or a YAML path.")],
    trials: Annotated[int | None, typer.Option(help="Optuna trials (default: the problem's tuning.n_trials).")] = None,
    timeout: Annotated[float | None, typer.Option(help="Stop tuning after this many seconds.")] = None,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, config, or the workspace's SQLite).")
    ] = None,
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
    from churnkit.evaluate import compare_table
    from churnkit.train import TrainOptions, run_training

    options = TrainOptions(
        trials=trials, timeout=timeout, seed=seed if seed is not None else state.config.seed,
        storage=storage, study_name=study_name, n_folds=folds, bgnbd=bgnbd, stack_bgnbd=stack_bgnbd,
    )
    with progress_bar(f"training {problem}") as update:
        outcome = run_training(
            state.workspace, problem, options, tracking_uri=tracking_uri,
            configured_uri=state.config.tracking_uri, memory_limit=state.config.ingest.duckdb_memory_limit,
            progress=lambda msg: update(0, None, msg),
        )
    r = outcome.result
    out.print(f"{r.problem.name}: {'rebuilt' if outcome.rebuilt else 'reused'} training set {outcome.dataset}")
    out.print(r.plan.describe())
    out.print(f"tuning: {r.tuning.n_trials_done} trials, best {r.tuning.best_value:.5f}")
    table = compare_table(r.metrics)
    out.print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    for line in r.summary_metrics().items():
        if "_share_" in line[0]:
            out.print(f"{line[0]}: {line[1]:.3f}")
    for note in r.notes:
        out.print(f"note: {note}")
    out.print(f"MLflow run {outcome.run_id} at {outcome.tracking_uri}")
    out.print(f"registered churnkit-{r.problem.name} version {outcome.version} (alias challenger)")


@app.command()
@handle_errors
def promote(
    problem: Annotated[str, typer.Option(help="Problem name.")],
    force: Annotated[bool, typer.Option(help="Promote even if the challenger does not beat the champion.")] = False,
    version: Annotated[int | None, typer.Option(help="Promote this version instead of the challenger.")] = None,
    rollback: Annotated[bool, typer.Option(help="Set champion back to the previous champion (or --version).")] = False,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI.")] = None,
) -> None:
    """Make the challenger the champion if it beats it on the same test cutoffs (recorded either way)."""
    from churnkit import tracking
    from churnkit.train import promote_problem

    if rollback:
        tracking.open_store(state.workspace.root, state.config.tracking_uri, tracking_uri)
        v = tracking.rollback(problem, version)
        out.print(f"churnkit-{problem}: champion is now version {v} (rollback recorded)")
        return
    res = promote_problem(
        state.workspace, problem, force=force, version=version,
        tracking_uri=tracking_uri, configured_uri=state.config.tracking_uri,
    )
    out.print(res.decision.as_text())
    out.print(f"churnkit-{problem}: champion is version {res.champion}"
              + (f" (was {res.previous_champion})" if res.previous_champion not in (None, res.champion) else ""))


# --------------------------------------------------------------------------- scores and lists


def _as_of_option(value: str | None) -> dt.date | None:
    return parse_date(value, "--as-of") if value else None


def _resolve_as_of(as_of: dt.date | None) -> dt.date:
    """The date given, else the data end (the day after the last event)."""
    if as_of is not None:
        return as_of
    from churnkit.scoring import default_as_of
    from churnkit.warehouse import duckdb_connection, workspace_events

    con = duckdb_connection(state.config.ingest.duckdb_memory_limit)
    return default_as_of(workspace_events(con, state.workspace))


def _run_scoring(as_of: dt.date | None, out_file: Path | None = None, tracking_uri: str | None = None) -> Any:
    from churnkit.scoring import run_scoring

    with progress_bar("scoring") as update:
        return run_scoring(
            state.workspace, as_of, settings=state.config.scoring, tracking_uri=tracking_uri,
            configured_uri=state.config.tracking_uri, memory_limit=state.config.ingest.duckdb_memory_limit,
            out=out_file, progress=lambda msg: update(0, None, msg),
        )


def print_score_summary(outcome: Any) -> None:
    meta, s = outcome.meta, outcome.meta["summary"]
    versions = ", ".join(f"{r} {v['problem']} v{v['version']}" for r, v in meta["versions"].items())
    out.print(f"scored {s['users']:,} users as of {meta['as_of']} in {meta['seconds']:.1f} s ({versions})")
    for col in ("churn_probability", "purchase_probability", "predicted_ltv"):
        if col in s:
            d = s[col]
            out.print(f"  {col}: mean {d['mean']:.3f}, median {d['p50']:.3f}, p90 {d['p90']:.3f}")
    inside = ", ".join(f"{r} {s[f'{r}_in_population']:,}" for r in ("churn", "purchase", "ltv"))
    out.print(f"  inside each model's training population: {inside}")
    out.print(f"  total value at risk {s['value_at_risk_total']:,.2f}")
    if "by_lifecycle_stage" in s:
        out.print("  stages: " + ", ".join(f"{k} {v:,}" for k, v in s["by_lifecycle_stage"].items()))
    out.print(f"scores: {outcome.path}")
    out.print(f"versions and RFM thresholds: {outcome.meta_path}")
    if outcome.run_id:
        out.print(f"MLflow run {outcome.run_id} (experiment churnkit-scoring)")


def _scores_for(as_of: dt.date | None, tracking_uri: str | None) -> tuple[Any, dt.date]:
    """The scores file for the date; scored first when there is none."""
    from churnkit.scoring import read_scores, scores_path

    date = _resolve_as_of(as_of)
    path = scores_path(state.workspace, date)
    if not path.exists():
        out.print(f"no scores for {date} yet: scoring first")
        print_score_summary(_run_scoring(date, tracking_uri=tracking_uri))
    return read_scores(path), date


def _pseudonym_key(pseudonymise: bool) -> bytes | None:
    """Checked before any work: asking for pseudonyms without a key is a one-line error."""
    from churnkit.lists import pseudonym_key

    return pseudonym_key(state.config.scoring.pseudonym_key_env) if pseudonymise else None


def _write_list(kind: str, df: Any, date: dt.date, fmt: str | None, out_file: Path | None, key: bytes | None) -> Path:
    from churnkit.lists import list_format, with_pseudonyms, write_list

    chosen = list_format(fmt, out_file)
    if key is not None:
        df = with_pseudonyms(df, key)
    path = Path(out_file) if out_file else state.workspace.root / "lists" / f"{kind}_{date.isoformat()}.{chosen}"
    return write_list(df, path, chosen)


def print_list_summary(title: str, value: str, summary: dict[str, Any], path: Path) -> None:
    out.print(f"{title}: {summary['users']:,} users, total {value} {summary['total']:,.2f}")
    for col, label in (("by_lifecycle_stage", "by stage"), ("by_rfm_tier", "by tier")):
        items = list(summary.get(col, {}).items())
        if items:
            shown = ", ".join(f"{k} {v['users']:,} ({v['total']:,.2f})" for k, v in items[:6])
            out.print(f"  {label}: {shown}{' ...' if len(items) > 6 else ''}")
    out.print(f"list: {path}")


AsOfOption = Annotated[
    str | None, typer.Option("--as-of", help="Scoring date YYYY-MM-DD: features use events before it (default: data end).")
]
FormatOption = Annotated[str | None, typer.Option("--format", help="csv, xlsx or parquet (default: from --out, else csv).")]
TrackingOption = Annotated[str | None, typer.Option(help="MLflow tracking URI (default: as for train).")]
PseudonymiseOption = Annotated[
    bool, typer.Option("--pseudonymise", help="Replace user ids by keyed hashes (key from CHURNKIT_PSEUDONYM_KEY).")
]


@app.command()
@handle_errors
def score(
    as_of: AsOfOption = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Scores Parquet (default: WORKSPACE/scores/scores_DATE.parquet).")
    ] = None,
    tracking_uri: TrackingOption = None,
) -> None:
    """Score every user with history at a date: churn, purchase, LTV, value at risk, tier, stage, reasons."""
    print_score_summary(_run_scoring(_as_of_option(as_of), out_file, tracking_uri))


@app.command("risk-list")
@handle_errors
def risk_list_command(
    as_of: AsOfOption = None,
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
    from churnkit.lists import risk_list

    _list_command(
        "risk", "value at risk", "value_at_risk",
        lambda scores: risk_list(scores, top=top, min_value=min_value, stage=stage or None, tier=tier or None,
                                 min_probability=min_probability),
        as_of, fmt, out_file, pseudonymise, tracking_uri,
    )


@app.command("recall-list")
@handle_errors
def recall_list_command(
    as_of: AsOfOption = None,
    top: Annotated[int | None, typer.Option(help="Keep the N users most worth winning back.")] = None,
    tier: Annotated[list[str] | None, typer.Option(help="RFM tier(s).")] = None,
    fmt: FormatOption = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Output file (default: WORKSPACE/lists/recall_DATE.FORMAT).")] = None,
    pseudonymise: PseudonymiseOption = False,
    tracking_uri: TrackingOption = None,
) -> None:
    """Silent and churned users, ranked by purchase probability x predicted LTV."""
    from churnkit.lists import recall_list

    _list_command("recall", "recall value", "recall_value", lambda scores: recall_list(scores, top=top, tier=tier or None),
                  as_of, fmt, out_file, pseudonymise, tracking_uri)


def _list_command(
    kind: str, label: str, value_col: str, select: Callable[[Any], Any], as_of: str | None,
    fmt: str | None, out_file: Path | None, pseudonymise: bool, tracking_uri: str | None,
) -> None:
    """What both lists do around their selection: check options first, read or make the
    scores, write the list (pseudonymised on request) and print its summary."""
    from churnkit.lists import list_format, list_summary

    key = _pseudonym_key(pseudonymise)
    list_format(fmt, out_file)
    scores, date = _scores_for(_as_of_option(as_of), tracking_uri)
    df = select(scores)
    path = _write_list(kind, df, date, fmt, out_file, key)
    print_list_summary(f"{kind} list as of {date}", label, list_summary(df, value_col), path)


@app.command()
@handle_errors
def sources() -> None:
    """List the built-in source configs."""
    from churnkit.events.sources import builtin_sources

    for name, path in builtin_sources().items():
        out.print(f"{name}\t{path}")


DEMO_PROBLEMS = ("churn_ga4", "purchase_ga4", "revenue_ga4")


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
    from churnkit.events.ingest import ingest as run_ingest
    from churnkit.events.sources import resolve_source
    from churnkit.simulate import simulate as run_simulation
    from churnkit.simulate import write_simulation

    ws = state.workspace
    params = simulation_params(users, days, seed)
    out.rule("1/6 simulate")
    with progress_bar("simulating") as update:
        result = run_simulation(params, progress=update)
    paths = write_simulation(result, ws.simulation_dir)
    out.print(f"simulated {result.n_users:,} users over {params.days} days: {result.n_events:,} events")
    for name, path in paths.items():
        out.print(f"  {name}: {path}")

    out.rule("2/6 ingest")
    end_of_log = dt.datetime.combine(params.end, dt.time(), dt.UTC)
    with progress_bar("ingesting") as update:
        summary = run_ingest(
            [ws.simulation_dir],
            resolve_source("simulator"),
            ws,
            as_of=end_of_log,
            settings=state.config.ingest,
            progress=update,
        )
    print_ingest_summary(summary)

    out.rule("3/6 build training sets")
    from churnkit.warehouse import duckdb_connection

    con = duckdb_connection(state.config.ingest.duckdb_memory_limit)
    for name in DEMO_PROBLEMS:
        build_and_write(name, con)

    out.rule("4/6 train and promote")
    from churnkit import tracking
    from churnkit.train import HEADLINE, TrainOptions, promote_problem, run_training

    options = TrainOptions(trials=trials, seed=params.seed, bgnbd=False)
    for name in DEMO_PROBLEMS:
        with progress_bar(f"training {name}") as update:
            outcome = run_training(ws, name, options, configured_uri=state.config.tracking_uri,
                                   memory_limit=state.config.ingest.duckdb_memory_limit,
                                   progress=lambda msg: update(0, None, msg))
        res = promote_problem(ws, name, configured_uri=state.config.tracking_uri)
        metric, _ = HEADLINE[outcome.result.kind]
        value = outcome.result.metrics["model"].get(metric, float("nan"))
        shares = outcome.result.summary_metrics()
        reached = ", ".join(
            f"{shares[key]:.0%} of the {label}"
            for key, label in ((f"test_truth_share_{metric}", "latent truth"),
                               (f"test_observable_share_{metric}", "observable ceiling"))
            if key in shares
        )
        out.print(f"{name}: version {outcome.version}, test {metric} {value:.3f}"
                  f"{f' ({reached})' if reached else ''}; champion is version {res.champion}")

    out.rule("5/6 score")
    from churnkit.lists import list_summary, recall_list, risk_list

    scored = _run_scoring(None)
    print_score_summary(scored)
    date = dt.date.fromisoformat(scored.meta["as_of"])

    out.rule("6/6 lists")
    risk = risk_list(scored.scores, top=top)
    path = _write_list("risk", risk, date, "csv", None, None)
    print_list_summary(f"risk list (top {top})", "value at risk", list_summary(risk, "value_at_risk"), path)
    recall = recall_list(scored.scores, top=top)
    path = _write_list("recall", recall, date, "csv", None, None)
    print_list_summary(f"recall list (top {top})", "recall value", list_summary(recall, "recall_value"), path)

    out.rule("done")
    out.print(f"workspace: {ws.root.resolve()}")
    uri = tracking.current_uri() or tracking.default_tracking_uri(ws.root)
    if uri.startswith("sqlite:///"):
        out.print(f"MLflow UI: mlflow ui --backend-store-uri {uri}   (then open http://127.0.0.1:5000)",
                  soft_wrap=True, highlight=False)
    else:
        out.print(f"MLflow: {tracking.redact(uri)}")
    out.print(f"next: churnkit --workspace {ws.root} risk-list --format xlsx --top 500")


@app.command()
@handle_errors
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to listen on (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 3000,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI (default: as for score).")] = None,
    reload_seconds: Annotated[
        float | None, typer.Option(help="Check the champion aliases every N seconds and swap in new ones.")
    ] = None,
) -> None:
    """Start the prediction service (BentoML) on the workspace's champion models and snapshot."""
    from churnkit.serve import check_start, exec_server, serve_env

    config = (ctx.parent.params.get("config") if ctx.parent else None) or None
    env = serve_env(state.workspace.root, config, tracking_uri, reload_seconds)
    for warning in check_start(host, port, env):
        err.print(f"[bold yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    out.print(f"serving {state.workspace.root.resolve()} on http://{host}:{port} (docs: /docs.json)")
    exec_server(host, port, env)


def run() -> None:  # pragma: no cover - console entry point alias
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
