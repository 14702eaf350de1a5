"""SISA under Dask's joblib backend gives the model a serial run gives."""

import joblib
import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from sklearn.base import clone  # noqa: E402
from sklearn.linear_model import SGDClassifier  # noqa: E402

from skforget.ensemble import SISAClassifier  # noqa: E402
from skforget.naive_bayes import GaussianNB  # noqa: E402
from skforget.utils.estimator_checks import assert_same_model  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            yield client


def _data(n=150, seed=0):
    rng = np.random.RandomState(seed)
    y = np.arange(n) % 3
    rng.shuffle(y)
    return rng.normal(size=(n, 4)) + y[:, None], y


@pytest.mark.parametrize("base", [SGDClassifier(loss="log_loss"), GaussianNB()],
                         ids=["SGD", "GaussianNB"])
def test_dask_backend_gives_the_same_model(client, base):
    X, y = _data()
    model = SISAClassifier(base, n_shards=4, n_slices=3, aggregation="mean_proba",
                           random_state=0)
    serial = clone(model).fit(X, y)
    with distributed.get_task_stream(client) as stream:
        with joblib.parallel_config(backend="dask"):
            on_dask = clone(model).fit(X, y)
    assert len(stream.data) >= 4  # one task per shard ran on the cluster
    assert_same_model(on_dask, serial, X)
    gone = [0, 1, 2, 77]
    with joblib.parallel_config(backend="dask"):
        on_dask.partial_forget(gone)
    serial.partial_forget(gone)
    assert_same_model(on_dask, serial, X)
    keep = np.ones(len(y), dtype=bool)
    keep[gone] = False
    assert_same_model(on_dask, clone(model).fit(X[keep], y[keep]), X)


def test_dask_backend_with_torch_shards(client):
    pytest.importorskip("skorch")
    torch = pytest.importorskip("torch")
    from skforget.torch import TorchClassifier

    X, y = _data(n=90)
    X = X.astype(np.float32)
    base = TorchClassifier(max_epochs=2, lr=0.02, batch_size=16,
                           module__hidden_layer_sizes=(8,), module__dropout=0.25)
    model = SISAClassifier(base, n_shards=3, n_slices=2, slice_training="cumulative",
                           random_state=0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        serial = clone(model).fit(X, y)
        with joblib.parallel_config(backend="dask"):
            on_dask = clone(model).fit(X, y)
    finally:
        torch.set_num_threads(threads)
    assert_same_model(on_dask, serial, X)
