"""DaRE forests: structural invariants, equality with refit, and the scikit-learn surface."""

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer, load_iris, load_wine
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks

from skforget.ensemble import DaREForestClassifier
from skforget.ensemble import _kernels as K

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"
EXACT = dict(max_features=None, k=100_000, topd=0)  # randomness switched off


def _load(name, n, seed=0):
    pd = pytest.importorskip("pandas")
    if not (DATA / f"{name}.csv").exists():
        pytest.skip(f"{name}.csv not found beside the repository")
    if name == "adult":
        df = pd.read_csv(DATA / "adult.csv", header=None, skipinitialspace=True)
        y = (df.pop(14).str.strip() == ">50K").to_numpy(int)
    else:
        df = pd.read_csv(DATA / "cardio.csv", sep=";").drop(columns="id")
        y = df.pop("cardio").to_numpy(int)
    for col in df.columns:
        if not pd.api.types.is_numeric_dtype(df[col]):
            df[col] = df[col].astype("category").cat.codes
    rows = np.random.RandomState(seed).choice(len(df), n, replace=False)
    return df.to_numpy(np.float32)[rows], y[rows]


# ------------------------------------------------------------------ invariants
def _score(left, total, criterion):
    """The kernel's own score (same arithmetic, so exact ties stay ties)."""
    left, total = left.astype(np.int32)[None, :], total.astype(np.int32)[None, :]
    return K._split_score(left, 0, total, 0, total.shape[1], criterion)


def _candidates(values, labels):
    """Valid thresholds of one feature: (v1, v2, left counts index) in value order."""
    order = np.argsort(values, kind="stable")
    v, lab = values[order], labels[order]
    uniq = np.unique(v)
    out = []
    for a, b in zip(uniq[:-1], uniq[1:]):
        if len(np.unique(lab[(v == a) | (v == b)])) > 1:
            out.append((a, b))
    return uniq, out


def assert_invariants(model):
    """Every structural invariant of DESIGN.md section 3 (DaRE), recomputed from the rows."""
    f = model._forest
    p = f.params
    reg = model._rows
    X = reg.X[: reg.n]
    y = reg.codes[: reg.n]
    live = np.flatnonzero(reg.alive[: reg.n])
    C = len(model.classes_)
    assert f.counts.shape[1] == C
    for t in range(model.n_estimators):
        stack = [(int(f.roots[t]), live)]
        while stack:
            node, rows = stack.pop()
            nd = f.nodes[node]
            counts = np.bincount(y[rows], minlength=C)
            np.testing.assert_array_equal(f.counts[node], counts, err_msg=f"counts, node {node}")
            assert rows.size > 0, "empty node"
            assert not nd[K.PENDING], "pending flag left behind"
            pure = np.count_nonzero(counts) <= 1
            stops = (nd[K.DEPTH] >= p.max_depth or rows.size < p.min_samples_split
                     or rows.size < 2 * p.min_samples_leaf or pure)
            if nd[K.LEFT] < 0:
                assert nd[K.KIND] == K.LEAF
                continue
            assert not stops, f"decision node {node} violates a stopping rule"
            feat, thr = nd[K.FEAT], f.node_f[node, K.THR]
            if nd[K.KIND] == K.RANDOM:
                vals = X[rows, feat]
                assert f.node_f[node, K.LO] == vals.min() and f.node_f[node, K.HI] == vals.max()
                assert vals.min() <= thr < vals.max()
            else:
                assert nd[K.KIND] == K.GREEDY
                s0, n_slot = nd[K.SLOT0], nd[K.NSLOT]
                feats = f.slots[s0 : s0 + n_slot, K.S_FEAT]
                assert len(set(feats.tolist())) == n_slot, "a feature sampled twice"
                assert n_slot == min(p.max_features, sum(
                    np.ptp(X[rows, j]) > 0 for j in range(X.shape[1])))
                best_key, best_ti = None, None
                for s in range(s0, s0 + n_slot):
                    j = f.slots[s, K.S_FEAT]
                    uniq, cands = _candidates(X[rows, j], y[rows])
                    assert uniq.size >= 2, f"constant feature {j} sampled"
                    n_thr = f.slots[s, K.S_NTHR]
                    assert n_thr == min(p.k, len(cands)), (n_thr, len(cands))
                    seen = set()
                    t0 = f.slots[s, K.S_THR0]
                    assert n_thr <= f.slots[s, K.S_CAP]
                    for ti in range(t0, t0 + n_thr):
                        v1, v2 = f.thr_v[ti]
                        assert (v1, v2) in cands, f"cached threshold {(v1, v2)} not valid"
                        assert (v1, v2) not in seen, "a threshold cached twice"
                        seen.add((v1, v2))
                        x = X[rows, j]
                        left = np.bincount(y[rows][x <= v1], minlength=C)
                        np.testing.assert_array_equal(f.thr_left[ti], left)
                        np.testing.assert_array_equal(
                            f.thr_at[ti, 0], np.bincount(y[rows][x == v1], minlength=C))
                        np.testing.assert_array_equal(
                            f.thr_at[ti, 1], np.bincount(y[rows][x == v2], minlength=C))
                        n_left = left.sum()
                        if min(n_left, rows.size - n_left) < p.min_samples_leaf:
                            continue
                        key = (_score(left, counts, p.criterion), j, v1)
                        if best_key is None or key < best_key:
                            best_key, best_ti = key, ti
                assert best_ti is not None
                assert nd[K.BEST] == best_ti, "split is not the argmin of the cached set"
                v1, v2 = f.thr_v[best_ti]
                assert feat == f.slots[K._slot_of(f.nodes, f.slots, node, best_ti), K.S_FEAT]
                assert thr == K._midpoint(v1, v2), "threshold not anchored to surviving values"
            go_left = X[rows, feat] <= thr
            stack.append((int(nd[K.LEFT]), rows[go_left]))
            stack.append((int(nd[K.RIGHT]), rows[~go_left]))


