"""Benchmark forgetting in skforget's summation-form linear models.

For LinearRegression, Ridge and RidgeClassifier at n rows and d features it
prints, all measured in one run:

* fit time of scikit-learn's estimator and of skforget's (median of
  ``--repeats``; ours includes copying the rows it retains), and their ratio;
* forget-one-row latency (``--n-forget`` single-row calls after the kernels
  are warm; median and p99, validation included);
* forget-1000-rows time (one call, on a freshly fitted model);
* scikit-learn's refit time on the remaining rows, and refit / forget ratios;
* the largest relative difference of ``coef_`` from that refit.

Targets (Ridge, n = 1e6, d = 100): forget one row <= 200 us median and
>= 3,000x faster than the refit; forget 1,000 rows <= 5 ms; every fit within
1.5x of scikit-learn's. The script exits 1 when a coefficient differs from the
refit by more than 1e-8 (relative to the largest coefficient).
"""

import argparse
import sys
import time

import numpy as np
import sklearn
from sklearn import linear_model as sklm

import skforget.linear_model as flm

TOLERANCE = 1e-8


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def make_data(n, d, classify, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    score = X @ rng.normal(size=d) + rng.normal(size=n)
    y = np.digitize(score, np.quantile(score, [1 / 3, 2 / 3])) if classify else score
    return X, y


def bench(name, n, d, repeats, n_forget):
    ours_cls, sk_cls = getattr(flm, name), getattr(sklm, name)
    X, y = make_data(n, d, classify=name == "RidgeClassifier")
    ours_cls().fit(X[:200], y[:200]).partial_forget([0, 1])  # load the kernels
    sk_fit = median_time(lambda: sk_cls().fit(X, y), repeats)
    our_fit = median_time(lambda: ours_cls().fit(X, y), repeats)
    model = ours_cls().fit(X, y)
    rows = np.random.default_rng(1).choice(n, n_forget, replace=False)
    lat = []
    for i in rows:
        start = time.perf_counter_ns()
        model.partial_forget(int(i))
        lat.append(time.perf_counter_ns() - start)
    lat = np.array(lat) / 1e3
    batch = np.setdiff1d(np.arange(0, n, n // 1000)[:1000], rows)
    start = time.perf_counter()
    model.partial_forget(batch)
    forget_1000 = time.perf_counter() - start
    keep = np.ones(n, dtype=bool)
    keep[rows] = keep[batch] = False
    X_keep, y_keep = X[keep], y[keep]
    refit_time = median_time(lambda: sk_cls().fit(X_keep, y_keep), repeats)
    refit = sk_cls().fit(X_keep, y_keep)
    diff = np.max(np.abs(model.coef_ - refit.coef_)) / np.max(np.abs(refit.coef_))
    return {
        "estimator": name, "n": n, "d": d, "sk_fit_s": sk_fit, "our_fit_s": our_fit,
        "fit_ratio": our_fit / sk_fit, "f1_median_us": float(np.median(lat)),
        "f1_p99_us": float(np.percentile(lat, 99)), "f1000_ms": forget_1000 * 1e3,
        "refit_s": refit_time, "refit_over_f1": refit_time / (np.median(lat) / 1e6),
        "refit_over_f1000": refit_time / forget_1000, "coef_rel_diff": float(diff),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--d", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-forget", type=int, default=500)
    parser.add_argument("--estimators", nargs="+",
                        default=["Ridge", "LinearRegression", "RidgeClassifier"])
    args = parser.parse_args(argv)
    print(f"Python {sys.version.split()[0]} | numpy {np.__version__} | "
          f"sklearn {sklearn.__version__} | n={args.n:,} d={args.d} "
          f"repeats={args.repeats} (medians)")
    header = (f"{'estimator':<17}{'sk_fit_s':>9}{'our_fit_s':>10}{'fit_x':>7}"
              f"{'f1_med_us':>10}{'f1_p99_us':>10}{'f1000_ms':>9}{'refit_s':>9}"
              f"{'refit/f1':>10}{'refit/f1000':>12}{'coef_diff':>10}")
    print(header)
    print("-" * len(header))
    results, ok = [], True
    for name in args.estimators:
        r = bench(name, args.n, args.d, args.repeats, args.n_forget)
        results.append(r)
        ok &= r["coef_rel_diff"] <= TOLERANCE
        print(f"{name:<17}{r['sk_fit_s']:>9.3f}{r['our_fit_s']:>10.3f}{r['fit_ratio']:>7.2f}"
              f"{r['f1_median_us']:>10.1f}{r['f1_p99_us']:>10.1f}{r['f1000_ms']:>9.2f}"
              f"{r['refit_s']:>9.3f}{r['refit_over_f1']:>10,.0f}{r['refit_over_f1000']:>12,.0f}"
              f"{r['coef_rel_diff']:>10.1e}")
    ridge = next((r for r in results if r["estimator"] == "Ridge"), None)
    if ridge is not None:
        print("\nTargets (Ridge):")
        for label, value, good in [
            ("forget one median <= 200 us", f"{ridge['f1_median_us']:.1f} us",
             ridge["f1_median_us"] <= 200),
            ("refit / forget one >= 3,000x", f"{ridge['refit_over_f1']:,.0f}x",
             ridge["refit_over_f1"] >= 3000),
            ("forget 1,000 rows <= 5 ms", f"{ridge['f1000_ms']:.2f} ms",
             ridge["f1000_ms"] <= 5),
        ]:
            print(f"  {label}: {value} [{'met' if good else 'MISSED'}]")
    for r in results:
        print(f"  {r['estimator']} fit within 1.5x of sklearn: {r['fit_ratio']:.2f}x "
              f"[{'met' if r['fit_ratio'] <= 1.5 else 'MISSED'}]")
    print("Correctness: " + ("OK" if ok else "FAILED") +
          f" (largest coef difference from the refit "
          f"{max(r['coef_rel_diff'] for r in results):.1e}, tolerance {TOLERANCE:g})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
