"""model.predict on a dask array: lazy, chunk by chunk, equal to the in-memory result."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import nnx

da = pytest.importorskip("dask.array", reason="needs dask: pip install -e '.[dask]'")


def _forward_numpy(model: nnx.Sequential, X: np.ndarray) -> np.ndarray:
    """The MLP written out in NumPy: tanh hidden layer, raw output (the reference)."""
    W0, b0, W1, b1 = (nnx.to_numpy(p) for p in model.parameters().values())
    return np.tanh(X @ W0.T + b0) @ W1.T + b1


def test_many_chunks_equal_in_memory(backend, to_np):
    rng = np.random.default_rng(0)
    Xn = rng.standard_normal((1003, 6))
    model = nnx.MLP([6, 9, 3], activation="tanh", dtype="float64", seed=0)
    X = da.from_array(Xn, chunks=(50, 2))        # 21 row chunks × 3 column chunks
    out = model.predict(X)
    assert isinstance(out, da.Array)
    assert out.shape == (1003, 3) and out.dtype == np.float64
    assert out.chunks == (X.chunks[0], (3,))     # one output chunk per row chunk
    got = out.compute()
    assert isinstance(got, np.ndarray)            # NumPy chunks give NumPy scores
    np.testing.assert_allclose(got, to_np(model.predict(Xn)), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(got, _forward_numpy(model, Xn), rtol=1e-12, atol=1e-12)


def test_weights_are_captured_when_predict_is_called():
    rng = np.random.default_rng(1)
    Xn = rng.standard_normal((40, 6))
    model = nnx.MLP([6, 9, 3], activation="tanh", dtype="float64", seed=0)
    want = _forward_numpy(model, Xn)
    lazy = model.predict(da.from_array(Xn, chunks=(7, 6)), batch_size=3)
    model.dense_layers[0].W = model.dense_layers[0].W * 0   # train on after building the graph
    np.testing.assert_allclose(lazy.compute(), want, rtol=1e-12, atol=1e-12)


def test_scorer_pickles_as_weights_for_process_schedulers():
    rng = np.random.default_rng(2)
    Xn = rng.standard_normal((30, 6))
    model = nnx.MLP([6, 9, 3], activation="tanh", dtype="float32", seed=3)
    lazy = model.predict(da.from_array(Xn, chunks=(10, 6)))
    (scorer,) = {t.func for t in _tasks(lazy)}
    clone = pickle.loads(pickle.dumps(scorer))    # what a worker process receives
    assert clone._model is None                   # rebuilt there from the bytes, once
    np.testing.assert_allclose(clone(Xn[:10]), _forward_numpy(model, Xn[:10]), rtol=1e-5,
                               atol=1e-6)
    assert clone(Xn[:10]).dtype == np.float32


def _tasks(arr):
    graph = arr.__dask_graph__()
    return [t for t in graph.values() if hasattr(t, "func") and "nnx" in repr(t.func)]


def test_bad_shape_and_no_dask_needed():
    model = nnx.MLP([6, 9, 3], seed=0)
    with pytest.raises(ValueError, match=r"shape \(n, 6\)"):
        model.predict(da.zeros((10, 5), chunks=(5, 5)))
    # in-memory inputs never import anything from dask's side
    assert nnx.distributed.dask_predict.is_dask_array(np.zeros((2, 6))) is False