def _refit(model, X, y, keep):
    return DaREForestClassifier(**model.get_params()).fit(X[keep], y[keep])


# -------------------------------------------------------------- exactness tests
@pytest.mark.parametrize("name", ["adult", "cardio"])
def test_forget_equals_refit_on_real_data(name):
    """Randomness off: one-by-one and batch deletions give the refit, node for node."""
    X, y = _load(name, 1000)
    model = DaREForestClassifier(n_estimators=2, max_depth=6, random_state=0, **EXACT)
    model.fit(X, y)
    rng = np.random.RandomState(1)
    forget = rng.choice(len(X), 120, replace=False)
    keep = np.ones(len(X), dtype=bool)
    for i, r in enumerate(forget[:80]):
        model.partial_forget(int(r))
        keep[r] = False
        if i % 40 == 39:
            model._assert_forget_matches(_refit(model, X, y, keep), X)
    model.partial_forget(forget[80:])
    keep[forget[80:]] = False
    model._assert_forget_matches(_refit(model, X, y, keep), X)
    assert model.n_regrown_ > 0  # the sequence exercised subtree regrowth


@pytest.mark.parametrize("name", ["adult", "cardio"])
def test_reanchoring_without_a_sort_equals_refit(name):
    """Thresholds moved off an emptied value by one pass (no rescan sort) give the refit,
    with sampling on (the cache then holds k of many thresholds) and off."""
    X, y = _load(name, 800, seed=3)
    for kw in (EXACT, dict(max_features=None, k=4, topd=0)):
        model = DaREForestClassifier(n_estimators=2, max_depth=5, random_state=0, **kw)
        model.fit(X, y)
        forget = np.random.RandomState(4).choice(len(X), 60, replace=False)
        for r in forget:
            model.partial_forget(int(r))
        assert model._forest.work[6] > 0  # re-anchored without a sort
        if kw is EXACT:
            keep = np.ones(len(X), dtype=bool)
            keep[forget] = False
            model._assert_forget_matches(_refit(model, X, y, keep), X)
        else:
            assert_invariants(model)


