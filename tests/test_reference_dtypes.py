"""Output dtypes: what nnx documents, on every backend, in float32 and float64.

A layer computes in its ``dtype`` whatever real, integer or boolean input it is given;
activations keep their input's dtype; a loss answers in its prediction's dtype (targets
are cast to it); optimizers keep each parameter's dtype and their state in it; ``fit``
leaves the parameters in the model's dtype and ``predict`` answers in it.
"""

from __future__ import annotations

import numpy as np
import pytest

import nnx
from nnx import activations as F
from nnx import losses as L

DTYPES = ["float32", "float64"]
OTHER = {"float32": "float64", "float64": "float32"}


def _is(backend, x, dtype):
    return x.dtype == getattr(backend.xp, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_forward_and_backward(backend, rng, dtype):
    layer = nnx.Dense(3, 4, dtype=dtype, seed=0)
    assert _is(backend, layer.W, dtype) and _is(backend, layer.b, dtype)
    for x in (rng.standard_normal((5, 3)).astype(OTHER[dtype]), rng.integers(-3, 3, (5, 3)),
              rng.standard_normal((5, 3)).astype(dtype)):
        out = layer.forward(backend.from_numpy(x))
        assert _is(backend, out, dtype), (x.dtype, out.dtype)
        np.testing.assert_allclose(backend.to_numpy(out).astype(np.float64),
                                   x.astype(dtype).astype(np.float64)
                                   @ backend.to_numpy(layer.W).T.astype(np.float64)
                                   + backend.to_numpy(layer.b),
                                   rtol=1e-5 if dtype == "float32" else 1e-12, atol=1e-6)
        dx = layer.backward(backend.from_numpy(np.ones((5, 4), dtype=dtype)))
        assert _is(backend, dx, dtype)
        assert _is(backend, layer.dW, dtype) and _is(backend, layer.db, dtype)


ACTS = ["identity", "step", "sigmoid", "tanh", "relu", "leaky_relu", "gelu", "gelu_tanh",
        "softmax"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_layers_and_functions_keep_the_dtype(backend, rng, dtype):
    z = backend.from_numpy(rng.standard_normal((4, 5)).astype(dtype))
    for name in ACTS:
        layer = nnx.make_activation(name)
        a = layer.forward(z)
        dz = layer.backward(backend.from_numpy(rng.standard_normal((4, 5)).astype(dtype)))
        assert _is(backend, a, dtype) and _is(backend, dz, dtype), name
        if name != "gelu_tanh":
            f, df = F.get(name)
            assert _is(backend, f(z), dtype) and _is(backend, df(z), dtype), name


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["mse", "binary_cross_entropy", "sigmoid_binary_cross_entropy",
                                  "softmax_cross_entropy"])
def test_losses_answer_in_the_documented_dtype(backend, rng, dtype, name):
    # nnx.losses: prediction and target meet in one floating dtype, the promoted one of two
    # floating dtypes, else the floating one's; softmax cross-entropy's labels are class
    # ids or rows in the logits' dtype, so it keeps the logits'.
    for target_dtype in ("float32", "float64", "int64"):
        expected = dtype
        if name != "softmax_cross_entropy" and "float64" in (dtype, target_dtype) \
                and target_dtype != "int64":
            expected = "float64"
        _check_loss(backend, rng, dtype, target_dtype, name, expected)


def _check_loss(backend, rng, dtype, target_dtype, name, expected):
    z = rng.standard_normal((6, 3))
    pred = 1 / (1 + np.exp(-z)) if name == "binary_cross_entropy" else z
    if name == "softmax_cross_entropy":
        target = rng.integers(0, 3, 6) if target_dtype == "int64" else \
            np.eye(3)[rng.integers(0, 3, 6)].astype(target_dtype)
    else:
        target = rng.integers(0, 2, (6, 3)).astype(target_dtype)
    loss, grad = getattr(L, name)(backend.from_numpy(pred.astype(dtype)),
                                  backend.from_numpy(target))
    assert _is(backend, loss, expected) and tuple(loss.shape) == (), target_dtype
    assert _is(backend, grad, expected) and tuple(grad.shape) == (6, 3), target_dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opt", ["sgd", "sgd-momentum", "adam"])
@pytest.mark.parametrize("path", ["per-array", "network"])
def test_optimizers_keep_parameter_and_state_dtypes(backend, rng, dtype, opt, path):
    make = {"sgd": lambda: nnx.optim.SGD(lr=0.1),
            "sgd-momentum": lambda: nnx.optim.SGD(lr=0.1, momentum=0.9, weight_decay=0.1),
            "adam": lambda: nnx.optim.Adam(lr=0.1, weight_decay=0.1)}[opt]
    optimizer = make()
    model = nnx.MLP([3, 4, 2], seed=0, dtype=dtype)
    target = model if path == "network" else list(model.dense_layers)
    x = backend.from_numpy(rng.standard_normal((5, 3)).astype(dtype))
    for _ in range(2):
        _, g = L.mse(model.forward(x), backend.from_numpy(np.zeros((5, 2), dtype)))
        model.backward(g, input_grad=False)
        optimizer.step(target)
    for layer in model.dense_layers:
        assert _is(backend, layer.W, dtype) and _is(backend, layer.b, dtype)
        st = optimizer.state_of(layer)
        for buf in [*st.a, *st.b]:
            if buf is not None:
                assert _is(backend, buf, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fit_and_predict(backend, rng, dtype):
    X = rng.standard_normal((12, 3))                   # float64 host data for both dtypes
    y = rng.integers(0, 2, 12)
    model = nnx.MLP([3, 4, 2], seed=0, dtype=dtype)
    hist = model.fit(X.astype(OTHER[dtype]), y, loss="softmax_cross_entropy", optimizer="adam",
                     epochs=2, batch_size=5, seed=0, progress=False)
    assert all(type(v) is float for v in hist.loss)
    for p in model.parameters().values():
        assert _is(backend, p, dtype)
    for data in (X, X.astype(np.float32), (X * 10).astype(np.int64)):
        out = model.predict(data)
        assert _is(backend, out, dtype)
        assert _is(backend, model.predict(data, batch_size=5), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(nnx.init.INITIALIZERS))
def test_initializers(backend, dtype, name):
    w = nnx.init.get(name)((3, 4), seed=1, dtype=dtype, backend=backend)
    assert _is(backend, w, dtype) and tuple(w.shape) == (3, 4)
    if name != "zeros":    # drawn in float64 on the host, rounded once to the dtype
        assert np.unique(backend.to_numpy(w)).size == 12
