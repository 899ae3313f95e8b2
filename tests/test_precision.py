"""The precision policy (nnx.precision): float32 master weights, products in a compute dtype.

Which arrays are low precision when is asserted directly; the numbers are compared with
PyTorch's autocast on the same weights, and with float64 arithmetic on the rounded inputs.
"""

from __future__ import annotations

import numpy as np
import pytest

import nnx
from nnx import architecture
from nnx import backends as registry

# (backend, compute dtype) pairs that exist; cupy's appear only where a CUDA device answers
LOW = [("numpy", "float16"), ("torch", "bfloat16"), ("torch", "float16"), ("jax", "bfloat16"),
       ("jax", "float16"), ("cupy", "float16")]


def _params(pairs):
    out = []
    for name, low in pairs:
        reason = registry.why_unavailable(name)
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        out.append(pytest.param(name, low, id=f"{name}-{low}", marks=marks))
    return out


def _data(backend, n=6, d=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = np.eye(k)[rng.integers(0, k, n)]
    return (nnx.asarray(x, backend=backend, dtype="float32"),
            nnx.asarray(y, backend=backend, dtype="float32"), x, y)


# -- dtype names resolve in backends/ ----------------------------------------------------
def test_dtype_names_resolve_per_backend(backend):
    xp = backend.xp
    assert backend.dtype("float32") == xp.float32
    assert backend.dtype("float64") == xp.float64
    has = {"numpy": {"float16"}, "torch": {"float16", "bfloat16"},
           "jax": {"float16", "bfloat16"}, "array_api_strict": set()}.get(backend.name)
    if backend.name == "cupy":                     # bfloat16 where CuPy has ml_dtypes' kernels
        has = {"float16"} | set(backend.adapter.low_precision_dtypes())
    for name in ("float16", "bfloat16"):
        if name in has:
            made = backend.xp.zeros((2,), dtype=backend.dtype(name), device=backend.device)
            assert str(made.dtype).endswith(name)
        else:
            with pytest.raises(ValueError, match=f"{backend.name} backend has no {name}"):
                backend.dtype(name)
    with pytest.raises(ValueError, match="not a floating dtype"):
        backend.dtype("int8")


@pytest.mark.parametrize("bad", ["float64", "half", 16, True, "float32"])
def test_compute_dtype_names_are_checked(bad):
    with pytest.raises(ValueError, match="compute_dtype must be None, 'bfloat16' or 'float16'"):
        nnx.Dense(2, 3, compute_dtype=bad, backend="numpy")


def test_compute_dtype_needs_float32_master_weights():
    with pytest.raises(ValueError, match="needs dtype='float32'; got dtype='float64'"):
        nnx.MLP([2, 3], dtype="float64", compute_dtype="float16", backend="numpy")
    with pytest.raises(ValueError, match="numpy backend has no bfloat16"):
        nnx.MLP([2, 3], compute_dtype="bfloat16", backend="numpy")


def test_strict_backend_refuses_16_bit_floats():
    pytest.importorskip("array_api_strict")
    with pytest.raises(ValueError, match="array_api_strict backend has no float16"):
        nnx.Dense(2, 3, compute_dtype="float16", backend="array_api_strict")


# -- which arrays are low precision when ---------------------------------------------------
@pytest.mark.parametrize(("name", "low"), _params(LOW))
def test_casts_of_one_training_step(name, low):
    backend = nnx.backends.load(name)
    want = backend.dtype(low)
    f32 = backend.xp.float32
    model = nnx.MLP([5, 7, 3], seed=0, backend=backend, compute_dtype=low)
    x, y, _, _ = _data(backend)
    z = model[0].forward(x)                       # a Dense alone answers in the compute dtype
    assert z.dtype == want and model[0]._x.dtype == want and model[0]._Wc.dtype == want
    out = model.forward(x)
    assert out.dtype == f32                      # the loss sees float32
    assert model[0]._x.dtype == want and model[2]._x.dtype == want   # cached inputs: low
    assert model[1]._a.dtype == want              # the activation ran in the compute dtype
    _, grad = nnx.losses.softmax_cross_entropy(out, y)
    assert model.backward(grad).dtype == want     # dL/dx leaves in the compute dtype
    for layer in model.dense_layers:
        for arr in (layer.W, layer.b, layer.dW, layer.db):
            assert arr.dtype == f32              # master weights and gradients: float32
    if model.flat is not None:
        assert model.flat.ready() and all(g.params.dtype == f32 for g in model.flat.groups)
    nnx.optim.Adam(lr=1e-3).step(model)
    assert all(layer.W.dtype == f32 for layer in model.dense_layers)


def test_sequential_compute_dtype_property():
    model = nnx.Sequential(nnx.Dense(2, 3, backend="numpy"), nnx.ReLU(),
                           nnx.Sequential(nnx.Dense(3, 2, backend="numpy")))
    assert model.compute_dtype is None
    model.compute_dtype = "float16"
    assert [d.compute_dtype for d in model.dense_layers] == ["float16", "float16"]
    model[0].compute_dtype = None
    assert model.compute_dtype == "mixed"
    mixed = nnx.Sequential(nnx.Dense(2, 3, backend="numpy"),
                           nnx.Dense(3, 2, dtype="float64", backend="numpy"))
    with pytest.raises(ValueError, match="needs dtype='float32'"):
        mixed.compute_dtype = "float16"
    assert mixed.compute_dtype is None            # checked before any layer changed


# -- the numbers: PyTorch's autocast, float64 arithmetic on rounded inputs -------------------
@pytest.mark.parametrize(("name", "low"), _params([("torch", "bfloat16"), ("numpy", "float16"),
                                                    ("torch", "float16")]))
def test_step_matches_torch_autocast(name, low):
    torch = pytest.importorskip("torch")
    backend = nnx.backends.load(name)
    model = nnx.MLP([5, 16, 3], seed=1, backend=backend, compute_dtype=low)
    x, y, x_np, y_np = _data(backend, n=8, seed=2)
    out = model.forward(x)
    loss, grad = nnx.losses.softmax_cross_entropy(out, y)
    model.backward(grad, input_grad=False)

    layers = [torch.nn.Linear(5, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)]
    with torch.no_grad():
        for lin, dense in zip(layers[::2], model.dense_layers):
            lin.weight.copy_(torch.tensor(nnx.to_numpy(dense.W)))
            lin.bias.copy_(torch.tensor(nnx.to_numpy(dense.b)))
    net = torch.nn.Sequential(*layers)
    with torch.autocast("cpu", dtype=getattr(torch, low)):
        ref = net(torch.tensor(x_np, dtype=torch.float32))
    ref_loss = torch.nn.functional.cross_entropy(ref.float(), torch.tensor(y_np.argmax(1)))
    ref_loss.backward()
    ref_loss = ref_loss.detach()
    ref = ref.detach()
    scale = float(ref.abs().max())
    np.testing.assert_allclose(nnx.to_numpy(out), ref.float().numpy(),
                               rtol=0, atol=2e-2 * scale)
    assert abs(float(loss) - float(ref_loss)) < 2e-2 * max(1.0, float(ref_loss))
    for lin, dense in zip(layers[::2], model.dense_layers):
        for mine, theirs in ((dense.dW, lin.weight.grad), (dense.db, lin.bias.grad)):
            theirs = theirs.numpy()
            np.testing.assert_allclose(nnx.to_numpy(mine), theirs, rtol=0,
                                       atol=3e-2 * np.abs(theirs).max())


@pytest.mark.parametrize(("name", "low"), _params(LOW))
def test_dense_rounds_once_like_tensor_cores(name, low):
    """Z = round(round(X) round(W)ᵀ) + round(b), each product exact and summed in float64:
    the result may differ from nnx's by at most one rounding of the compute dtype."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    backend = nnx.backends.load(name)
    layer = nnx.Dense(24, 6, seed=3, backend=backend, compute_dtype=low)
    b_np = np.random.default_rng(5).normal(size=6)
    layer.b = nnx.asarray(b_np, backend=backend, dtype="float32")
    x_np = np.random.default_rng(4).normal(size=(10, 24)).astype(np.float32)
    z = nnx.to_numpy(layer.forward(nnx.asarray(x_np, backend=backend))).astype(np.float64)
    kind = np.float16 if low == "float16" else ml_dtypes.bfloat16
    rnd = lambda a: np.asarray(a, dtype=np.float32).astype(kind).astype(np.float64)  # noqa: E731
    product = rnd(rnd(x_np) @ rnd(nnx.to_numpy(layer.W)).T)
    want = rnd(product + rnd(b_np))
    ulp = 2.0 ** (-10 if low == "float16" else -7)  # the spacing relative to the magnitude
    np.testing.assert_allclose(z, want, rtol=2 * ulp, atol=1e-6)


def test_bias_gradient_is_summed_in_float32():
    """db = Σ_rows δ over 4096 float16 rows: summed in float16 it would lose the small
    terms (1 + 4095·2⁻¹¹ rounds to 1 in float16); summed in float32 it is exact."""
    layer = nnx.Dense(1, 1, backend="numpy", compute_dtype="float16")
    layer.forward(np.ones((4096, 1), dtype=np.float32))
    dy = np.full((4096, 1), 2.0 ** -11, dtype=np.float32)
    dy[0] = 1.0
    layer.backward(dy, input_grad=False)
    assert float(layer.db[0]) == 1.0 + 4095 * 2.0 ** -11


# -- matrix-product precision ------------------------------------------------------------
def test_set_matmul_precision_reaches_the_libraries():
    torch = pytest.importorskip("torch")
    jax = pytest.importorskip("jax")
    nnx.backends.load("torch"), nnx.backends.load("jax")
    assert nnx.get_matmul_precision() == "highest"
    try:
        with nnx.matmul_precision("high"):
            assert nnx.get_matmul_precision() == "high"
            assert torch.get_float32_matmul_precision() == "high"
            assert jax.config.jax_default_matmul_precision == "tensorfloat32"
            nnx.set_matmul_precision("medium")
            assert torch.get_float32_matmul_precision() == "medium"
            assert jax.config.jax_default_matmul_precision == "bfloat16"
            raise KeyError("leave the block by an error")
    except KeyError:
        pass
    assert nnx.get_matmul_precision() == "highest"
    assert torch.get_float32_matmul_precision() == "highest"
    assert jax.config.jax_default_matmul_precision == "highest"


@pytest.mark.parametrize("bad", ["tf32", "HIGH", None, 3])
def test_matmul_precision_names_are_checked(bad):
    with pytest.raises(ValueError, match="matmul precision must be one of 'highest', 'high'"):
        nnx.set_matmul_precision(bad)
    assert nnx.get_matmul_precision() == "highest"


def test_gradcheck_refuses_low_precision():
    x, y = np.ones((2, 3)), np.ones((2, 1))
    model = nnx.MLP([3, 4, 1], seed=0, backend="numpy", compute_dtype="float16")
    with pytest.raises(ValueError, match="gradcheck: the model computes in float16"):
        nnx.gradcheck(model, x, y, "mse")
    exact = nnx.MLP([3, 4, 1], seed=0, dtype="float64", backend="numpy")
    with nnx.matmul_precision("high"):
        with pytest.raises(ValueError, match="precision 'high'"):
            nnx.gradcheck(exact, x, y, "mse")
    assert nnx.gradcheck(exact, x, y, "mse") < 1e-6


# -- model files keep float32 master weights and the policy ----------------------------------
@pytest.mark.parametrize(("name", "low"), _params([("torch", "bfloat16"), ("numpy", "float16")]))
def test_save_load_keeps_master_weights_and_policy(tmp_path, name, low):
    model = nnx.MLP([4, 6, 2], seed=0, backend=name, compute_dtype=low)
    path = tmp_path / "m.safetensors"
    nnx.save(model, path)
    back = nnx.load(path, backend=name)
    assert back.compute_dtype == low
    for a, b in zip(model.dense_layers, back.dense_layers):
        assert b.W.dtype == b.backend.xp.float32
        np.testing.assert_array_equal(nnx.to_numpy(a.W), nnx.to_numpy(b.W))
    if name == "torch":                           # numpy has no bfloat16: float32 there
        with pytest.warns(RuntimeWarning, match="computes in float32 here"):
            assert nnx.load(path, backend="numpy").compute_dtype is None


@pytest.mark.parametrize("bad", ["int8", "float64", 16, None])
def test_architecture_refuses_bad_compute_dtype(bad):
    arch = {"type": "Dense", "in_features": 2, "out_features": 3, "bias": True,
            "dtype": "float32", "compute_dtype": bad}
    with pytest.raises(ValueError, match="compute_dtype must be bfloat16 or float16"):
        architecture.check(arch)
    arch.update(dtype="float64", compute_dtype="float16")
    with pytest.raises(ValueError, match="with dtype float32"):
        architecture.check(arch)