def test_one_tree_equals_scikit_learns_tree():
    """With randomness off a one-tree forest is scikit-learn's decision tree.

    (Where two splits tie exactly, scikit-learn breaks the tie by its random
    feature order and we by feature index; this data has no such tie.)
    """
    X, y = load_breast_cancer(return_X_y=True)
    ours = DaREForestClassifier(n_estimators=1, max_depth=5, random_state=0, **EXACT)
    ours.fit(X, y)
    sk = DecisionTreeClassifier(max_depth=5, random_state=0).fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), sk.predict_proba(X), rtol=1e-12)
    assert len(np.unique(sk.apply(X))) == len(np.unique(ours.apply(X)))
    # importances: the same mean decrease in impurity (a stump has no tie here)
    ours.set_params(max_depth=1).fit(X, y)
    sk.set_params(max_depth=1).fit(X, y)
    np.testing.assert_allclose(ours.feature_importances_, sk.feature_importances_,
                               rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("criterion", ["gini", "entropy"])
def test_multiclass_forget_equals_refit(criterion):
    X, y = load_wine(return_X_y=True)
    kw = dict(n_estimators=2, criterion=criterion, min_samples_leaf=2, random_state=0,
              **EXACT)
    model = DaREForestClassifier(**kw).fit(X, y)
    forget = np.random.RandomState(0).choice(len(X), 60, replace=False)
    for r in forget[:30]:
        model.partial_forget(int(r))
    model.partial_forget(forget[30:])
    keep = np.ones(len(X), dtype=bool)
    keep[forget] = False
    model._assert_forget_matches(_refit(model, X, y, keep), X)
    assert_invariants(model)


def test_batches_equal_one_request_and_a_whole_class_goes():
    X, y = load_iris(return_X_y=True)
    kw = dict(n_estimators=2, random_state=0, **EXACT)
    A, B = np.arange(0, 150, 7), np.flatnonzero(y == 0)
    stepwise = DaREForestClassifier(**kw).fit(X, y).partial_forget(A).partial_forget(
        np.setdiff1d(B, A))
    at_once = DaREForestClassifier(**kw).fit(X, y).partial_forget(np.union1d(A, B))
    stepwise._assert_forget_matches(at_once, X)
    np.testing.assert_array_equal(stepwise.classes_, [1, 2])
    assert stepwise.predict_proba(X).shape == (150, 2)
    keep = np.ones(150, dtype=bool)
    keep[np.union1d(A, B)] = False
    stepwise._assert_forget_matches(_refit(stepwise, X, y, keep), X)


def test_partial_fit_adds_rows_like_a_fit():
    X, y = load_wine(return_X_y=True)
    kw = dict(n_estimators=2, random_state=0, **EXACT)
    model = DaREForestClassifier(**kw).fit(X[:100], y[:100])
    model.partial_forget([0, 5])
    model.partial_fit(X[100:], y[100:])
    assert model.n_samples_seen_ == len(X)
    keep = np.ones(len(X), dtype=bool)
    keep[[0, 5]] = False
    model._assert_forget_matches(_refit(model, X, y, keep), X)
    model.partial_forget([120, 1])
    keep[[120, 1]] = False
    model._assert_forget_matches(_refit(model, X, y, keep), X)



def test_signed_zeros_are_one_value():
    """-0.0 and 0.0 are one value on every path: the rank order and sorts (which see two
    bit patterns), the comparisons of forgetting and routing, and a row passed back."""
    rng = np.random.RandomState(0)
    n = 240
    X = rng.randint(-2, 3, size=(n, 3)).astype(np.float32)
    X[(X == 0) & (rng.rand(n, 3) < 0.5)] = -0.0
    y = (X[:, 0] + X[:, 1] + rng.normal(size=n) > 0).astype(int)
    X_given = np.asfortranarray(X)  # kept as is by validation: the model must not edit it
    neg_zero = (X == 0) & np.signbit(X)
    forget = rng.choice(n, 60, replace=False)
    keep = np.ones(n, dtype=bool)
    for kw in (EXACT, dict(max_features=2, k=2, topd=1)):
        model = DaREForestClassifier(n_estimators=3, max_depth=5, random_state=0, **kw)
        model.fit(X_given, y)
        assert ((X_given == 0) & np.signbit(X_given)).sum() == neg_zero.sum() > 0
        assert_invariants(model)
        keep[:] = True
        for r in forget:
            model.partial_forget(int(r))
            keep[r] = False
        assert_invariants(model)
        if kw is EXACT:
            model._assert_forget_matches(_refit(model, X, y, keep), X)
    signed = np.flatnonzero(neg_zero.any(axis=1) & keep)[:2]
    model.partial_forget(signed, X=X[signed])  # the rows as given, -0.0 and all
    assert_invariants(model)



def test_regrowth_that_runs_out_of_room_carries_on():
    """Pools without spare room: regrowth stops, the pools grow, it carries on (same trees)."""
    X, y = load_breast_cancer(return_X_y=True)
    model = DaREForestClassifier(n_estimators=2, max_depth=6, random_state=0, **EXACT).fit(X, y)
    forest = model._forest
    forest.__dict__.update(forest._compacted())  # no headroom (``_reserve`` skipped)
    forget = np.random.RandomState(2).choice(len(X), 150, replace=False)
    for r in forget:
        model.partial_forget(int(r))
    assert model.n_regrown_ > 0
    keep = np.ones(len(X), dtype=bool)
    keep[forget] = False
    model._assert_forget_matches(_refit(model, X, y, keep), X)
    assert_invariants(model)



def test_wide_value_ranks_work_like_narrow_ones(monkeypatch):
    """More than 65,536 distinct values in a feature keep ranks as int32: same trees."""
    from skforget.ensemble import _forest

    narrow = _forest._value_ranks

    def wide(X, alive):
        ranks, n_uniq = narrow(X, alive)
        return ranks.astype(np.int32, order="F"), n_uniq

    X, y = load_wine(return_X_y=True)
    kw = dict(n_estimators=2, random_state=0, **EXACT)
    models = []
    for ranks_of in (narrow, wide):
        monkeypatch.setattr(_forest, "_value_ranks", ranks_of)
        model = DaREForestClassifier(**kw).fit(X, y)
        for r in range(0, 120, 3):
            model.partial_forget(r)
        models.append(model)
    assert models[0]._forest.ranks.dtype == np.uint16
    assert models[1]._forest.ranks.dtype == np.int32
    models[1]._assert_forget_matches(models[0], X)
    assert models[1].n_regrown_ > 0


# ------------------------------------------------------- sampling switched on
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_invariants_hold_after_random_sequences(data):
    """Random forget / partial_fit sequences keep every cached statistic exact."""
    rng = np.random.RandomState(data.draw(st.integers(0, 2**16), label="seed"))
    n, d = 120, 4
    X = rng.randint(0, data.draw(st.sampled_from([3, 8, 1000]), label="levels"),
                    size=(n, d)).astype(np.float32)
    X[:, 0] += rng.normal(size=n).astype(np.float32) * data.draw(st.sampled_from([0, 1]))
    y = rng.randint(0, data.draw(st.integers(2, 3), label="classes"), size=n)
    model = DaREForestClassifier(
        n_estimators=3, max_depth=data.draw(st.integers(2, 6), label="depth"),
        k=data.draw(st.integers(1, 4), label="k"), max_features=2,
        topd=data.draw(st.integers(0, 2), label="topd"),
        min_samples_leaf=data.draw(st.integers(1, 3), label="msl"),
        criterion=data.draw(st.sampled_from(["gini", "entropy"])),
        random_state=0,
    ).fit(X[:80], y[:80])
    added = False
    for _ in range(data.draw(st.integers(1, 6), label="steps")):
        alive = np.flatnonzero(model._rows.alive[: model._rows.n])
        if not added and data.draw(st.booleans(), label="add"):
            model.partial_fit(X[80:], y[80:])
            added = True
            continue
        size = data.draw(st.integers(1, max(1, min(15, alive.size - 1))), label="size")
        model.partial_forget(rng.choice(alive, size, replace=False))
        assert_invariants(model)
    restored = pickle.loads(pickle.dumps(model))
    restored._assert_forget_matches(model, X)
    assert_invariants(restored)


# ------------------------------------------------------- sort-free threshold scans
@settings(max_examples=100, deadline=None)
@given(levels=st.sampled_from([1, 2, 5, 40, 10_000]), n=st.integers(2, 300),
       n_classes=st.integers(1, 4), k=st.integers(1, 12), seed=st.integers(0, 2**16))
def test_rank_histogram_matches_the_sorted_scan(levels, n, n_classes, k, seed):
    """Per-value class counts give the candidates, draws and cached statistics of a sort."""
    from skforget.ensemble._forest import _value_ranks

    rng = np.random.RandomState(seed)
    X = np.asfortranarray(rng.randint(-levels, levels + 1, size=(n, 2)).astype(np.float32))
    X[rng.rand(n) < 0.2, 0] = -0.0  # signed zeros: distinct keys, as in the sort
    X[:, 1] += rng.normal(size=n).astype(np.float32)
    y = rng.randint(0, n_classes, size=n).astype(np.intp)
    alive = rng.rand(n) < 0.8
    ranks, n_uniq = _value_ranks(X, alive)
    alive[rng.rand(n) < 0.2] = False  # rows forgotten after the ranks were taken
    perm = rng.permutation(n).astype(np.int32)
    live = perm[alive[perm]]  # growing reads ranges of live rows only
    for f in range(2):
        keys, buf, cand = (np.empty(n, np.uint64), np.empty(n, np.uint64),
                           np.empty(n, np.int64))
        hist, bits = np.empty((3, 2048), np.int64), np.empty(1, np.float32)
        hist2 = np.empty(n_uniq.max() * n_classes + 1, np.int64)
        m = K._sorted_keys(X, y, ranks, n_uniq, perm, 0, n, alive, f, keys, bits, buf, hist,
                           hist2, cand)
        n_cand = K._candidates(keys, m, n_classes, cand, bits)
        rep, cand2 = np.empty(n_uniq.max(), np.int64), np.empty(n, np.int64)
        m2, n_groups, n_cand2 = K._rank_histogram(y, ranks, n_uniq[f], live, 0, live.size, f,
                                                  n_classes, hist2, rep, cand2)
        assert (m2, n_cand2) == (m, n_cand)
        assert (n_groups <= 1) == K._is_constant(keys, m)
        if n_cand == 0:
            continue
        out = []
        for c, fill in ((cand, "sorted"), (cand2, "histogram")):
            chosen = np.empty(k, np.int64)
            state = np.array([seed], np.uint64)
            n_take = K._sample_sorted(c.copy(), n_cand, k, state, 0, chosen)
            thr_v = np.zeros((n_take, 2), np.float32)
            left = np.zeros((n_take, n_classes), np.int32)
            at = np.zeros((n_take, 2, n_classes), np.int32)
            if fill == "sorted":
                K._fill_thresholds(keys, m, chosen, n_take, thr_v, left, at, 0, n_classes, bits)
            else:
                K._fill_from_histogram(X, f, hist2, rep, n_uniq[f], chosen, n_take, thr_v,
                                       left, at, 0, n_classes, np.empty(n_classes, np.int64))
            out.append((thr_v.view(np.uint32), left, at, state))
        for a, b in zip(*out):
            np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------- score bounds
@settings(max_examples=200, deadline=None)
@given(counts=st.lists(st.integers(0, 40), min_size=2, max_size=4),
       lab=st.integers(0, 3), criterion=st.sampled_from([0, 1]))
def test_one_row_lowers_a_side_score_by_at_most_the_bound(counts, lab, criterion):
    """The bound behind skipped re-scoring: a removal never raises a score, and
    lowers it by at most ``_score_drop_bound`` (here on one side of a split)."""
    lab %= len(counts)
    counts[lab] += 1
    before = np.array(counts)
    after = before.copy()
    after[lab] -= 1
    zero = np.zeros_like(before)
    drop = _score(zero, before, criterion) - _score(zero, after, criterion)
    assert -1e-12 <= drop <= K._score_drop_bound(before.sum(), criterion) + 1e-12


@settings(max_examples=200, deadline=None)
@given(left=st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)),
       right=st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)))
