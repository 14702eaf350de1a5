"""Benchmark: skforget KMeans (Q-k-means, DC-k-means) against scikit-learn's KMeans.

Gaussian blobs (default n = 100,000, d = 20, k = 10). For each algorithm it
prints: fit time (ours, and scikit-learn's with n_init=1); the median time of a
single-row forget over 1,000 sequential single-row forgets on one model, and
the ratio refit / forget (target >= 300x); the same median "cold", each forget
on a freshly unpickled copy whose memory is not in the CPU caches; the mean
(amortised) time of the sequential forgets, every recomputation included
(target >= 100x); and the inertia on the remaining rows against
scikit-learn's KMeans fitted on them with the same k and n_init (target
within 2%).

    python benchmarks/bench_kmeans.py [--n 100000] [--d 20] [--k 10]
"""

import argparse
import pickle
import time

import numpy as np
from sklearn.cluster import KMeans as SkKMeans
from sklearn.datasets import make_blobs

from skforget.cluster import KMeans


def _time(f, repeat=1):
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--d", type=int, default=20)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--n-init", type=int, default=1)
    ap.add_argument("--single", type=int, default=200, help="single-row forget trials")
    ap.add_argument("--sequential", type=int, default=1000, help="sequential forgets")
    ap.add_argument("--granularity", type=float, default=0.05)
    ap.add_argument("--n-leaves", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    X, _ = make_blobs(args.n, centers=args.k, n_features=args.d, random_state=args.seed)
    rng = np.random.RandomState(args.seed + 1)
    print(f"n={args.n} d={args.d} k={args.k} n_init={args.n_init} "
          f"granularity={args.granularity} n_leaves={args.n_leaves}")
    sk_fit, _ = _time(lambda: SkKMeans(args.k, n_init=1, random_state=0).fit(X), repeat=3)
    print(f"scikit-learn KMeans fit (n_init=1): {sk_fit * 1e3:9.1f} ms")
    KMeans(args.k, random_state=0).fit(X[:2000])  # compile the kernels once
    KMeans(args.k, random_state=0, forget_algorithm="divide_conquer").fit(X[:2000])
    for algorithm in ("quantized", "divide_conquer"):
        params = dict(n_clusters=args.k, n_init=args.n_init, random_state=0,
                      forget_algorithm=algorithm, granularity=args.granularity,
                      n_leaves=args.n_leaves)
        fit_t, model = _time(lambda: KMeans(**params).fit(X), repeat=3)
        blob = pickle.dumps(model)
        # cold: each forget on a freshly unpickled copy (its memory not in cache)
        cold, recomputed = [], 0
        for i in rng.choice(args.n, args.single, replace=False):
            m = pickle.loads(blob)
            t0 = time.perf_counter()
            m.partial_forget(int(i))
            cold.append(time.perf_counter() - t0)
            recomputed += m.n_recomputed_
        cold_med = float(np.median(cold))
        # sequential forgets on one model: per-forget times, every recomputation
        # included; their median is the single-row forget time, their mean the
        # amortised time
        order = rng.choice(args.n, args.sequential, replace=False)
        times = np.empty(args.sequential)
        for j, i in enumerate(order):
            t0 = time.perf_counter()
            model.partial_forget(int(i))
            times[j] = time.perf_counter() - t0
        med, seq = float(np.median(times)), float(times.mean())
        keep = np.ones(args.n, dtype=bool)
        keep[order] = False
        sk = SkKMeans(args.k, n_init=args.n_init, random_state=0).fit(X[keep])
        ours = -model.score(X[keep])
        print(f"\n[{algorithm}]")
        print(f"  fit                           {fit_t * 1e3:9.1f} ms   "
              f"({fit_t / sk_fit:.2f}x scikit-learn's fit)")
        print(f"  single-row forget (median)    {med * 1e3:9.3f} ms   refit/forget = "
              f"{fit_t / med:8.0f}x  (target >= 300x; median of the sequential forgets)")
        print(f"  cold single-row forget (med.) {cold_med * 1e3:9.3f} ms   refit/forget = "
              f"{fit_t / cold_med:8.0f}x  (fresh unpickled copies; {recomputed}/{args.single} "
              "recomputed)")
        print(f"  amortised over {args.sequential} forgets   {seq * 1e3:9.3f} ms   refit/forget = "
              f"{fit_t / seq:8.0f}x  (target >= 100x; {model.n_recomputed_} recomputed, "
              f"{model.n_reseeded_} reseeded; slowest {times.max() * 1e3:.1f} ms)")
        print(f"  against scikit-learn's fit    refit/forget = {sk_fit / med:6.0f}x (median), "
              f"{sk_fit / seq:6.0f}x (amortised)")
        print(f"  inertia on remaining rows     {ours:14.1f}   scikit-learn {sk.inertia_:14.1f}"
              f"   ratio {ours / sk.inertia_:.4f} (target <= 1.02)")
        print(f"  inertia_ attribute            {model.inertia_:14.1f}")


if __name__ == "__main__":
    main()
