"""Persistence (skops, joblib) and record ids: identical models, no residue, no untrusted types."""

import io
import json
import os
import pickle
import stat
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.naive_bayes import GaussianNB as SkGaussianNB

pytest.importorskip("skops")
from skops.io.exceptions import UntrustedTypesFoundException  # noqa: E402
from test_contract import ESTIMATORS  # noqa: E402  (every estimator, as they land)

from skforget.io import (  # noqa: E402
    RecordIndex,
    UnknownRecordsError,
    _stale_temporaries,
    dump,
    dumps,
    load,
    loads,
)
from skforget.linear_model import Ridge  # noqa: E402
from skforget.naive_bayes import GaussianNB, MultinomialNB  # noqa: E402
from skforget.utils.estimator_checks import _canary_value, _contract_data  # noqa: E402

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


# --------------------------------------------------------------------- helpers
def _state(obj):
    """Everything an object holds, as pickle would see it."""
    if hasattr(obj, "__getstate__") and not isinstance(obj, (dict, list, tuple, type)):
        state = obj.__getstate__()
        if isinstance(state, tuple) and len(state) == 2 and state[0] is None:
            state = state[1]  # __slots__ only
        if isinstance(state, dict):
            return state
    return vars(obj)


def assert_identical(a, b, where="model"):
    """Recursively equal: same types, same array dtypes and bits (NaN == NaN)."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, f"{where}: {a.dtype}{a.shape}"
        if a.dtype == object:
            for i, (x, y) in enumerate(zip(a.ravel(), b.ravel())):
                assert_identical(x, y, f"{where}.flat[{i}]")
        else:
            np.testing.assert_array_equal(a, b, err_msg=where)
    elif sp.issparse(a):
        assert a.shape == b.shape and a.format == b.format, where
        assert_identical(a.data, b.data, f"{where}.data")
        assert_identical(a.indices, b.indices, f"{where}.indices")
        assert_identical(a.indptr, b.indptr, f"{where}.indptr")
    elif isinstance(a, dict):
        assert sorted(a, key=repr) == sorted(b, key=repr), f"{where}: keys differ"
        for k in a:
            assert_identical(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{where}[{i}]")
    elif isinstance(a, (float, np.floating)):
        assert a == b or (np.isnan(a) and np.isnan(b)), f"{where}: {a} != {b}"
    elif isinstance(a, bytes) and a != b and a[:1] == b[:1] == b"\x80":
        # pickles (e.g. SISA's checkpoints) written from equal objects can differ
        # in their memo (shared or separate dtype objects): compare what they hold
        assert_identical(pickle.loads(a), pickle.loads(b), f"{where}(unpickled)")
    elif a is None or isinstance(a, (str, bytes, bool, int, np.generic, type, np.dtype)):
        assert a == b, f"{where}: {a!r} != {b!r}"
    elif isinstance(a, np.random.RandomState):
        assert_identical(a.get_state(), b.get_state(), where)
    elif isinstance(a, np.random.Generator):
        assert a.bit_generator.state == b.bit_generator.state, where
    elif hasattr(a, "__dict__"):
        assert_identical(_state(a), _state(b), f"{where}.{type(a).__name__}")
    else:  # e.g. an extension type: compare what pickle would store
        (cls_a, *rest_a), (cls_b, *rest_b) = a.__reduce__()[:2], b.__reduce__()[:2]
        assert cls_a == cls_b, where
        assert_identical(rest_a, rest_b, f"{where}.__reduce__()")


def _fit(est, X, y):
    return est.fit(X) if type(est).__name__ == "KMeans" else est.fit(X, y)


def _predictions(model, X):
    return {m: getattr(model, m)(X) for m in
            ("predict", "predict_proba", "decision_function", "transform")
            if hasattr(model, m)}


def _canaries(value):
    return [struct.pack("<d", value), struct.pack("<q", int(value))]


def _zip_members(data):
    """The uncompressed bytes of every member of a skops archive."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return b"".join(z.read(name) for name in z.namelist())


