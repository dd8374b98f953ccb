"""The numpy reading of fixed-width timestamps gives pandas' answer on every value it takes,
and leaves every value whose reading is in question (leap seconds, odd widths) to pandas."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from churnkit.events import timestamps as T
from churnkit.events.fixedwidth import compile_pattern, parse_fixed


@pytest.mark.parametrize("fmt", ["%Y-%m-%d %H:%M:%S", "%d.%m.%Y %H:%M", "%Y%m%d", "%m/%d/%YT%H"])
def test_fixed_patterns_compile(fmt: str) -> None:
    assert compile_pattern(fmt) is not None


@pytest.mark.parametrize("fmt", ["%Y-%m-%d %I:%M", "%b %d %Y", "%Y-%m-%d\t%H", "%H:%M", "%Y-%Y-%m-%d", "%Y1%m%d"])
def test_other_patterns_are_left_to_pandas(fmt: str) -> None:
    assert compile_pattern(fmt) is None


def test_same_as_pandas_on_every_value() -> None:
    rng = np.random.default_rng(3)
    fmt = "%Y-%m-%d %H:%M:%S"
    vals = [
        f"{rng.choice([1677, 1678, 1900, 2000, 2024, 2100, 2261, 2262])}-{rng.integers(0, 14):02d}"
        f"-{rng.integers(0, 33):02d} {rng.integers(0, 26):02d}:{rng.integers(0, 62):02d}:{rng.integers(0, 62):02d}"
        for _ in range(20_000)
    ] + ["2024-02-29 23:59:60", "2024-9-23 11:56:25", "2024-09-23T11:56:25", None]
    text = T._text(pa.array(vals, pa.string()))
    pattern = compile_pattern(fmt)
    assert pattern is not None
    _, here = parse_fixed(text, pattern)
    assert 0 < here.sum() < len(vals) - 3  # some values are left to pandas
    for tz in ("UTC", "Europe/Berlin"):
        us, ok = T.parse_format(text, fmt, tz)
        ref_us, ref_ok = T._pandas_parse(text, fmt, False, tz)
        assert np.array_equal(ok, ref_ok)
        assert np.array_equal(us[ok], ref_us[ok])
