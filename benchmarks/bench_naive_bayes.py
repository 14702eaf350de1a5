"""Benchmark forgetting in skforget's naive Bayes against refitting scikit-learn.

For each estimator and each n it measures:

* fit time of scikit-learn's class and of skforget's twin (median of
  ``--repeats``; skforget's fit includes copying the rows it retains);
* forget-one-row latency: ``model.partial_forget(i)`` for ``--n-forget``
  distinct rows, one call at a time, after the numba kernels have been warmed
  up (compilation and cache loading excluded); median, p90 and p99. Each call
  includes the validation of the request;
* forget-1000-rows time: one ``partial_forget(np.arange(1000) * k)`` call,
  rows spread over the data, on a freshly fitted model (median of
  ``--repeats``; the refits in between are not timed);
* refit time: scikit-learn's ``fit`` on the rows that remain after forgetting
  those 1000 (``X[keep]`` built before timing; median of ``--repeats``);
* correctness: the largest relative difference of ``predict_proba`` on 1000
  fresh rows between the forgetting model and scikit-learn refitted on the
  remaining rows, after the forget-one run and after the forget-1000 run.
  The script exits with status 1 when it exceeds 1e-9.

Run ``python benchmarks/bench_naive_bayes.py --help`` for the options.
"""

import argparse
import gc
import json
import platform
import sys
import time

import numpy as np
import sklearn
import sklearn.naive_bayes as sknb
from threadpoolctl import threadpool_info

import skforget.naive_bayes as fnb

ESTIMATORS = ("GaussianNB", "MultinomialNB")
TOLERANCE = 1e-9
N_TEST = 1000
N_BATCH = 1000
TARGETS = {  # GaussianNB at n = 1e6, d = 50
    "forget_one_median_us": 30.0,
    "refit_over_forget_one": 10_000.0,
    "fit_ratio": 1.5,
}


# ------------------------------------------------------------------ data
def make_data(name, n, d, seed):
    """Features (float64, C order) and two-class labels that depend on them."""
    rng = np.random.default_rng(seed)
    if name == "GaussianNB":
        X = rng.normal(size=(n, d))
    else:
        X = rng.poisson(1.0, size=(n, d)).astype(np.float64)
    score = X[:, :5].sum(axis=1)
    score += rng.normal(scale=score.std(), size=n)
    y = (score > np.median(score)).astype(np.int64)
    del score
    if name == "GaussianNB":
        X_test = rng.normal(size=(N_TEST, d))
    else:
        X_test = rng.poisson(1.0, size=(N_TEST, d)).astype(np.float64)
    return X, y, X_test, rng


def max_rel_diff(ours, ref):
    ours, ref = np.asarray(ours), np.asarray(ref)
    denom = np.maximum(np.abs(ref), np.finfo(np.float64).tiny)
    return float(np.max(np.abs(ours - ref) / denom))


# ---------------------------------------------------------------- timing
def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def warm_up(name, X, y):
    """Compile / load the numba kernels on a tiny slice (not timed)."""
    sl = slice(0, 64)
    model = getattr(fnb, name)().fit(X[sl], y[sl])
    model.partial_forget(3)
    model.partial_forget(np.array([5, 9, 17]))
    model.predict_proba(X[sl])
    getattr(sknb, name)().fit(X[sl], y[sl]).predict_proba(X[sl])


