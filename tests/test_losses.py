"""Losses: values and gradients against closed forms and torch.nn.functional; stability."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnx import losses as L


def test_mse_closed_form(backend):
    p, t = np.array([[1.0, 2.0], [3.0, 5.0]]), np.array([[0.0, 2.0], [1.0, 1.0]])
    loss, grad = L.mse(backend.from_numpy(p), backend.from_numpy(t))
    assert tuple(loss.shape) == ()
    assert float(loss) == pytest.approx((1 + 0 + 4 + 16) / 4)
    np.testing.assert_allclose(backend.to_numpy(grad), 2 * (p - t) / 4)


def test_mse_accepts_flat_target_for_single_output(backend):
    p = backend.from_numpy(np.array([[1.0], [2.0]]))
    loss, grad = L.mse(p, backend.from_numpy(np.array([0.0, 0.0])))
    assert float(loss) == pytest.approx(2.5)
    assert tuple(grad.shape) == (2, 1)


def test_bce_closed_form(backend):
    p, y = np.array([[0.2], [0.9]]), np.array([[0.0], [1.0]])
    loss, grad = L.binary_cross_entropy(backend.from_numpy(p), backend.from_numpy(y))
    assert float(loss) == pytest.approx(-(math.log(0.8) + math.log(0.9)) / 2, rel=1e-13)
    np.testing.assert_allclose(backend.to_numpy(grad), [[1 / 0.8 / 2], [-1 / 0.9 / 2]], rtol=1e-13)


def test_softmax_ce_closed_form(backend):
    z = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    labels = np.array([2, 0])
    loss, grad = L.softmax_cross_entropy(backend.from_numpy(z), backend.from_numpy(labels))
    e = np.exp(z)
    s = e / e.sum(axis=1, keepdims=True)
    expected = -(math.log(s[0, 2]) + math.log(s[1, 0])) / 2
    assert float(loss) == pytest.approx(expected, rel=1e-13)
    onehot = np.eye(3)[labels]
    np.testing.assert_allclose(backend.to_numpy(grad), (s - onehot) / 2, rtol=1e-12)
    loss2, grad2 = L.softmax_cross_entropy(backend.from_numpy(z), backend.from_numpy(onehot))
    assert float(loss2) == pytest.approx(expected, rel=1e-13)
    np.testing.assert_allclose(backend.to_numpy(grad2), backend.to_numpy(grad), rtol=1e-13)


LOSS_CASES = ["mse", "binary_cross_entropy", "sigmoid_binary_cross_entropy",
              "softmax_cross_entropy", "softmax_cross_entropy_probs"]


@pytest.mark.parametrize("case", LOSS_CASES)
def test_matches_torch_value_and_autograd(backend, case):
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    rng = np.random.default_rng(5)
    z = rng.standard_normal((7, 4)) * 3
    if case == "mse":
        pred, target = z, rng.standard_normal((7, 4))
        ref = tf.mse_loss
    elif case == "binary_cross_entropy":
        pred, target = 1 / (1 + np.exp(-z)), rng.uniform(0, 1, (7, 4))
        ref = tf.binary_cross_entropy
    elif case == "sigmoid_binary_cross_entropy":
        pred, target = z, rng.integers(0, 2, (7, 4)).astype(np.float64)
        ref = tf.binary_cross_entropy_with_logits
    elif case == "softmax_cross_entropy":
        pred, target = z, rng.integers(0, 4, 7)
        ref = tf.cross_entropy
    else:
        pred = z
        target = rng.dirichlet(np.ones(4), 7)
        ref = tf.cross_entropy
    fn = getattr(L, case.replace("_probs", ""))
    loss, grad = fn(backend.from_numpy(pred), backend.from_numpy(target))
    tp = torch.tensor(pred, requires_grad=True)
    t_loss = ref(tp, torch.tensor(target))
    t_loss.backward()
    assert float(loss) == pytest.approx(t_loss.item(), rel=1e-12)
    np.testing.assert_allclose(backend.to_numpy(grad), tp.grad.numpy(), rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("name", ["sigmoid_binary_cross_entropy", "softmax_cross_entropy"])
def test_stable_for_extreme_float32_logits(backend, name):
    z = backend.from_numpy(np.array([[1e4, -1e4], [-1e4, 1e4]], dtype=np.float32))
    if name == "softmax_cross_entropy":
        target = backend.from_numpy(np.array([1, 1]))
        expected = (2e4 + 0.0) / 2  # row 0: −log softmax_1 = 2e4; row 1: 0
    else:
        target = backend.from_numpy(np.array([[0.0, 1.0], [1.0, 1.0]], dtype=np.float32))
        expected = (1e4 + 1e4 + 1e4 + 0.0) / 4
    loss, grad = getattr(L, name)(z, target)
    assert loss.dtype == backend.xp.float32
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    assert np.all(np.isfinite(backend.to_numpy(grad)))
    assert np.all(np.abs(backend.to_numpy(grad)) <= 1.0)


def test_bce_probabilities_exactly_zero_and_one(backend):
    p = backend.from_numpy(np.array([[0.0], [1.0], [0.0], [1.0]], dtype=np.float32))
    y = backend.from_numpy(np.array([[0.0], [1.0], [1.0], [0.0]], dtype=np.float32))
    loss, grad = L.binary_cross_entropy(p, y)
    assert float(loss) == pytest.approx(100.0 / 2)  # two perfect, two clamped at log = −100
    g = backend.to_numpy(grad)
    assert np.all(np.isfinite(g))
    np.testing.assert_array_equal(g[:2], 0.0)


def test_bce_extremes_match_torch():
    torch = pytest.importorskip("torch")
    p = np.array([0.0, 1.0, 0.0, 1.0, 0.5], dtype=np.float32)
    y = np.array([0.0, 1.0, 1.0, 0.0, 1.0], dtype=np.float32)
    loss, _ = L.binary_cross_entropy(p, y)
    ref = torch.nn.functional.binary_cross_entropy(torch.tensor(p), torch.tensor(y))
    assert float(loss) == pytest.approx(ref.item(), rel=1e-6)


def test_label_validation():
    z = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"\[0, 4\).*from 0 to 4"):
        L.softmax_cross_entropy(z, np.array([0, 1, 4]))
    with pytest.raises(ValueError, match=r"\[0, 4\).*from -1 to 2"):
        L.softmax_cross_entropy(z, np.array([-1, 1, 2]))
    with pytest.raises(ValueError, match="integers"):
        L.softmax_cross_entropy(z, np.array([0.5, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"class ids \(3,\) or rows \(3, 4\)"):
        L.softmax_cross_entropy(z, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="must match"):
        L.mse(np.zeros((3, 2)), np.zeros((3, 3)))
    # integral floats are accepted as class ids
    loss, _ = L.softmax_cross_entropy(z, np.array([0.0, 1.0, 3.0]))
    assert float(loss) == pytest.approx(math.log(4))


def test_unknown_loss_lists_valid_names():
    with pytest.raises(ValueError, match="valid names: mse, binary_cross_entropy"):
        L.get("hinge")
