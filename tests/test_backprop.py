"""Backpropagation against finite differences and PyTorch's autograd."""

from __future__ import annotations

import numpy as np
import pytest

import nnx

HIDDEN = ["identity", "step", "sigmoid", "tanh", "relu", "leaky_relu", "gelu", "gelu_tanh",
          "softmax"]
# loss -> (output activation, target kind)
LOSS_SETUPS = {
    "mse": (None, "real"),
    "binary_cross_entropy": ("sigmoid", "binary"),
    "sigmoid_binary_cross_entropy": (None, "binary"),
    "softmax_cross_entropy": (None, "class_ids"),
    "mse_through_softmax": ("softmax", "real"),
}


def _problem(backend, hidden, setup, seed=0):
    out_act, kind = LOSS_SETUPS[setup]
    loss = "mse" if setup == "mse_through_softmax" else setup
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((6, 3))
    k = 4
    if kind == "real":
        target = rng.standard_normal((6, k))
    elif kind == "binary":
        target = rng.integers(0, 2, (6, k)).astype(np.float64)
    else:
        target = rng.integers(0, k, 6)
    model = nnx.MLP([3, 5, 4, k], activation=hidden, output_activation=out_act,
                    init="xavier_normal", seed=seed, dtype="float64")
    return model, backend.from_numpy(x), backend.from_numpy(target), loss


@pytest.mark.parametrize("setup", sorted(LOSS_SETUPS))
@pytest.mark.parametrize("hidden", HIDDEN)
def test_gradcheck_every_activation_and_loss(backend, hidden, setup):
    model, x, target, loss = _problem(backend, hidden, setup)
    assert nnx.gradcheck(model, x, target, loss) < 1e-6


def test_gradcheck_detects_a_wrong_backward(backend):
    """The check itself can fail: a backward with a wrong factor is caught."""
    model, x, target, loss = _problem(backend, "tanh", "mse")
    tanh_layer = model.layers[1]
    def wrong_backward(dy, **_):
        return dy * (1.0 - tanh_layer._a)       # wrong: should be 1 − a²
    tanh_layer.backward = wrong_backward
    assert nnx.gradcheck(model, x, target, loss) > 1e-2


def test_chapter_worked_example(backend):
    """x=2, w=3, y=1, sigmoid, L=½(a−y)²: z=6, a≈0.9975, dL/dw ≈ −1.24e−5 (chapter 10.6)."""
    import math

    layer = nnx.Dense(1, 1, bias=False, dtype="float64")
    layer.W = backend.from_numpy(np.array([[3.0]]))
    net = nnx.Sequential(layer, nnx.Sigmoid())
    a = net.forward(backend.from_numpy(np.array([[2.0]])))
    mse, grad = nnx.losses.mse(a, backend.from_numpy(np.array([[1.0]])))
    net.backward(grad * 0.5, input_grad=False)  # L = ½(a − y)² = mse / 2 on one element
    s = 1.0 / (1.0 + math.exp(-6.0))
    assert float(backend.to_numpy(a)[0, 0]) == pytest.approx(s, rel=1e-14)
    assert float(backend.to_numpy(layer.dW)[0, 0]) == pytest.approx((s - 1) * s * (1 - s) * 2,
                                                                     rel=1e-12)
    assert float(backend.to_numpy(layer.dW)[0, 0]) == pytest.approx(-1.2e-5, abs=1e-6)


TORCH_ACTS = {
    "sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "ReLU", "leaky_relu": "LeakyReLU",
    "gelu": "GELU", "identity": "Identity",
}


@pytest.mark.parametrize("hidden", sorted(TORCH_ACTS))
@pytest.mark.parametrize("loss", ["mse", "sigmoid_binary_cross_entropy", "softmax_cross_entropy"])
def test_gradients_match_torch_autograd(backend, hidden, loss):
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    rng = np.random.default_rng(3)
    x = rng.standard_normal((8, 5))
    k = 3
    model = nnx.MLP([5, 7, 6, k], activation=hidden, seed=11, dtype="float64")
    if loss == "softmax_cross_entropy":
        target = rng.integers(0, k, 8)
        t_target = torch.tensor(target)
    elif loss == "mse":
        target = rng.standard_normal((8, k))
        t_target = torch.tensor(target)
    else:
        target = rng.integers(0, 2, (8, k)).astype(np.float64)
        t_target = torch.tensor(target)

    value, dy = getattr(nnx.losses, loss)(model.forward(backend.from_numpy(x)),
                                          backend.from_numpy(target))
    dx = model.backward(dy)

    params, h = [], torch.tensor(x, requires_grad=True)
    out = h
    for layer in model.layers:
        if isinstance(layer, nnx.Dense):
            w = torch.tensor(backend.to_numpy(layer.W), requires_grad=True)
            b = torch.tensor(backend.to_numpy(layer.b), requires_grad=True)
            params += [w, b]
            out = tf.linear(out, w, b)
        else:
            out = getattr(torch.nn, TORCH_ACTS[hidden])()(out)
    t_loss_fn = {"mse": tf.mse_loss,
                 "sigmoid_binary_cross_entropy": tf.binary_cross_entropy_with_logits,
                 "softmax_cross_entropy": tf.cross_entropy}[loss]
    t_loss = t_loss_fn(out, t_target)
    t_loss.backward()

    assert float(backend.to_numpy(value)) == pytest.approx(t_loss.item(), rel=1e-12)
    ours = [g for d in model.dense_layers for g in (d.dW, d.db)]
    for mine, theirs in zip(ours, params):
        np.testing.assert_allclose(backend.to_numpy(mine), theirs.grad.numpy(), rtol=1e-10,
                                   atol=1e-13)
    np.testing.assert_allclose(backend.to_numpy(dx), h.grad.numpy(), rtol=1e-10, atol=1e-13)


def test_vanishing_gradient_through_saturated_sigmoids():
    """Each saturated sigmoid multiplies δ by σ'(z) ≤ 1/4: the first layer's gradient shrinks."""
    grads = []
    for depth in (1, 3, 6):
        layers = []
        for _ in range(depth):
            d = nnx.Dense(1, 1, dtype="float64")
            d.W = np.array([[1.0]])
            d.b = np.array([4.0])  # z ≥ 4: saturated, σ'(z) ≤ σ'(4) ≈ 0.0177
            layers += [d, nnx.Sigmoid()]
        net = nnx.Sequential(*layers)
        net.forward(np.array([[0.0]]))
        net.backward(np.array([[1.0]]))
        grads.append(abs(float(net.dense_layers[0].db[0])))
    assert grads[0] > 1e3 * grads[1] > 1e6 * grads[2] > 0.0
