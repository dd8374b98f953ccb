"""Connections and workspace tables for the feature engine (the I/O edge of features).

DuckDB is the embedded default; any Ibis backend whose tables have the event contract's
columns works with :mod:`churnkit.features.build` (Spark via ``ibis.pyspark.connect``).
Every connection runs in UTC so day truncation means the same thing everywhere.
"""

from __future__ import annotations

import functools
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from churnkit.contracts import EVENT_COLUMNS, EVENT_IBIS_SCHEMA, OPTIONAL_STRING_FIELDS
from churnkit.errors import ChurnkitError
from churnkit.io.workspace import Workspace


def duckdb_connection(memory_limit: str | None = None, threads: int | None = None) -> Any:
    con = ibis.duckdb.connect()
    con.raw_sql("SET TimeZone = 'UTC'")
    if memory_limit:
        con.raw_sql(f"SET memory_limit = '{memory_limit}'")
    if threads:
        con.raw_sql(f"SET threads = {int(threads)}")
    return con


def spark_connection(master: str = "local[*]", conf: dict[str, str] | None = None) -> Any:
    """An Ibis pyspark backend on a (new or running) Spark session in UTC.

    Spark is optional (``pip install 'churnkit[spark]'``); its session time zone decides
    how timestamps truncate to days, so it is pinned to UTC like every DuckDB connection.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ChurnkitError("the spark engine needs pyspark: pip install 'churnkit[spark]'") from None
    builder = (
        SparkSession.builder.master(master)
        .appName("churnkit")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "8")
    )
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    return ibis.pyspark.connect(builder.getOrCreate())


def connect(engine: str, memory_limit: str | None = None) -> Any:
    """The feature engine by name: ``duckdb`` (embedded default) or ``spark``."""
    if engine == "duckdb":
        return duckdb_connection(memory_limit)
    if engine == "spark":
        return spark_connection()
    raise ChurnkitError(f"unknown engine {engine!r}: use duckdb or spark")


def is_spark(con: Any) -> bool:
    return getattr(con, "name", "") == "pyspark"


def workspace_events(con: Any, ws: Workspace) -> ir.Table:
    if not ws.events_dir.exists() or not any(ws.events_dir.rglob("*.parquet")):
        raise ChurnkitError(f"no events in {ws.events_dir}: run `churnkit ingest` first")
    if is_spark(con):
        # Spark discovers the month=... partitions of a folder itself (and rejects ** globs)
        t = con.read_parquet(str(ws.events_dir))
    else:
        t = con.read_parquet(ws.events_glob(), hive_partitioning=True)
    return contract_events(t)


def contract_events(t: ir.Table) -> ir.Table:
    """A table of events in the contract's columns and types; an optional column it lacks
    (events stored before ``order_id`` joined the contract, a simulator log) is all null."""
    t = t.mutate(**{c: ibis.null(EVENT_IBIS_SCHEMA[c]) for c in EVENT_COLUMNS if c not in t.columns})
    return t.select(*EVENT_COLUMNS).cast(EVENT_IBIS_SCHEMA)


def workspace_users(con: Any, ws: Workspace) -> ir.Table | None:
    if not ws.users_path.exists():
        return None
    t = con.read_parquet(str(ws.users_path))
    if "signup_ts" in t.columns:
        t = t.mutate(signup_ts=t.signup_ts.cast("timestamp('UTC')"))
    return t


def workspace_assignments(con: Any, ws: Workspace) -> ir.Table | None:
    """The ingested campaign assignments (``ASSIGNMENTS_ARROW_SCHEMA``), None without them."""
    if not ws.assignments_path.exists():
        return None
    t = con.read_parquet(str(ws.assignments_path))
    t = t.mutate(assigned_ts=t.assigned_ts.cast("timestamp('UTC')"))
    if "design" not in t.columns:  # ingested before campaigns declared a design: none declared
        t = t.mutate(design=ibis.null("string"))
    return t


@functools.cache
def use_utc_default_backend() -> None:
    """Memtables execute on Ibis's default backend: make it an embedded DuckDB in UTC (once)."""
    ibis.set_backend(duckdb_connection())


def users_memtable(users: pd.DataFrame | None) -> ir.Table | None:
    if users is None:
        return None
    use_utc_default_backend()
    frame = users.copy()
    if "signup_ts" in frame.columns:
        frame["signup_ts"] = pd.to_datetime(frame["signup_ts"], utc=True).astype("datetime64[us, UTC]")
    return ibis.memtable(frame)


def events_memtable(events: pd.DataFrame) -> ir.Table:
    """An in-memory events table (one user's recent events, a test log) in contract form."""
    use_utc_default_backend()
    df = events.copy()
    for col in EVENT_COLUMNS:
        if col not in df.columns:
            df[col] = None
    df = df[list(EVENT_COLUMNS)]
    df["ts"] = pd.to_datetime(df["ts"], utc=True).astype("datetime64[us, UTC]")
    df["amount"] = pd.to_numeric(df["amount"], errors="raise").astype("float64")
    for col in ("user_id", "event", *OPTIONAL_STRING_FIELDS):
        df[col] = df[col].astype("object").where(df[col].notna(), None)
    return ibis.memtable(df, schema=EVENT_IBIS_SCHEMA)


def only_users(table: ir.Table, user_ids: Any) -> ir.Table:
    """The rows of these users: a semi-join on an in-memory id table, so any number of ids
    stays one small query (no literal IN list)."""
    ids = ibis.memtable(pd.DataFrame({"user_id": pd.Series(list(user_ids), dtype="string")}))
    return table.filter(table.user_id.isin(ids.user_id))
