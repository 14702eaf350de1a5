"""HedgeCut benchmark on adult and cardio (issue targets beside ExtraTreesClassifier's figures).

Run: ``python benchmarks/bench_hedgecut.py [--datasets adult cardio] [--n-forget 200]``.
Single thread throughout (``n_jobs=1`` on both sides). Prints fit time, forget
latency over random single-row deletions (median / p99, within the budget and
past it; CPU time beside wall time), what forgetting did (variant switches,
subtrees regrown), test accuracy, pickle size, single-row ``predict_proba``
latency and batch throughput, each next to scikit-learn's
``ExtraTreesClassifier(n_estimators=100, min_samples_leaf=2)`` on the same
80/20 split. Categorical columns are ordinal codes (``categorical_features``).
"""

import argparse
import pickle

import numpy as np
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.model_selection import train_test_split

from _common import cpu_timed, load, single_row_latency  # benchmarks/ (the scripts are run as files)
from skforget.ensemble import HedgeCutClassifier



def run(name, n_forget, seed=0):
    X, y, cat = load(name)
    cat = cat or None
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, random_state=seed)
    et = ExtraTreesClassifier(n_estimators=100, min_samples_leaf=2, n_jobs=1, random_state=seed)
    hc = HedgeCutClassifier(n_estimators=100, categorical_features=cat, n_jobs=1,
                            random_state=seed)
    # load every compiled kernel before timing: forgets that switch, rebuild and
    # regrow (weak splits allowed, so that they happen on a small sample), predictions
    warm = HedgeCutClassifier(n_estimators=5, categorical_features=cat, random_state=seed,
                              min_impurity_decrease=0.0)
    warm.fit(X_tr[:3000], y_tr[:3000])
    for i in range(200):
        warm.partial_forget(i)
    warm.partial_forget(np.arange(200, 1200))
    assert warm.n_regrown_ > 0 and warm.n_switches_ > 0, "warm-up missed a kernel"
    warm.predict_proba(X_te[:5])
    t_et, c_et = cpu_timed(lambda: et.fit(X_tr, y_tr))
    t_hc, c_hc = cpu_timed(lambda: hc.fit(X_tr, y_tr))
    acc_et, acc_hc = et.score(X_te, y_te), hc.score(X_te, y_te)
    size_et, size_hc = len(pickle.dumps(et)), len(pickle.dumps(hc))
    stats = hc._forest.stats()

    rows = np.random.RandomState(seed).choice(len(y_tr), n_forget + 1, replace=False)
    hc.partial_forget(int(rows[0]))  # warm-up (compiled kernels already cached)
    wall, cpu = [], []
    for r in rows[1:]:
        w, c = cpu_timed(lambda: hc.partial_forget(int(r)))
        wall.append(w)
        cpu.append(c)
    wall, cpu = np.array(wall) * 1e6, np.array(cpu) * 1e6
    b = max(1, hc.budget_ - 1)  # forgets within the budget (the warm-up used one)
    acc_after = hc.score(X_te, y_te)

    X_one = np.ascontiguousarray(X_te)
    one_et = single_row_latency(et.predict_proba, X_one) * 1e6
    one_hc = single_row_latency(hc.predict_proba, X_one) * 1e6
    t_b_et, _ = cpu_timed(lambda: et.predict_proba(X_te))
    t_b_hc, _ = cpu_timed(lambda: hc.predict_proba(X_te))

    print(f"\n== {name}: {X_tr.shape[0]} training rows, {X.shape[1]} features, budget "
          f"r = {hc.budget_} ==")
    print(f"trees: {stats['nodes']:,} nodes ({stats['hedged']:,} hedged variants)")
    print(f"{'':28s}{'HedgeCut':>14s}{'ExtraTrees':>14s}{'ratio':>8s}")
    print(f"{'fit wall / CPU (s)':28s}{t_hc:8.2f}/{c_hc:5.2f}{t_et:8.2f}/{c_et:5.2f}"
          f"{t_hc / t_et:8.2f}")
    print(f"{'test accuracy':28s}{acc_hc:14.4f}{acc_et:14.4f}   (after forgetting "
          f"{n_forget} rows: {acc_after:.4f})")
    print(f"{'pickle (MB)':28s}{size_hc / 1e6:14.1f}{size_et / 1e6:14.1f}"
          f"{size_hc / size_et:8.2f}")
    print(f"{'1-row predict_proba (us)':28s}{one_hc:14.0f}{one_et:14.0f}")
    print(f"{'batch predict (rows/s)':28s}{len(X_te) / t_b_hc:14,.0f}{len(X_te) / t_b_et:14,.0f}"
          f"{t_b_et / t_b_hc:8.2f}")
    for label, sl in ((f"first {b} (budget)", slice(0, b)), (f"all {n_forget}", slice(None))):
        print(f"forget {label:17s} wall median {np.median(wall[sl]):8.0f} us  p99 "
              f"{np.percentile(wall[sl], 99):8.0f} us | CPU median {np.median(cpu[sl]):8.0f} us"
              f"  p99 {np.percentile(cpu[sl], 99):8.0f} us")
    regrown, rebuilt, _ = hc._forest.regrow_totals
    print(f"forgetting {n_forget} rows: {hc.n_switches_} variant switches, {hc.n_regrown_} "
          f"subtrees regrown ({rebuilt} of them keeping the node's draws; largest "
          f"{hc.largest_regrown_} rows); refit would take {t_hc:.2f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["adult", "cardio"])
    parser.add_argument("--n-forget", type=int, default=200)
    args = parser.parse_args()
    for name in args.datasets:
        run(name, args.n_forget)


if __name__ == "__main__":
    main()