def _retyped(data, old, new):
    """A skops archive whose schema names ``new`` where it named ``old``."""
    src, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            body = src.read(name)
            if name == "schema.json":
                text = body.decode()
                assert old in text
                body = text.replace(old, new, 1).encode()
            dst.writestr(name, body)
    return out.getvalue()


# ------------------------------------------------------- every estimator round trip
def _observable(model, X):
    """Public fitted attributes, the row registry and every prediction."""
    out = {k: v for k, v in vars(model).items() if k.endswith("_") and not k.startswith("_")}
    if "_rows" in vars(model):
        out["_rows"] = _state(model._rows)
    return out, _predictions(model, X)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_skops_round_trip_is_identical_and_keeps_forgetting(estimator):
    """skops restores what the estimator's own pickling restores, bit for bit.

    Against the original model: fitted attributes, row registry and predictions
    are identical (private state may differ where an estimator rebuilds derived
    state on load, as DaRE rebuilds its row order).
    """
    X, y = _contract_data(estimator)
    model = _fit(clone(estimator), X, y).partial_forget([0, 5, 6])
    restored = loads(dumps(model))
    reference = pickle.loads(pickle.dumps(model))
    assert_identical(restored, reference)
    assert_identical(_observable(restored, X), _observable(model, X))
    # the restored model forgets as the original does, and is saved again
    for m in (model, restored, reference):
        m.partial_forget([1, 2])
    assert_identical(restored, reference)
    assert_identical(_observable(restored, X), _observable(model, X))
    assert_identical(loads(dumps(restored)), pickle.loads(pickle.dumps(restored)))
    with pytest.raises(ValueError, match="already forgotten"):
        restored.partial_forget([5])


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_saved_file_holds_no_forgotten_row(estimator, tmp_path):
    X, y = _contract_data(estimator)
    value = _canary_value(estimator)
    X[7, 1] = value
    model = _fit(clone(estimator), X, y)
    dump(model, tmp_path / "before.skops")
    before = (tmp_path / "before.skops").read_bytes()
    model.partial_forget([7])
    dump(model, tmp_path / "after.skops")
    after = (tmp_path / "after.skops").read_bytes()
    if type(model).__name__ in ("GaussianNB", "Ridge", "LinearRegression"):
        assert any(c in before for c in _canaries(value))  # the check can see it at all
    for canary in _canaries(value):
        assert canary not in after
        assert canary not in _zip_members(after)


def test_sparse_and_lean_models_round_trip():
    rng = np.random.RandomState(0)
    X, y = rng.poisson(1.0, size=(40, 6)).astype(float), rng.randint(0, 2, 40)
    sparse = MultinomialNB().fit(sp.csr_matrix(X), y).partial_forget([3])
    restored = loads(dumps(sparse))
    assert sp.issparse(restored._rows.X)
    assert_identical(restored, sparse)
    restored.partial_forget([4])
    sparse.partial_forget([4])
    assert_identical(restored, sparse)

    lean = GaussianNB(retain_rows=False).fit(X, y)
    restored = loads(dumps(lean))
    restored.partial_forget([2], X=X[[2]])
    lean.partial_forget([2], X=X[[2]])
    assert_identical(restored, lean)
    with pytest.raises(ValueError, match="differ"):
        restored.partial_forget([3], X=X[[4]])


def test_model_with_feature_names_round_trips():
    pd = pytest.importorskip("pandas")
    X, y = _contract_data(GaussianNB())
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    model = GaussianNB().fit(frame, y)
    restored = loads(dumps(model))
    assert restored.feature_names_in_.tolist() == ["a", "b", "c", "d"]
    np.testing.assert_array_equal(restored.predict_proba(frame), model.predict_proba(frame))