def bench_one(name, n, d, repeats, n_forget, seed):
    X, y, X_test, rng = make_data(name, n, d, seed)
    Ours, Sk = getattr(fnb, name), getattr(sknb, name)
    warm_up(name, X, y)
    res = {"estimator": name, "n": n, "d": d}

    # fit: interleave the two so that background load hits both alike
    sk_fit, our_fit, model = [], [], None
    for _ in range(repeats):
        t, sk_model = timed(lambda: Sk().fit(X, y))
        sk_fit.append(t)
        del sk_model
        model = None  # let the previous model (and its row copy) go first
        gc.collect()
        t, model = timed(lambda: Ours().fit(X, y))
        our_fit.append(t)
    res["sk_fit_s"] = float(np.median(sk_fit))
    res["our_fit_s"] = float(np.median(our_fit))
    res["fit_ratio"] = res["our_fit_s"] / res["sk_fit_s"]

    # forget one row at a time on the last fitted model
    n_forget = min(n_forget, n - 2)
    rows = rng.choice(n, size=n_forget, replace=False).tolist()
    lat = np.empty(n_forget, dtype=np.int64)
    forget = model.partial_forget
    clock = time.perf_counter_ns
    gc.collect()
    for k, i in enumerate(rows):
        t0 = clock()
        forget(i)
        lat[k] = clock() - t0
    lat_us = lat / 1e3
    res["n_forget_one"] = n_forget
    res["forget_one_median_us"] = float(np.median(lat_us))
    res["forget_one_p90_us"] = float(np.percentile(lat_us, 90))
    res["forget_one_p99_us"] = float(np.percentile(lat_us, 99))

    # correctness after the single-row forgets (refit not timed)
    keep = np.ones(n, dtype=bool)
    keep[rows] = False
    ref = Sk().fit(X[keep], y[keep])
    err_one = max_rel_diff(model.predict_proba(X_test), ref.predict_proba(X_test))
    del ref, model, keep
    gc.collect()

    # forget 1000 rows spread over the data, one call, fresh model each repeat
    m = min(N_BATCH, n // 2)
    batch = np.arange(m) * (n // m)
    batch_t, model = [], None
    for _ in range(repeats):
        model = None
        gc.collect()
        model = Ours().fit(X, y)
        t, _ = timed(lambda: model.partial_forget(batch))
        batch_t.append(t)
    res["batch_rows"] = m
    res["forget_batch_ms"] = float(np.median(batch_t)) * 1e3

    # refit scikit-learn on the remaining rows
    keep = np.ones(n, dtype=bool)
    keep[batch] = False
    X_keep, y_keep = X[keep], y[keep]
    del keep, X, y
    gc.collect()
    refit_t = []
    for _ in range(repeats):
        t, ref = timed(lambda: Sk().fit(X_keep, y_keep))
        refit_t.append(t)
    res["refit_s"] = float(np.median(refit_t))
    res["refit_over_forget_one"] = res["refit_s"] / (res["forget_one_median_us"] * 1e-6)
    res["refit_over_forget_batch"] = res["refit_s"] / (res["forget_batch_ms"] * 1e-3)
    err_batch = max_rel_diff(model.predict_proba(X_test), ref.predict_proba(X_test))
    res["max_rel_diff_after_forget_one"] = err_one
    res["max_rel_diff_after_forget_batch"] = err_batch
    res["max_rel_diff"] = max(err_one, err_batch)
    del X_keep, y_keep, model, ref
    gc.collect()
    return res


# ---------------------------------------------------------------- report
def environment():
    import numba
    import scipy

    pools = [
        {k: p.get(k) for k in ("user_api", "internal_api", "num_threads", "version",
                               "threading_layer", "architecture")}
        for p in threadpool_info()
    ]
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "sklearn": sklearn.__version__,
        "numba": numba.__version__,
        "platform": platform.platform(),
        "threadpools": pools,
    }


def print_environment(env):
    print(f"Python {env['python']} | numpy {env['numpy']} | scipy {env['scipy']} | "
          f"sklearn {env['sklearn']} | numba {env['numba']}")
    print(f"Platform: {env['platform']}")
    for p in env["threadpools"]:
        extra = ", ".join(f"{k}={p[k]}" for k in ("version", "threading_layer",
                                                   "architecture") if p.get(k))
        print(f"  threadpool: {p['user_api']}/{p['internal_api']} "
              f"threads={p['num_threads']}" + (f" ({extra})" if extra else ""))


COLUMNS = [  # (header, key, format)
    ("estimator", "estimator", "{}"),
    ("n", "n", "{:,}"),
    ("sk_fit_s", "sk_fit_s", "{:.4f}"),
    ("our_fit_s", "our_fit_s", "{:.4f}"),
    ("fit_x", "fit_ratio", "{:.2f}"),
    ("f1_med_us", "forget_one_median_us", "{:.1f}"),
    ("f1_p90_us", "forget_one_p90_us", "{:.1f}"),
    ("f1_p99_us", "forget_one_p99_us", "{:.1f}"),
    ("f1000_ms", "forget_batch_ms", "{:.2f}"),
    ("refit_s", "refit_s", "{:.4f}"),
    ("refit/f1", "refit_over_forget_one", "{:,.0f}"),
    ("refit/f1000", "refit_over_forget_batch", "{:,.0f}"),
    ("max_rel_diff", "max_rel_diff", "{:.1e}"),
]


def print_table(results):
    cells = [[h for h, _, _ in COLUMNS]]
    cells += [[fmt.format(r[key]) for _, key, fmt in COLUMNS] for r in results]
    widths = [max(len(row[j]) for row in cells) for j in range(len(COLUMNS))]
    for k, row in enumerate(cells):
        print("  ".join(c.ljust(w) if j == 0 else c.rjust(w)
                        for j, (c, w) in enumerate(zip(row, widths))))
        if k == 0:
            print("  ".join("-" * w for w in widths))


def check_targets(results, d):
    lines = []
    for r in results:
        if r["estimator"] != "GaussianNB" or r["n"] != 1_000_000 or d != 50:
            continue
        checks = [
            ("forget-one median <= 30 us", r["forget_one_median_us"],
             r["forget_one_median_us"] <= TARGETS["forget_one_median_us"], "{:.1f} us"),
            ("refit / forget-one >= 10,000x", r["refit_over_forget_one"],
             r["refit_over_forget_one"] >= TARGETS["refit_over_forget_one"], "{:,.0f}x"),
            ("our fit / sklearn fit <= 1.5", r["fit_ratio"],
             r["fit_ratio"] <= TARGETS["fit_ratio"], "{:.2f}x"),
        ]
        for label, value, ok, fmt in checks:
            lines.append(f"  GaussianNB n=1e6 d=50: {label}: {fmt.format(value)} "
                         f"[{'met' if ok else 'MISSED'}]")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[100_000, 1_000_000],
                        help="numbers of training rows (default: 100000 1000000)")
    parser.add_argument("--d", type=int, default=50, help="features (default: 50)")
    parser.add_argument("--estimators", nargs="+", choices=ESTIMATORS,
                        default=list(ESTIMATORS), help="estimators to run")
    parser.add_argument("--repeats", type=int, default=3,
                        help="repeats for fit / forget-1000 / refit timings (median)")
    parser.add_argument("--n-forget", type=int, default=2000,
                        help="rows forgotten one call at a time (default: 2000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--json", metavar="PATH", help="also write results as JSON")
    args = parser.parse_args(argv)
    if min(args.n) < 4:
        parser.error("--n must be at least 4")

    env = environment()
    print_environment(env)
    print(f"d={args.d}, repeats={args.repeats}, n_forget={args.n_forget}, "
          f"seed={args.seed}; times are medians; f1 = forget one row "
          f"(validation included), f1000 = forget {N_BATCH} rows in one call")
    print(flush=True)

    t_start = time.perf_counter()
    results = []
    for name in args.estimators:
        for n in args.n:
            r = bench_one(name, n, args.d, args.repeats, args.n_forget, args.seed)
            results.append(r)
            print(f"  done {name} n={n:,}", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - t_start

    print_table(results)
    print()
    worst = max(r["max_rel_diff"] for r in results)
    ok = worst <= TOLERANCE
    print(f"Correctness: max relative difference of predict_proba on {N_TEST} rows vs "
          f"sklearn refit on remaining rows = {worst:.2e} "
          f"({'OK' if ok else 'FAIL'}, tolerance {TOLERANCE:g})")
    target_lines = check_targets(results, args.d)
    if target_lines:
        print("Targets:")
        print("\n".join(target_lines))
    print(f"Benchmark time: {elapsed:.1f} s")

    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"environment": env, "args": vars(args), "results": results,
                       "max_rel_diff": worst, "ok": ok, "elapsed_s": elapsed},
                      fh, indent=2)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
