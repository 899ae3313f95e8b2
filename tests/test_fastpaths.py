"""Every backend fast path (``backend.ops``) against the portable reference ``Ops``.

NumPy's fast paths must give bitwise the same numbers; CuPy's fused kernels may differ
by the rounding of a fused multiply-add. Edge values (±0, ±inf, NaN) are included.

Only NumPy, PyTorch and CuPy have fast paths (the ``fast`` fixture); JAX and
array-api-strict run the portable ``Ops`` itself, which ``tests/test_reference_ops.py``
checks against closed forms in NumPy float64 on every backend. Comparing ``Ops`` with
itself there would prove nothing, so the comparisons below run on the fast paths only.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import nnx
from nnx import _namespace
from nnx import backends as registry
from nnx.benchmark import cases

Ops = registry.Ops   # the portable reference every fast path is checked against

EDGES = np.array([0.0, -0.0, 1.5, -2.0, np.inf, -np.inf, np.nan], dtype=np.float32)
#: the backends whose adapter brings fast paths; every other one runs the portable Ops.
FAST = ("numpy", "torch", "cupy")


@pytest.fixture(params=FAST)
def fast(request):
    """A backend with fast paths, made active (cupy: where a CUDA device answers)."""
    reason = registry.why_unavailable(request.param)
    if reason:
        pytest.skip(reason)
    with nnx.use_backend(request.param) as b:
        assert type(b.ops) is not Ops, f"{b.name} lost its fast paths"
        yield b


def test_backends_without_fast_paths_run_the_portable_ops():
    """JAX and array-api-strict have no fast path: their ops are the reference itself."""
    for name in nnx.available_backends():
        ops = registry.load(name).ops
        if name in FAST:
            assert type(ops) is not Ops and ops.kind == name and ops.flat
        else:
            assert type(ops) is Ops and ops.kind == "portable" and not ops.flat


def _portable(backend):
    return Ops(backend.xp)


def _same(backend, got, want, fma_scale=None):
    """Bit for bit, except CuPy's fused kernels and PyTorch's ``sub_(g, alpha=α)``
    (given ``fma_scale``): NVRTC and ATen's vectorised loops contract c − a·b into one
    fused multiply-add, which skips the rounding of a·b. That changes the result by up to half
    an ulp of a·b — relative to the result, unbounded where c − a·b cancels — so there
    ``fma_scale`` (|a·b|, elementwise) bounds the absolute difference."""
    got, want = backend.to_numpy(got), backend.to_numpy(want)
    if backend.name == "cupy" or (backend.name == "torch" and fma_scale is not None):
        finite = np.isfinite(want)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_array_equal(got[~finite & ~np.isnan(want)],
                                      want[~finite & ~np.isnan(want)])
        bound = 2.4e-7 * np.abs(want)
        if fma_scale is not None:
            bound = bound + 1.2e-7 * np.broadcast_to(np.abs(fma_scale), want.shape)
        diff = np.abs(got[finite] - want[finite])
        assert np.all(diff <= bound[finite]), f"largest difference {diff.max()}"
    else:
        np.testing.assert_array_equal(got, want)
    zeros = (got == 0) & (want == 0)
    np.testing.assert_array_equal(np.signbit(got[zeros]), np.signbit(want[zeros]))


def _rand(backend, rng, *shape, dtype="float32"):
    return backend.from_numpy(rng.standard_normal(shape).astype(dtype))


@pytest.mark.parametrize("m", [4, 80], ids=["small", "large"])
def test_matmul_matches_and_reuses_out(fast, rng, m):
    a, b = _rand(fast, rng, m, 3), _rand(fast, rng, 3, 60)
    ref = _portable(fast).matmul(a, b)
    _same(fast, fast.ops.matmul(a, b), ref)
    out = fast.xp.zeros((m, 60), dtype=fast.xp.float32)
    got = fast.ops.matmul(a, b, out=out)
    _same(fast, got, ref)
    if fast.name in ("cupy", "torch") or (fast.name == "numpy" and m * 60 >= 4096):
        assert got is out                       # written in place
    else:
        assert got is not out                   # NumPy's small results: allocated afresh
        np.testing.assert_array_equal(fast.to_numpy(out), 0.0)
    wrong = fast.xp.zeros((60, m), dtype=fast.xp.float32)
    _same(fast, fast.ops.matmul(a, b, out=wrong), ref)   # unusable out: ignored
    _same(fast, fast.ops.matmul(a.T.T, b.T.T), ref)


@pytest.mark.parametrize("m", [6, 5000], ids=["small", "large"])
def test_sum_rows_matches(fast, rng, m):
    x = _rand(fast, rng, 7, m)
    ref = _portable(fast).sum_rows(x)
    _same(fast, fast.ops.sum_rows(x), ref)
    out = fast.xp.ones((m,), dtype=fast.xp.float32)
    got = fast.ops.sum_rows(x, out=out)
    _same(fast, got, ref)
    if fast.name in ("cupy", "torch") or (fast.name == "numpy" and m >= 4096):
        assert got is out
    else:
        assert got is not out                   # NumPy's small results: allocated afresh
        np.testing.assert_array_equal(fast.to_numpy(out), 1.0)


@pytest.mark.parametrize("shape", [(4, 1), (300, 70)])
def test_sum_matches(fast, rng, shape):
    x = _rand(fast, rng, *shape)
    _same(fast, fast.ops.sum(x), _portable(fast).sum(x))
    assert fast.ops.sum(x).shape == ()


@pytest.mark.parametrize("shape", [(7,), (3, 7), (700, 70), (2, 40, 70)])
def test_relu_matches_with_edge_values(fast, rng, shape):
    z = rng.standard_normal(shape).astype(np.float32)
    z.reshape(-1)[: len(EDGES)] = EDGES
    z = fast.from_numpy(z)
    _same(fast, fast.ops.relu(z), _portable(fast).relu(z))


@pytest.mark.filterwarnings("ignore:invalid value encountered")   # inf · 0 = NaN, on purpose
def test_relu_backward_matches_with_edge_values(fast):
    vals = np.concatenate([EDGES, -EDGES[2:4]])
    dy = np.repeat(vals[:, None], len(vals), axis=1)     # every dy against every a
    a = np.maximum(np.repeat(vals[None, :], len(vals), axis=0), 0.0)
    dy, a = fast.from_numpy(dy), fast.from_numpy(a)
    _same(fast, fast.ops.relu_backward(dy, a), _portable(fast).relu_backward(dy, a))
    scratch = fast.xp.asarray(dy, copy=True)
    got = fast.ops.relu_backward(scratch, a, out=scratch)
    _same(fast, got, _portable(fast).relu_backward(dy, a))


@pytest.mark.filterwarnings("ignore:invalid value encountered")
@pytest.mark.parametrize("which", ["tanh", "sigmoid"])
def test_tanh_and_sigmoid_backward_match_with_edge_values(backend, which):
    f = {"tanh": np.tanh, "sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v))}[which]
    vals = np.concatenate([EDGES, [0.5, -3.0, 30.0]]).astype(np.float32)
    dy = np.repeat(vals[:, None], len(vals), axis=1)     # every dy against every a
    with np.errstate(over="ignore"):
        a = f(np.repeat(vals[None, :], len(vals), axis=0)).astype(np.float32)
    dy, a = backend.from_numpy(dy), backend.from_numpy(a)
    fast, ref = getattr(backend.ops, f"{which}_backward"), getattr(_portable(backend),
                                                                     f"{which}_backward")
    _same(backend, fast(dy, a), ref(dy, a), fma_scale=backend.to_numpy(dy))
    if not backend.immutable_arrays:                # written into dy itself, as Sequential does
        scratch = backend.xp.asarray(dy, copy=True)
        got = fast(scratch, a, out=scratch)
        _same(backend, got, ref(dy, a), fma_scale=backend.to_numpy(dy))
    closed = {"tanh": lambda d, v: d * (1 - v * v), "sigmoid": lambda d, v: d * v * (1 - v)}
    d64, a64 = backend.to_numpy(dy).astype(np.float64), backend.to_numpy(a).astype(np.float64)
    finite = np.isfinite(d64) & np.isfinite(a64)
    np.testing.assert_allclose(backend.to_numpy(fast(dy, a))[finite],
                               closed[which](d64, a64)[finite], rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize("into", [False, True], ids=["fresh", "into-dy"])
@pytest.mark.parametrize("shape", [(9, 9), (70, 70)], ids=["below-SMALL", "above-SMALL"])
@pytest.mark.parametrize("which", ["relu", "tanh", "sigmoid"])
def test_activation_backward_on_both_sides_of_the_size_threshold(backend, rng, which, shape,
                                                                 into):
    """NumPy switches to ``out=`` paths at 4096 elements: both sides, with exact zeros among
    the activations (a ReLU mask taken as a ≥ 0 instead of a > 0 must fail here), against
    the portable path and the closed form in float64."""
    z = rng.standard_normal(shape).astype(np.float32)
    z.reshape(-1)[::3] = 0.0
    z.reshape(-1)[1::7] = -0.0
    a = {"relu": np.maximum(z, 0.0), "tanh": np.tanh(z),
         "sigmoid": (1.0 / (1.0 + np.exp(-z))).astype(np.float32)}[which]
    dy = rng.standard_normal(shape).astype(np.float32)
    dyb, ab = backend.from_numpy(dy), backend.from_numpy(a)
    want = getattr(_portable(backend), f"{which}_backward")(dyb, ab)
    arg = backend.xp.asarray(dyb, copy=True)
    out = arg if into and not backend.immutable_arrays else None
    got = getattr(backend.ops, f"{which}_backward")(arg, ab, out=out)
    _same(backend, got, want, fma_scale=dy)
    d64, a64, z64 = dy.astype(np.float64), a.astype(np.float64), z.astype(np.float64)
    closed = {"relu": d64 * (z64 > 0), "tanh": d64 * (1 - a64 * a64),
              "sigmoid": d64 * a64 * (1 - a64)}[which]
    np.testing.assert_allclose(backend.to_numpy(got), closed, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("which", ["relu", "tanh", "sigmoid"])
def test_activation_backward_writes_into_out(fast, rng, which):
    """Large arrays: NumPy and CuPy write dL/dz into ``out`` (here dy itself), PyTorch
    its ReLU's; every fast gives the portable numbers."""
    dy_host = rng.standard_normal((80, 100)).astype(np.float32)
    a = fast.from_numpy(np.tanh(rng.standard_normal((80, 100))).astype(np.float32) ** 2)
    name = f"{which}_backward"
    want = getattr(_portable(fast), name)(fast.from_numpy(dy_host), a)
    dy = fast.from_numpy(dy_host)
    got = getattr(fast.ops, name)(dy, a, out=dy)
    _same(fast, got, want, fma_scale=dy_host)
    if fast.name in ("numpy", "cupy") or (fast.name, which) == ("torch", "relu"):
        assert got is dy


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [4, 3000])
def test_sigmoid_bce_matches_closed_form_and_portable(backend, rng, dtype, n):
    """Loss and gradient of BCE on logits: the fast path against the portable formula and
    against log(1 + e^z) − z y and (σ(z) − y)/N computed per element with ``math``."""
    import math

    z = rng.standard_normal((n, 1)) * 6
    z[:4, 0] = [0.0, 80.0, -80.0, 1e-3]                  # saturated both ways, and ~0
    y = rng.random((n, 1))
    y[: n // 2] = np.round(y[: n // 2])                   # hard and soft targets
    z, y = z.astype(dtype), y.astype(dtype)
    zb, yb = backend.from_numpy(z), backend.from_numpy(y)
    loss, grad = backend.ops.sigmoid_bce(zb, yb)
    ref_loss, ref_grad = _portable(backend).sigmoid_bce(zb, yb)
    tol = 2e-6 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(float(loss), float(ref_loss), rtol=tol)
    np.testing.assert_allclose(backend.to_numpy(grad), backend.to_numpy(ref_grad),
                               rtol=tol, atol=tol / n)
    zs, ys = z.astype(np.float64).ravel(), y.astype(np.float64).ravel()
    terms = [max(v, 0.0) - v * t + math.log1p(math.exp(-abs(v))) for v, t in zip(zs, ys)]
    sig = [1.0 / (1.0 + math.exp(-v)) for v in zs]
    np.testing.assert_allclose(float(loss), math.fsum(terms) / n, rtol=tol)
    np.testing.assert_allclose(backend.to_numpy(grad).ravel(),
                               [(s - t) / n for s, t in zip(sig, ys)], rtol=tol, atol=tol / n)
    assert backend.to_numpy(grad).dtype == np.dtype(dtype)


def test_nnx_ops_portable_turns_fast_paths_off(monkeypatch):
    fast = registry.load("numpy")
    assert type(fast.ops) is not Ops
    monkeypatch.setenv("NNX_OPS", "portable")
    assert type(dataclasses.replace(fast, ops=None).ops) is Ops
    monkeypatch.setenv("NNX_OPS", "")
    assert type(dataclasses.replace(fast, ops=None).ops) is type(fast.ops)


@pytest.mark.parametrize("shape", [(3, 2), (700, 500)], ids=["tiny", "chunked"])
def test_sub_scaled_matches_and_updates_in_place(fast, rng, shape):
    p0, g = rng.standard_normal(shape).astype(np.float32), rng.standard_normal(shape)
    g = g.astype(np.float32)
    g.reshape(-1)[:3] = [np.inf, -0.0, 1e-30]
    want = _portable(fast).sub_scaled(fast.from_numpy(p0), fast.from_numpy(g), 0.37)
    p = fast.from_numpy(p0)
    got = fast.ops.sub_scaled(p, fast.from_numpy(g), 0.37)
    _same(fast, got, want, fma_scale=0.37 * g)
    if fast.name != "jax":
        assert got is p


def test_sub_scaled_on_strided_and_mixed_arrays_falls_back(fast, rng):
    p0 = rng.standard_normal((600, 600)).astype(np.float32)
    g = rng.standard_normal((600, 600)).astype(np.float32)
    want = fast.to_numpy(_portable(fast).sub_scaled(fast.from_numpy(p0).T,
                                                          fast.from_numpy(g).T, 0.1))
    got = fast.ops.sub_scaled(fast.from_numpy(p0).T, fast.from_numpy(g).T, 0.1)
    _same(fast, got, fast.from_numpy(want), fma_scale=0.1 * g.T)


@pytest.mark.parametrize("dtypes", [("float32", "float64"), ("float64", "float32")])
def test_sub_scaled_with_mixed_dtypes(fast, rng, dtypes):
    p0 = rng.standard_normal((3, 2)).astype(dtypes[0])
    g = fast.from_numpy(rng.standard_normal((3, 2)).astype(dtypes[1]))
    try:
        want = _portable(fast).sub_scaled(fast.from_numpy(p0), g, 0.1)
    except TypeError:                   # array-api-strict refuses float32 -= float64
        with pytest.raises(TypeError):
            fast.ops.sub_scaled(fast.from_numpy(p0), g, 0.1)
        return
    _same(fast, fast.ops.sub_scaled(fast.from_numpy(p0), g, 0.1), want)


def test_numpy_update_changes_learning_rate_and_dtype():
    ops = registry.load("numpy").ops
    p = np.ones((2, 2), np.float32)
    ops.sub_scaled(p, np.ones((2, 2), np.float32), 0.5)
    ops.sub_scaled(p, np.ones((2, 2), np.float32), 0.25)      # a new α is not the cached one
    np.testing.assert_array_equal(p, np.full((2, 2), 0.25, np.float32))
    q = np.ones(3)
    ops.sub_scaled(q, np.full(3, 1.0 / 3.0), 0.3)              # float64: no float32 rounding
    np.testing.assert_array_equal(q, 1.0 - 0.3 * np.full(3, 1.0 / 3.0))


# -- the layers: in-place gradients and what activations cache --------------------------

def test_dense_writes_gradients_into_its_own_arrays_only(backend, rng):
    layer = nnx.Dense(64, 80, seed=0, dtype="float64")     # dW big enough to be reused
    x = rng.standard_normal((4, 64))
    for k in range(2):
        dy = rng.standard_normal((4, 80))
        layer.forward(backend.from_numpy(x))
        layer.backward(backend.from_numpy(dy))
        np.testing.assert_allclose(backend.to_numpy(layer.dW), dy.T @ x, rtol=1e-13)
        np.testing.assert_allclose(backend.to_numpy(layer.db), dy.sum(axis=0), rtol=1e-13)
        if k == 0:
            first = layer.dW
    if backend.name in ("numpy", "cupy"):
        assert layer.dW is first                  # the second backward reused the array
    mine = backend.from_numpy(np.full((80, 64), 7.0))
    layer.dW = mine                               # an array set from outside ...
    layer.backward(backend.from_numpy(np.ones((4, 80))))
    np.testing.assert_array_equal(backend.to_numpy(mine), np.full((80, 64), 7.0))  # untouched
    assert layer.dW is not mine


def test_relu_backward_uses_only_the_output(backend):
    relu = nnx.ReLU()
    z = backend.from_numpy(np.array([[-1.0, 0.0, 2.0, np.nan]], dtype=np.float32))
    relu.forward(z)
    dz = relu.backward(backend.from_numpy(np.full((1, 4), 3.0, dtype=np.float32)))
    np.testing.assert_array_equal(backend.to_numpy(dz)[0, :3], [0.0, 0.0, 3.0])
    assert relu._z is None                        # z need not outlive the forward pass


@pytest.mark.parametrize("size", [16, 300], ids=["small", "large"])
def test_whole_step_fast_equals_portable(monkeypatch, size):
    """Three SGD steps of an MLP with NumPy's fast paths and with the portable Ops agree
    bit for bit (the registry's Backend is swapped for one with portable ops)."""
    net = cases.Network((6, size, size, 3), 8)
    fast = registry.load("numpy")
    portable = dataclasses.replace(fast, ops=Ops(fast.xp))
    results = []
    for b in (fast, portable):
        with monkeypatch.context() as m:   # where layers and losses look their ops up
            m.setitem(registry._cache, ("numpy", "None"), b)
            m.setattr(_namespace, "_OPS_OF_TYPE", {})
            step = cases.training_step(b, net, seed=3)
            for _ in range(3):
                step.fn()
            assert step.model.layers[1]._ops is b.ops
        results.append([np.array(p) for d in step.model.dense_layers for p in (d.W, d.b)])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape", [(9, 9), (70, 70)], ids=["below-SMALL", "above-SMALL"])
@pytest.mark.parametrize("which", ["relu", "tanh"])
def test_activation_written_into_its_input_matches(fast, rng, which, shape):
    z = rng.standard_normal(shape).astype(np.float32)
    z.reshape(-1)[: len(EDGES)] = EDGES
    want = getattr(_portable(fast), which)(fast.from_numpy(z))
    zb = fast.from_numpy(z)
    got = getattr(fast.ops, which)(zb, out=zb)
    _same(fast, got, want)
    if fast.name == "numpy":
        assert got is zb                            # in place: no new array


def test_sequential_forward_writes_activations_into_dense_outputs_only(backend, rng):
    """Inside a Sequential a ReLU/tanh after a Dense reuses the Dense's fresh output; the
    caller's input is never written, and the numbers are those of the layers one by one."""
    x = rng.standard_normal((5, 4)).astype(np.float32)
    xb = backend.from_numpy(x)
    first = nnx.ReLU()
    model = nnx.Sequential(first, nnx.Dense(4, 6, seed=1), nnx.Tanh(), nnx.Dense(6, 3, seed=2),
                           nnx.ReLU())
    out = model.forward(xb)
    np.testing.assert_array_equal(backend.to_numpy(xb), x)       # the caller's array
    want = xb
    for layer in model.layers:                                    # layer by layer
        want = layer.forward(want)
    np.testing.assert_array_equal(backend.to_numpy(out), backend.to_numpy(want))
