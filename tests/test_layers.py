"""Dense, Sequential and MLP: shapes, parameter counts, closed-form forward passes, errors."""

from __future__ import annotations

import numpy as np
import pytest

import nnx


def test_chapter_dense_example(backend):
    """Chapter 10.3: x = [1, 2], W = [[.5, -.3], [.8, .1]], b = [0, -.5], ReLU → [0, 0.5]."""
    layer = nnx.Dense(2, 2, dtype="float64")
    layer.W = backend.from_numpy(np.array([[0.5, -0.3], [0.8, 0.1]]))
    layer.b = backend.from_numpy(np.array([0.0, -0.5]))
    out = nnx.ReLU().forward(layer.forward(backend.from_numpy(np.array([[1.0, 2.0]]))))
    np.testing.assert_allclose(backend.to_numpy(out), [[0.0, 0.5]], atol=1e-15)


@pytest.mark.parametrize("bias", [True, False])
def test_shapes_and_param_count(backend, bias):
    layer = nnx.Dense(7, 3, bias=bias, seed=0)
    assert tuple(layer.W.shape) == (3, 7)
    assert layer.num_params == (3 * (7 + 1) if bias else 3 * 7)
    assert (layer.b is None) == (not bias)
    if bias:
        assert tuple(layer.b.shape) == (3,)
        np.testing.assert_array_equal(backend.to_numpy(layer.b), np.zeros(3))
    out = layer.forward(backend.from_numpy(np.ones((5, 7), dtype=np.float32)))
    assert tuple(out.shape) == (5, 3) and out.dtype == backend.xp.float32


def test_forward_is_xwt_plus_b(backend, rng):
    x, w, b = rng.standard_normal((6, 4)), rng.standard_normal((3, 4)), rng.standard_normal(3)
    layer = nnx.Dense(4, 3, dtype="float64")
    layer.W, layer.b = backend.from_numpy(w), backend.from_numpy(b)
    got = backend.to_numpy(layer.forward(backend.from_numpy(x)))
    np.testing.assert_allclose(got, x @ w.T + b, rtol=1e-13)


def test_backward_closed_form(backend, rng):
    x, w, dz = rng.standard_normal((6, 4)), rng.standard_normal((3, 4)), rng.standard_normal((6, 3))
    layer = nnx.Dense(4, 3, dtype="float64")
    layer.W = backend.from_numpy(w)
    layer.forward(backend.from_numpy(x))
    dx = layer.backward(backend.from_numpy(dz))
    np.testing.assert_allclose(backend.to_numpy(layer.dW), dz.T @ x, rtol=1e-13)
    np.testing.assert_allclose(backend.to_numpy(layer.db), dz.sum(axis=0), rtol=1e-13)
    np.testing.assert_allclose(backend.to_numpy(dx), dz @ w, rtol=1e-13)
    assert layer.backward(backend.from_numpy(dz), input_grad=False) is None


def test_mlp_structure_and_default_init():
    relu_net = nnx.MLP([4, 8, 8, 3], seed=0)
    kinds = [type(layer).__name__ for layer in relu_net.layers]
    assert kinds == ["Dense", "ReLU", "Dense", "ReLU", "Dense"]
    assert relu_net.num_params == 8 * 5 + 8 * 9 + 3 * 9
    assert all(d.init == "he_normal" for d in relu_net.dense_layers)
    tanh_net = nnx.MLP([2, 4, 1], activation="tanh", output_activation="sigmoid", seed=0)
    assert [type(layer).__name__ for layer in tanh_net.layers] == ["Dense", "Tanh", "Dense",
                                                                   "Sigmoid"]
    assert all(d.init == "xavier_uniform" for d in tanh_net.dense_layers)
    assert nnx.MLP([2, 3], activation="sigmoid", init="he_uniform").dense_layers[0].init == \
        "he_uniform"


