"""Helpers the tree benchmarks share: the real datasets and timers."""

import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def load(name, dtype=np.float64):
    """``adult`` or ``cardio``: features (categories ordinal-coded), 0/1 labels, categorical columns."""
    import pandas as pd

    if name == "adult":
        df = pd.read_csv(DATA / "adult.csv", header=None, skipinitialspace=True)
        y = (df.pop(14).str.strip().str.rstrip(".") == ">50K").to_numpy(int)
    else:
        df = pd.read_csv(DATA / "cardio.csv", sep=";").drop(columns="id")
        y = df.pop("cardio").to_numpy(int)
    categorical = []
    for i, col in enumerate(df.columns):
        if not pd.api.types.is_numeric_dtype(df[col]):
            df[col] = df[col].astype("category").cat.codes
            categorical.append(i)
    return df.to_numpy(dtype), y, categorical


def timed(fn, repeat=1):
    """Best wall time of ``repeat`` calls, and the last result."""
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def cpu_timed(fn):
    """Wall and CPU (this thread) seconds: CPU time is less sensitive to a busy machine."""
    t, c = time.perf_counter(), time.thread_time()
    fn()
    return time.perf_counter() - t, time.thread_time() - c


def single_row_latency(predict_proba, X, n=300):
    """Median seconds of ``predict_proba`` on one row, over the first ``n`` rows of ``X``."""
    times = []
    for i in range(n):
        row = X[i : i + 1]
        t = time.perf_counter()
        predict_proba(row)
        times.append(time.perf_counter() - t)
    return np.median(times)
