"""HedgeCutClassifier: re-scoring invariants, the hedging bound, budget, errors, persistence."""

import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer, load_iris

from skforget.ensemble import HedgeCutClassifier
from skforget.ensemble._hedgecut import _kernels as K
from skforget.ensemble._hedgecut._classes import _check_rescored

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def _rescored_proba(model, X):
    """predict_proba of the forest's own draws re-scored on the remaining rows.

    Independent of the kernels' bookkeeping: counts and every node's best
    candidate are recomputed from the retained rows, then rows are routed.
    """
    forest, reg = model._forest, model._rows
    p = forest.pools
    codes = model._codes(np.asarray(X, dtype=np.float64))
    live = np.flatnonzero(reg.alive[: reg.n])
    n_classes = len(model.classes_)
    out = np.zeros((codes.shape[0], n_classes))

    def side(c, col):
        if p.cand[c, K.CCAT]:
            return ((int(p.cmask[c]) >> col.astype(np.int64)) & 1).astype(bool)
        return col <= p.cand[c, K.CCUT]

    for root in forest.roots:
        stack = [(int(root), live, np.arange(codes.shape[0]))]
        while stack:
            v, rows, queries = stack.pop()
            counts = np.bincount(reg.codes[rows], minlength=n_classes)
            if p.nodes[v, K.KIND] == K.LEAF:
                out[queries] += counts / counts.sum()
                continue
            scores = []
            for c in range(p.nodes[v, K.C0], p.nodes[v, K.C0] + p.nodes[v, K.NCAND]):
                left = side(c, reg.X[rows, p.cand[c, K.CF]])
                nl, nr = left.sum(), (~left).sum()
                if min(nl, nr) < model.min_samples_leaf:
                    scores.append(-1.0)
                    continue
                cl = np.bincount(reg.codes[rows[left]], minlength=n_classes).astype(float)
                cr = np.bincount(reg.codes[rows[~left]], minlength=n_classes).astype(float)
                scores.append((cl @ cl) / nl + (cr @ cr) / nr)
            c = p.nodes[v, K.C0] + int(np.argmax(scores))
            left = side(c, reg.X[rows, p.cand[c, K.CF]])
            qleft = side(c, codes[queries, p.cand[c, K.CF]])
            stack.append((int(p.cand[c, K.CLEFT]), rows[left], queries[qleft]))
            stack.append((int(p.cand[c, K.CRIGHT]), rows[~left], queries[~qleft]))
    return out / len(forest.roots)


@pytest.fixture(scope="module")
def cancer():
    return load_breast_cancer(return_X_y=True)


# ------------------------------------------------------------ re-scoring
@pytest.mark.parametrize("min_gain", ["auto", 0.0])
@pytest.mark.parametrize("epsilon", [0.0, 0.01, 0.05])
def test_forget_sequence_matches_rescoring(cancer, epsilon, min_gain):
    X, y = cancer
    model = HedgeCutClassifier(n_estimators=8, epsilon=epsilon, min_impurity_decrease=min_gain,
                               random_state=0).fit(X, y)
    _check_rescored(model)
    order = np.random.RandomState(1).permutation(X.shape[0])
    for i in order[:40]:
        model.partial_forget(int(i))
    model.partial_forget(order[40:200])  # a batch, far past any budget
    _check_rescored(model)
    np.testing.assert_allclose(model.predict_proba(X), _rescored_proba(model, X), rtol=1e-12)
    assert model.n_forgotten_ == 200