def test_binary_gini_score_equals_the_general_loop(left, right):
    """Two classes take an unrolled Gini path; it gives the loop's score bit for bit
    (here the loop runs with a third, empty class), so ties break the same way."""
    thr_left = np.array([[left[0], left[1], 0]], dtype=np.int32)
    counts = np.array([[left[0] + right[0], left[1] + right[1], 0]], dtype=np.int32)
    two = K._split_score(np.ascontiguousarray(thr_left[:, :2]), 0,
                         np.ascontiguousarray(counts[:, :2]), 0, 2, 0)
    three = K._split_score(thr_left, 0, counts, 0, 3, 0)
    assert struct.pack("<d", two) == struct.pack("<d", three)


def assert_score_bounds(model):
    """At each greedy node the cached bound lies below every other eligible threshold's score."""
    f = model._forest
    p = f.params
    for t in range(model.n_estimators):
        stack = [int(f.roots[t])]
        while stack:
            node = stack.pop()
            nd = f.nodes[node]
            if nd[K.LEFT] < 0:
                continue
            stack += [int(nd[K.LEFT]), int(nd[K.RIGHT])]
            if nd[K.KIND] != K.GREEDY:
                continue
            n = f.counts[node].sum()
            for s in range(nd[K.SLOT0], nd[K.SLOT0] + nd[K.NSLOT]):
                t0 = f.slots[s, K.S_THR0]
                for ti in range(t0, t0 + f.slots[s, K.S_NTHR]):
                    n_left = f.thr_left[ti].sum()
                    if ti == nd[K.BEST] or min(n_left, n - n_left) < p.min_samples_leaf:
                        continue
                    score = K._split_score(f.thr_left, ti, f.counts, node, f.counts.shape[1],
                                           p.criterion)
                    assert f.node_f[node, K.BOUND] <= score + 1e-9, (node, ti)


