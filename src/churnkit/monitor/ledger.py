"""The alert ledger: one row per alert, kept across runs (a table, not log lines).

An alert is an *episode*: consecutive breaching periods of one rule and segment. Its id is
``<rule>:<segment>:<first period>``, so rerunning on the same data finds the same ids and
changes nothing, and a breach that goes on is the same alert with a later ``last_period``.
Status moves ``open -> acknowledged -> resolved``, each change recording who, when and a
note; an alert resolved while its episode was still running opens again if it goes on.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable

import pandas as pd

from churnkit.errors import ChurnkitError
from churnkit.monitor.anomalies import Breach

COLUMNS = ["id", "rule", "kpi", "segment", "grain", "first_period", "last_period", "periods", "observed",
           "expected", "low", "high", "severity", "drivers", "status", "opened_at", "updated_at", "by", "note"]
STATUSES = ("open", "acknowledged", "resolved")
_SEVERITY = {"warning": 1, "critical": 2}


def empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in COLUMNS})


def _next(period: dt.date, grain: str) -> dt.date:
    if grain == "month":
        return (pd.Timestamp(period) + pd.DateOffset(months=1)).date()
    return period + dt.timedelta(days=7 if grain == "week" else 1)


def episodes(found: Iterable[Breach], grain_of: dict[str, str]) -> list[dict]:
    """Breaches grouped into alerts: consecutive periods of one rule and segment."""
    out: list[dict] = []
    by_key: dict[tuple[str, str], dict] = {}
    for b in sorted(found, key=lambda b: (b.rule, b.segment, b.period)):
        grain = grain_of[b.rule]
        cur = by_key.get((b.rule, b.segment))
        if cur is not None and _next(cur["last_period"], grain) == b.period:
            cur.update(last_period=b.period, periods=cur["periods"] + 1, observed=b.observed, expected=b.expected,
                       low=b.low, high=b.high, drivers=b.drivers)
            if _SEVERITY[b.severity] > _SEVERITY[cur["severity"]]:
                cur["severity"] = b.severity
            continue
        cur = {"id": f"{b.rule}:{b.segment}:{b.period}", "rule": b.rule, "kpi": b.kpi, "segment": b.segment,
               "grain": grain, "first_period": b.period, "last_period": b.period, "periods": 1,
               "observed": b.observed, "expected": b.expected, "low": b.low, "high": b.high, "severity": b.severity,
               "drivers": b.drivers}
        by_key[(b.rule, b.segment)] = cur
        out.append(cur)
    return out


def merge(ledger: pd.DataFrame, found: list[dict], now: dt.datetime) -> tuple[pd.DataFrame, list[str]]:
    """The ledger with ``found`` alerts added or brought up to date; the ids that are new."""
    rows = {r["id"]: dict(r) for r in ledger.to_dict("records")}
    new: list[str] = []
    figures = ("last_period", "periods", "observed", "expected", "low", "high", "severity", "drivers")
    for alert in found:
        old = rows.get(alert["id"])
        if old is None:
            rows[alert["id"]] = {**alert, "status": "open", "opened_at": now, "updated_at": now, "by": None,
                                 "note": None}
            new.append(alert["id"])
            continue
        if all(_same(old[k], alert[k]) for k in figures):
            continue  # same data, same alert: nothing changes
        went_on = pd.Timestamp(alert["last_period"]) > pd.Timestamp(old["last_period"])
        old.update({k: alert[k] for k in figures}, updated_at=now)
        if went_on and old["status"] == "resolved":
            old.update(status="open", note=f"opened again: still breached on {alert['last_period']}")
    out = pd.DataFrame(list(rows.values()), columns=COLUMNS)
    return out.sort_values(["first_period", "id"], kind="stable").reset_index(drop=True), new


def set_status(ledger: pd.DataFrame, alert_id: str, status: str, by: str | None, note: str | None,
               now: dt.datetime) -> pd.DataFrame:
    """``acknowledged`` or ``resolved``, with who and why; one-line errors for an unknown id
    or a move back (a resolved alert cannot be acknowledged)."""
    if status not in STATUSES[1:]:
        raise ChurnkitError(f"status must be acknowledged or resolved, got {status!r}")
    hit = ledger.index[ledger["id"] == alert_id]
    if not len(hit):
        near = [i for i in ledger["id"] if alert_id in i][:3]
        raise ChurnkitError(f"no alert {alert_id!r} in the ledger" + (f" (did you mean {', '.join(near)}?)" if near else ""))
    i = hit[0]
    current = ledger.at[i, "status"]
    if STATUSES.index(status) < STATUSES.index(current) or current == status:
        raise ChurnkitError(f"alert {alert_id} is {current}; it cannot be {status} now")
    out = ledger.copy()
    out.loc[i, ["status", "by", "note", "updated_at"]] = [status, by, note, now]
    return out


def _same(a: object, b: object) -> bool:
    if _missing(a) or _missing(b):
        return _missing(a) and _missing(b)
    if isinstance(a, float) or isinstance(b, float):
        try:
            return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(b)))
        except (TypeError, ValueError):
            return False
    return str(a) == str(b)


def _missing(v: object) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))
