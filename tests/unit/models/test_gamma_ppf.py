"""The interval's gamma quantile is scipy's, bit for bit, without scipy.stats' per-call overhead."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from churnkit.models.interval import gamma_ppf


@pytest.mark.parametrize("shape", [0.05, 0.3, 1.0, 2.7, 50.0, 1000.0])
def test_gamma_ppf_is_scipys_bit_for_bit(shape):
    rng = np.random.default_rng(0)
    q = np.concatenate([rng.random(20_000), rng.random(500) ** 20, [1.0, 1e-300, 1 - 1e-16, 0.5]])
    scale = rng.lognormal(0, 5, len(q)) / shape
    scale[:3] = [0.0, 1e-320, 5e-324]  # not positive, subnormal
    with np.errstate(invalid="ignore"):
        want = stats.gamma.ppf(q, shape, scale=scale)
    got = gamma_ppf(q, shape, scale)
    same_bits = (got.view(np.int64) == want.view(np.int64)) | (np.isnan(got) & np.isnan(want))
    assert same_bits.all()
