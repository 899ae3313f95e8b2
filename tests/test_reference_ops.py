"""The portable ``Ops`` — the definition every fast path is compared with, and the code
JAX and array-api-strict run — against closed forms in NumPy float64, on every backend."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nnx
from nnx import backends as registry

Ops = registry.Ops


def _host(backend, x):
    return backend.to_numpy(x).astype(np.float64)


@pytest.fixture
def ops(backend):
    return Ops(backend.xp)


def test_matmul_and_sums(backend, ops, rng):
    a, b = rng.standard_normal((5, 7)), rng.standard_normal((7, 3))
    A, B = backend.from_numpy(a), backend.from_numpy(b)
    np.testing.assert_allclose(_host(backend, ops.matmul(A, B)), a @ b, rtol=1e-13)
    np.testing.assert_allclose(float(ops.sum(A)), math.fsum(a.ravel()), rtol=1e-13)
    np.testing.assert_allclose(_host(backend, ops.sum_rows(A)),
                               [math.fsum(col) for col in a.T], rtol=1e-13, atol=1e-15)
    assert tuple(ops.sum_rows(A).shape) == (7,) and tuple(ops.sum(A).shape) == ()


def test_activations_and_their_backward(backend, ops, rng):
    z = rng.standard_normal((6, 9))
    z[0, :4] = [0.0, -0.0, 1e-300, -1e-300]              # the ReLU kink, from both sides
    dy = rng.standard_normal((6, 9))
    Z, DY = backend.from_numpy(z), backend.from_numpy(dy)
    relu, t = np.maximum(z, 0.0), np.tanh(z)
    s = 1.0 / (1.0 + np.exp(-z))
    np.testing.assert_array_equal(_host(backend, ops.relu(Z)), relu)
    np.testing.assert_allclose(_host(backend, ops.tanh(Z)), t, rtol=1e-14)
    A = backend.from_numpy(relu)
    np.testing.assert_array_equal(_host(backend, ops.relu_backward(DY, A)), dy * (z > 0))
    np.testing.assert_allclose(_host(backend, ops.tanh_backward(DY, backend.from_numpy(t))),
                               dy * (1 - t * t), rtol=1e-13)
    np.testing.assert_allclose(_host(backend, ops.sigmoid_backward(DY, backend.from_numpy(s))),
                               dy * s * (1 - s), rtol=1e-13)


@pytest.mark.parametrize("which", ["portable", "active"])
def test_softmax_xent_with_rows_of_very_different_scales(backend, ops, which):
    """Each row is shifted by its own maximum: a row 1600 below another still has a finite
    loss (a shift by the global maximum would underflow it to log 0). Both the portable
    Ops and the backend's own (its fast path, where it has one)."""
    ops = ops if which == "portable" else backend.ops
    z = np.array([[800.0, 0.0, 1.0], [-800.0, -801.0, -799.0], [0.5, 0.25, -1.0]])
    y = np.array([[0.0, 0.0, 1.0], [0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    loss, grad = ops.softmax_xent(backend.from_numpy(z), backend.from_numpy(y))
    rows = []
    for zr in z:
        m = max(zr)
        rows.append([v - m - math.log(math.fsum(math.exp(u - m) for u in zr)) for v in zr])
    log_p = np.array(rows)
    assert float(loss) == pytest.approx(-math.fsum((y * log_p).ravel()) / 3, rel=1e-13)
    np.testing.assert_allclose(_host(backend, grad), (np.exp(log_p) - y) / 3, rtol=1e-12,
                               atol=1e-300)


def test_sub_scaled(backend, ops, rng):
    p, g = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    got = ops.sub_scaled(backend.from_numpy(p), backend.from_numpy(g), 0.3)
    np.testing.assert_allclose(_host(backend, got), p - 0.3 * g, rtol=1e-15)


# The flat-buffer steps write into p, m, v and buf: for libraries whose arrays are mutable.
MUTABLE = [n for n in registry.NAMES if n != "jax"]


@pytest.fixture(params=MUTABLE)
def mutable(request):
    reason = registry.why_unavailable(request.param)
    if reason:
        pytest.skip(reason)
    b = registry.load(request.param)
    assert not b.immutable_arrays
    return b


@pytest.mark.parametrize("kw", [dict(momentum=0.0, nesterov=False, weight_decay=0.0),
                                dict(momentum=0.9, nesterov=False, weight_decay=0.1),
                                dict(momentum=0.8, nesterov=True, weight_decay=0.0)], ids=str)
def test_portable_sgd_step_is_torchs_rule(mutable, rng, kw):
    ops = Ops(mutable.xp)
    p0, grads = rng.standard_normal(11), [rng.standard_normal(11) for _ in range(3)]
    p, buf = mutable.from_numpy(p0), mutable.from_numpy(np.zeros(11))
    want, wbuf = p0.copy(), None
    for t, g in enumerate(grads):
        ops.sgd_step(p, mutable.from_numpy(g), buf if kw["momentum"] else None, lr=0.1,
                     first=t == 0, **kw)
        d = g + kw["weight_decay"] * want
        if kw["momentum"]:
            wbuf = d.copy() if wbuf is None else kw["momentum"] * wbuf + d
            d = d + kw["momentum"] * wbuf if kw["nesterov"] else wbuf
        want = want - 0.1 * d
        np.testing.assert_allclose(_host(mutable, p), want, rtol=1e-13, err_msg=f"step {t}")


@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_portable_adam_step_is_torchs_rule(mutable, rng, weight_decay):
    ops = Ops(mutable.xp)
    lr, b1, b2, eps = 0.01, 0.8, 0.95, 1e-3
    p0 = rng.standard_normal(9)
    p, m, v = (mutable.from_numpy(a) for a in (p0, np.zeros(9), np.zeros(9)))
    want, wm, wv = p0.copy(), np.zeros(9), np.zeros(9)
    for t in range(1, 5):
        g = rng.standard_normal(9)
        ops.adam_step(p, mutable.from_numpy(g), m, v, step_size=lr / (1 - b1 ** t), b1=b1,
                      b2=b2, sqrt_bc2=math.sqrt(1 - b2 ** t), eps=eps, weight_decay=weight_decay)
        d = g + weight_decay * want
        wm, wv = b1 * wm + (1 - b1) * d, b2 * wv + (1 - b2) * d * d
        m_hat, v_hat = wm / (1 - b1 ** t), wv / (1 - b2 ** t)
        want = want - lr * m_hat / (np.sqrt(v_hat) + eps)
        np.testing.assert_allclose(_host(mutable, p), want, rtol=1e-12, err_msg=f"step {t}")
        np.testing.assert_allclose(_host(mutable, m), wm, rtol=1e-13)
        np.testing.assert_allclose(_host(mutable, v), wv, rtol=1e-13)


def test_jax_keeps_one_array_per_parameter():
    """JAX arrays cannot be written into, so no flat step runs there: its ops say so."""
    if registry.why_unavailable("jax"):
        pytest.skip(registry.why_unavailable("jax"))
    b = registry.load("jax")
    assert b.immutable_arrays and not b.ops.flat
    assert nnx.MLP([2, 3, 1], seed=0, backend=b).flat is None
