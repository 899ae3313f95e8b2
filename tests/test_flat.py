"""One flat buffer per dtype for a network's parameters and gradients (nnx.flat).

The flat path (NumPy, PyTorch, CuPy fast paths) must train exactly as the portable
per-array path does: bit for bit on NumPy, to the rounding of a fused multiply-add on
PyTorch and CuPy. The portable path is the same backend with ``Ops`` (``NNX_OPS=portable``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from nnx.backends import _numpy_ops

import nnx
from nnx import backends as registry

Ops = registry.Ops
#: "numpy-calls": NumPy with the compiled updates (backends/_fused.c) turned off, so both
#: of NumPy's flat updates, the compiled loop and the NumPy calls, face the portable path.
FLAT = ("numpy", "numpy-calls", "torch", "cupy")
CHUNK = _numpy_ops.UPDATE_CHUNK


@pytest.fixture(params=FLAT)
def flat_backend(request, monkeypatch):
    """The backends with flat buffers that are installed here (cupy: where a GPU answers)."""
    name = request.param.removesuffix("-calls")
    reason = registry.why_unavailable(name)
    if reason:
        pytest.skip(reason)
    backend = registry.load(name)
    if request.param == "numpy-calls":     # every NumPy array's ops: layers, losses, updates
        monkeypatch.setattr(backend.ops, "fused", None)
    with nnx.use_backend(backend) as b:
        yield b


def _portable(backend):
    return dataclasses.replace(backend, ops=Ops(backend.xp))


def _flat_params(model):
    return np.concatenate([np.ravel(nnx.to_numpy(p)) for p in model.parameters().values()])


def _data(rng, n, n_in, k, dtype):
    return rng.standard_normal((n, n_in)).astype(dtype), rng.integers(0, k, n)


def _train(backend, sizes, opt, X, y, dtype, epochs=3, batch=16):
    model = nnx.MLP(sizes, seed=3, dtype=dtype, backend=backend)
    model.fit(X, y, loss="softmax_cross_entropy", optimizer=opt, epochs=epochs,
              batch_size=batch, seed=0, progress=False)
    return model


def _assert_same(backend, got, want):
    if backend.name == "numpy":
        np.testing.assert_array_equal(got, want)
    else:   # ATen's and NVRTC's fused multiply-adds round differently from a·b then c − ab
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-7)


# -- the layout ------------------------------------------------------------------------
def test_layout_weights_first_then_biases_all_views(backend):
    model = nnx.MLP([3, 5, 2], seed=0, backend=backend)
    if backend.name not in FLAT:
        assert model.flat is None    # one array per parameter: the portable path
        return
    (group,) = model.flat.groups
    d0, d1 = model.dense_layers
    host = nnx.to_numpy(group.params)
    assert group.n_weights == 15 + 10 and group.size == 25 + 7
    np.testing.assert_array_equal(host, np.concatenate(
        [nnx.to_numpy(d0.W).ravel(), nnx.to_numpy(d1.W).ravel(), nnx.to_numpy(d0.b),
         nnx.to_numpy(d1.b)]))
    group.params *= 2.0                             # the buffer and the layers share memory
    np.testing.assert_array_equal(nnx.to_numpy(d1.W).ravel(), 2 * host[15:25])
    new = np.arange(10, dtype=np.float32).reshape(2, 5)
    d1.W = backend.from_numpy(new)                  # assignment copies into the view
    new[:] = -1.0                                   # ... so the caller's array stays theirs
    np.testing.assert_array_equal(nnx.to_numpy(group.params)[15:25], np.arange(10))
    with pytest.raises(ValueError, match="must have shape"):
        d1.W = backend.from_numpy(np.zeros((5, 2), np.float32))


def test_backward_writes_into_the_gradient_buffer(backend, rng):
    model = nnx.MLP([4, 6, 3], seed=0, backend=backend)
    x = backend.from_numpy(rng.standard_normal((5, 4)).astype(np.float32))
    out = model.forward(x)
    model.backward(backend.xp.ones_like(out), input_grad=False)
    if backend.name not in FLAT:
        return
    (group,) = model.flat.groups
    assert model.flat.ready()
    grads = nnx.to_numpy(group.grads)
    d0, d1 = model.dense_layers
    np.testing.assert_array_equal(grads[:24], nnx.to_numpy(d0.dW).ravel())
    np.testing.assert_array_equal(grads[42:48], nnx.to_numpy(d0.db))
    group.grads *= 0.0
    assert not np.any(nnx.to_numpy(d1.dW)) and not np.any(nnx.to_numpy(d1.db))


def test_mixed_dtypes_get_one_buffer_each():
    a = nnx.Dense(3, 4, dtype="float64", seed=0)
    b = nnx.Dense(4, 2, dtype="float32", seed=1)
    model = nnx.Sequential(a, nnx.ReLU(), b)
    assert sorted(g.dtype for g in model.flat.groups) == ["float32", "float64"]


# -- the flat path equals the per-array path ---------------------------------------------
OPTIMIZERS = {
    "sgd": lambda: nnx.optim.SGD(0.05),
    "sgd-momentum-decay": lambda: nnx.optim.SGD(0.05, momentum=0.9, weight_decay=1e-2),
    "sgd-nesterov": lambda: nnx.optim.SGD(0.05, momentum=0.8, nesterov=True),
    "adam": lambda: nnx.optim.Adam(1e-2),
    "adam-decay": lambda: nnx.optim.Adam(1e-2, betas=(0.8, 0.99), weight_decay=0.1),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_flat_training_equals_the_portable_path(flat_backend, rng, name, dtype):
    backend = flat_backend
    X, y = _data(rng, 48, 7, 3, dtype)
    fast = _train(backend, [7, 9, 5, 3], OPTIMIZERS[name](), X, y, dtype)
    slow = _train(_portable(backend), [7, 9, 5, 3], OPTIMIZERS[name](), X, y, dtype)
    assert fast.flat is not None and slow.flat is None
    _assert_same(backend, _flat_params(fast), _flat_params(slow))


@pytest.mark.parametrize("name", ["sgd-momentum-decay", "sgd-nesterov", "adam-decay"])
def test_flat_update_over_several_scratch_chunks(flat_backend, rng, name):
    """More parameters than NumPy's update chunk: the slice loop of the flat step."""
    backend = flat_backend
    sizes = [CHUNK // 250 + 1, 250, 4]             # 2 chunks and a ragged end
    assert sum(a * b + b for a, b in zip(sizes, sizes[1:])) > CHUNK
    X, y = _data(rng, 8, sizes[0], 4, "float32")
    fast = _train(backend, sizes, OPTIMIZERS[name](), X, y, "float32", epochs=2, batch=4)
    slow = _train(_portable(backend), sizes, OPTIMIZERS[name](), X, y, "float32", epochs=2,
                  batch=4)
    _assert_same(backend, _flat_params(fast), _flat_params(slow))


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_moving_between_the_two_paths_keeps_the_state(rng, name):
    """Steps on the per-array path (a gradient replaced from outside), then flat steps,
    then per-array again: the same numbers as per-array steps throughout."""
    X = rng.standard_normal((6, 4)).astype(np.float32)
    y = rng.integers(0, 3, 6)
    ref_backend = _portable(nnx.backend.resolve_backend("numpy"))
    models = [nnx.MLP([4, 5, 3], seed=1), nnx.MLP([4, 5, 3], seed=1, backend=ref_backend)]
    opts = [OPTIMIZERS[name](), OPTIMIZERS[name]()]
    for step in range(6):
        for model, opt in zip(models, opts):
            _, g = nnx.losses.softmax_cross_entropy(model.forward(X), y)
            model.backward(g, input_grad=False)
            if step in (0, 1, 4) and model.flat is not None:
                d = model.dense_layers[0]
                d.dW = d.dW * 1.0          # a gradient from elsewhere: not the buffer's view
                assert not model.flat.ready()
            opt.step(model)
        assert opts[0].state_of(models[0].dense_layers[1]).t == step + 1
    np.testing.assert_array_equal(_flat_params(models[0]), _flat_params(models[1]))


def test_a_layer_moved_into_another_network_leaves_the_first_on_the_per_array_path(rng):
    d0, d1 = nnx.Dense(3, 4, seed=0), nnx.Dense(4, 2, seed=1)
    first = nnx.Sequential(d0, nnx.Tanh(), d1)
    nnx.Sequential(d1)                               # d1 now lives in the second's buffer
    x = rng.standard_normal((5, 3)).astype(np.float32)
    out = first.forward(x)
    first.backward(np.ones_like(out), input_grad=False)
    assert not first.flat.ready()
    before = nnx.to_numpy(d1.W).copy()
    nnx.optim.SGD(0.1).step(first)
    np.testing.assert_allclose(nnx.to_numpy(d1.W), before - np.float32(0.1) * d1.dW)


# -- the kernels alone -------------------------------------------------------------------
@pytest.mark.parametrize("n", [7, CHUNK + 13], ids=["one-slice", "two-slices"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_adam_and_sgd_kernels_equal_the_portable_expressions(flat_backend, rng, n, dtype):
    backend = flat_backend
    ref = Ops(backend.xp)
    draw = [rng.standard_normal(n).astype(dtype) for _ in range(5)]
    draw[4] = np.abs(draw[4])                          # v ≥ 0
    for kernel in ("adam", "sgd"):
        runs = []
        for ops in (backend.ops, ref):
            p, g, m, v, buf = (backend.from_numpy(a.copy()) for a in
                               (draw[0], draw[1], draw[3], draw[4], draw[2]))
            if kernel == "adam":
                ops.adam_step(p, g, m, v, step_size=0.01, b1=0.9, b2=0.999, sqrt_bc2=0.3,
                              eps=1e-8, weight_decay=0.1)
                runs.append([p, m, v])
            else:
                ops.sgd_step(p, g, buf, lr=0.1, momentum=0.9, nesterov=True,
                             weight_decay=0.01, first=False)
                runs.append([p, buf])
        for got, want in zip(*runs):
            _assert_same(backend, nnx.to_numpy(got), nnx.to_numpy(want))


@pytest.mark.parametrize("n", [3, 700], ids=["small", "large"])
def test_softmax_xent_fast_path_matches_portable_and_closed_form(backend, rng, n):
    z = rng.standard_normal((n, 6)).astype(np.float64) * 4
    z[0] = [1e300, -1e300, 0.0, 5.0, 1e300, 3.0] if n > 3 else z[0]
    y = np.eye(6)[rng.integers(0, 6, n)]
    zb, yb = backend.from_numpy(z), backend.from_numpy(y)
    loss, grad = backend.ops.softmax_xent(zb, yb)
    ref_loss, ref_grad = Ops(backend.xp).softmax_xent(zb, yb)
    if backend.name == "numpy":           # the same operations into reused arrays: same bits
        assert float(loss) == float(ref_loss)
        np.testing.assert_array_equal(nnx.to_numpy(grad), nnx.to_numpy(ref_grad))
    np.testing.assert_allclose(float(loss), float(ref_loss), rtol=1e-13)
    np.testing.assert_allclose(nnx.to_numpy(grad), nnx.to_numpy(ref_grad), rtol=1e-12,
                               atol=1e-15)
    shifted = z - z.max(axis=1, keepdims=True)         # closed form, in float64
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(float(loss), -(y * log_p).sum() / n, rtol=1e-12)
    np.testing.assert_allclose(nnx.to_numpy(grad), (np.exp(log_p) - y) / n, rtol=1e-10,
                               atol=1e-15)


def test_model_files_read_and_write_through_the_views(flat_backend, tmp_path, rng):
    model = nnx.MLP([3, 4, 2], seed=5, backend=flat_backend)
    X = flat_backend.from_numpy(rng.standard_normal((6, 3)).astype(np.float32))
    model.fit(X, rng.integers(0, 2, 6), loss="softmax_cross_entropy", optimizer="adam",
              epochs=2, progress=False)
    nnx.save(model, tmp_path / "m.safetensors")
    loaded = nnx.load(tmp_path / "m.safetensors", backend=flat_backend)
    (group,) = loaded.flat.groups
    np.testing.assert_array_equal(nnx.to_numpy(group.params), _flat_params_in_buffer_order(model))
    group.params *= 0.0                             # the loaded layers are the buffer's views
    assert not np.any(nnx.to_numpy(loaded.dense_layers[1].W))


def _flat_params_in_buffer_order(model):
    dense = model.dense_layers
    return np.concatenate([nnx.to_numpy(d.W).ravel() for d in dense]
                          + [nnx.to_numpy(d.b) for d in dense])


def test_layers_without_bias_share_the_buffer_and_train_as_the_portable_path(flat_backend,
                                                                               rng):
    def build(backend):
        return nnx.Sequential(nnx.Dense(4, 5, bias=False, seed=1, backend=backend), nnx.Tanh(),
                              nnx.Dense(5, 3, seed=2, backend=backend))
    X, y = _data(rng, 12, 4, 3, "float32")
    fast, slow = build(flat_backend), build(_portable(flat_backend))
    (group,) = fast.flat.groups
    assert group.size == 20 + 15 + 3 and group.index[fast.layers[0]] == (0, None)
    for model in (fast, slow):
        model.fit(X, y, loss="softmax_cross_entropy", optimizer=nnx.optim.Adam(0.01), epochs=3,
                  batch_size=4, seed=0, progress=False)
    assert fast.flat.ready() and fast.layers[0].db is None
    _assert_same(flat_backend, _flat_params(fast), _flat_params(slow))
