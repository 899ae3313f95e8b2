"""``fit(shuffle=True)`` against an independent NumPy float64 run fed the same row orders.

How a seed becomes permutations (the behaviour this test pins): ``fit`` draws its epoch
seeds from ``numpy.random.SeedSequence(seed).spawn(1)[0]``, one child per epoch, so the
rows of epoch e (counted from 1) are taken in the order
``numpy.random.default_rng(SeedSequence(seed, spawn_key=(0, e − 1))).permutation(n)``,
on every backend (the permutation is drawn on the host). The reference below derives the
orders from that statement alone and trains a tanh MLP with MSE and momentum SGD
(torch's rule) on them; nothing is read back from nnx but the initial weights.
"""

from __future__ import annotations

import numpy as np
import pytest

import nnx


def _orders(seed, n, epochs):
    return [np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0, e))).permutation(n)
            for e in range(epochs)]


def _reference(params, X, Y, orders, *, lr, mu, batch):
    W1, b1, W2, b2 = (p.copy() for p in params)
    bufs = None
    history = []
    n = X.shape[0]
    for order in orders:
        Xe, Ye = X[order], Y[order]
        total = 0.0
        for a in range(0, n, batch):
            xb, yb = Xe[a:a + batch], Ye[a:a + batch]
            h = np.tanh(xb @ W1.T + b1)
            diff = h @ W2.T + b2 - yb
            total += np.mean(diff * diff) * len(xb)
            g = 2 * diff / diff.size
            dz = (g @ W2) * (1 - h * h)
            grads = [dz.T @ xb, dz.sum(0), g.T @ h, g.sum(0)]
            bufs = grads if bufs is None else [mu * b + d for b, d in zip(bufs, grads)]
            W1, b1, W2, b2 = (p - lr * b for p, b in zip((W1, b1, W2, b2), bufs))
        history.append(total / n)
    return (W1, b1, W2, b2), history


@pytest.mark.parametrize("seed", [0, 2026])
def test_shuffled_fit_matches_a_numpy_reference(backend, seed):
    rng = np.random.default_rng(7)
    X = rng.standard_normal((11, 3))
    Y = np.stack([np.sin(X[:, 0]) + X[:, 1] * X[:, 2], X[:, 0] - X[:, 2]], axis=1)
    model = nnx.MLP([3, 6, 2], activation="tanh", seed=1, dtype="float64")
    params = [nnx.to_numpy(p) for p in model.parameters().values()]
    hist = model.fit(X, Y, loss="mse", optimizer=nnx.optim.SGD(lr=0.05, momentum=0.9),
                     epochs=4, batch_size=4, shuffle=True, seed=seed, progress=False)
    orders = _orders(seed, 11, 4)
    assert not any(np.array_equal(o, np.arange(11)) for o in orders)   # really shuffled
    want, want_hist = _reference(params, X, Y, orders, lr=0.05, mu=0.9, batch=4)
    np.testing.assert_allclose(hist.loss, want_hist, rtol=1e-11)
    for p, r in zip(model.parameters().values(), want, strict=True):
        np.testing.assert_allclose(nnx.to_numpy(p), r, rtol=1e-10, atol=1e-12)
    # and the same run unshuffled is a different trajectory (the orders matter here)
    _, plain = _reference(params, X, Y, [np.arange(11)] * 4, lr=0.05, mu=0.9, batch=4)
    assert not np.allclose(plain, want_hist, rtol=1e-6)