def test_mlp_seed_reproducible_and_layers_differ():
    a, b = nnx.MLP([5, 5, 5], seed=7), nnx.MLP([5, 5, 5], seed=7)
    for la, lb in zip(a.dense_layers, b.dense_layers):
        np.testing.assert_array_equal(la.W, lb.W)
    assert not np.array_equal(a.dense_layers[0].W, a.dense_layers[1].W)
    assert not np.array_equal(nnx.MLP([5, 5, 5], seed=8).dense_layers[0].W, a.dense_layers[0].W)


def test_sequential_backward_input_grad(backend, rng):
    net = nnx.MLP([3, 4, 2], seed=1)
    x = backend.from_numpy(rng.standard_normal((5, 3)).astype(np.float32))
    dy = backend.from_numpy(np.ones((5, 2), dtype=np.float32))
    net.forward(x)
    assert net.backward(dy, input_grad=False, retain_cache=True) is None
    dW_no_input = backend.to_numpy(net.dense_layers[0].dW)
    dx = net.backward(dy)
    assert tuple(dx.shape) == (5, 3)
    np.testing.assert_array_equal(backend.to_numpy(net.dense_layers[0].dW), dW_no_input)


def test_wrong_feature_count_names_layer_and_shapes(backend):
    layer = nnx.Dense(4, 2, seed=0)
    with pytest.raises(ValueError, match=r"Dense\(4, 2.*\(n, 4\).*\(3, 5\)"):
        layer.forward(backend.from_numpy(np.ones((3, 5))))
    with pytest.raises(ValueError, match="reshape"):
        layer.forward(backend.from_numpy(np.ones(4)))


def test_integer_and_boolean_inputs_are_cast(backend):
    layer = nnx.Dense(2, 1, dtype="float64")
    layer.W = backend.from_numpy(np.array([[2.0, 3.0]]))
    xp = backend.xp
    for x in (xp.asarray([[1, 1]], dtype=xp.int32, device=backend.device),
              xp.asarray([[True, True]], device=backend.device), [[1, 1]]):
        out = layer.forward(x)
        assert out.dtype == xp.float64
        np.testing.assert_allclose(backend.to_numpy(out), [[5.0]])


def test_complex_input_rejected():
    layer = nnx.Dense(2, 1, seed=0, backend="numpy")
    with pytest.raises(ValueError, match="real, integer or boolean"):
        layer.forward(np.ones((1, 2), dtype=np.complex64))


def test_parameter_setters_validate_and_copy(backend):
    layer = nnx.Dense(3, 2, seed=0)
    with pytest.raises(ValueError, match=r"W must have shape \(2, 3\)"):
        layer.W = backend.from_numpy(np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"b must have shape \(2,\)"):
        layer.b = backend.from_numpy(np.zeros(3))
    with pytest.raises(ValueError, match="bias"):
        nnx.Dense(3, 2, bias=False).b = backend.from_numpy(np.zeros(2))
    user = backend.from_numpy(np.ones((2, 3), dtype=np.float32))
    layer.W = user
    layer.W -= 1.0  # in-place on nnx's copy: the caller's array must not change
    np.testing.assert_array_equal(backend.to_numpy(user), np.ones((2, 3)))
    np.testing.assert_array_equal(backend.to_numpy(layer.W), np.zeros((2, 3)))


def test_backward_before_forward_is_clear_error():
    with pytest.raises(RuntimeError, match="before forward"):
        nnx.Dense(2, 2, seed=0).backward(np.ones((1, 2), dtype=np.float32))
    with pytest.raises(RuntimeError, match="before forward"):
        nnx.MLP([2, 2, 1], seed=0).backward(np.ones((1, 1), dtype=np.float32))


