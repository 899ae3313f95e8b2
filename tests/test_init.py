"""Initializers: the moments the chapter prescribes, within sampling error."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nnx
from nnx import init

SHAPE = (300, 400)  # (out, in): fan_in = 400, fan_out = 300
N = SHAPE[0] * SHAPE[1]
FAN_IN, FAN_OUT = 400, 300

# name -> (variance, kind)
EXPECTED = {
    "xavier_uniform": (2.0 / (FAN_IN + FAN_OUT), "uniform"),
    "xavier_normal": (2.0 / (FAN_IN + FAN_OUT), "normal"),
    "he_uniform": (2.0 / FAN_IN, "uniform"),
    "he_normal": (2.0 / FAN_IN, "normal"),
    "normal": (0.01**2, "normal"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_mean_and_variance_within_sampling_error(backend, name):
    var, kind = EXPECTED[name]
    w = backend.to_numpy(init.get(name)(SHAPE, seed=0, dtype="float64", backend=backend))
    assert w.shape == SHAPE
    # standard errors of the sample mean and variance; 5 of them is far beyond chance
    se_mean = math.sqrt(var / N)
    fourth = 9 / 5 * var**2 if kind == "uniform" else 3 * var**2  # E[w⁴]
    se_var = math.sqrt((fourth - var**2) / N)
    assert abs(w.mean()) < 5 * se_mean
    assert abs(w.var() - var) < 5 * se_var
    if kind == "uniform":
        assert np.abs(w).max() <= math.sqrt(3 * var)


def test_zeros_and_biases_start_at_zero(backend):
    np.testing.assert_array_equal(backend.to_numpy(init.zeros((3, 4), backend=backend)), 0.0)
    layer = nnx.Dense(4, 3, init="zeros")
    np.testing.assert_array_equal(backend.to_numpy(layer.W), 0.0)
    np.testing.assert_array_equal(backend.to_numpy(nnx.Dense(4, 3, seed=1).b), 0.0)


def test_dtype_respected(backend):
    w = init.he_normal((3, 4), seed=0, dtype="float32", backend=backend)
    assert w.dtype == backend.xp.float32


@pytest.mark.parametrize("name", sorted(init.INITIALIZERS))
def test_selectable_by_name_on_dense_and_mlp(name):
    assert nnx.Dense(3, 2, init=name, seed=0).init == name
    assert all(d.init == name for d in nnx.MLP([3, 4, 2], init=name, seed=0).dense_layers)


def test_seed_determinism_and_independence():
    a = init.he_normal((5, 5), seed=1)
    np.testing.assert_array_equal(a, init.he_normal((5, 5), seed=1))
    assert not np.array_equal(a, init.he_normal((5, 5), seed=2))


def test_bad_names_and_shapes():
    with pytest.raises(ValueError, match="valid names: zeros, normal, xavier_uniform"):
        init.get("lecun")
    with pytest.raises(ValueError, match=r"\(out, in\)"):
        init.he_normal((5,))


def test_zero_init_cannot_break_symmetry():
    """Chapter 10.7: with equal weights every hidden neuron gets the same gradient."""
    net = nnx.MLP([2, 3, 1], activation="tanh", init="normal", seed=0, dtype="float64")
    for d in net.dense_layers:
        d.W = np.full(tuple(d.W.shape), 0.5)
    net.forward(np.array([[0.3, -1.0], [2.0, 0.5]]))
    net.backward(np.ones((2, 1)))
    dW = net.dense_layers[0].dW
    np.testing.assert_allclose(dW, np.repeat(dW[:1], 3, axis=0), rtol=1e-14)