# ----------------------------------------------------------------------- trust
class NotFromSkforget:
    """A harmless class that skforget does not own: its files need trusted=."""


def test_file_with_an_untrusted_type_is_refused():
    model = GaussianNB().fit(*_contract_data(GaussianNB()))
    data = dumps({"model": model, "extra": NotFromSkforget()})
    with pytest.raises(UntrustedTypesFoundException, match="test_io.NotFromSkforget"):
        loads(data)
    loaded = loads(data, trusted=[NotFromSkforget])  # trusting it is explicit
    assert isinstance(loaded["extra"], NotFromSkforget)
    assert loads(data, trusted=["test_io.NotFromSkforget"])["model"].n_features_in_ == 4


@pytest.mark.parametrize("module, name", [
    ("os", "system"),                       # not skforget at all
    ("skforget.base", "NotFittedError"),    # a class skforget imports, not its own
    ("skforget.base", "np"),                # a module, not a class
    ("skforget.nowhere", "GaussianNB"),     # no such module
    ("skforget.serve._service", "ForgetService"),  # skforget's, but never model state
])
def test_types_that_merely_look_trusted_are_refused(module, name):
    data = dumps(GaussianNB().fit(*_contract_data(GaussianNB())))
    forged = _retyped(
        data,
        '"__class__": "GaussianNB",\n  "__module__": "skforget.naive_bayes._gaussian"',
        f'"__class__": "{name}",\n  "__module__": "{module}"',
    )
    with pytest.raises(UntrustedTypesFoundException, match=f"{module}.{name}"):
        loads(forged)


def test_joblib_is_explicit_and_round_trips(tmp_path):
    model = Ridge().fit(*_contract_data(Ridge())).partial_forget([3])
    path = tmp_path / "model.joblib"
    dump(model, path, format="joblib")
    assert_identical(load(path, format="joblib"), model)
    with pytest.raises(zipfile.BadZipFile):  # never unpickled unless asked
        load(path)
    with pytest.raises(ValueError, match="format must be one of"):
        dumps(model, format="pickle")


