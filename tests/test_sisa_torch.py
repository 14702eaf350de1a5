"""SISA over torch models: skforget's TorchClassifier and a plain skorch net (CPU)."""

import pickle
import struct

import numpy as np
import pytest

torch = pytest.importorskip("torch")
skorch = pytest.importorskip("skorch")

from sklearn.base import clone  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402
from torch import nn  # noqa: E402

from skforget.ensemble import SISAClassifier  # noqa: E402
from skforget.torch import MLP, TorchClassifier  # noqa: E402
from skforget.utils.estimator_checks import assert_same_model  # noqa: E402

CANARY = -987654.3125


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    # tiny models: intra-op threads only contend for the CPU (10x slower on a
    # busy 2-core machine)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _data(n=90, d=4, seed=0):
    rng = np.random.RandomState(seed)
    y = np.arange(n) % 3
    rng.shuffle(y)
    X = (rng.normal(size=(n, d)) + y[:, None]).astype(np.float32)
    return X, y


def _tiny(**kw):
    params = dict(max_epochs=2, lr=0.02, batch_size=16, module__hidden_layer_sizes=(8,),
                  module__dropout=0.25)
    return TorchClassifier(**{**params, **kw})


def _keep(n, gone):
    keep = np.ones(n, dtype=bool)
    keep[np.asarray(gone)] = False
    return keep


class SoftmaxNet(nn.Module):
    """A plain skorch module: fixed sizes, softmax output, dropout."""

    def __init__(self, n_in=4, n_out=3):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(n_in, 8), nn.ReLU(), nn.Dropout(0.25),
                                    nn.Linear(8, n_out), nn.Softmax(dim=-1))

    def forward(self, X):
        return self.layers(X)


def _plain_skorch():
    return skorch.NeuralNetClassifier(
        SoftmaxNet, max_epochs=2, lr=0.05, batch_size=16, train_split=None, verbose=0,
        classes=[0, 1, 2], iterator_train__shuffle=True)


# ---------------------------------------------------------------- the adapter
def test_adapter_fit_is_reproducible_and_labels_any_values():
    X, y = _data()
    names = np.array(["cat", "dog", "emu"])[y]
    a = _tiny(random_state=0).fit(X, names)
    b = _tiny(random_state=0).fit(X, names)
    np.testing.assert_array_equal(a.classes_, ["cat", "dog", "emu"])
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert set(a.predict(X)) <= {"cat", "dog", "emu"}
    c = _tiny(random_state=1).fit(X, names)
    assert not np.array_equal(a.predict_proba(X), c.predict_proba(X))


def test_adapter_resumes_bit_for_bit_after_pickling():
    X, y = _data()
    first = _tiny(random_state=0).partial_fit(X[:45], y[:45], classes=[0, 1, 2])
    copy = pickle.loads(pickle.dumps(first))
    first.partial_fit(X[45:], y[45:])
    copy.partial_fit(X[45:], y[45:])
    straight = _tiny(random_state=0).partial_fit(X[:45], y[:45], classes=[0, 1, 2])
    straight.partial_fit(X[45:], y[45:])
    for other in (copy, straight):
        for (name, p), q in zip(first.module_.state_dict().items(),
                                other.module_.state_dict().values()):
            assert torch.equal(p, q), name
    # the caller's global torch generator is left as it was
    torch.manual_seed(5)
    expected = torch.rand(1)
    torch.manual_seed(5)
    _tiny(random_state=0).fit(X, y)
    assert torch.equal(torch.rand(1), expected)


def test_adapter_builds_its_module_from_the_data():
    X, y = _data(d=6)
    clf = _tiny(random_state=0, module__hidden_layer_sizes=(5, 7)).fit(X, y)
    assert isinstance(clf.module_, MLP)
    shapes = [tuple(p.shape) for p in clf.module_.parameters()]
    assert shapes == [(5, 6), (5,), (7, 5), (7,), (3, 7), (3,)]
    with pytest.raises(ValueError, match="not in classes_"):
        clf.partial_fit(X[:3], np.array([0, 1, 7]))


@parametrize_with_checks(
    [TorchClassifier(max_epochs=8, lr=0.05, module__hidden_layer_sizes=(16,), random_state=0)],
    expected_failed_checks=lambda est: {
        "check_no_attributes_set_in_init": (
            "skorch's NeuralNet.__init__ sets history_, initialized_ and virtual_params_ "
            "and stores module__* / iterator_train__* keyword parameters by design"),
    },
)
def test_adapter_is_a_scikit_learn_classifier(estimator, check):
    check(estimator)


# ------------------------------------------------------------- SISA exactness
@pytest.mark.parametrize("slice_training", ["incremental", "cumulative"])
def test_sisa_over_the_adapter_equals_same_seed_refit(slice_training):
    X, y = _data()
    model = SISAClassifier(_tiny(), n_shards=3, n_slices=3, aggregation="mean_proba",
                           slice_training=slice_training, random_state=0).fit(X, y)
    a = model.get_assignment()
    # one row from a last slice (resumes from a checkpoint), one from a first slice
    gone = [int(np.flatnonzero(a[:, 1] == 2)[0]), int(np.flatnonzero(a[:, 1] == 0)[0])]
    model.partial_forget(gone)
    keep = _keep(len(y), gone)
    refit = clone(model).fit(X[keep], y[keep])
    assert_same_model(model, refit, X)  # module weights, Adam state, probabilities


def test_sisa_over_a_plain_skorch_net_equals_same_seed_refit():
    X, y = _data()
    model = SISAClassifier(_plain_skorch(), n_shards=3, n_slices=3, aggregation="mean_proba",
                           slice_training="cumulative", random_state=0).fit(X, y)
    _, _, rng = pickle.loads(model._checkpoints[0][0])
    assert "torch" in rng  # no random_state: global generators, checkpointed
    a = model.get_assignment()
    gone = [int(np.flatnonzero((a[:, 0] == 1) & (a[:, 1] == 2))[0])]
    model.partial_forget(gone)
    keep = _keep(len(y), gone)
    assert_same_model(model, clone(model).fit(X[keep], y[keep]), X)


def test_torch_checkpoints_are_purged_from_memory_and_disk(tmp_path):
    X, y = _data()
    model = SISAClassifier(_tiny(), n_shards=2, n_slices=3, random_state=0,
                           slice_training="cumulative")
    for i in range(len(y)):  # a canary row in slice 0, seen by every checkpoint
        Xc = X.astype(np.float64)
        Xc[i, 1] = CANARY
        if clone(model).fit(Xc, y).get_assignment()[i, 1] == 0:
            break
    value = struct.pack("<d", CANARY)
    disk = clone(model).set_params(checkpoint_dir=tmp_path).fit(Xc, y)
    memory = model.fit(Xc, y)
    assert value in pickle.dumps(memory)
    for m in (memory, disk):
        m.partial_forget(i)
    assert value not in pickle.dumps(memory)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) == 2 * 2 and not any(value in p.read_bytes() for p in files)
    assert_same_model(disk, memory, Xc)
