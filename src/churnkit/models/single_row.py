"""One row through LightGBM's single-row C API, prepared once per booster.

Why: ``Booster.predict`` builds a predictor, deep-copies its parameters and converts its
input on every call: ~0.1-0.2 ms for one row, and the models of a service request make five
such calls. ``LGBM_BoosterPredictForMatSingleRowFast`` does that setup once
(``...FastInit``) and then runs the same prediction code on the row: the same values, bit
for bit (``tests/integration/service/test_fast_path.py`` compares every model's single
rows with the general path). Anything but one float64 row goes to ``Booster.predict``.

The C API is reached through ``lightgbm.basic`` (its ``_LIB`` handle and constants), the
way the package itself calls it. The prepared configurations are kept per booster in a weak
mapping (no reference back to the booster), so they go when a model is replaced.
"""

from __future__ import annotations

import ctypes
import threading
import weakref
from typing import Any

import lightgbm as lgb
import numpy as np
from lightgbm import basic

_PREPARED: weakref.WeakKeyDictionary[lgb.Booster, dict[tuple[bool, int], _Prepared]] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


class _Prepared:
    """A FastConfig handle for one booster, predict type and thread setting."""

    def __init__(self, booster: lgb.Booster, raw_score: bool, num_threads: int) -> None:
        self.handle = ctypes.c_void_p()
        self.lock = threading.Lock()
        kind = basic._C_API_PREDICT_RAW_SCORE if raw_score else basic._C_API_PREDICT_NORMAL
        num_iteration = booster.best_iteration  # what Booster.predict uses when not told (0: all)
        basic._safe_call(basic._LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
            booster._handle,
            ctypes.c_int(kind),
            ctypes.c_int(0),
            ctypes.c_int(num_iteration),
            ctypes.c_int(basic._C_API_DTYPE_FLOAT64),
            ctypes.c_int32(booster.num_feature()),
            basic._c_str(f"num_threads={num_threads}"),
            ctypes.byref(self.handle),
        ))

    def __call__(self, row: np.ndarray) -> np.ndarray:
        out = np.empty(1, dtype=np.float64)
        n = ctypes.c_int64(0)
        with self.lock:
            basic._safe_call(basic._LIB.LGBM_BoosterPredictForMatSingleRowFast(
                self.handle,
                row.ctypes.data_as(ctypes.c_void_p),
                ctypes.byref(n),
                out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
            ))
        if n.value != 1:
            raise ValueError(f"LightGBM returned {n.value} values for one row")
        return out

    def __del__(self) -> None:
        if self.handle.value is not None:
            basic._LIB.LGBM_FastConfigFree(self.handle)


def predict(booster: lgb.Booster, A: np.ndarray, *, raw_score: bool = False, num_threads: int = 0) -> Any:
    """``booster.predict(A, raw_score=raw_score, num_threads=num_threads)``; a single
    contiguous float64 row of a single-output model through the prepared C call."""
    if (A.ndim != 2 or A.shape[0] != 1 or A.dtype != np.float64 or not A.flags.c_contiguous
            or A.shape[1] != booster.num_feature() or booster.num_model_per_iteration() != 1):
        return booster.predict(A, raw_score=raw_score, num_threads=num_threads)
    key = (raw_score, num_threads)
    prepared = _PREPARED.get(booster, {}).get(key)
    if prepared is None:
        with _LOCK:
            prepared = _PREPARED.setdefault(booster, {}).get(key)
            if prepared is None:
                prepared = _PREPARED[booster][key] = _Prepared(booster, raw_score, num_threads)
    return prepared(A)