def test_backward_shape_checked():
    layer = nnx.Dense(2, 3, seed=0)
    layer.forward(np.ones((4, 2), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(4, 3\).*\(4, 2\)"):
        layer.backward(np.ones((4, 2), dtype=np.float32))


@pytest.mark.parametrize("kwargs, match", [
    (dict(in_features=0, out_features=2), "in_features must be a positive int"),
    (dict(in_features=2, out_features=2.5), "out_features must be a positive int"),
    (dict(in_features=2, out_features=2, dtype="float16"), "float32' or 'float64"),
    (dict(in_features=2, out_features=2, init="glorot"), "valid names: zeros, normal"),
])
def test_dense_constructor_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nnx.Dense(**kwargs)


def test_sequential_errors():
    with pytest.raises(ValueError, match="produces 3 features but the next"):
        nnx.Sequential(nnx.Dense(2, 3, seed=0), nnx.ReLU(), nnx.Dense(4, 1, seed=0))
    with pytest.raises(TypeError, match="not an nnx Layer"):
        nnx.Sequential(nnx.Dense(2, 3, seed=0), "relu")
    with pytest.raises(ValueError, match="sizes needs an input and an output"):
        nnx.MLP([3])
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        nnx.MLP([2, 2], activation="swish")


def test_sequential_rejects_mixed_backends():
    with pytest.raises(ValueError, match="different backends"):
        nnx.Sequential(nnx.Dense(2, 2, seed=0, backend="numpy"),
                       nnx.Dense(2, 2, seed=0, backend="array_api_strict"))


def test_parameters_dict_keys():
    net = nnx.MLP([2, 3, 1], seed=0)
    assert list(net.parameters()) == ["0.W", "0.b", "2.W", "2.b"]
    assert net.num_params == sum(int(np.prod(p.shape)) for p in net.parameters().values())


def test_mlp_copies_an_activation_instance_per_position(backend, rng):
    act = nnx.LeakyReLU(alpha=0.2)
    net = nnx.MLP([3, 4, 4, 2], activation=act, seed=0, dtype="float64")
    hidden = [layer for layer in net.layers if isinstance(layer, nnx.LeakyReLU)]
    assert len(hidden) == 2 and hidden[0] is not hidden[1]
    assert all(h.alpha == 0.2 for h in hidden)
    x = backend.from_numpy(rng.standard_normal((5, 3)))
    assert nnx.gradcheck(net, x, backend.from_numpy(rng.standard_normal((5, 2))), "mse") < 1e-6


def test_sequential_backward_consumes_the_caches(backend, rng):
    net = nnx.MLP([3, 4, 4, 2], activation="tanh", seed=1)
    x = backend.from_numpy(rng.standard_normal((5, 3)).astype(np.float32))
    dy = backend.from_numpy(rng.standard_normal((5, 2)).astype(np.float32))
    net.forward(x)
    net.backward(dy, retain_cache=True)
    kept = [backend.to_numpy(d.dW) for d in net.dense_layers]
    net.backward(dy)                               # the caches were retained: same result
    for d, want in zip(net.dense_layers, kept):
        np.testing.assert_array_equal(backend.to_numpy(d.dW), want)
    assert all(getattr(layer, "_x", None) is None and getattr(layer, "_a", None) is None
               for layer in net.layers)            # ... and now released
    with pytest.raises(RuntimeError, match="called twice for one forward"):
        net.backward(dy)


HEADS = {"tanh": [nnx.Tanh], "relu": [nnx.ReLU], "sigmoid": [nnx.Sigmoid],
         "relu-identity": [nnx.ReLU, nnx.Identity]}   # dy reaches the ReLU through Identity


@pytest.mark.parametrize("head", HEADS)
def test_sequential_backward_never_writes_into_the_callers_dy(backend, rng, head):
    """The activation layers overwrite only gradients Sequential made itself."""
    net = nnx.Sequential(nnx.Dense(3, 4, seed=0), *(make() for make in HEADS[head]))
    x = backend.from_numpy(rng.standard_normal((5, 3)).astype(np.float32))
    dy_host = rng.standard_normal((5, 4)).astype(np.float32)
    dy = backend.from_numpy(dy_host)
    net.forward(x)
    net.backward(dy)
    np.testing.assert_array_equal(backend.to_numpy(dy), dy_host)
