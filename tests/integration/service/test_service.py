"""The prediction service end to end: a real ``churnkit serve`` process on a loopback port.

A small simulated workspace is trained (three problems), promoted and scored; the server's
answers must equal batch scoring for the same users and date, bad input must be a 4xx that
names the field, and a newly promoted champion must swap in with no failed request.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from churnkit.contracts import EVENT_COLUMNS
from churnkit.flows.project import Project
from churnkit.flows.promote import promote_problem
from churnkit.flows.score import load_scorer, score
from churnkit.flows.train import train
from churnkit.io import tracking
from churnkit.io.warehouse import duckdb_connection, workspace_events, workspace_users
from churnkit.training.fit import TrainOptions

pytestmark = pytest.mark.slow

PROBLEMS = ("churn_ga4", "purchase_ga4", "revenue_ga4")
START_TIMEOUT_S = 90
MAX_ROWS = 1000
MAX_BODY = 3_000_000
SCORE_COLS = ["churn_probability", "purchase_probability", "predicted_ltv", "ltv_low", "ltv_high", "value_at_risk"]


# --------------------------------------------------------------------------- server process


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``churnkit serve`` in its own process group, so stopping it stops BentoML's workers too."""

    def __init__(self, workspace: Path, log: Path, **env: str):
        self.port = free_port()
        self.log = log
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("CHURNKIT_", "MLFLOW_"))}
        full_env |= {"CHURNKIT_MAX_ROWS": str(MAX_ROWS), "CHURNKIT_MAX_BODY_BYTES": str(MAX_BODY), **env}
        cmd = [sys.executable, "-m", "churnkit.cli", "--workspace", str(workspace), "serve", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=full_env, start_new_session=True
        )
        self.started = time.perf_counter()

    def wait(self, path: str = "/readyz") -> float:
        while time.perf_counter() - self.started < START_TIMEOUT_S:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if self.get(path)[0] == 200:
                    return time.perf_counter() - self.started
            except OSError:
                pass
            time.sleep(0.2)
        pytest.fail(f"server not answering {path} after {START_TIMEOUT_S} s:\n{self.log.read_text()[-3000:]}")

    def request(self, method: str, path: str, body: Any = None, headers: dict | None = None,
                raw: bytes | None = None, chunks: list[bytes] | None = None) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            if chunks is not None:  # no Content-Length: Transfer-Encoding chunked
                conn.request(method, path, iter(chunks), {"Content-Type": "application/json", **(headers or {})},
                             encode_chunked=True)
                resp = conn.getresponse()
                text = resp.read()
                return resp.status, json.loads(text) if text.strip() else None
            data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
            conn.request(method, path, data, {"Content-Type": "application/json", **(headers or {})})
            resp = conn.getresponse()
            text = resp.read()
            try:
                return resp.status, json.loads(text) if text.strip() else None
            except (json.JSONDecodeError, UnicodeDecodeError):
                return resp.status, text.decode(errors="replace")
        finally:
            conn.close()

    def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        return self.request("POST", path, body, **kw)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)


# --------------------------------------------------------------------------- workspace


@pytest.fixture(scope="module")
def scored(trained_workspace) -> dict[str, Any]:
    """The trained workspace, batch-scored at the end of the log."""
    ws, as_of = trained_workspace.ws, trained_workspace.end
    snapshot = score(Project.at(ws), as_of).scores  # what `churnkit score --as-of` writes
    scorer = load_scorer(Project.at(ws))
    con = duckdb_connection()
    events, users = workspace_events(con, ws), workspace_users(con, ws)
    features = scorer.features(events, users, as_of)["churn"]
    raw_events = pd.read_parquet(ws.events_dir)[list(EVENT_COLUMNS)]
    raw_users = pd.read_parquet(ws.users_path)
    return {"ws": ws, "as_of": as_of, "snapshot": snapshot.set_index("user_id"), "features": features,
            "events": raw_events, "users": raw_users, "scorer": scorer}


@pytest.fixture(scope="module")
def server(scored, tmp_path_factory) -> Iterator[Server]:
    srv = Server(scored["ws"].root, tmp_path_factory.mktemp("log") / "serve.log")
    try:
        srv.wait()
        yield srv
    finally:
        srv.stop()