def test_hedged_root_switches_instead_of_regrowing():
    """Two near-copies of a feature: the root hedges the runner-up and switches to it."""
    rng = np.random.RandomState(0)
    n = 300
    x0 = rng.randint(0, 2, n)
    y = x0 ^ (rng.uniform(size=n) < 0.2)
    x1 = x0 ^ (rng.uniform(size=n) < 0.05)
    X = np.column_stack([x0, x1]).astype(float)
    model = HedgeCutClassifier(n_estimators=3, max_features=None, epsilon=0.2,
                               random_state=0).fit(X, y)
    nodes, cand = model._forest.pools.nodes, model._forest.pools.cand
    c0s = nodes[model._forest.roots, K.C0].copy()
    for root in model._forest.roots:
        assert nodes[root, K.FEAT] == 0
        c0 = nodes[root, K.C0]
        assert (cand[c0:c0 + 2, K.CLEFT] >= 0).all()  # both candidates have a subtree
    # forget the rows on which x0 is right and x1 wrong: x1 becomes the better split
    model.partial_forget(np.flatnonzero((x0 == y) & (x1 != y)))
    assert model.n_switches_ >= len(model._forest.roots)
    assert all(nodes[root, K.FEAT] == 1 for root in model._forest.roots)
    # the roots kept their candidates (switched, not regrown); only small subtrees regrew
    np.testing.assert_array_equal(nodes[model._forest.roots, K.C0], c0s)
    assert model.largest_regrown_ < X.shape[0] // 2
    _check_rescored(model)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n_classes=st.integers(2, 3), msl=st.integers(1, 3),
       epsilon=st.sampled_from([0.0, 0.02, 0.1]), categorical=st.booleans(),
       min_gain=st.sampled_from(["auto", 0.0, 0.01]),
       steps=st.lists(st.tuples(st.sampled_from(["forget", "forget", "partial_fit"]),
                                st.integers(1, 8)), min_size=1, max_size=6))
def test_random_sequences_keep_invariants(seed, n_classes, msl, epsilon, categorical, min_gain,
                                          steps):
    rng = np.random.RandomState(seed)
    n = 120
    X = np.column_stack([rng.normal(size=n), rng.randint(0, 6, n), rng.uniform(size=n)])
    y = (X[:, 0] + 0.3 * X[:, 1] + rng.normal(size=n) > 1).astype(int)
    y[: n // 4] = rng.randint(0, n_classes, n // 4)
    model = HedgeCutClassifier(n_estimators=3, epsilon=epsilon, min_samples_leaf=msl,
                               categorical_features=[1] if categorical else None,
                               min_impurity_decrease=min_gain, random_state=seed)
    model.fit(X, y)
    for kind, size in steps:
        live = np.flatnonzero(model._rows.alive[: model._rows.n])
        if kind == "forget" and live.size > size + 5:
            model.partial_forget(rng.choice(live, size, replace=False))
        else:
            Xn = np.column_stack([rng.normal(size=size), rng.randint(0, 6, size),
                                  rng.uniform(size=size)])
            model.partial_fit(Xn, rng.randint(0, n_classes, size))
        _check_rescored(model)
    np.testing.assert_allclose(model.predict_proba(X), _rescored_proba(model, X), rtol=1e-12)


# -------------------------------------------------------- the hedging bound
@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 100_000), budget=st.integers(1, 6), msl=st.integers(1, 3))
def test_hedge_set_contains_every_possible_winner(seed, budget, msl):
    """After any `budget` removals, the best candidate is the old best or a hedged one."""
    rng = np.random.RandomState(seed)
    n, k, n_classes = rng.randint(8, 40), 3, 2
    codes = rng.randint(0, 5, size=(n, k))
    y = rng.randint(0, n_classes, n)
    cuts = rng.randint(0, 4, size=k)
    left = codes <= cuts

    def counts(rows):
        cnt = np.zeros((k, 2, n_classes), dtype=np.int64)
        for j in range(k):
            for s, mask in enumerate((left[rows, j], ~left[rows, j])):
                cnt[j, s] = np.bincount(y[rows][mask], minlength=n_classes)
        return cnt

    def best_of(cnt):
        scores = [K._score(cnt, j, n_classes, msl) for j in range(k)]
        return int(np.argmax(scores)) if max(scores) >= 0 else -1

    rows = np.arange(n)
    cnt = counts(rows)
    best = best_of(cnt)
    if best < 0:
        return
    need = np.zeros(k, dtype=np.int64)
    K._hedge_set(cnt, k, best, n_classes, msl, budget, need)
    allowed = {best} | set(np.flatnonzero(need).tolist())
    for _ in range(30):
        gone = rng.choice(n, rng.randint(1, budget + 1), replace=False)
        after = best_of(counts(np.setdiff1d(rows, gone)))
        assert after == -1 or after in allowed, (after, allowed)


