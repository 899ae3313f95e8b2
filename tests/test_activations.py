"""Each activation and its derivative against closed forms, on every backend."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nnx
from nnx import activations as F

Z = np.concatenate([np.linspace(-6.0, 6.0, 49), [-0.5, 0.25, 3e-3]])


def _phi(z):
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def _dphi(z):
    return math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


C = math.sqrt(2.0 / math.pi)

# name -> (f, f') as scalar closed forms evaluated with Python's math module
CLOSED_FORMS = {
    "identity": (lambda z: z, lambda z: 1.0),
    "step": (lambda z: 1.0 if z > 0 else 0.0, lambda z: 0.0),
    "sigmoid": (lambda z: 1.0 / (1.0 + math.exp(-z)),
                lambda z: math.exp(-z) / (1.0 + math.exp(-z)) ** 2),
    "tanh": (math.tanh, lambda z: 1.0 / math.cosh(z) ** 2),
    "relu": (lambda z: max(0.0, z), lambda z: 1.0 if z > 0 else 0.0),
    "leaky_relu": (lambda z: z if z > 0 else 0.01 * z, lambda z: 1.0 if z > 0 else 0.01),
    "gelu": (lambda z: z * _phi(z), lambda z: _phi(z) + z * _dphi(z)),
}


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_function_and_derivative_match_closed_form(backend, name):
    f, df = F.get(name)
    ref_f, ref_df = CLOSED_FORMS[name]
    z = backend.from_numpy(Z)
    np.testing.assert_allclose(backend.to_numpy(f(z)), [ref_f(v) for v in Z],
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(backend.to_numpy(df(z)), [ref_df(v) for v in Z],
                               rtol=1e-12, atol=1e-14)


def test_gelu_tanh_form(backend):
    z = backend.from_numpy(Z)

    def ref(v):
        return 0.5 * v * (1.0 + math.tanh(C * (v + 0.044715 * v**3)))

    def dref(v):  # central difference of the closed form, step small in float64
        h = 1e-6
        return (ref(v + h) - ref(v - h)) / (2 * h)

    np.testing.assert_allclose(backend.to_numpy(F.gelu(z, approximate="tanh")),
                               [ref(v) for v in Z], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(backend.to_numpy(F.gelu_derivative(z, approximate="tanh")),
                               [dref(v) for v in Z], rtol=1e-7, atol=1e-9)


def test_softmax_and_its_jacobian(backend):
    rows = np.array([[1.0, 2.0, 3.0], [-1.0, 0.0, 5.0]])
    z = backend.from_numpy(rows)
    s = backend.to_numpy(F.softmax(z))
    for r in range(2):
        e = [math.exp(v) for v in rows[r]]
        np.testing.assert_allclose(s[r], [v / sum(e) for v in e], rtol=1e-13)
    jac = backend.to_numpy(F.softmax_derivative(z))
    assert jac.shape == (2, 3, 3)
    for r in range(2):
        for i in range(3):
            for j in range(3):
                expected = s[r, i] * ((i == j) - s[r, j])
                assert jac[r, i, j] == pytest.approx(expected, rel=1e-12, abs=1e-15)
    log_s = backend.to_numpy(F.log_softmax(z))
    np.testing.assert_allclose(log_s, np.log(s), rtol=1e-12)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu", "leaky_relu", "gelu", "softmax"])
def test_finite_at_extremes_float32(backend, name):
    xp = backend.xp
    z = backend.from_numpy(np.array([[-1e4, -88.0, 0.0, 88.0, 1e4]], dtype=np.float32))
    f, df = F.get(name)
    out = f(z)
    assert out.dtype == xp.float32
    assert np.all(np.isfinite(backend.to_numpy(out)))
    assert np.all(np.isfinite(backend.to_numpy(df(z))))


def test_sigmoid_saturates_to_exact_limits(backend):
    z = backend.from_numpy(np.array([-1e4, 1e4], dtype=np.float32))
    np.testing.assert_array_equal(backend.to_numpy(F.sigmoid(z)), [0.0, 1.0])


def test_softmax_extreme_logits(backend):
    z = backend.from_numpy(np.array([[1e4, -1e4, 0.0]], dtype=np.float32))
    np.testing.assert_allclose(backend.to_numpy(F.softmax(z)), [[1.0, 0.0, 0.0]])


def test_dtype_and_shape_preserved(backend):
    xp = backend.xp
    z = backend.from_numpy(np.ones((3, 4), dtype=np.float32))
    for name in F.ACTIVATIONS:
        f, _ = F.get(name)
        out = f(z)
        assert out.dtype == xp.float32 and tuple(out.shape) == (3, 4), name


def test_layers_backward_equals_dy_times_derivative(backend):
    """Each activation layer's backward is dL/dz = dL/da ⊙ f'(z) with f' from the table."""
    rng = np.random.default_rng(0)
    z_host = rng.standard_normal((4, 5))
    dy_host = rng.standard_normal((4, 5))
    z, dy = backend.from_numpy(z_host), backend.from_numpy(dy_host)
    layers = {"identity": nnx.Identity(), "step": nnx.Step(), "sigmoid": nnx.Sigmoid(),
              "tanh": nnx.Tanh(), "relu": nnx.ReLU(), "leaky_relu": nnx.LeakyReLU(),
              "gelu": nnx.GELU()}
    for name, layer in layers.items():
        layer.forward(z)
        got = backend.to_numpy(layer.backward(dy))
        ref = dy_host * np.array([CLOSED_FORMS[name][1](v) for v in z_host.ravel()]).reshape(4, 5)
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12, err_msg=name)
    soft = nnx.Softmax()
    soft.forward(z)
    jac = backend.to_numpy(F.softmax_derivative(z))
    np.testing.assert_allclose(backend.to_numpy(soft.backward(dy)),
                               np.einsum("nj,nji->ni", dy_host, jac), rtol=1e-10, atol=1e-12)


