"""NumPy's fast paths switch behaviour at fixed sizes (``backends/_numpy_ops.py``): results
of ``SMALL`` (4096) elements or more are written in place, updates of more than
``UPDATE_CHUNK`` elements are done slice by slice. Here, on both sides of each threshold
and in float64, backpropagation is checked against central finite differences and against
a backward pass written out in NumPy, and optimizer steps against torch's update rules
written out in NumPy — never against nnx's own numbers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from nnx.backends import _numpy_ops

import nnx

SMALL, CHUNK = _numpy_ops.SMALL, _numpy_ops.UPDATE_CHUNK
ACT = {"relu": (lambda z: np.maximum(z, 0.0), lambda z, a: (z > 0).astype(float)),
       "tanh": (np.tanh, lambda z, a: 1.0 - a * a),
       "sigmoid": (lambda z: 1.0 / (1.0 + np.exp(-z)), lambda z, a: a * (1.0 - a))}

# (n_in, hidden, n_out, batch): which arrays sit just below / at the 4096-element threshold
SHAPES = {
    # dW₀ (63·65 = 4095) and the hidden activations (65·63 = 4095) just below ...
    "weights-and-activations-below": (65, 63, 3, 65),
    # ... and at it (64·64 = 4096)
    "weights-and-activations-at": (64, 64, 3, 64),
    # db₀ and the activations of one row: 4095 and 4096 elements (dW₀, dW₁ above)
    "bias-below": (2, SMALL - 1, 1, 1),
    "bias-at": (2, SMALL, 1, 1),
}


def _reference(params, act, x, y):
    """Loss mse and every gradient of Dense → act → Dense, in NumPy float64."""
    W0, b0, W1, b1 = params
    f, df = ACT[act]
    z = x @ W0.T + b0
    a = f(z)
    out = a @ W1.T + b1
    diff = out - y
    loss = float(np.mean(diff * diff))
    g = 2.0 * diff / diff.size
    dz = (g @ W1) * df(z, a)
    return loss, [dz.T @ x, dz.sum(0), g.T @ a, g.sum(0)]


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("act", sorted(ACT))
def test_backprop_on_both_sides_of_the_in_place_threshold(shape, act):
    n_in, hidden, n_out, n = SHAPES[shape]
    rng = np.random.default_rng(hidden + n)
    with nnx.use_backend("numpy"):
        model = nnx.Sequential(nnx.Dense(n_in, hidden, dtype="float64", seed=1),
                               nnx.make_activation(act),
                               nnx.Dense(hidden, n_out, dtype="float64", seed=2))
        model[1].forward(np.zeros((1, 1)))        # (warm the layer's namespace cache)
        x, y = rng.standard_normal((n, n_in)), rng.standard_normal((n, n_out))
        for layer in model.dense_layers:           # biases away from 0: a real db
            layer.b = rng.standard_normal(layer.out_features) * 0.1
        # a first pass with other data leaves gradient arrays the second pass may overwrite
        _, g = nnx.losses.mse(model.forward(rng.standard_normal((n, n_in))),
                              rng.standard_normal((n, n_out)))
        model.backward(g, input_grad=False)
        loss, g = nnx.losses.mse(model.forward(x), y)
        model.backward(g, input_grad=False)
        params = [np.array(p) for p in model.parameters().values()]
        grads = [np.array(getattr(d, "d" + name)) for d in model.dense_layers
                 for name in ("W", "b")]
        want_loss, want = _reference(params, act, x, y)
        assert float(loss) == pytest.approx(want_loss, rel=1e-13)
        for k, (got, ref) in enumerate(zip(grads, want, strict=True)):
            np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-14 * np.abs(ref).max(),
                                       err_msg=f"gradient {k}")
        # central differences: along a random direction through every parameter at once,
        # and coordinate by coordinate at both ends and some in between of each array
        eps = 1e-6

        def loss_at(ps):
            return _reference(ps, act, x, y)[0]

        for k, p in enumerate(params):
            v = rng.standard_normal(p.shape)
            plus = [q + eps * v if i == k else q for i, q in enumerate(params)]
            minus = [q - eps * v if i == k else q for i, q in enumerate(params)]
            fd = (loss_at(plus) - loss_at(minus)) / (2 * eps)
            assert float(np.sum(grads[k] * v)) == pytest.approx(fd, rel=1e-6, abs=1e-10), k
            size = p.size
            for j in sorted({0, 1, size // 2, size - 2, size - 1} & set(range(size))):
                e = np.zeros(size)
                e[j] = eps
                up = [q + e.reshape(q.shape) if i == k else q for i, q in enumerate(params)]
                dn = [q - e.reshape(q.shape) if i == k else q for i, q in enumerate(params)]
                fd = (loss_at(up) - loss_at(dn)) / (2 * eps)
                assert grads[k].reshape(-1)[j] == pytest.approx(fd, rel=1e-5, abs=1e-9), (k, j)


def _torch_rules(name, p, grads, **kw):
    """torch.optim.SGD / Adam, written out in NumPy float64 (their documented rules)."""
    p = p.copy()
    if name == "sgd":
        buf = None
        for g in grads:
            d = g + kw.get("weight_decay", 0.0) * p
            if kw.get("momentum"):
                buf = d.copy() if buf is None else kw["momentum"] * buf + d
                d = d + kw["momentum"] * buf if kw.get("nesterov") else buf
            p = p - kw["lr"] * d
        return p
    b1, b2 = kw.get("betas", (0.9, 0.999))
    m, v = np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, 1):
        d = g + kw.get("weight_decay", 0.0) * p
        m, v = b1 * m + (1 - b1) * d, b2 * v + (1 - b2) * d * d
        p = p - kw["lr"] * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + kw.get("eps", 1e-8))
    return p


OPTS = {"sgd": dict(lr=0.1),
        "sgd-momentum": dict(lr=0.05, momentum=0.9, weight_decay=0.01),
        "sgd-nesterov": dict(lr=0.05, momentum=0.8, nesterov=True),
        "adam": dict(lr=0.01, betas=(0.8, 0.95), eps=1e-3, weight_decay=0.02)}
SIZES = [CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 3]


def _make(kind):
    cls = nnx.optim.Adam if kind == "adam" else nnx.optim.SGD
    return cls(**OPTS[kind]), ("adam" if kind == "adam" else "sgd")


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"CHUNK{s - CHUNK:+d}")
@pytest.mark.parametrize("kind", sorted(OPTS))
def test_per_array_update_on_both_sides_of_the_chunk(kind, size):
    """One Dense layer alone (no flat buffer): W of ``size`` elements, updated in place."""
    rng = np.random.default_rng(size)
    with nnx.use_backend("numpy"):
        layer = nnx.Dense(size, 1, dtype="float64", bias=False, seed=0)
        W0 = np.array(layer.W)
        grads = [rng.standard_normal((1, size)) for _ in range(3)]
        opt, rule = _make(kind)
        for g in grads:
            layer.dW = g
            opt.step([layer])
        want = _torch_rules(rule, W0, grads, **OPTS[kind])
        np.testing.assert_allclose(layer.W, want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"CHUNK{s - CHUNK:+d}")
@pytest.mark.parametrize("kind", sorted(OPTS))
def test_flat_update_on_both_sides_of_the_chunk(kind, size):
    """A network's flat buffer of ``size`` parameters, updated by the chunked flat step."""
    rng = np.random.default_rng(size + 1)
    with nnx.use_backend("numpy"):
        n_in = size - 1                                # W (1, n_in) and b (1,): size in all
        model = nnx.MLP([n_in, 1], dtype="float64", seed=0)
        (group,) = model.flat.groups
        assert group.size == size
        model.backward(nnx.losses.mse(model.forward(np.ones((1, n_in))), np.zeros((1, 1)))[1],
                       input_grad=False)               # the gradients are buffer views now
        p0 = np.array(group.params)
        grads = [rng.standard_normal(size) for _ in range(3)]
        opt, rule = _make(kind)
        for g in grads:
            np.copyto(group.grads, g)                  # written into the views, in place
            assert model.flat.ready()
            opt.step(model)
        want = _torch_rules(rule, p0, grads, **OPTS[kind])
        np.testing.assert_allclose(group.params, want, rtol=1e-12, atol=1e-15)
        dense = model.dense_layers[0]
        np.testing.assert_array_equal(np.array(dense.W).ravel(), group.params[:n_in])
        assert math.isclose(float(dense.b[0]), float(group.params[-1]))