# ------------------------------------------------------------ budget & API
@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 100_000), n_classes=st.integers(2, 4), n=st.integers(2, 400),
       categorical=st.booleans())
def test_histogram_draws_equal_row_passes(seed, n_classes, n, categorical):
    """Large nodes draw and count from histograms: the same candidates and counts as row passes."""
    rng = np.random.RandomState(seed)
    n_feat = 6
    Xc = np.asfortranarray(rng.randint(0, rng.randint(1, 256), (n + 50, n_feat)).astype(np.uint8))
    is_cat = np.zeros(n_feat, dtype=bool)
    if categorical:
        is_cat[:3] = True
        Xc[:, :3] %= 64
    y = rng.randint(0, n_classes, n + 50).astype(np.int64)
    perm = rng.permutation(n + 50)[:n].astype(np.int32)
    tot = np.bincount(y[perm], minlength=n_classes)
    out = []
    for mode in (0, -1):
        feats, f, cut, cat = (np.zeros(n_feat, dtype=np.int64) for _ in range(4))
        mask = np.zeros(n_feat, dtype=np.uint64)
        cnt = np.zeros((n_feat, 2, n_classes), dtype=np.int64)
        hist = np.full((n_feat, 256, n_classes), 7, dtype=np.int32)  # stale values
        ok = np.zeros(n_feat + 1, dtype=np.int64)
        ok[0] = mode
        state = np.array([seed + 1], dtype=np.uint64)
        k = K._draw(Xc, y, perm, 0, n, state, 0, 3, n_feat, is_cat, feats, f, cut, cat, mask,
                    hist, ok)
        K._count(Xc, y, perm, 0, n, k, f, cut, cat, mask, tot, cnt, hist, ok)
        out.append((k, f[:k].tolist(), cut[:k].tolist(), mask[:k].tolist(), cnt[:k].tolist(),
                    int(state[0])))
    assert out[0] == out[1]


def test_budget_and_attributes(cancer):
    X, y = cancer
    model = HedgeCutClassifier(n_estimators=5, epsilon=0.01, random_state=0).fit(X, y)
    assert model.budget_ == round(0.01 * X.shape[0])
    assert model.n_regrown_ == 0 and model.largest_regrown_ == 0
    assert len(model.bin_thresholds_) == X.shape[1]
    assert all(t.size <= 254 for t in model.bin_thresholds_)
    imp = model.feature_importances_
    assert imp.shape == (X.shape[1],) and imp.min() >= 0
    np.testing.assert_allclose(imp.sum(), 1.0)
    leaves = model.apply(X[:7])
    assert leaves.shape == (7, 5)
    assert (model._forest.pools.nodes[leaves, K.KIND] == K.LEAF).all()


def test_accuracy_like_extra_trees(cancer):
    from sklearn.ensemble import ExtraTreesClassifier
    from sklearn.model_selection import train_test_split

    X, y = cancer
    Xtr, Xte, ytr, yte = train_test_split(X, y, random_state=0)
    ours = HedgeCutClassifier(n_estimators=50, random_state=0).fit(Xtr, ytr).score(Xte, yte)
    theirs = ExtraTreesClassifier(50, min_samples_leaf=2, random_state=0).fit(Xtr, ytr).score(
        Xte, yte)
    assert ours >= theirs - 0.03, (ours, theirs)


@pytest.mark.parametrize("one_by_one", [False, True])
def test_multiclass_and_whole_class_forgotten(one_by_one):
    X, y = load_iris(return_X_y=True)
    model = HedgeCutClassifier(n_estimators=10, epsilon=0.02, random_state=0).fit(X, y)
    assert model.predict_proba(X).shape == (150, 3)
    gone = np.flatnonzero(y == 1)
    if one_by_one:
        for i in gone[:-1]:
            model.partial_forget(int(i))
            assert len(model.classes_) == 3
        model.partial_forget(int(gone[-1]))
    else:
        model.partial_forget(gone)
    np.testing.assert_array_equal(model.classes_, [0, 2])
    assert model.predict_proba(X).shape == (150, 2)
    _check_rescored(model)
    np.testing.assert_allclose(model.predict_proba(X), _rescored_proba(model, X), rtol=1e-12)


