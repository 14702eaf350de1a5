"""Benchmark: forgetting rows in skforget's LogisticRegression vs refitting sklearn's.

Exact mode: one-row forgets (a warm-started Newton re-solve) against
``sklearn.linear_model.LogisticRegression(tol=...).fit`` on the remaining rows,
with the gradient norm of scikit-learn's objective on the remaining rows and the
agreement of predictions. Certified mode: the time of one removal (a Newton
step and the certificate update) and how often the budget forced a re-check or
a retrain.

    python benchmarks/bench_logistic.py                 # n = 1e5, d = 50, binary
    python benchmarks/bench_logistic.py --classes 3 --n 50000
"""

import argparse
import time

import numpy as np
from sklearn._loss.loss import HalfBinomialLoss, HalfMultinomialLoss
from sklearn.linear_model import LogisticRegression as SkLogisticRegression
from sklearn.linear_model._linear_loss import LinearModelLoss

from skforget.linear_model import LogisticRegression


def make_data(n, d, n_classes, seed):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d))
    W = rng.normal(size=(n_classes, d)) * 2.0 / np.sqrt(d)
    if n_classes == 2:
        y = (rng.uniform(size=n) < 1.0 / (1.0 + np.exp(-X @ W[0]))).astype(int)
    else:
        y = np.argmax(X @ W.T + rng.gumbel(size=(n, n_classes)), axis=1)
    return X, y


def gradient_norm(model, X, y):
    """2-norm of the gradient of scikit-learn's objective (scikit-learn's loss code)."""
    classes = model.classes_
    codes = np.searchsorted(classes, y).astype(float)
    sw = np.ones(X.shape[0])
    if classes.shape[0] == 2:
        loss = LinearModelLoss(HalfBinomialLoss(), fit_intercept=True)
        coef = np.r_[model.coef_[0], model.intercept_]
    else:
        loss = LinearModelLoss(HalfMultinomialLoss(n_classes=classes.shape[0]),
                               fit_intercept=True)
        coef = np.hstack([model.coef_, model.intercept_[:, None]]).ravel(order="F")
    g = loss.gradient(coef, X, codes, sw, l2_reg_strength=1.0 / (model.C * X.shape[0]))
    return float(np.linalg.norm(g))


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def warm_up(n_classes, args):
    """Load the cached numba kernels (first call in a process) outside the timings."""
    X, y = make_data(500, 5, n_classes, 1)
    model = LogisticRegression().fit(X, y)
    model.partial_forget([0])
    model.partial_forget([1, 2])
    cert = LogisticRegression(forget_mode="certified", random_state=0,
                              sigma=args.sigma).fit(X, y)
    cert.partial_forget([0])