def feature_rows(features: pd.DataFrame, ids: list[str]) -> list[dict[str, Any]]:
    names = [c for c in features.columns if c not in ("user_id", "cutoff")]
    f = features.set_index("user_id").loc[ids, names]
    return [{"user_id": uid, "features": {k: (None if pd.isna(v) else float(v)) for k, v in row.items()}}
            for uid, row in zip(ids, f.to_dict("records"))]


def event_json(events: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for r in events.to_dict("records"):
        item = {k: (None if pd.isna(v) else v) for k, v in r.items()}
        item["ts"] = pd.Timestamp(r["ts"]).isoformat()
        out.append({k: v for k, v in item.items() if v is not None})
    return out


def user_json(users: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for r in users.to_dict("records"):
        item = {k: (None if pd.isna(v) else v) for k, v in r.items()}
        if item.get("signup_ts") is not None:
            item["signup_ts"] = pd.Timestamp(item["signup_ts"]).isoformat()
        out.append(item)
    return out


def assert_scores_equal(got: dict[str, Any], want: pd.Series) -> None:
    for col in SCORE_COLS:
        w = want[col]
        if pd.isna(w):
            assert got[col] is None, col
        else:
            assert got[col] == pytest.approx(float(w), rel=0, abs=1e-9), col


# --------------------------------------------------------------------------- happy paths


def test_health_ready_info_and_openapi(server, scored):
    assert server.get("/healthz")[0] == 200
    assert server.get("/readyz")[0] == 200
    status, info = server.post("/info")
    assert status == 200 and info["ready"] and info["error"] is None
    champions = {r: tracking.aliases(p)["champion"] for r, p in zip(("churn", "purchase", "ltv"), PROBLEMS)}
    assert info["model_versions"] == champions
    assert info["snapshot_as_of"] == str(scored["as_of"]) and info["snapshot_rows"] == len(scored["snapshot"])
    assert info["limits"]["max_rows"] == MAX_ROWS
    status, spec = server.get("/docs.json")
    assert status == 200
    for path in ("/score_users", "/score_features", "/score_events", "/explain", "/info", "/reload"):
        assert path in spec["paths"], path


def test_score_users_from_the_snapshot(server, scored):
    snap = scored["snapshot"]
    ids = list(snap.index[:25]) + ["no-such-user"]
    status, body = server.post("/score_users", {"user_ids": ids})
    assert status == 200 and body["as_of"] == str(scored["as_of"])
    by_id = {r["user_id"]: r for r in body["results"]}
    for uid in ids[:-1]:
        assert by_id[uid]["status"] == "ok"
        assert_scores_equal(by_id[uid], snap.loc[uid])
        assert by_id[uid]["lifecycle_stage"] == snap.loc[uid, "lifecycle_stage"]
        assert by_id[uid]["churn_model_version"] == int(snap.loc[uid, "churn_model_version"])
    assert by_id["no-such-user"] == {"user_id": "no-such-user", "status": "not_found"}


def test_score_features_equals_batch_scoring(server, scored):
    ids = list(scored["snapshot"].index[::9][:60])
    status, body = server.post("/score_features", {"rows": feature_rows(scored["features"], ids)})
    assert status == 200 and [r["user_id"] for r in body] == ids
    for r in body:
        assert_scores_equal(r, scored["snapshot"].loc[r["user_id"]])
        want = scored["snapshot"].loc[r["user_id"], "churn_in_population"]
        assert r["in_population"]["churn"] == (None if pd.isna(want) else bool(want))
        assert set(r["model_versions"]) == {"churn", "purchase", "ltv"}


def _stream(table: Any, chunk: int | None = None) -> bytes:
    """``table`` as an Arrow IPC stream (record batches of at most ``chunk`` rows)."""
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=chunk)
    return sink.getvalue().to_pybytes()


def _arrow_body(rows: list[dict[str, Any]], names: list[str]) -> bytes:
    import pyarrow as pa

    table = pa.table({"user_id": [r["user_id"] for r in rows],
                      **{n: pa.array([r["features"][n] for r in rows], pa.float64()) for n in names}})
    return _stream(table, chunk=max(1, len(rows) // 3))  # several batches


def test_an_arrow_body_gets_the_json_bodys_answer(server, scored):
    """The same rows as JSON and as an Arrow stream (columns in another order, several record
    batches, 1 and 70 rows: inline and in a worker thread) get byte-identical answers."""
    for ids in ([scored["snapshot"].index[3]], list(scored["snapshot"].index[::7][:70])):
        rows = feature_rows(scored["features"], ids)
        names = sorted(rows[0]["features"], reverse=True)
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        answers = []
        for body, kind in ((json.dumps({"rows": rows}).encode(), "application/json"),
                           (_arrow_body(rows, names), "application/vnd.apache.arrow.stream")):
            conn.request("POST", "/score_features", body, {"Content-Type": kind})
            resp = conn.getresponse()
            answers.append((resp.status, resp.getheader("Content-Type"), resp.read()))
        conn.close()
        assert answers[0][0] == 200 and answers[0] == answers[1]


def test_bad_arrow_bodies_are_400_naming_the_column(server, scored):
    import pyarrow as pa

    rows = feature_rows(scored["features"], [scored["snapshot"].index[0]])
    names = list(rows[0]["features"])
    good = pa.ipc.open_stream(_arrow_body(rows, names)).read_all()

    body = _stream
    first = names[0]
    cases = [
        ("not arrow", b'{"rows": []}', "Arrow"),
        ("missing feature", body(good.drop_columns([first])), first),
        ("unknown column", body(good.append_column("shoe_size", pa.array([1.0]))), "shoe_size"),
        ("text values", body(good.set_column(1, first, pa.array(["3"]))), first),
        ("boolean values", body(good.set_column(1, first, pa.array([True]))), first),
        ("NaN", body(good.set_column(1, first, pa.array([float("nan")]))), first),
        ("infinity", body(good.set_column(1, first, pa.array([float("-inf")]))), first),
        ("empty id", body(good.set_column(0, "user_id", pa.array([""]))), "user_id"),
        ("no rows", body(good.slice(0, 0)), "rows"),
        ("too many rows", body(pa.concat_tables([good] * (MAX_ROWS + 1)).combine_chunks()), "rows"),
    ]
    for label, raw, field in cases:
        status, out = server.post("/score_features", raw=raw,
                                  headers={"Content-Type": "application/vnd.apache.arrow.stream"})
        assert status == 400, (label, out)
        assert set(out) == {"error", "detail"} and field in _detail_text(out), (label, out)
    # integers and an all-null column are numbers and missing values, as in JSON
    as_json = {"rows": [{"user_id": "u-int", "features": {**rows[0]["features"], first: 3, names[1]: None}}]}
    table = good.set_column(0, "user_id", pa.array(["u-int"])).set_column(1, first, pa.array([3], pa.int64()))
    table = table.set_column(2, names[1], pa.nulls(1))
    got = server.post("/score_features", raw=body(table), headers={"Content-Type": "application/vnd.apache.arrow.stream"})
    assert got[0] == 200 and got == server.post("/score_features", as_json)


def test_score_events_equals_batch_scoring_in_any_order(server, scored):
    snap = scored["snapshot"]
    inside = snap[snap["churn_in_population"].fillna(False).astype(bool)]
    ids = list(inside.index[:2]) + list(snap.index[-1:])
    ev = scored["events"][scored["events"].user_id.isin(ids)].sample(frac=1.0, random_state=1)  # shuffled
    us = scored["users"][scored["users"].user_id.isin(ids)]
    body = {"as_of": str(scored["as_of"]), "events": event_json(ev), "users": user_json(us)}
    status, out = server.post("/score_events", body)
    assert status == 200, out
    assert out["as_of"] == str(scored["as_of"])
    by_id = {r["user_id"]: r for r in out["results"]}
    assert set(by_id) == set(ids)
    for uid in ids:
        assert by_id[uid]["status"] == "ok"
        assert_scores_equal(by_id[uid], snap.loc[uid])
        for col in ("lifecycle_stage", "rfm_tier", "reason_1", "reason_2", "reason_3"):
            want = snap.loc[uid, col]
            assert by_id[uid][col] == (None if pd.isna(want) else want), col  # no reason: null


def test_explain_one_user(server, scored):
    snap = scored["snapshot"]
    uid = snap[snap["churn_in_population"].fillna(False).astype(bool)].index[0]
    status, out = server.post("/explain", {"user_id": uid, "top": 3})
    assert status == 200, out
    assert out["scores"]["churn_probability"] == pytest.approx(snap.loc[uid, "churn_probability"], abs=1e-9)
    up = out["reasons"]["churn_up"]
    assert 1 <= len(up) <= 3 and all(r["contribution"] > 0 and r["text"] for r in up)
    assert [r["text"] for r in up][:1] == [snap.loc[uid, "reason_1"]]
    status, out = server.post("/explain", {"user_id": "nobody"})
    assert status == 404 and "user_id" in out["error"]


def test_a_service_with_a_role_left_out_answers_for_the_others(scored, tmp_path):
    """``scoring: {purchase: null}``: the purchase columns are absent from every answer, the
    other roles' numbers are the batch's."""
    config = tmp_path / "no_purchase.yaml"
    config.write_text("scoring:\n  purchase: null\n")
    srv = Server(scored["ws"].root, tmp_path / "serve.log", CHURNKIT_CONFIG=str(config))
    try:
        srv.wait()
        status, info = srv.post("/info")
        assert status == 200 and set(info["model_versions"]) == set(info["problems"]) == {"churn", "ltv"}
        snap = scored["snapshot"]
        ids = list(snap.index[::20][:10])
        status, body = srv.post("/score_features", {"rows": feature_rows(scored["features"], ids)})
        assert status == 200, body
        for r in body:
            assert "purchase_probability" not in r and set(r["model_versions"]) == set(r["in_population"])
            assert set(r["model_versions"]) == {"churn", "ltv"}
            for col in ("churn_probability", "predicted_ltv", "ltv_low", "ltv_high", "value_at_risk"):
                assert r[col] == pytest.approx(float(snap.loc[r["user_id"], col]), abs=1e-9), col
        inside = snap[snap["churn_in_population"].fillna(False).astype(bool)].index[:2].tolist()
        ev = scored["events"][scored["events"].user_id.isin(inside)]
        us = scored["users"][scored["users"].user_id.isin(inside)]
        status, out = srv.post("/score_events", {"as_of": str(scored["as_of"]), "events": event_json(ev),
                                                 "users": user_json(us)})
        assert status == 200, out
        assert set(out["model_versions"]) == {"churn", "ltv"}
        for r in out["results"]:
            assert not {"purchase_probability", "purchase_model_version", "purchase_in_population"} & set(r)
            assert r["churn_probability"] == pytest.approx(float(snap.loc[r["user_id"], "churn_probability"]), abs=1e-9)
            assert r["reason_1"] == snap.loc[r["user_id"], "reason_1"]
        status, out = srv.post("/explain", {"user_id": inside[0], "top": 2})
        assert status == 200 and set(out["reasons"]) == {"churn_up", "churn_down", "ltv_up", "ltv_down"}
    finally:
        srv.stop()


# --------------------------------------------------------------------------- bad input


def _one_row(scored) -> dict[str, Any]:
    return feature_rows(scored["features"], [scored["snapshot"].index[0]])[0]


def _bad_feature_bodies(scored) -> list[tuple[str, Any, str]]:
    row = _one_row(scored)
    name = next(iter(row["features"]))
    missing = {"features": {k: v for k, v in row["features"].items() if k != name}}
    extra = {"features": {**row["features"], "shoe_size": 1.0}}
    text = {"features": {**row["features"], name: "3"}}
    boolean = {"features": {**row["features"], name: True}}
    return [
        ("missing feature", {"rows": [missing]}, name),
        ("extra feature", {"rows": [extra]}, "shoe_size"),
        ("string value", {"rows": [text]}, name),
        ("boolean value", {"rows": [boolean]}, name),
        ("empty rows", {"rows": []}, "rows"),
        ("no rows key", {}, "rows"),
        ("too many rows", {"rows": [row] * (MAX_ROWS + 1)}, "rows"),
        ("not a list", {"rows": {"a": 1}}, "rows"),
    ]


def _detail_text(body: Any) -> str:
    return json.dumps(body)


def test_bad_feature_rows_are_400_naming_the_field(server, scored):
    for label, body, field in _bad_feature_bodies(scored):
        status, out = server.post("/score_features", body)
        assert status == 400, (label, out)
        assert field in _detail_text(out), (label, out)
    name = next(iter(_one_row(scored)["features"]))
    for token in ("NaN", "Infinity", "-Infinity"):
        row = _one_row(scored)
        row["features"][name] = "__TOKEN__"
        raw = json.dumps({"rows": [row]}).replace('"__TOKEN__"', token).encode()
        status, out = server.post("/score_features", raw=raw)
        assert status == 400 and name in _detail_text(out), (token, out)
    # the server is still fine afterwards
    assert server.post("/score_features", {"rows": [_one_row(scored)]})[0] == 200


def test_bad_events_are_400_naming_the_field(server, scored):
    uid = scored["snapshot"].index[0]
    ev = event_json(scored["events"][scored["events"].user_id == uid].head(5))
    as_of = str(scored["as_of"])
    future = [*ev, {**ev[0], "ts": f"{as_of}T00:00:00+00:00"}]
    cases = [
        ("future event", {"as_of": as_of, "events": future}, f"events[{len(ev)}].ts"),
        ("unknown event name", {"as_of": as_of, "events": [{**ev[0], "event": "teleport"}]}, "teleport"),
        ("negative amount", {"as_of": as_of, "events": [{**ev[0], "amount": -5}]}, "amount"),
        ("amount past the limit", {"as_of": as_of, "events": [{**ev[0], "event": "purchase", "amount": 1e308}]},
         "amount"),
        ("bad timestamp", {"as_of": as_of, "events": [{**ev[0], "ts": "yesterday"}]}, "ts"),
        ("missing user_id", {"as_of": as_of, "events": [{k: v for k, v in ev[0].items() if k != "user_id"}]},
         "user_id"),
        ("unknown event field", {"as_of": as_of, "events": [{**ev[0], "colour": "red"}]}, "colour"),
        ("no events", {"as_of": as_of, "events": []}, "events"),
        ("bad as_of", {"as_of": "soon", "events": ev}, "as_of"),
        ("no as_of", {"events": ev}, "as_of"),
        ("non-string attribute", {"as_of": as_of, "events": ev, "users": [{"user_id": uid, "region": 5}]},
         "region"),
    ]
    for label, body, field in cases:
        status, out = server.post("/score_events", body)
        assert status == 400, (label, out)
        assert field in _detail_text(out), (label, out)


def test_bad_requests_elsewhere(server):
    cases = [
        ("/score_users", {"user_ids": []}, "user_ids"),
        ("/score_users", {"user_ids": [""]}, "user_ids"),
        ("/score_users", {"user_ids": [7]}, "user_ids"),
        ("/score_users", {"user_ids": ["u"] * (MAX_ROWS + 1)}, "user_ids"),
        ("/explain", {}, "user_id"),
        ("/explain", {"user_id": "x", "top": 0}, "top"),
    ]
    for path, body, field in cases:
        status, out = server.post(path, body)
        assert status == 400, (path, body, out)
        assert field in _detail_text(out), (path, out)
    status, out = server.post("/score_users", raw=b"{not json")
    assert status == 400
    status, out = server.post("/score_users", raw=b"")
    assert status == 400 and "user_ids" in _detail_text(out)
    status, out = server.post("/score_features", raw=b" " * (MAX_BODY + 1))
    assert status == 413 and "limit" in out["error"]
    assert server.get("/healthz")[0] == 200


def test_events_without_users_or_attributes_are_missing_values_not_errors(server, scored):
    snap = scored["snapshot"]
    uid = snap[snap["churn_in_population"].fillna(False).astype(bool)].index[0]
    ev = event_json(scored["events"][scored["events"].user_id == uid])
    as_of = str(scored["as_of"])
    full = user_json(scored["users"][scored["users"].user_id == uid])[0]
    partial = {k: v for k, v in full.items() if k not in ("platform", "region")}
    for label, users in (("absent", ...), ("null", None), ("empty", []), ("no attributes", [partial]),
                         ("someone else", [{**full, "user_id": "other"}])):
        body = {"as_of": as_of, "events": ev} | ({} if users is ... else {"users": users})
        status, out = server.post("/score_events", body)
        assert status == 200, (label, out)
        [row] = out["results"]
        assert row["user_id"] == uid and row["status"] == "ok" and 0 <= row["churn_probability"] <= 1, label
    status, out = server.post("/score_events", {"as_of": as_of, "events": ev, "users": [full, full]})
    assert status == 400 and "more than once" in out["error"] and "users" in _detail_text(out)


def test_rules_for_posted_events_are_the_ingest_rules(server, scored):
    uid = scored["snapshot"].index[0]
    ev = event_json(scored["events"][scored["events"].user_id == uid].head(1))[0]
    as_of = str(scored["as_of"])
    for label, event in (("unix seconds", {**ev, "ts": 1714557600}), ("before min_ts", {**ev, "ts": "1989-12-31T00:00:00Z"})):
        status, out = server.post("/score_events", {"as_of": as_of, "events": [event]})
        assert status == 400 and "ts" in _detail_text(out), (label, out)


def test_strict_bodies_everywhere(server, scored):
    uid = scored["snapshot"].index[0]
    row = _one_row(scored)
    cases = [
        ("/explain", {"user_id": uid, "top": "3"}, "top"),
        ("/explain", {"user_id": uid, "top": True}, "top"),
        ("/explain", {"user_id": "x" * 1_000_000}, "user_id"),
        ("/explain", {"user_id": uid, "colour": "red"}, "colour"),
        ("/score_users", {"user_ids": [uid], "extra": 1}, "extra"),
        ("/score_features", {"rows": [row], "extra": 1}, "extra"),
        ("/score_events", {"as_of": str(scored["as_of"]), "events": [], "extra": 1}, "extra"),
        ("/info", {"extra": 1}, "extra"),
    ]
    for path, body, field in cases:
        status, out = server.post(path, body)
        assert status == 400, (path, field, str(out)[:200])
        assert field in _detail_text(out)[:2000], (path, field)
        assert len(json.dumps(out)) < 5000  # a long bad value is not echoed back


def test_a_chunked_body_over_the_limit_is_413(server):
    status, out = server.post("/score_users", chunks=[b'{"user_ids": ["' + b"a" * 1_000_000 for _ in range(4)])
    assert status == 413 and "limit" in out["error"]
    status, out = server.post("/score_users", chunks=[b'{"user_ids": ', b'["nobody"]}'])
    assert status == 200 and out["results"][0]["status"] == "not_found"


def test_rejected_requests_log_one_line_without_their_data(server):
    secret = "SECRET-USER-4711"
    assert server.post("/score_users", {"user_ids": [secret, 7]})[0] == 400
    assert server.post("/explain", {"user_id": secret, "top": "x"})[0] == 400
    time.sleep(0.5)
    log = server.log.read_text()
    assert secret not in log
    assert "rejected POST /score_users" in log and "Traceback" not in log


def test_schemathesis_finds_no_5xx_and_no_response_that_breaks_the_spec(server, tmp_path):
    """Generated requests from the served spec (bounded, seeded): every answer is declared
    in the spec, matches its schema and is never a server error."""
    exe = Path(sys.executable).with_name("schemathesis")
    checks = ("not_a_server_error,response_schema_conformance,status_code_conformance,"
              "content_type_conformance,response_headers_conformance")
    proc = subprocess.run(
        [str(exe), "run", f"http://127.0.0.1:{server.port}/docs.json", "--max-examples", "25", "--seed", "7",
         "--checks", checks, "--no-color"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "Traceback" not in server.log.read_text()


def _hammer(server: Server, body: dict, clients: int, seconds: float) -> list[tuple[int, Any, float]]:
    """``clients`` threads posting ``body`` for ``seconds``: (status, response, latency) each."""
    out: list[tuple[int, Any, float]] = []
    deadline = time.perf_counter() + seconds

    def client() -> None:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            status, resp = server.post("/score_features", body)
            out.append((status, resp, time.perf_counter() - t0))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    return out


def test_32_clients_single_rows_and_1000_row_batches_get_no_5xx(server, scored):
    ids = list(scored["snapshot"].index)
    single = {"rows": feature_rows(scored["features"], ids[:1])}
    batch = {"rows": feature_rows(scored["features"], (ids * (1000 // len(ids) + 1))[:1000])}
    for label, body in (("single row", single), ("1000-row batch", batch)):
        answers = _hammer(server, body, 32, 6.0)
        statuses = sorted({s for s, _, _ in answers})
        assert answers and statuses == [200], (label, statuses)


def test_shed_load_is_a_503_that_says_so_with_retry_after(scored, tmp_path):
    """With a latency budget no queue can meet, the service sheds: each shed request is told
    why and when to come back, and the log has one line per request, no traceback."""
    srv = Server(scored["ws"].root, tmp_path / "serve.log", CHURNKIT_BATCH_LATENCY_MS="1")
    try:
        srv.wait()
        ids = list(scored["snapshot"].index)
        body = {"rows": feature_rows(scored["features"], (ids * (1000 // len(ids) + 1))[:1000])}
        shed = [r for s, r, _ in _hammer(srv, body, 16, 4.0) if s == 503]
        assert shed, "nothing was shed"
        assert all("shedding load" in r["error"] and "retry after" in r["error"] for r in shed)
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
        retry = []
        for _ in range(40):
            conn.request("POST", "/score_features", json.dumps(body), {"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            if resp.status == 503:
                retry.append(resp.getheader("Retry-After"))
        assert not retry or all(r and r.isdigit() for r in retry)
        time.sleep(0.5)
        assert "Traceback" not in srv.log.read_text()
    finally:
        srv.stop()


# --------------------------------------------------------------------------- reload


def test_reload_swaps_in_a_new_champion_without_failed_requests(server, scored):
    ws = scored["ws"]
    body = {"rows": feature_rows(scored["features"], list(scored["snapshot"].index[:20]))}
    before = server.post("/info")[1]["model_versions"]["churn"]
    new = train(Project.at(ws), "churn_ga4", TrainOptions(trials=1, seed=99, bgnbd=False)).version
    promote_problem(Project.at(ws), "churn_ga4", force=True)

    statuses: list[int] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            statuses.append(server.post("/score_features", body)[0])

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        status, out = server.post("/reload")
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert status == 200 and out["changed"] and out["model_versions"]["churn"] == new != before
    assert statuses and set(statuses) == {200}, sorted(set(statuses))
    assert server.post("/reload")[1]["changed"] is False
    # scores now come from the new churn model
    model = tracking.load_model("churn_ga4", version=new).model
    X = scored["features"].set_index("user_id").loc[[r["user_id"] for r in body["rows"]]]
    want = model.predict_proba(X[list(model.feature_names_in_)])[:, 1]
    got = [r["churn_probability"] for r in server.post("/score_features", body)[1]]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


# --------------------------------------------------------------------------- not ready, auth


def test_not_ready_and_bearer_token(tmp_path):
    """An empty workspace: alive but never ready; the token guards everything but probes."""
    srv = Server(tmp_path / "empty", tmp_path / "serve.log", CHURNKIT_API_TOKEN="s3cret")
    try:
        srv.wait("/healthz")
        auth = {"Authorization": "Bearer s3cret"}
        deadline = time.perf_counter() + 60
        while (info := srv.post("/info", headers=auth)[1])["error"] is None and time.perf_counter() < deadline:
            time.sleep(0.3)
        assert info["ready"] is False and "registered model" in info["error"], info
        assert srv.get("/readyz")[0] == 503
        status, out = srv.post("/score_users", {"user_ids": ["a"]}, headers=auth)
        assert status == 503 and "not ready" in out["error"]
        assert srv.post("/info")[0] == 401
        assert srv.post("/info", headers={"Authorization": "Bearer wrong"})[0] == 401
        assert srv.post("/score_users", {"user_ids": ["a"]})[0] == 401
        assert srv.get("/docs.json")[0] == 200
        # public: the probes, the schema and the UI with its files; everything else needs the token
        assert srv.get("/metrics")[0] == 401 and srv.get("/metrics", headers=auth)[0] == 200
        status, page = srv.get("/")
        assert status == 200
        assets = re.findall(r'(?:src|href)="(\./)?(static_content/[^"]+)"', str(page))
        assert assets and all(srv.get("/" + a[1])[0] == 200 for a in assets[:3]), assets
    finally:
        srv.stop()