def test_categorical_features():
    rng = np.random.RandomState(0)
    n = 400
    cat = rng.randint(0, 40, n)
    X = np.column_stack([cat, rng.normal(size=n)])
    y = (cat % 3 == 0).astype(int)
    model = HedgeCutClassifier(n_estimators=20, categorical_features=[0],
                               min_impurity_decrease=0.0, random_state=0)
    model.fit(X, y)
    assert model.score(X, y) > 0.95  # subsets of categories learn a non-monotone rule
    assert model.bin_thresholds_[0].size == 0
    unseen = np.array([[63.0, 0.0], [5.0, 0.0]])
    assert model.predict_proba(unseen).shape == (2, 2)
    model.partial_forget(np.arange(50))
    _check_rescored(model)


@pytest.mark.parametrize("bad, match", [
    (np.array([[0.5, 1.0]] * 4), "integer category codes"),
    (np.array([[64.0, 1.0]] * 4), "integer category codes"),
    (np.array([[-1.0, 1.0]] * 4), "integer category codes"),
])
def test_bad_categories(bad, match):
    with pytest.raises(ValueError, match=match):
        HedgeCutClassifier(categorical_features=[0]).fit(bad, [0, 1, 0, 1])


def test_bad_parameters(cancer):
    X, y = cancer
    with pytest.raises(ValueError, match="n_bins"):
        HedgeCutClassifier(n_bins=256).fit(X, y)
    with pytest.raises(ValueError, match="epsilon"):
        HedgeCutClassifier(epsilon=-0.1).fit(X, y)
    with pytest.raises(ValueError, match="out of range"):
        HedgeCutClassifier(categorical_features=[40]).fit(X, y)
    with pytest.raises(ValueError, match="shape"):
        HedgeCutClassifier(categorical_features=[True, False]).fit(X, y)
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        HedgeCutClassifier().fit(Xn, y)


def test_bad_forget_changes_nothing(cancer):
    X, y = cancer
    model = HedgeCutClassifier(n_estimators=4, random_state=0).fit(X, y)
    before = pickle.dumps(model)
    with pytest.raises(ValueError, match="out of range"):
        model.partial_forget([3, 10_000])
    model.partial_forget([3])
    with pytest.raises(ValueError, match="already forgotten"):
        model.partial_forget([3])
    assert pickle.dumps(model) != before


def _near_copies(n=300, seed=0):
    rng = np.random.RandomState(seed)
    x0 = rng.randint(0, 2, n)
    y = x0 ^ (rng.uniform(size=n) < 0.2)
    x1 = x0 ^ (rng.uniform(size=n) < 0.05)
    return np.column_stack([x0, x1]).astype(float), y


@pytest.mark.parametrize("full_pools", [False, True])
def test_split_moving_to_unbuilt_candidate_keeps_its_draws(full_pools):
    """Without hedging the root has no variant: it keeps its candidates and regrows its children.

    With pools too small for the children the node regrows whole (fresh
    draws) after the pools grow; both end equal to a re-scoring.
    """
    X, y = _near_copies()
    x0, x1 = X[:, 0], X[:, 1]
    model = HedgeCutClassifier(n_estimators=3, max_features=None, epsilon=0.0,
                               random_state=0).fit(X, y)
    forest = model._forest
    if full_pools:  # exact-size pools, as a pickle holds them
        forest.pools, forest.roots = forest._compacted()
    nodes, cand = forest.pools.nodes, forest.pools.cand
    roots = forest.roots.copy()
    c0s = nodes[roots, K.C0].copy()
    cap = nodes.shape[0]
    for root in roots:
        c0 = nodes[root, K.C0]
        assert nodes[root, K.FEAT] == 0
        assert nodes[root, K.NCAND] == 2
        built = cand[c0:c0 + 2, K.CLEFT] >= 0
        assert built.sum() == 1 and built[nodes[root, K.ACT] - c0]  # no variant
    model.partial_forget(np.flatnonzero((x0 == y) & (x1 != y)))
    nodes = forest.pools.nodes
    assert model.n_switches_ == 0
    assert model.n_regrown_ >= len(roots)
    if full_pools:
        assert nodes.shape[0] > cap  # the pools grew
        assert (nodes[forest.roots, K.C0] != c0s).any()  # a root regrew whole
    else:
        np.testing.assert_array_equal(nodes[forest.roots, K.C0], c0s)
        assert (nodes[forest.roots, K.FEAT] == 1).all()
    _check_rescored(model)
    np.testing.assert_allclose(model.predict_proba(X), _rescored_proba(model, X), rtol=1e-12)