def thread_info():
    import numba
    from threadpoolctl import threadpool_info

    blas = [f"{i['internal_api']}:{i['num_threads']}" for i in threadpool_info()]
    return f"numba threads {numba.get_num_threads()}, BLAS {', '.join(blas) or 'n/a'}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--d", type=int, default=50)
    parser.add_argument("--classes", type=int, default=2)
    parser.add_argument("--tol", type=float, default=1e-8,
                        help="tol of both sklearn's fit/refit and ours (default 1e-8)")
    parser.add_argument("--n-forget", type=int, default=30,
                        help="one-row exact forgets timed (default 30)")
    parser.add_argument("--n-remove", type=int, default=200,
                        help="one-row certified removals (default 200)")
    parser.add_argument("--sigma", type=float, default=10.0)
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--delta", type=float, default=1e-4)
    parser.add_argument("--repeats", type=int, default=7,
                        help="repeats of the fit and refit timings (median)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    X, y = make_data(args.n, args.d, args.classes, args.seed)
    warm_up(args.classes, args)
    print(f"LogisticRegression: n={args.n}, d={args.d}, classes={args.classes}, "
          f"tol={args.tol:g}; {thread_info()}")
    rows = []

    def row(what, value):
        rows.append((what, value))

    # ----------------------------------------------------------------- fit
    sk_fits, our_fits, model = [], [], None
    for repeat in range(args.repeats):
        # interleaved, alternating which goes first (the fit right after a large
        # free pays for fresh pages), so that load changes hit both alike
        for which in ((0, 1) if repeat % 2 == 0 else (1, 0)):
            if which == 0:
                sk_fits.append(timed(lambda: SkLogisticRegression(tol=args.tol).fit(X, y))[0])
            else:
                model = None  # one model (one copy of the rows) alive at a time
                t, model = timed(lambda: LogisticRegression(tol=args.tol).fit(X, y))
                our_fits.append(t)
    sk_fit, our_fit = np.median(sk_fits), np.median(our_fits)
    row("fit: sklearn (s)", f"{sk_fit:.3f}")
    row("fit: skforget exact (s)", f"{our_fit:.3f}")
    row("fit: ratio skforget / sklearn", f"{our_fit / sk_fit:.2f}x")

    # --------------------------------------------------------- exact forget
    rng = np.random.RandomState(args.seed + 1)
    order = rng.permutation(args.n)[: args.n_forget + 1]
    first, _ = timed(lambda: model.partial_forget(int(order[0])))
    times, passes = [], []
    for i in order[1:]:
        t, _ = timed(lambda i=i: model.partial_forget(int(i)))
        times.append(t)
        passes.append(int(model.n_iter_[0]))
    keep = np.ones(args.n, dtype=bool)
    keep[order] = False
    refit_times = []
    for _ in range(args.repeats):
        t, refit = timed(lambda: SkLogisticRegression(tol=args.tol).fit(X[keep], y[keep]))
        refit_times.append(t)
    refit_time = float(np.median(refit_times))
    forget = float(np.median(times))
    row("exact: first forget, builds the Hessian (ms)", f"{first * 1e3:.1f}")
    row(f"exact: one-row forget, median of {len(times)} (ms)", f"{forget * 1e3:.2f}")
    row("exact: one-row forget, 90th percentile (ms)",
        f"{np.percentile(times, 90) * 1e3:.2f}")
    row("exact: Newton passes per forget (median)", f"{np.median(passes):.0f}")
    row(f"sklearn refit on the remaining rows, lbfgs tol={args.tol:g} (ms)",
        f"{refit_time * 1e3:.1f}")
    row("exact: speedup, refit / forget", f"{refit_time / forget:.1f}x")
    g_ours = gradient_norm(model, X[keep], y[keep])
    g_refit = gradient_norm(refit, X[keep], y[keep])
    row("gradient norm on the remaining rows: skforget", f"{g_ours:.3e}")
    row("gradient norm on the remaining rows: sklearn refit", f"{g_refit:.3e}")
    theta = np.hstack([model.coef_, model.intercept_[:, None]])
    theta_ref = np.hstack([refit.coef_, refit.intercept_[:, None]])
    if theta.shape[0] > 2:
        theta[:, -1] -= theta[:, -1].mean()
        theta_ref[:, -1] -= theta_ref[:, -1].mean()
    row("||coef - refit coef|| / ||refit coef||",
        f"{np.linalg.norm(theta - theta_ref) / np.linalg.norm(theta_ref):.2e}")
    row("prediction agreement with the refit (all rows)",
        f"{np.mean(model.predict(X) == refit.predict(X)):.6f}")

    # ------------------------------------------------------------ certified
    cert_fit, cert = timed(lambda: LogisticRegression(
        forget_mode="certified", random_state=args.seed, sigma=args.sigma,
        epsilon=args.epsilon, delta=args.delta).fit(X, y))
    row(f"certified (sigma={args.sigma:g}, epsilon={args.epsilon:g}, "
        f"delta={args.delta:g}): fit (s)", f"{cert_fit:.3f}")
    order = rng.permutation(args.n)[: args.n_remove]
    times = []
    for i in order:
        t, _ = timed(lambda i=i: cert.partial_forget(int(i)))
        times.append(t)
    times = np.array(times) * 1e6
    row(f"certified: one-row removal, median of {len(times)} (us)",
        f"{np.median(times):.0f}")
    row("certified: one-row removal, mean incl. re-checks/retrains (us)",
        f"{times.mean():.0f}")
    row(f"certified: retrains / re-checks over {len(times)} removals",
        f"{cert.n_retrains_} / {cert.n_rechecks_}")
    row("certified: budget spent / budget at the end",
        f"{cert.gradient_residual_:.3g} / {cert.residual_budget_:.3g}")
    row("certified: prediction agreement with the exact model",
        f"{np.mean(cert.predict(X) == model.predict(X)):.4f}")

    width = max(len(w) for w, _ in rows)
    print()
    for what, value in rows:
        print(f"{what:<{width}}  {value:>12}")


if __name__ == "__main__":
    main()
