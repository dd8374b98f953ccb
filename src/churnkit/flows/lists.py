"""``churnkit risk-list`` / ``recall-list``: a ranked list from the scores of a date, written.

The scores file for the date is read, or made first when there is none; the list is cut by
the pure functions of :mod:`churnkit.scoring.lists`, pseudonymised on request and written
as CSV, XLSX or Parquet.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from churnkit.contracts import model_version_column, reason_columns
from churnkit.errors import ChurnkitError
from churnkit.flows.project import Project
from churnkit.flows.score import ScoringOutcome, data_end, load_scorer, score, stored_fit
from churnkit.io.artifacts import list_format, write_list
from churnkit.io.warehouse import only_users
from churnkit.scoring.lists import MIN_KEY_CHARS, list_summary, ranking, with_pseudonyms


@dataclass
class ListOutcome:
    kind: str
    value: str
    """The column the list is ranked by (see :func:`churnkit.scoring.lists.ranking`)."""
    frame: pd.DataFrame
    path: Path
    as_of: dt.date
    summary: dict[str, Any]
    scored: ScoringOutcome | None
    """The scoring run made first, when the date had no scores yet."""


def pseudonym_key(env_var: str) -> bytes:
    """The secret for pseudonyms, from the environment; a clear error when it is not set."""
    key = os.environ.get(env_var, "")
    make = "make one with: python -c 'import secrets; print(secrets.token_hex(32))'"
    if not key.strip():
        raise ChurnkitError(f"--pseudonymise needs a secret key in the environment variable {env_var}; {make}")
    if len(key) < MIN_KEY_CHARS:
        raise ChurnkitError(
            f"the key in {env_var} has {len(key)} characters; a pseudonym key needs at least {MIN_KEY_CHARS}"
            f" (a short key can be guessed, and every pseudonym with it); {make}"
        )
    return key.encode("utf-8")


def scores_for(project: Project, as_of: dt.date | None) -> tuple[pd.DataFrame, dt.date, ScoringOutcome | None]:
    """The scores file for the date (default: the data end); scored first when there is none."""
    date = as_of or data_end(project)
    path = project.workspace.scores_path(date)
    if path.exists():
        return pd.read_parquet(path), date, None
    outcome = score(project, date)
    return outcome.scores, date, outcome


def make_list(
    project: Project,
    kind: str,
    select: Callable[[pd.DataFrame], pd.DataFrame],
    value: str | None = None,
    *,
    as_of: dt.date | None = None,
    fmt: str | None = None,
    out: Path | None = None,
    pseudonymise: bool = False,
) -> ListOutcome:
    """Check the options first (format, key), read or make the scores, cut and write the list.
    ``value`` is the ranking column to total (default: the one the list of ``kind`` ranks by)."""
    key = pseudonym_key(project.config.scoring.pseudonym_key_env) if pseudonymise else None
    chosen = list_format(fmt, out)
    scores, date, scored = scores_for(project, as_of)
    value = value or ranking(kind, scores.columns)
    df = with_reasons(project, select(scores), scored.path if scored else project.workspace.scores_path(date), date)
    shown = with_pseudonyms(df, key) if key is not None else df
    path = write_list(shown, Path(out) if out else project.workspace.list_path(kind, date, chosen), chosen)
    return ListOutcome(kind, value, df, path, date, list_summary(df, value), scored)


def with_reasons(project: Project, df: pd.DataFrame, scores_path: Path, as_of: dt.date) -> pd.DataFrame:
    """The list with reasons on every row it shows: rows the scoring run left unexplained
    (``scoring.reasons_for: top`` explains only the risk ranking's first users) are explained
    now, by the model version that scored them, against the medians that run stored, from
    features of those users alone, so each text is the one a full scoring run gives."""
    cols = reason_columns(list(df.columns))
    version = model_version_column("churn")
    if not cols or not len(df) or version not in df.columns:
        return df
    missing = df[cols].isna().all(axis=1).to_numpy()
    if not missing.any():
        return df
    found = sorted({int(v) for v in df.loc[missing, version].dropna().unique()})
    if len(found) != 1:
        raise ChurnkitError(f"cannot explain the list's rows: they name churn model versions {found}, not one")
    scorer = load_scorer(project, roles=("churn",), versions={"churn": found[0]}, **stored_fit(scores_path))
    events, users = project.tables()
    ids = df.loc[missing, "user_id"].astype(str)
    frames = scorer.features(only_users(events, ids), None if users is None else only_users(users, ids), as_of)
    texts = scorer.churn_reasons_of(frames, top=len(cols)).set_index("user_id").reindex(ids)
    out = df.copy()
    for col in cols:
        values = out[col].to_numpy(dtype=object, copy=True)
        values[missing] = texts[col].to_numpy(dtype=object)
        out[col] = pd.Series(values, index=out.index, dtype="str")
    return out
