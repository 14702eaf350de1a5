"""DaRE forest benchmark on adult and cardio (issue targets beside scikit-learn's figures).

Run: ``python benchmarks/bench_dare.py [--datasets adult cardio] [--n-forget 200]``.
Single thread throughout. Prints fit time, forget latency (median / p95 / p99 over
random single-row deletions; also as CPU time, which a busy machine inflates
less), test AUC, pickle size, single-row predict_proba latency and batch
throughput, each next to scikit-learn's RandomForestClassifier (n_estimators=50,
max_depth=10, n_jobs=1) on the same 80/20 split.
"""

import argparse
import pickle

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from _common import cpu_timed, load, single_row_latency, timed  # benchmarks/ (the scripts are run as files)
from skforget.ensemble import DaREForestClassifier



def run(name, n_forget, seed=0):
    X, y, _ = load(name, np.float32)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, random_state=seed)
    params = dict(n_estimators=50, max_depth=10, random_state=seed)
    sk = RandomForestClassifier(n_jobs=1, **params)
    dare = DaREForestClassifier(k=10, n_jobs=1, **params)
    # warm-up: numba loads the growing and forgetting kernels from its cache (tens of ms)
    warm = DaREForestClassifier(n_estimators=2, k=10, random_state=seed)
    warm.fit(X_tr[:500], y_tr[:500]).partial_forget([0, 1]).partial_forget(2)
    t_sk, c_sk = cpu_timed(lambda: sk.fit(X_tr, y_tr))
    t_dare, c_dare = cpu_timed(lambda: dare.fit(X_tr, y_tr))
    auc_sk = roc_auc_score(y_te, sk.predict_proba(X_te)[:, 1])
    auc_dare = roc_auc_score(y_te, dare.predict_proba(X_te)[:, 1])
    size_sk = len(pickle.dumps(sk))
    size_dare = len(pickle.dumps(dare))
    rows = np.random.RandomState(seed + 1).choice(len(X_tr), n_forget, replace=False)
    times, cpu = [], []
    for r in rows:
        t, c = cpu_timed(lambda: dare.partial_forget(int(r)))
        times.append(t)
        cpu.append(c)
    times, cpu = np.array(times) * 1e3, np.array(cpu) * 1e3
    lat_sk = single_row_latency(sk.predict_proba, X_te, n=50)
    lat_dare = single_row_latency(dare.predict_proba, X_te)
    tp_sk = len(X_te) / timed(lambda: sk.predict_proba(X_te), 3)[0]
    tp_dare = len(X_te) / timed(lambda: dare.predict_proba(X_te), 3)[0]
    print(f"\n== {name}: n_train={len(X_tr)}, d={X.shape[1]}, 50 trees, max_depth=10, k=10")
    print(f"{'':32}{'DaRE (skforget)':>18}{'sklearn RF':>14}{'target':>26}")
    print(f"{'fit time [s]':32}{t_dare:18.3f}{t_sk:14.3f}{'<= sklearn':>26}")
    print(f"{'fit CPU time [s]':32}{c_dare:18.3f}{c_sk:14.3f}")
    print(f"{'forget one row, median [ms]':32}{np.median(times):18.3f}{'':14}"
          f"{'<= 0.5 adult / 1 cardio':>26}")
    print(f"{'forget one row, p95 [ms]':32}{np.percentile(times, 95):18.3f}{'':14}{'<= 5':>26}")
    print(f"{'forget one row, p99 [ms]':32}{np.percentile(times, 99):18.3f}")
    print(f"{'forget CPU median / p95 [ms]':32}"
          f"{np.median(cpu):10.3f} / {np.percentile(cpu, 95):5.3f}")
    print(f"{'refit / forget (median)':32}{t_dare / np.median(times) * 1e3:18.0f}")
    print(f"{'subtrees regrown':32}{dare.n_regrown_:18d}{'':14}{f'(over {n_forget} forgets)':>26}")
    print(f"{'test AUC':32}{auc_dare:18.4f}{auc_sk:14.4f}{'within 0.003':>26}")
    print(f"{'AUC after forgetting':32}"
          f"{roc_auc_score(y_te, dare.predict_proba(X_te)[:, 1]):18.4f}")
    print(f"{'pickle size [MB]':32}{size_dare / 1e6:18.2f}{size_sk / 1e6:14.2f}"
          f"{'<= 10x':>26}  ({size_dare / size_sk:.1f}x)")
    print(f"{'single-row predict_proba [us]':32}{lat_dare * 1e6:18.1f}{lat_sk * 1e6:14.1f}"
          f"{'<= 100':>26}")
    print(f"{'batch predict_proba [rows/s]':32}{tp_dare:18,.0f}{tp_sk:14,.0f}{'>= sklearn':>26}")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", nargs="+", default=["adult", "cardio"])
    parser.add_argument("--n-forget", type=int, default=200)
    args = parser.parse_args()
    for name in args.datasets:
        run(name, args.n_forget)


if __name__ == "__main__":
    main()
