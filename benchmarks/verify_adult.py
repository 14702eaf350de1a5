"""Proof of forgetting on adult: forget-vs-refit reports and membership inference.

Run: ``python benchmarks/verify_adult.py [--seeds 5] [--n-shadow 8]``.

Part 1 prints :func:`skforget.verify.compare_to_refit` reports for GaussianNB,
RidgeClassifier, Ridge (regression of hours-per-week on the other columns)
and DaREForestClassifier (over seeds) on all of adult, forgetting a random 1%
of the rows, and the same report for scikit-learn's GaussianNB, which cannot
forget (it is flagged).

Part 2 attacks forgotten rows: 2,000 training rows (250 of them then
forgotten) and 2,000 never-seen rows. An overfit DaRE forest after
``partial_forget`` is compared with its refit without those rows, and a
scikit-learn MLP "forgotten" the naive way (trained on all 2,000 rows, then
5 more epochs on the 1,750 kept) with an MLP retrained from scratch on the
kept rows. Loss-threshold and LiRA-style shadow-model attacks; AUC, TPR at low
FPR and the NeurIPS 2023 epsilon estimate (delta = 0.01).
"""

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.naive_bayes import GaussianNB as SklearnGaussianNB
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from skforget.ensemble import DaREForestClassifier
from skforget.linear_model import Ridge, RidgeClassifier
from skforget.naive_bayes import GaussianNB
from skforget.verify import compare_to_refit, membership_inference

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"
HOURS = 12  # adult's hours-per-week column


def load():
    """Adult: features as float64 (categories ordinal-coded) and 0/1 labels."""
    import pandas as pd

    df = pd.read_csv(DATA / "adult.csv", header=None, skipinitialspace=True)
    y = (df.pop(14).str.strip().str.rstrip(".") == ">50K").to_numpy(int)
    for col in df.columns:
        if not pd.api.types.is_numeric_dtype(df[col]):
            df[col] = df[col].astype("category").cat.codes
    return df.to_numpy(np.float64), y


def part1(X, y, seeds, rng):
    forget = rng.choice(len(y), len(y) // 100, replace=False)
    print(f"== Part 1: forget {forget.size} random rows of adult ({len(y)} rows), "
          "compare with a refit ==\n")
    cases = [
        ("GaussianNB", GaussianNB(), X, y),
        ("RidgeClassifier", RidgeClassifier(alpha=1.0), X, y),
        ("Ridge (hours-per-week)", Ridge(alpha=1.0), np.delete(X, HOURS, axis=1), X[:, HOURS]),
        ("DaREForestClassifier", DaREForestClassifier(n_estimators=50, max_depth=10, k=10,
                                                      random_state=0), X, y),
        ("sklearn GaussianNB (cannot forget)", SklearnGaussianNB(), X, y),
    ]
    for title, est, X_, y_ in cases:
        start = time.perf_counter()
        model = est if "DaRE" in title else clone(est).fit(X_, y_)
        report = compare_to_refit(model, X_, y_, forget, n_seeds=seeds)
        print(f"-- {title} ({time.perf_counter() - start:.1f} s)")
        print(report, end="\n\n")


def _mlp(seed):
    # overfits on purpose: 200 epochs, no penalty, no early stop (train acc ~1.0, test ~0.8)
    return MLPClassifier(hidden_layer_sizes=(256, 256), alpha=0.0, max_iter=200, tol=0.0,
                         n_iter_no_change=1000, learning_rate_init=0.003, random_state=seed)


def part2(X, y, n_shadow, rng):
    n_train, n_forget = 2000, 250
    rows = rng.permutation(len(y))[: 2 * n_train]
    X, y = StandardScaler().fit_transform(X[rows]), y[rows]
    train, unseen = np.arange(n_train), np.arange(n_train, 2 * n_train)
    forgotten, retained = train[:n_forget], train[n_forget:]
    print(f"== Part 2: membership inference; {n_train} training rows, {n_forget} forgotten, "
          f"{unseen.size} never seen ==\n")
    groups = {"forgotten": forgotten, "retained": retained, "unseen": unseen}

    dare = DaREForestClassifier(n_estimators=50, max_depth=20, k=10, random_state=0)
    forgot = clone(dare).fit(X[train], y[train]).partial_forget(forgotten)
    refit = clone(dare).fit(X[retained], y[retained])
    mlp = _mlp(0).fit(X[train], y[train])
    for _ in range(5):  # naive "forgetting": a few more epochs on the kept rows
        mlp.partial_fit(X[retained], y[retained])
    mlp_refit = _mlp(0).fit(X[retained], y[retained])
    models = [("skforget DaRE after partial_forget", forgot, dare),
              ("DaRE refit without the rows", refit, dare),
              ("sklearn MLP, fine-tuned 5 epochs on the rest", mlp, _mlp(0)),
              ("sklearn MLP refit without the rows", mlp_refit, _mlp(0))]
    for title, model, est in models:
        for attack in ("loss", "shadow"):
            start = time.perf_counter()
            report = membership_inference(model, X, y, **groups, attack=attack,
                                          estimator=est, n_shadow=n_shadow, random_state=0)
            print(f"-- {title} ({time.perf_counter() - start:.1f} s)")
            print(report, end="\n\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds for DaRE in part 1")
    parser.add_argument("--n-shadow", type=int, default=8, help="shadow models in part 2")
    parser.add_argument("--part", type=int, choices=[1, 2], default=None)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="Stochastic Optimizer")  # max_iter reached
    X, y = load()
    rng = np.random.default_rng(0)
    if args.part in (None, 1):
        part1(X, y, args.seeds, rng)
    if args.part in (None, 2):
        part2(X, y, args.n_shadow, np.random.default_rng(1))


if __name__ == "__main__":
    main()
