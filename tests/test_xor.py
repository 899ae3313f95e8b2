"""Chapter 10.2: a hidden layer solves XOR; a network without one cannot."""

from __future__ import annotations

import numpy as np
import pytest

import nnx

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
Y = np.array([[0], [1], [1], [0]], dtype=np.float32)


def _train(sizes, backend, steps, lr, seed):
    model = nnx.MLP(sizes, activation="tanh", output_activation="sigmoid", seed=seed)
    x, y = backend.from_numpy(X), backend.from_numpy(Y)
    for _ in range(steps):
        _, grad = nnx.losses.binary_cross_entropy(model.forward(x), y, xp=backend.xp)
        model.backward(grad, input_grad=False)
        for layer in model.dense_layers:  # plain gradient descent: θ ← θ − η ∂L/∂θ
            layer.W -= lr * layer.dW
            layer.b -= lr * layer.db
    pred = backend.to_numpy(model.forward(x)) > 0.5
    return float(np.mean(pred == (Y > 0.5)))


@pytest.mark.parametrize("seed", [0, 1])
def test_two_layer_network_learns_xor(backend, seed):
    assert _train([2, 4, 1], backend, steps=1500, lr=1.0, seed=seed) == 1.0


def test_no_hidden_layer_cannot_learn_xor(backend):
    # a single linear cut gets at most 3 of the 4 XOR points right
    assert _train([2, 1], backend, steps=1500, lr=1.0, seed=0) <= 0.75