# -------------------------------------------------------------- atomic writing
def test_dump_replaces_atomically_and_keeps_permissions(tmp_path):
    path = tmp_path / "model.skops"
    X, y = _contract_data(GaussianNB())
    dump(GaussianNB().fit(X, y), path)
    os.chmod(path, 0o640)
    dump(GaussianNB().fit(X, y).partial_forget([0]), path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert load(path).n_forgotten_ == 1
    assert _stale_temporaries(path) == []

    with pytest.raises(TypeError):  # fails half-way: the model is written first
        dump({"model": GaussianNB().fit(X, y), "bad": (i for i in ())}, path)
    assert load(path).n_forgotten_ == 1  # the old file is intact ...
    assert _stale_temporaries(path) == []  # ... and no temporary is left


def test_file_objects_and_compression():
    model = GaussianNB().fit(*_contract_data(GaussianNB()))
    buffer = io.BytesIO()
    dump(model, buffer, compression=zipfile.ZIP_DEFLATED)
    assert_identical(load(io.BytesIO(buffer.getvalue())), model)


# ------------------------------------------------------------------ record ids
def test_record_index_maps_and_forgets_with_the_model():
    X, y = _contract_data(GaussianNB())
    ids = np.array([f"id-{i}" for i in range(len(y))])
    model, index = GaussianNB().fit(X, y), RecordIndex(ids)
    assert len(index) == 60 and index.n_rows == 60 and index.kind == "str"
    rows = index.forget(model, ["id-9", "id-3", "id-9"])
    np.testing.assert_array_equal(rows, [9, 3])
    keep = np.setdiff1d(np.arange(60), [3, 9])
    refit = SkGaussianNB().fit(X[keep], y[keep])
    np.testing.assert_allclose(model.predict_proba(X), refit.predict_proba(X), rtol=1e-9)
    assert "id-3" not in index and "id-4" in index and len(index) == 58
    rows, unknown = index.lookup(["id-4", "id-3", "nope", 7, "id-4"])
    assert rows.tolist() == [4] and unknown == ["id-3", "nope", 7]


def test_record_index_refuses_bad_requests_and_changes_nothing():
    X, y = _contract_data(GaussianNB())
    model, index = GaussianNB().fit(X, y), RecordIndex(range(100, 160))
    before = (_state(model._rows).copy(), index.copy())
    with pytest.raises(UnknownRecordsError, match=r"\[999, '100'\]") as err:
        index.forget(model, [100, 999, "100"])
    assert err.value.unknown == [999, "100"]
    with pytest.raises(UnknownRecordsError):
        index.forget(model, [True])  # a bool is not the integer id 1
    index.extend([500])
    with pytest.raises(ValueError, match="partial_fit"):  # index and model out of step
        index.forget(model, [100])
    index.discard([500])
    assert model.n_forgotten_ == 0 and 100 in index
    assert_identical(_state(model._rows), before[0])
    # the model refuses (already forgotten): the id stays, nothing changes
    model.partial_forget([0])
    with pytest.raises(ValueError, match="already forgotten"):
        RecordIndex(range(100, 160)).forget(model, [100])


@pytest.mark.parametrize("ids, error, match", [
    (["a", 1], TypeError, "one type"),
    ([1.5], TypeError, "strings or integers"),
    ([True], TypeError, "strings or integers"),
    (["a", "a"], ValueError, "unique"),
    ([2**70], ValueError, "64 bits"),
    ("abc", TypeError, "list or array"),
])
def test_record_index_validates_ids(ids, error, match):
    with pytest.raises(error, match=match):
        RecordIndex(ids)


def test_record_index_extend_is_all_or_nothing():
    index = RecordIndex(["a", "b"])
    with pytest.raises(ValueError, match="'b'"):
        index.extend(["c", "b"])
    with pytest.raises(TypeError):
        index.extend(["c", 5])
    assert list(index) == ["a", "b"] and index.n_rows == 2
    np.testing.assert_array_equal(index.extend(np.array(["c", "d"])), [2, 3])


@pytest.mark.parametrize("ids", [
    [f"customer-{i}-é" for i in range(50)] + [""],
    list(range(-25, 26)),
    [],
])
def test_record_index_round_trips_without_forgotten_ids(ids):
    index = RecordIndex(ids)
    if ids:
        index.discard([ids[7], ids[30]])
    data = dumps(index)
    restored = loads(data)
    assert dict(zip(restored, restored.rows(list(restored)).tolist())) == \
        dict(zip(index, index.rows(list(index)).tolist()))
    assert restored.n_rows == index.n_rows == len(ids)
    assert restored.kind == index.kind
    if ids and isinstance(ids[0], str):
        for gone in (ids[7], ids[30]):
            assert gone.encode() not in _zip_members(data)
        restored.extend(["new"])
        assert restored.rows(["new"]).tolist() == [len(ids)]


@pytest.mark.parametrize("corrupt", [
    {"rows": np.array([0, 0])},
    {"rows": np.array([1, 0])},
    {"rows": np.array([0, 99])},
    {"id_lengths": np.array([1, 5])},
    {"id_text": np.frombuffer(b"a\xff", dtype=np.uint8)},
    {"kind": "float"},
])
def test_record_index_refuses_corrupt_state(corrupt):
    state = RecordIndex(["a", "b"]).__getstate__() | corrupt
    with pytest.raises(ValueError, match="Corrupt"):
        RecordIndex().__setstate__(state)


ops = st.lists(
    st.one_of(
        st.tuples(st.just("forget"), st.lists(st.integers(0, 79), min_size=1, max_size=5)),
        st.tuples(st.just("add"), st.integers(1, 6)),
        st.tuples(st.just("save"), st.just(0)),
    ),
    min_size=1, max_size=10,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=ops)
def test_record_index_tracks_model_through_any_sequence(ops):
    """fit / partial_fit / forget-by-id / save-load in any order equals a refit."""
    rng = np.random.RandomState(1)
    X_all = rng.normal(size=(80, 3)) * [1, 5, 0.2]
    y_all = np.arange(80) % 2
    ids_all = [f"r{i:02d}" for i in range(80)]
    n = 40
    model, index = GaussianNB().fit(X_all[:n], y_all[:n]), RecordIndex(ids_all[:n])
    alive = set(range(n))
    for op, arg in ops:
        if op == "forget":
            wanted = [ids_all[i] for i in arg if i in alive]
            if not wanted or len(set(wanted)) == len(alive):
                continue
            index.forget(model, wanted)
            alive -= {ids_all.index(w) for w in wanted}
        elif op == "add":
            new = list(range(n, min(n + arg, 80)))
            if not new:
                continue
            np.testing.assert_array_equal(index.extend([ids_all[i] for i in new]),
                                          np.arange(n, n + len(new)))
            model.partial_fit(X_all[new], y_all[new])
            alive |= set(new)
            n += len(new)
        else:
            restored = loads(dumps({"model": model, "record_ids": index}))
            model, index = restored["model"], restored["record_ids"]
    keep = sorted(alive)
    assert sorted(index) == [ids_all[i] for i in keep]
    np.testing.assert_array_equal(index.rows([ids_all[i] for i in keep]), keep)
    refit = SkGaussianNB().fit(X_all[keep], y_all[keep])
    np.testing.assert_allclose(model.theta_, refit.theta_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(model.var_, refit.var_, rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------- real data
def load_adult(n=None):
    """Adult census rows: 6 numeric columns and 8 ordinal-coded categorical ones."""
    path = DATASETS / "adult.csv"
    if not path.exists():
        pytest.skip(f"{path} not found")
    lines = [line.split(", ") for line in path.read_text().splitlines() if line.strip()]
    lines = lines[:n] if n else lines
    columns = list(zip(*lines))
    features = []
    for column in columns[:-1]:
        try:
            features.append(np.array(column, dtype=np.float64))
        except ValueError:
            features.append(np.unique(column, return_inverse=True)[1].astype(np.float64))
    y = np.array([label.strip().rstrip(".") == ">50K" for label in columns[-1]], dtype=int)
    return np.column_stack(features), y


def test_adult_model_with_ids_saved_without_forgotten_records(tmp_path):
    X, y = load_adult(3000)
    fnlwgt = X[:, 2]
    values, counts = np.unique(fnlwgt, return_counts=True)
    unique_rows = np.flatnonzero(np.isin(fnlwgt, values[counts == 1]))
    target = int(unique_rows[10])  # a row whose fnlwgt no other row has
    ids = [f"person-{i:05d}" for i in range(len(y))]
    model, index = GaussianNB().fit(X, y), RecordIndex(ids)
    path = tmp_path / "adult.skops"
    dump({"model": model, "record_ids": index}, path)
    canary = struct.pack("<d", X[target, 2])
    assert canary in path.read_bytes() and ids[target].encode() in path.read_bytes()

    index.forget(model, [ids[target], ids[0]])
    dump({"model": model, "record_ids": index}, path)
    data = path.read_bytes()
    assert canary not in data and ids[target].encode() not in data
    restored = load(path)
    assert_identical(restored["model"], model)
    keep = np.setdiff1d(np.arange(len(y)), [0, target])
    refit = SkGaussianNB().fit(X[keep], y[keep])
    np.testing.assert_allclose(restored["model"].predict_proba(X), refit.predict_proba(X),
                               rtol=1e-9, atol=1e-12)
    assert json.dumps(restored["record_ids"].lookup([ids[1], ids[0]])[1]) == '["person-00000"]'
