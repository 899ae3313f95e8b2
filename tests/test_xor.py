"""Chapter 10.2: a hidden layer solves XOR; a network without one cannot."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nnx

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
Y = np.array([[0], [1], [1], [0]], dtype=np.float32)


def _train(sizes, backend, steps, lr, seed):
    """Plain gradient descent on the BCE of the four XOR points; returns the model."""
    model = nnx.MLP(sizes, activation="tanh", output_activation="sigmoid", seed=seed)
    x, y = backend.from_numpy(X), backend.from_numpy(Y)
    for _ in range(steps):
        _, grad = nnx.losses.binary_cross_entropy(model.forward(x), y, xp=backend.xp)
        model.backward(grad, input_grad=False)
        for layer in model.dense_layers:  # plain gradient descent: θ ← θ − η ∂L/∂θ
            layer.W -= lr * layer.dW
            layer.b -= lr * layer.db
    return model


def _accuracy(model, backend):
    pred = backend.to_numpy(model.forward(backend.from_numpy(X))) > 0.5
    return float(np.mean(pred == (Y > 0.5)))


@pytest.mark.parametrize("seed", [0, 1])
def test_two_layer_network_learns_xor(backend, seed):
    model = _train([2, 4, 1], backend, steps=1500, lr=1.0, seed=seed)
    assert _accuracy(model, backend) == 1.0


def test_no_hidden_layer_cannot_learn_xor(backend):
    """Without a hidden layer the net is logistic regression, whose BCE on XOR is strictly
    convex (the design [x₁, x₂, 1] has rank 3) with its unique minimum at W = 0, b = 0:
    there the gradient Σ (½ − y) [x₁, x₂, 1] vanishes. So the best it can do is answer ½
    for every point (loss log 2), and gradient descent from any start must end there —
    the slowest direction contracts by 1 − η·0.039 per step (Hessian eigenvalue at the
    minimum), 1500 steps take the error far below float32 resolution."""
    model = _train([2, 1], backend, steps=1500, lr=1.0, seed=0)
    dense = model.dense_layers[0]
    W0 = backend.to_numpy(nnx.MLP([2, 1], seed=0).dense_layers[0].W)
    assert float(np.max(np.abs(W0))) > 0.5           # it started far from the minimum
    np.testing.assert_allclose(backend.to_numpy(dense.W), 0.0, atol=1e-5)
    np.testing.assert_allclose(backend.to_numpy(dense.b), 0.0, atol=1e-5)
    p = backend.to_numpy(model.forward(backend.from_numpy(X)))
    np.testing.assert_allclose(p, 0.5, atol=1e-5)
    loss, _ = nnx.losses.binary_cross_entropy(model.forward(backend.from_numpy(X)),
                                              backend.from_numpy(Y))
    assert float(loss) == pytest.approx(math.log(2.0), rel=1e-5)