def test_pickle_round_trip_then_forget(cancer):
    X, y = cancer
    model = HedgeCutClassifier(n_estimators=6, epsilon=0.02, random_state=0).fit(X, y)
    model.partial_forget(np.arange(150))  # subtrees collapse or regrow: old nodes abandoned
    used = model._forest.pools.cursor.copy()
    copy = pickle.loads(pickle.dumps(model))
    # the pickle holds only reachable nodes; pickling leaves the model as it was
    assert copy._forest.pools.cursor[0] == copy._forest.stats()["nodes"]
    np.testing.assert_array_equal(model._forest.pools.cursor, used)
    assert used[0] > copy._forest.pools.cursor[0]
    np.testing.assert_array_equal(copy.predict_proba(X), model.predict_proba(X))
    for m in (model, copy):
        m.partial_forget(np.arange(150, 210))
    np.testing.assert_array_equal(copy.predict_proba(X), model.predict_proba(X))
    _check_rescored(copy)


def test_canary_is_gone_from_pickle(cancer):
    X, y = cancer
    X = X.copy()
    X[11, 2] = 12345.678
    model = HedgeCutClassifier(n_estimators=4, random_state=0).fit(X, y)
    model.partial_forget([11])
    assert np.float64(12345.678).tobytes() not in pickle.dumps(model)


def test_partial_fit_numbering_and_classes(cancer):
    X, y = cancer
    model = HedgeCutClassifier(n_estimators=4, random_state=0)
    model.partial_fit(X[:300], y[:300], classes=[0, 1, 2])
    model.partial_fit(X[300:], y[300:])
    assert model.n_samples_seen_ == X.shape[0]
    np.testing.assert_array_equal(model.classes_, [0, 1, 2])
    with pytest.raises(ValueError, match="not in classes"):
        model.partial_fit(X[:2], [5, 5])
    model.partial_forget(np.flatnonzero(y == 1))
    np.testing.assert_array_equal(model.classes_, [0, 1, 2])  # fixed by partial_fit
    _check_rescored(model)


# ----------------------------------------------------------------- real data
@pytest.mark.skipif(not (DATA / "adult.csv").exists(), reason="needs ../shared/datasets")
def test_adult_sample_forget_sequence():
    import pandas as pd

    df = pd.read_csv(DATA / "adult.csv", header=None, skipinitialspace=True, nrows=3000)
    y = (df.pop(14).str.strip().str.rstrip(".") == ">50K").to_numpy(int)
    cat = [i for i, c in enumerate(df.columns) if not pd.api.types.is_numeric_dtype(df[c])]
    for c in df.columns[cat]:
        df[c] = df[c].astype("category").cat.codes
    X = df.to_numpy(np.float64)
    model = HedgeCutClassifier(n_estimators=10, epsilon=0.01, categorical_features=cat,
                               random_state=0).fit(X, y)
    order = np.random.RandomState(0).permutation(X.shape[0])
    for i in order[: model.budget_]:
        model.partial_forget(int(i))
    model.partial_forget(order[model.budget_: 300])
    _check_rescored(model)
    np.testing.assert_allclose(model.predict_proba(X[:500]), _rescored_proba(model, X[:500]),
                               rtol=1e-12)


def test_batch_predict_in_threads_equals_one_thread(cancer):
    X, y = cancer
    model = HedgeCutClassifier(n_estimators=5, random_state=0, n_jobs=1).fit(X, y)
    rows = np.random.RandomState(0).uniform(X.min(0), X.max(0), size=(9000, X.shape[1]))
    one = model.predict_proba(rows)
    model.set_params(n_jobs=2)  # 3 chunks of at most 4,096 rows in 2 threads
    np.testing.assert_array_equal(model.predict_proba(rows), one)
    np.testing.assert_allclose(one.sum(axis=1), 1.0)
