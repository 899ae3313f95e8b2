"""Optimizers: the same numbers as torch.optim for the same gradients, and closed forms."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import nnx
from nnx import optim

SGD_CONFIGS = [
    dict(lr=0.1),
    dict(lr=0.05, weight_decay=0.01),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.1, momentum=0.5, weight_decay=0.1),
    dict(lr=0.02, momentum=0.9, nesterov=True),
    dict(lr=0.02, momentum=0.8, nesterov=True, weight_decay=0.05),
]
ADAM_CONFIGS = [
    dict(),
    dict(lr=0.01, betas=(0.8, 0.99)),
    dict(lr=0.003, eps=1e-3, weight_decay=0.1),
    dict(lr=0.1, betas=(0.0, 0.5), eps=0.0),
]


def _layer_and_grads(n_steps, *, bias=True, seed=0):
    """A float64 Dense(3 → 4) on the active backend and a fixed sequence of gradients."""
    layer = nnx.Dense(3, 4, dtype="float64", bias=bias, seed=seed)
    rng = np.random.default_rng(seed + 1)
    grads = [(rng.standard_normal((4, 3)), rng.standard_normal(4)) for _ in range(n_steps)]
    return layer, grads


def _run_nnx(opt, layer, grads):
    out = []
    for gW, gb in grads:
        layer.dW = nnx.asarray(gW)
        layer.db = nnx.asarray(gb) if layer.b is not None else None
        opt.step([layer])
        out.append((nnx.to_numpy(layer.W), None if layer.b is None else nnx.to_numpy(layer.b)))
    return out


def _run_torch(torch_cls, kwargs, W0, b0, grads):
    torch = pytest.importorskip("torch")
    params = [torch.tensor(W0, dtype=torch.float64, requires_grad=True)]
    if b0 is not None:
        params.append(torch.tensor(b0, dtype=torch.float64, requires_grad=True))
    opt = torch_cls(torch, params, kwargs)
    out = []
    for gW, gb in grads:
        params[0].grad = torch.tensor(gW)
        if b0 is not None:
            params[1].grad = torch.tensor(gb)
        opt.step()
        out.append(tuple(p.detach().numpy().copy() for p in params))
    return out


def _assert_same_trajectory(ours, theirs):
    for step, (mine, ref) in enumerate(zip(ours, theirs, strict=True)):
        np.testing.assert_allclose(mine[0], ref[0], rtol=1e-12, atol=1e-14,
                                   err_msg=f"W, step {step}")
        if mine[1] is not None:
            np.testing.assert_allclose(mine[1], ref[1], rtol=1e-12, atol=1e-14,
                                       err_msg=f"b, step {step}")


@pytest.mark.parametrize("kwargs", SGD_CONFIGS, ids=str)
def test_sgd_matches_torch(backend, kwargs):
    layer, grads = _layer_and_grads(6)
    W0, b0 = nnx.to_numpy(layer.W), nnx.to_numpy(layer.b)
    ours = _run_nnx(optim.SGD(**kwargs), layer, grads)
    theirs = _run_torch(lambda torch, p, kw: torch.optim.SGD(p, **kw), kwargs, W0, b0, grads)
    _assert_same_trajectory(ours, theirs)


@pytest.mark.parametrize("kwargs", ADAM_CONFIGS, ids=str)
def test_adam_matches_torch(backend, kwargs):
    layer, grads = _layer_and_grads(6)
    W0, b0 = nnx.to_numpy(layer.W), nnx.to_numpy(layer.b)
    ours = _run_nnx(optim.Adam(**kwargs), layer, grads)
    theirs = _run_torch(lambda torch, p, kw: torch.optim.Adam(p, **kw), kwargs, W0, b0, grads)
    _assert_same_trajectory(ours, theirs)


def test_layer_without_bias_matches_torch():
    layer, grads = _layer_and_grads(4, bias=False)
    W0 = nnx.to_numpy(layer.W)
    kw = dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)
    ours = _run_nnx(optim.SGD(**kw), layer, grads)
    theirs = _run_torch(lambda torch, p, k: torch.optim.SGD(p, **k), kw, W0, None, grads)
    _assert_same_trajectory(ours, theirs)


# -- closed forms (no torch needed) --------------------------------------------------------

def _constant_grad_run(opt, steps, g=0.5):
    layer = nnx.Dense(2, 3, dtype="float64", init="zeros")
    W0 = nnx.to_numpy(layer.W)
    for _ in range(steps):
        layer.dW = nnx.asarray(np.full((3, 2), g))
        layer.db = nnx.asarray(np.full(3, g))
        opt.step([layer])
    return W0, nnx.to_numpy(layer.W), nnx.to_numpy(layer.b)


def test_sgd_closed_form(backend):
    W0, W, b = _constant_grad_run(optim.SGD(lr=0.1), 5)
    np.testing.assert_allclose(W, W0 - 5 * 0.1 * 0.5, rtol=1e-12)
    np.testing.assert_allclose(b, np.full(3, -0.25), rtol=1e-12)


def test_sgd_momentum_closed_form(backend):
    # buf_t = g (1 − μᵗ)/(1 − μ), so p_T = −lr g Σ_{t=1..T} (1 − μᵗ)/(1 − μ)
    mu, lr, g, T = 0.9, 0.1, 0.5, 4
    _, W, _ = _constant_grad_run(optim.SGD(lr=lr, momentum=mu), T, g)
    expected = -lr * g * sum((1 - mu**t) / (1 - mu) for t in range(1, T + 1))
    np.testing.assert_allclose(W, np.full((3, 2), expected), rtol=1e-12)
    # Nesterov: the step is g + μ buf_t
    _, W, _ = _constant_grad_run(optim.SGD(lr=lr, momentum=mu, nesterov=True), T, g)
    expected = -lr * g * sum(1 + mu * (1 - mu**t) / (1 - mu) for t in range(1, T + 1))
    np.testing.assert_allclose(W, np.full((3, 2), expected), rtol=1e-12)


def test_adam_closed_form(backend):
    # a constant gradient g has bias-corrected moments m̂ = g, v̂ = g²: each step moves
    # by lr · g / (|g| + eps), whatever the betas.
    lr, eps, g, T = 0.01, 0.1, 0.5, 7
    _, W, b = _constant_grad_run(optim.Adam(lr=lr, betas=(0.7, 0.9), eps=eps), T, g)
    np.testing.assert_allclose(W, np.full((3, 2), -T * lr * g / (g + eps)), rtol=1e-12)
    np.testing.assert_allclose(b, np.full(3, -T * lr * g / (g + eps)), rtol=1e-12)


def test_weight_decay_closed_form(backend):
    layer = nnx.Dense(2, 2, dtype="float64", seed=3)
    W0 = nnx.to_numpy(layer.W)
    opt = optim.SGD(lr=0.1, weight_decay=0.5)
    for _ in range(3):
        layer.dW = nnx.asarray(np.zeros((2, 2)))
        layer.db = nnx.asarray(np.zeros(2))
        opt.step([layer])
    np.testing.assert_allclose(nnx.to_numpy(layer.W), W0 * (1 - 0.1 * 0.5) ** 3, rtol=1e-12)


def test_step_on_model_updates_every_dense_layer(backend):
    model = nnx.MLP([3, 5, 2], seed=0, dtype="float64")
    x = nnx.asarray(np.random.default_rng(0).standard_normal((8, 3)))
    _, g = nnx.losses.mse(model.forward(x), nnx.asarray(np.zeros((8, 2))))
    model.backward(g, input_grad=False)
    before = {k: nnx.to_numpy(v) for k, v in model.parameters().items()}
    grads = {f"{i}.{n}": nnx.to_numpy(getattr(layer, "d" + n))
             for i, layer in enumerate(model.layers) for n in layer.param_names}
    optim.SGD(lr=0.3).step(model)
    for key, p in model.parameters().items():
        np.testing.assert_allclose(nnx.to_numpy(p), before[key] - 0.3 * grads[key], rtol=1e-12)


# -- in place, state, and errors ----------------------------------------------------------

def test_numpy_updates_in_place_with_one_temporary():
    with nnx.use_backend("numpy"):
        layer = nnx.Dense(1000, 1000, dtype="float64", bias=False, seed=0)
        layer.dW = np.ones((1000, 1000))
        W = layer.W
        W0 = W.copy()
        opt = optim.SGD(lr=0.1)
        opt.step([layer])                           # first step creates its state
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        opt.step([layer])
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        assert layer.W is W                         # updated in place, not replaced
        assert peak < 1.2 * W.nbytes                # lr * dW is the only temporary
        np.testing.assert_array_equal(W, (W0 - 0.1) - 0.1)     # two steps of p ← p − 0.1 · 1


def test_state_is_per_layer_and_resets():
    a, b = nnx.Dense(2, 2, seed=0, dtype="float64"), nnx.Dense(2, 2, seed=1, dtype="float64")
    opt = optim.Adam(lr=0.1)
    for layer in (a, b):
        layer.dW, layer.db = nnx.asarray(np.ones((2, 2))), nnx.asarray(np.ones(2))
    opt.step([a])
    opt.step([a])
    opt.step([b])
    assert opt.state_of(a).t == 2 and opt.state_of(b).t == 1
    opt.reset()
    assert opt.state_of(a) is None and opt.state_of(b) is None


@pytest.mark.parametrize("make", [
    lambda: optim.SGD(lr=0.0), lambda: optim.SGD(lr=-1.0), lambda: optim.SGD(lr=float("nan")),
    lambda: optim.SGD(lr="0.1"), lambda: optim.SGD(lr=0.1, momentum=1.0),
    lambda: optim.SGD(lr=0.1, momentum=-0.1), lambda: optim.SGD(lr=0.1, nesterov=True),
    lambda: optim.SGD(lr=0.1, weight_decay=-1.0), lambda: optim.Adam(lr=0.0),
    lambda: optim.Adam(betas=(0.9,)), lambda: optim.Adam(betas=(1.0, 0.999)),
    lambda: optim.Adam(eps=-1e-8), lambda: optim.Adam(weight_decay=float("inf")),
])
def test_bad_hyperparameters_raise(make):
    with pytest.raises(ValueError, match="SGD|Adam"):
        make()


def test_get_by_name_and_instance():
    opt = optim.get("SGD", lr=0.2, momentum=0.5)
    assert isinstance(opt, optim.SGD) and opt.lr == 0.2 and opt.momentum == 0.5
    assert optim.get("adam").lr == 1e-3
    assert optim.get("sgd").lr == 0.01
    adam = optim.Adam()
    assert optim.get(adam) is adam
    with pytest.raises(ValueError, match="valid names: sgd, adam"):
        optim.get("rmsprop")
    with pytest.raises(ValueError, match="already built"):
        optim.get(adam, lr=0.1)
