"""Benchmark forgetting in a skforget Pipeline (StandardScaler + Ridge).

Forgetting a row changes the scaler's mean and standard deviation, so the
scaled input of every remaining row changes; the Ridge step absorbs that
affine change by mapping its sufficient statistics (path "absorbed") instead of
being refitted. The script prints, all measured in one run:

* fit time of scikit-learn's pipeline and of skforget's (median of
  ``--repeats``; ours includes keeping a copy of the raw rows);
* forget-one-row latency (``--n-forget`` single-row calls after the kernels
  are warm; median and p99, request validation included) and the path taken;
* forget-1000-rows time (one call);
* scikit-learn's pipeline refitted on the remaining rows, and refit / forget;
* the largest difference of ``coef_`` and of the predictions from that refit,
  relative to the largest coefficient / prediction.

Target (n = 1e6, d = 50): forget one row >= 100x faster than refitting the
scikit-learn pipeline, identical coefficients to rounding. The script exits 1
when a coefficient differs from the refit by more than 1e-8 (relative).
"""

import argparse
import sys
import time

import numpy as np
import sklearn
from sklearn import linear_model as sklm
from sklearn import pipeline as skpipe
from sklearn import preprocessing as skp

from skforget import linear_model as flm
from skforget import preprocessing as fp
from skforget.pipeline import make_pipeline

TOLERANCE = 1e-8
TARGET_RATIO = 100


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def make_data(n, d, seed=0):
    rng = np.random.default_rng(seed)
    # features on different scales and far from zero, as scaling is for
    X = rng.normal(size=(n, d)) * rng.uniform(0.1, 100, size=d) + rng.uniform(-1e3, 1e3, size=d)
    y = (X - X.mean(axis=0)) / X.std(axis=0) @ rng.normal(size=d) + rng.normal(size=n)
    return X, y


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--d", type=int, default=50)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-forget", type=int, default=300)
    args = parser.parse_args(argv)
    n, d = args.n, args.d
    print(f"Python {sys.version.split()[0]} | numpy {np.__version__} | sklearn "
          f"{sklearn.__version__} | n={n:,} d={d} repeats={args.repeats} (medians)")
    X, y = make_data(n, d)

    def ours():
        return make_pipeline(fp.StandardScaler(), flm.Ridge(alpha=args.alpha))

    def theirs():
        return skpipe.make_pipeline(skp.StandardScaler(), sklm.Ridge(alpha=args.alpha))

    ours().fit(X[:500], y[:500]).partial_forget([0, 1])  # load the kernels
    sk_fit = median_time(lambda: theirs().fit(X, y), args.repeats)
    our_fit = median_time(lambda: ours().fit(X, y), args.repeats)
    pipe = ours().fit(X, y)

    rows = np.random.default_rng(1).choice(n, args.n_forget, replace=False)
    lat = []
    for i in rows:
        start = time.perf_counter_ns()
        pipe.partial_forget(int(i))
        lat.append(time.perf_counter_ns() - start)
    lat = np.array(lat) / 1e3
    paths = dict(pipe.forget_paths_)
    batch = np.setdiff1d(np.arange(0, n, n // 1000)[:1000], rows)
    start = time.perf_counter()
    pipe.partial_forget(batch)
    forget_1000 = time.perf_counter() - start

    keep = np.ones(n, dtype=bool)
    keep[rows] = keep[batch] = False
    X_keep, y_keep = X[keep], y[keep]
    refit_time = median_time(lambda: theirs().fit(X_keep, y_keep), args.repeats)
    refit = theirs().fit(X_keep, y_keep)
    coef, ref = pipe[-1].coef_, refit[-1].coef_
    coef_diff = float(np.max(np.abs(coef - ref)) / np.max(np.abs(ref)))
    probe = X[:10_000]
    pred, ref_pred = pipe.predict(probe), refit.predict(probe)
    pred_diff = float(np.max(np.abs(pred - ref_pred)) / np.max(np.abs(ref_pred)))
    f1 = float(np.median(lat))
    ratio = refit_time / (f1 / 1e6)

    print(f"fit: sklearn pipeline {sk_fit:.3f} s, skforget pipeline {our_fit:.3f} s "
          f"({our_fit / sk_fit:.2f}x)")
    print(f"forget one row: median {f1:.1f} us, p99 {np.percentile(lat, 99):.1f} us "
          f"over {len(lat)} calls; paths {paths}")
    print(f"forget 1,000 rows (one call): {forget_1000 * 1e3:.2f} ms; paths "
          f"{pipe.forget_paths_}")
    print(f"sklearn pipeline refit on the remaining {keep.sum():,} rows: {refit_time:.3f} s "
          f"-> refit / forget one = {ratio:,.0f}x, refit / forget 1,000 = "
          f"{refit_time / forget_1000:,.0f}x")
    print(f"coef_ max difference / max |coef_|: {coef_diff:.1e}; predictions: "
          f"{pred_diff:.1e}")
    good = ratio >= TARGET_RATIO
    print(f"Target: forget one >= {TARGET_RATIO}x faster than the sklearn refit: "
          f"{ratio:,.0f}x [{'met' if good else 'MISSED'}]")
    ok = coef_diff <= TOLERANCE
    print("Correctness: " + ("OK" if ok else "FAILED") +
          f" (coef difference {coef_diff:.1e}, tolerance {TOLERANCE:g})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
