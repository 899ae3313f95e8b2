"""A Sequential inside a Sequential trains, predicts and saves as the same network written flat.

The flat network's training is proven against NumPy and PyTorch references elsewhere; here
the nested spelling must give the same weights bit for bit, every parameter must move (an
optimizer that skipped the inner layers left them at their initial values), and predict must
see the network's real output width.
"""

from __future__ import annotations

import numpy as np
import pytest

import nnx


def _layers():
    return [nnx.Dense(5, 8, seed=1), nnx.Tanh(), nnx.Dense(8, 6, seed=2), nnx.ReLU(),
            nnx.Dense(6, 3, seed=3)]


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_nested_network_trains_as_the_flat_one(backend, optimizer):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 5)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    flat = nnx.Sequential(*_layers())
    a, b, c, d, e = _layers()
    nested = nnx.Sequential(nnx.Sequential(a, b, nnx.Sequential(c, d)), e)
    start = [nnx.to_numpy(layer.W).copy() for layer in nested.dense_layers]
    assert len(nested.dense_layers) == 3

    kwargs = dict(loss="softmax_cross_entropy", epochs=3, batch_size=8, seed=0, progress=False)
    flat.fit(X, y, optimizer=nnx.optim.get(optimizer, lr=0.05), **kwargs)
    nested.fit(X, y, optimizer=nnx.optim.get(optimizer, lr=0.05), **kwargs)

    for f, n, w0 in zip(flat.dense_layers, nested.dense_layers, start, strict=True):
        np.testing.assert_array_equal(nnx.to_numpy(n.W), nnx.to_numpy(f.W))
        np.testing.assert_array_equal(nnx.to_numpy(n.b), nnx.to_numpy(f.b))
        assert not np.array_equal(nnx.to_numpy(n.W), w0), "a nested layer did not train"
    np.testing.assert_array_equal(nnx.to_numpy(nested.predict(X)), nnx.to_numpy(flat.predict(X)))


def test_nested_network_round_trips_through_a_file(tmp_path):
    inner = nnx.Sequential(nnx.Dense(4, 6, seed=1), nnx.ReLU())
    model = nnx.Sequential(inner, nnx.Dense(6, 2, seed=2))
    path = tmp_path / "nested.safetensors"
    nnx.save(model, path)
    again = nnx.load(path)
    X = np.random.default_rng(1).standard_normal((7, 4)).astype(np.float32)
    np.testing.assert_array_equal(nnx.to_numpy(again.predict(X)), nnx.to_numpy(model.predict(X)))