@pytest.mark.parametrize("criterion", ["gini", "entropy"])
def test_kept_splits_are_still_the_argmin(criterion):
    """Splits kept without re-scoring are the argmin (invariants) under valid bounds,
    and the skipping happened."""
    X, y = _load("adult", 1500)
    model = DaREForestClassifier(n_estimators=4, max_depth=6, k=5, criterion=criterion,
                                 random_state=0).fit(X, y)
    for r in np.random.RandomState(2).choice(len(X), 150, replace=False):
        model.partial_forget(int(r))
    assert model._forest.work[5] > 0
    assert_score_bounds(model)
    assert_invariants(model)


# ------------------------------------------------------- the scikit-learn surface
def test_fit_is_deterministic_and_parallel_safe():
    X, y = load_breast_cancer(return_X_y=True)
    a = DaREForestClassifier(n_estimators=4, random_state=3, n_jobs=1).fit(X, y)
    b = DaREForestClassifier(n_estimators=4, random_state=3, n_jobs=2).fit(X, y)
    a._assert_forget_matches(b, X)
    assert (a.predict(X) == y).mean() > 0.95
    imp = a.feature_importances_
    assert imp.shape == (X.shape[1],) and np.isclose(imp.sum(), 1.0)
    assert a.apply(X[:3]).shape == (3, 4)


