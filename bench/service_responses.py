"""Record the prediction service's answers to a fixed set of requests, and compare two recordings.

Why: a faster ``/score_features`` must answer exactly as before. One recording is made
with the old code (the server started with ``PYTHONPATH`` pointing at it), one with the
new, on the same workspace; :func:`compare` then demands the same status codes, the same
JSON structure and texts, and floats that are bit-identical (it reports the largest
difference when they are not).

The requests are saved beside the answers (``requests.json``) and a comparison run replays
those saved bodies, so both recordings score exactly the same bytes even if the feature
code changed in between.

    PYTHONPATH=src .venv/bin/python bench/bench_service.py --workspace WS --record /tmp/svc-before \
        --server-src /path/to/old/src
    PYTHONPATH=src .venv/bin/python bench/bench_service.py --workspace WS --compare-with /tmp/svc-before
"""

from __future__ import annotations

import http.client
import json
import math
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REQUESTS_FILE = "requests.json"
MAX_ROWS = 1000
"""The recording server runs with ``CHURNKIT_MAX_ROWS`` at this, so the 1000-row batch is
the largest allowed and one more row is the "too many rows" case."""


def _row(uid: Any, values: dict[str, Any]) -> dict[str, Any]:
    return {"user_id": uid, "features": values}


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if pd.isna(v) else float(v)) for k, v in values.items()}


def request_set(features: pd.DataFrame, names: list[str]) -> list[dict[str, Any]]:
    """Named requests: single rows, small and 1000-row batches, edge cases and bad input.

    ``raw`` is sent as is (for bodies JSON cannot express through ``json.dumps``).
    """
    f = features.sample(n=len(features), random_state=11).reset_index(drop=True)
    rows = [_row(str(uid), _clean(r)) for uid, r in zip(f["user_id"], f[names].to_dict("records"))]
    first = rows[0]["features"]
    name = names[0]
    out: list[dict[str, Any]] = []

    def add(label: str, body: Any = None, raw: str | None = None, path: str = "/score_features") -> None:
        out.append({"name": label, "body": body, "raw": raw, "path": path})

    add("openapi_spec", path="/docs.json")  # the contract: BentoML's spec as the gate corrects it

    for i, r in enumerate(rows[:25]):
        add(f"single_{i:02d}", {"rows": [r]})
    add("batch_7", {"rows": rows[25:32]})
    add("batch_100", {"rows": rows[32:132]})
    batch = [rows[i % len(rows)] for i in range(MAX_ROWS)]
    add("batch_1000", {"rows": batch})
    # edge cases that must score
    add("all_missing", {"rows": [_row("u-missing", dict.fromkeys(names))]})
    rng = np.random.default_rng(3)
    for k in range(5):  # a random half (then a third...) of the features missing
        holes = {n: (None if rng.random() < 0.5 - 0.1 * k else v) for n, v in rows[40 + k]["features"].items()}
        add(f"some_missing_{k}", {"rows": [_row(f"u-holes-{k}", holes)]})
    add("zeros", {"rows": [_row("u-zero", dict.fromkeys(names, 0.0))]})
    add("negative", {"rows": [_row("u-neg", dict.fromkeys(names, -5.0))]})
    add("huge", {"rows": [_row("u-huge", dict.fromkeys(names, 1e12))]})
    add("tiny", {"rows": [_row("u-tiny", dict.fromkeys(names, 1e-300))]})
    add("integers", {"rows": [_row("u-int", {k: (None if v is None else round(v)) for k, v in first.items()})]})
    add("big_integer", {"rows": [_row("u-bigint", {**first, name: 2**63 + 1})]})
    attrs = [n for n in names if n.startswith(("attr_", "attribute_")) or "=" in n]
    add("unknown_category", {"rows": [_row("u-cat", {**first, **dict.fromkeys(attrs, 0.0)})]})
    add("category_out_of_range", {"rows": [_row("u-cat2", {**first, **dict.fromkeys(attrs, 7.0)})]})
    add("no_user_id", {"rows": [{"features": first}]})
    add("null_user_id", {"rows": [{"user_id": None, "features": first}]})
    add("unicode_user_id", {"rows": [_row("ü-😀-\u2028", first)]})
    add("duplicate_user_ids", {"rows": [_row("same", first), _row("same", rows[1]["features"])]})
    add("mixed_batch", {"rows": [_row("a", dict.fromkeys(names)), rows[2], _row("c", dict.fromkeys(names, 0.0)),
                                 {"features": rows[3]["features"]}]})
    add("reordered_keys", {"rows": [_row("u-rev", dict(reversed(list(first.items()))))]})
    # bad input: every one a 4xx with a message
    add("missing_feature", {"rows": [_row("x", {k: v for k, v in first.items() if k != name})]})
    add("missing_many", {"rows": [_row("x", {})]})
    add("unknown_feature", {"rows": [_row("x", {**first, "shoe_size": 1.0})]})
    add("missing_and_unknown", {"rows": [rows[0], _row("x", {**{k: v for k, v in first.items() if k != name},
                                                             "shoe_size": 1.0})]})
    add("string_value", {"rows": [_row("x", {**first, name: "3"})]})
    add("bool_value", {"rows": [_row("x", {**first, name: True})]})
    add("list_value", {"rows": [_row("x", {**first, name: [1.0]})]})
    add("bad_second_row", {"rows": [rows[0], _row("x", {**first, name: "3"})]})
    token_body = json.dumps({"rows": [_row("x", {**first, name: "__T__"})]})
    for token in ("NaN", "Infinity", "-Infinity"):
        add(f"json_{token.lower()}", raw=token_body.replace('"__T__"', token))
    add("empty_rows", {"rows": []})
    add("no_rows_key", {})
    add("too_many_rows", {"rows": [rows[0]] * (MAX_ROWS + 1)})
    add("rows_not_a_list", {"rows": {"a": 1}})
    add("row_not_an_object", {"rows": [1]})
    add("features_not_an_object", {"rows": [{"user_id": "x", "features": [1, 2]}]})
    add("no_features_key", {"rows": [{"user_id": "x"}]})
    add("extra_row_key", {"rows": [{**rows[0], "colour": "red"}]})
    add("extra_body_key", {"rows": [rows[0]], "colour": "red"})
    add("empty_user_id", {"rows": [_row("", first)]})
    add("int_user_id", {"rows": [_row(7, first)]})
    add("body_a_list", [rows[0]])
    add("invalid_json", raw='{"rows": [')
    add("empty_body", raw="")
    return out


