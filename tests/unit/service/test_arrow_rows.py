"""Arrow bodies for ``/score_features``: the JSON body's rules, stated for columns."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from churnkit.service.arrow_rows import BadArrowRows, read_arrow_rows

NAMES = frozenset({"a", "b", "c"})


def stream(table: pa.Table, chunk: int | None = None) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=chunk)
    return sink.getvalue().to_pybytes()


def test_columns_become_the_matrix_in_the_scorers_order_with_nulls_as_nan():
    table = pa.table({"c": pa.array([1.5, None, 3.0]), "user_id": ["x", None, "z"],
                      "a": pa.array([1, None, 2**60 + 1], pa.int64()), "b": pa.nulls(3)})
    rows = read_arrow_rows(stream(table, chunk=2), NAMES, max_rows=10)
    assert rows.user_ids == ["x", None, "z"] and len(rows) == 3
    X = rows.matrix(["a", "b", "c"])
    want = np.array([[1.0, np.nan, 1.5], [np.nan, np.nan, np.nan], [float(2**60 + 1), np.nan, 3.0]])
    np.testing.assert_array_equal(X, want)  # an integer rounds as float(int) does, as JSON's


def test_without_user_ids_every_id_is_null():
    rows = read_arrow_rows(stream(pa.table({"a": [1.0], "b": [2.0], "c": [3.0]})), NAMES, max_rows=1)
    assert rows.user_ids == [None]


@pytest.mark.parametrize(("table", "where"), [
    (pa.table({"a": [1.0], "b": [2.0]}), "missing features: c"),
    (pa.table({"a": [1.0], "b": [2.0], "c": [3.0], "d": [4.0]}), "unknown features: d"),
    (pa.table({"a": [True], "b": [2.0], "c": [3.0]}), "column 'a': numbers only"),
    (pa.table({"a": ["1"], "b": [2.0], "c": [3.0]}), "column 'a': numbers only"),
    (pa.table({"a": [1.0, float("nan")], "b": [2.0, 2.0], "c": [3.0, 3.0]}), "column 'a', row 1"),
    (pa.table({"a": [1.0], "b": [float("inf")], "c": [3.0]}), "column 'b', row 0"),
    (pa.table({"a": [1.0], "b": [2.0], "c": [3.0], "user_id": [""]}), "column 'user_id', row 0"),
    (pa.table({"a": [1.0], "b": [2.0], "c": [3.0], "user_id": ["u" * 257]}), "column 'user_id', row 0"),
    (pa.table({"a": [1.0], "b": [2.0], "c": [3.0], "user_id": [7]}), "column 'user_id': text or null"),
    (pa.table({"a": [1.0] * 3, "b": [2.0] * 3, "c": [3.0] * 3}), "at most 2 items per request, got 3"),
    (pa.table({"a": pa.array([], pa.float64()), "b": pa.array([], pa.float64()), "c": pa.array([], pa.float64())}),
     "at least 1 row"),
])
def test_a_broken_rule_names_the_column(table, where):
    with pytest.raises(BadArrowRows, match=where.replace("(", r"\(")):
        read_arrow_rows(stream(table), NAMES, max_rows=2)


def test_what_is_not_an_arrow_stream_is_one_error():
    for body in (b"", b'{"rows": []}', stream(pa.table({"a": [1.0]}))[:40]):
        with pytest.raises(BadArrowRows, match="not an Arrow IPC stream"):
            read_arrow_rows(body, NAMES, max_rows=2)