def test_batch_predict_in_threads_equals_one_thread():
    X, y = load_breast_cancer(return_X_y=True)
    model = DaREForestClassifier(n_estimators=4, random_state=0, n_jobs=1).fit(X, y)
    rows = np.random.RandomState(0).uniform(X.min(0), X.max(0), size=(9000, X.shape[1]))
    one = model.predict_proba(rows)
    model.set_params(n_jobs=2)  # 3 chunks of at most 4,096 rows in 2 threads
    np.testing.assert_array_equal(model.predict_proba(rows), one)
    np.testing.assert_allclose(one.sum(axis=1), 1.0)


def test_pickle_keeps_no_trace_of_a_forgotten_row():
    X, y = load_breast_cancer(return_X_y=True)
    canary = np.float32(-987654.3125)
    X = X.copy()
    X[7, :] = canary
    model = DaREForestClassifier(n_estimators=5, max_features=None, random_state=0).fit(X, y)
    assert struct.pack("<f", canary) in pickle.dumps(model)
    model.partial_forget([7])
    blob = pickle.dumps(model)
    for pattern in (struct.pack("<f", canary), struct.pack("<d", canary)):
        assert pattern not in blob
    restored = pickle.loads(blob)
    restored.partial_forget([8])
    model.partial_forget([8])
    restored._assert_forget_matches(model, X)


def test_grid_search_over_dare():
    X, y = load_breast_cancer(return_X_y=True)
    search = GridSearchCV(DaREForestClassifier(n_estimators=3, random_state=0),
                          {"max_depth": [2, 4]}, cv=3).fit(X, y)
    assert search.best_params_["max_depth"] in (2, 4)
    search.best_estimator_.partial_forget([0])


@pytest.mark.parametrize("params, message", [
    (dict(k=0), "k"), (dict(max_depth=0), "max_depth"), (dict(criterion="mse"), "criterion"),
    (dict(max_features=1.5), "max_features"), (dict(topd=-1), "topd"),
])
def test_bad_parameters_are_refused(params, message):
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match=message):
        DaREForestClassifier(**params).fit(X, y)


def test_bad_input_is_refused_clearly():
    X, y = load_iris(return_X_y=True)
    with pytest.raises(NotFittedError):
        DaREForestClassifier().predict(X)
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        DaREForestClassifier(n_estimators=2).fit(X_nan, y)
    model = DaREForestClassifier(n_estimators=2).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :3])
    with pytest.raises(ValueError, match="forgotten"):
        model.partial_forget([3]).partial_forget([3])
    with pytest.raises(ValueError, match="out of range"):
        model.partial_forget([150])


@parametrize_with_checks([DaREForestClassifier(n_estimators=5, random_state=0),
                          DaREForestClassifier(n_estimators=5, topd=2, k=3, random_state=0)])
def test_sklearn_checks_with_sampling_on(estimator, check):
    check(estimator)