def send(port: int, path: str, body: bytes | None) -> tuple[int, str, Any]:
    """POST ``body`` (GET when None) to ``path``: status, content type, parsed JSON answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        if body is None:
            conn.request("GET", path)
        else:
            conn.request("POST", path, body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        kind = resp.getheader("Content-Type", "")
    finally:
        conn.close()
    try:
        parsed = json.loads(data)
    except ValueError:
        parsed = {"__text__": data.decode("utf-8", "replace")}
    return resp.status, kind, parsed


def encode(req: dict[str, Any]) -> bytes | None:
    if req["path"] == "/docs.json":
        return None
    return (req["raw"] if req["raw"] is not None else json.dumps(req["body"])).encode()


def record(port: int, requests: list[dict[str, Any]], out: Path) -> None:
    """Post each request; write ``<name>.json`` (status, content type, body) and the requests."""
    out.mkdir(parents=True, exist_ok=True)
    (out / REQUESTS_FILE).write_text(json.dumps(requests))
    for req in requests:
        status, kind, body = send(port, req["path"], encode(req))
        (out / f"{req['name']}.json").write_text(json.dumps({"status": status, "content_type": kind, "body": body}))


def load_requests(directory: Path) -> list[dict[str, Any]]:
    return json.loads((directory / REQUESTS_FILE).read_text())


def _bits(x: float) -> int:
    return struct.unpack("<q", struct.pack("<d", x))[0]


def _diff(a: Any, b: Any, path: str, found: list[str], worst: list[float]) -> None:
    if isinstance(a, float) or isinstance(b, float):
        if not (isinstance(a, int | float) and isinstance(b, int | float)) or isinstance(a, bool) or isinstance(b, bool):
            found.append(f"{path}: {a!r} != {b!r}")
        elif type(a) is not type(b) or _bits(float(a)) != _bits(float(b)):
            if not (math.isfinite(a) and math.isfinite(b)):
                found.append(f"{path}: {a!r} != {b!r}")
            else:
                worst[0] = max(worst[0], abs(a - b))
                found.append(f"{path}: {a!r} != {b!r} (diff {abs(a - b):.3g})")
    elif isinstance(a, dict) and isinstance(b, dict):
        if list(a) != list(b):
            found.append(f"{path}: keys {list(a)} != {list(b)}")
        for k in a.keys() & b.keys():
            _diff(a[k], b[k], f"{path}.{k}", found, worst)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            found.append(f"{path}: {len(a)} items != {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            _diff(x, y, f"{path}[{i}]", found, worst)
    elif type(a) is not type(b) or a != b:
        found.append(f"{path}: {a!r} != {b!r}")


def compare(before: Path, after: Path) -> tuple[int, list[str], float]:
    """Compare two recordings: (answers compared, differences, largest float difference).

    Floats must be bit-identical (and int stays int, float stays float); keys must come in
    the same order, as a client reading the JSON text would see them.
    """
    found: list[str] = []
    worst = [0.0]
    requests = load_requests(before)
    for req in requests:
        a = json.loads((before / f"{req['name']}.json").read_text())
        path = after / f"{req['name']}.json"
        if not path.exists():
            found.append(f"{req['name']}: not recorded in {after}")
            continue
        _diff(a, json.loads(path.read_text()), req["name"], found, worst)
    return len(requests), found, worst[0]