def test_leaky_relu_alpha_is_used(backend):
    layer = nnx.LeakyReLU(alpha=0.2)
    z = backend.from_numpy(np.array([[-2.0, 3.0]]))
    np.testing.assert_allclose(backend.to_numpy(layer.forward(z)), [[-0.4, 3.0]])
    np.testing.assert_allclose(backend.to_numpy(layer.backward(backend.from_numpy(
        np.ones((1, 2))))), [[0.2, 1.0]])


def test_unknown_names_list_valid_ones():
    with pytest.raises(ValueError, match="valid names: .*relu"):
        F.get("swish")
    with pytest.raises(ValueError, match="valid names: .*gelu"):
        nnx.make_activation("swish")
    with pytest.raises(ValueError, match="'none' or 'tanh'"):
        nnx.GELU(approximate="erf")


def test_activation_backward_before_forward():
    with pytest.raises(RuntimeError, match="before forward"):
        nnx.ReLU().backward(np.ones((1, 2)))


def test_activation_matches_torch_functional(backend):
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    z_host = np.random.default_rng(1).standard_normal((6, 4)) * 3
    z = backend.from_numpy(z_host)
    zt = torch.tensor(z_host)
    pairs = {
        "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": tf.relu,
        "leaky_relu": lambda t: tf.leaky_relu(t, 0.01), "gelu": tf.gelu,
        "softmax": lambda t: tf.softmax(t, dim=-1),
    }
    for name, ref in pairs.items():
        np.testing.assert_allclose(backend.to_numpy(F.get(name).f(z)), ref(zt).numpy(),
                                   rtol=1e-12, atol=1e-14, err_msg=name)
    np.testing.assert_allclose(backend.to_numpy(F.gelu(z, approximate="tanh")),
                               tf.gelu(zt, approximate="tanh").numpy(), rtol=1e-12, atol=1e-14)
