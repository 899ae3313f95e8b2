"""Property tests: invariants that hold for every finite float32 input."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import nnx
from nnx import activations as F
from nnx import losses as L

finite32 = st.floats(-1e4, 1e4, allow_nan=False, width=32)
logits = arrays(np.float32, st.tuples(st.integers(1, 6), st.integers(2, 5)), elements=finite32)


@settings(max_examples=60, deadline=None)
@given(logits)
def test_softmax_is_a_distribution(z):
    s = F.softmax(z)
    assert np.all(np.isfinite(s)) and np.all(s >= 0) and np.all(s <= 1)
    np.testing.assert_allclose(s.sum(axis=1), 1.0, rtol=1e-5)


@settings(max_examples=60, deadline=None)
@given(logits)
def test_sigmoid_in_unit_interval_and_symmetric(z):
    s = F.sigmoid(z)
    assert np.all((s >= 0) & (s <= 1))
    np.testing.assert_allclose(s + F.sigmoid(-z), 1.0, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(logits, st.data())
def test_classification_losses_finite_with_bounded_gradients(z, data):
    n, k = z.shape
    labels = np.array(data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    loss, grad = L.softmax_cross_entropy(z, labels)
    assert np.isfinite(loss) and loss >= 0
    # each row of (softmax − onehot)/n sums to 0 and lies in [−1/n, 1/n]
    assert np.all(np.abs(grad) <= 1.0 / n + 1e-6)
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=1e-6)
    target = (z > 0).astype(np.float32)
    loss, grad = L.sigmoid_binary_cross_entropy(z, target)
    assert np.isfinite(loss) and loss >= 0 and np.all(np.isfinite(grad))


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 8), st.integers(1, 8), st.integers(1, 5))
def test_dense_shapes_and_param_count(n_in, n_out, batch):
    layer = nnx.Dense(n_in, n_out, seed=0)
    assert layer.num_params == n_out * (n_in + 1)
    out = layer.forward(np.ones((batch, n_in), dtype=np.float32))
    assert out.shape == (batch, n_out)
    assert layer.backward(np.ones((batch, n_out), dtype=np.float32)).shape == (batch, n_in)
