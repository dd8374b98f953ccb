"""Connections and workspace tables for the feature engine (the I/O edge of features).

DuckDB is the embedded default; any Ibis backend whose tables have the event contract's
columns works with :mod:`churnkit.features.build` (Spark via ``ibis.pyspark.connect``).
Every connection runs in UTC so day truncation means the same thing everywhere.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from churnkit.errors import ChurnkitError
from churnkit.workspace import Workspace

EVENT_COLUMNS = ["user_id", "ts", "event", "amount", "category", "channel", "campaign_id", "variant"]
EVENT_SCHEMA = ibis.schema(
    {
        "user_id": "string",
        "ts": "timestamp('UTC')",
        "event": "string",
        "amount": "float64",
        "category": "string",
        "channel": "string",
        "campaign_id": "string",
        "variant": "string",
    }
)


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
    return t.select(*EVENT_COLUMNS).cast(EVENT_SCHEMA)


def workspace_users(con: Any, ws: Workspace) -> ir.Table | None:
    if not ws.users_path.exists():
        return None
    t = con.read_parquet(str(ws.users_path))
    if "signup_ts" in t.columns:
        t = t.mutate(signup_ts=t.signup_ts.cast("timestamp('UTC')"))
    return t


def use_utc_default_backend() -> None:
    """Memtables execute on Ibis's default backend: make it an embedded DuckDB in UTC."""
    global _DEFAULT_SET
    if not _DEFAULT_SET:
        ibis.set_backend(duckdb_connection())
        _DEFAULT_SET = True


_DEFAULT_SET = False


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
    df = df[EVENT_COLUMNS]
    df["ts"] = pd.to_datetime(df["ts"], utc=True).astype("datetime64[us, UTC]")
    df["amount"] = pd.to_numeric(df["amount"], errors="raise").astype("float64")
    for col in ("user_id", "event", "category", "channel", "campaign_id", "variant"):
        df[col] = df[col].astype("object").where(df[col].notna(), None)
    return ibis.memtable(df, schema=EVENT_SCHEMA)


_HEX = "0123456789abcdef"
_DIGEST_HEX_CHARS = 7
"""Each row contributes the first 28 bits of its md5: the int64 sum is exact up to 2**35 rows."""


def _row_digest(events: ir.Table) -> ir.IntegerValue:
    """An integer per row from md5 of a canonical text of it, the same on every engine.

    Only portable pieces go into the text: epoch seconds and microseconds as integers (a
    timestamp cast to string carries the zone on DuckDB and not on Spark), the amount in
    millionths as an integer (float-to-string formats differ), and the strings as they are.
    ``.hash()`` is not used: it is a different function on each backend.
    """
    ts = events.ts
    whole = ts.truncate("s")
    text = (
        events.user_id.fill_null("")
        + "|" + whole.epoch_seconds().cast("int64").cast("string").fill_null("")
        + "." + ts.delta(whole, unit="microsecond").cast("int64").cast("string").fill_null("")
        + "|" + events.event.fill_null("")
        + "|" + (events.amount * 1_000_000).round().cast("int64").cast("string").fill_null("")
    )
    md5 = text.hexdigest("md5")
    hexdigits = ibis.literal(_HEX)
    value = hexdigits.find(md5.substr(0, 1))
    for k in range(1, _DIGEST_HEX_CHARS):
        value = value * 16 + hexdigits.find(md5.substr(k, 1))
    return value.cast("int64")


def fingerprint(events: ir.Table) -> dict[str, Any]:
    """Content fingerprint of an events table: stable across file layout, row order and
    engine (DuckDB and Spark give the same dict for the same rows)."""
    row = events.aggregate(
        rows=events.count(),
        users=events.user_id.nunique(),
        first_ts=events.ts.min(),
        last_ts=events.ts.max(),
        digest=_row_digest(events).sum(),
    ).execute().iloc[0]

    def iso(v: Any) -> str | None:
        if pd.isna(v):
            return None
        t = pd.Timestamp(v)
        # Spark hands back zone-less timestamps; every connection runs in UTC
        return (t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")).isoformat()

    return {
        "rows": int(row["rows"]),
        "users": int(row["users"]),
        "first_ts": iso(row["first_ts"]),
        "last_ts": iso(row["last_ts"]),
        "digest": int(row["digest"]) % 1_000_000_007 if not pd.isna(row["digest"]) else 0,
    }


def data_end(fp: dict[str, Any]) -> dt.date:
    """First day after the last event: outcome windows must end by then to be complete."""
    if fp["last_ts"] is None:
        raise ChurnkitError("the events table is empty")
    return pd.Timestamp(fp["last_ts"]).date() + dt.timedelta(days=1)
