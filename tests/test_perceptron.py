"""The perceptron (chapter 10.1–10.2): Rosenblatt's rule, checked against a plain-Python
reference, Novikoff's mistake bound, and the XOR failure."""

from __future__ import annotations

import numpy as np
import pytest

import nnx

X_BOOL = [[0, 0], [0, 1], [1, 0], [1, 1]]
AND, OR, XOR = [0, 0, 0, 1], [0, 1, 1, 1], [0, 1, 1, 0]


def reference_perceptron(X, y, lr, max_epochs):
    """Rosenblatt's rule in plain Python floats, samples in order, from zero weights."""
    w, b, mistakes = [0.0] * len(X[0]), 0.0, []
    for _ in range(max_epochs):
        count = 0
        for x, t in zip(X, y):
            y_hat = 1.0 if sum(wi * xi for wi, xi in zip(w, x)) + b > 0 else 0.0
            err = t - y_hat
            if err:
                count += 1
                w = [wi + lr * err * xi for wi, xi in zip(w, x)]
                b += lr * err
        mistakes.append(count)
        if count == 0:
            break
    return w, b, mistakes


@pytest.mark.parametrize("name,y", [("AND", AND), ("OR", OR)])
def test_converges_on_and_or(backend, to_np, name, y):
    p = nnx.Perceptron(2)
    result = p.fit(X_BOOL, y)
    assert result.converged, f"{name}: {result}"
    assert result.mistakes[-1] == 0 and result.epochs == len(result.mistakes)
    assert to_np(p.predict(X_BOOL)).tolist() == y
    assert p.score(X_BOOL, y) == 1.0
    w_ref, b_ref, mistakes_ref = reference_perceptron(X_BOOL, y, 1.0, 100)
    assert result.mistakes == mistakes_ref
    np.testing.assert_array_equal(to_np(p.w), w_ref)
    assert float(to_np(p.b)) == b_ref


def test_reports_non_convergence_on_xor(backend, to_np):
    p = nnx.Perceptron(2)
    result = p.fit(X_BOOL, XOR, max_epochs=50)
    assert not result.converged
    assert result.epochs == 50 and len(result.mistakes) == 50
    # No line separates XOR, so "not converged" and a mistake in every epoch hold for any
    # weights; what nnx must get right is the trace itself, update by update.
    w_ref, b_ref, mistakes_ref = reference_perceptron(X_BOOL, XOR, 1.0, 50)
    assert result.mistakes == mistakes_ref
    np.testing.assert_array_equal(to_np(p.w), w_ref)
    assert float(to_np(p.b)) == b_ref
    want = [1 if w_ref[0] * a + w_ref[1] * c + b_ref > 0 else 0 for a, c in X_BOOL]
    assert to_np(p.predict(X_BOOL)).tolist() == want
    assert p.score(X_BOOL, XOR) == np.mean(np.array(want) == np.array(XOR))
    assert "did NOT converge" in str(result)
    seeded = nnx.Perceptron(2, seed=3).fit(X_BOOL, XOR, max_epochs=30)
    assert not seeded.converged and min(seeded.mistakes) > 0


def test_first_update_is_the_rule(backend, to_np):
    # From zero weights, z = 0 so ŷ = 0; the sample (1, 1) with y = 1 gives w = η x, b = η.
    p = nnx.Perceptron(2, lr=0.5)
    result = p.fit([[1, 1]], [1], max_epochs=1)
    np.testing.assert_array_equal(to_np(p.w), [0.5, 0.5])
    assert float(to_np(p.b)) == 0.5
    assert result.mistakes == [1] and not result.converged


def separable_data(n=60, d=3, margin=0.2, seed=0):
    rng = np.random.default_rng(seed)
    u = rng.normal(size=d + 1)
    u /= np.linalg.norm(u)                     # unit separator over [x, 1]
    X = []
    while len(X) < n:
        x = rng.uniform(-1, 1, size=d)
        if abs(u[:d] @ x + u[d]) >= margin:
            X.append(x)
    X = np.array(X)
    y = (X @ u[:d] + u[d] > 0).astype(np.int64)
    return X, y, u


def test_novikoff_bound_and_reference_trace(backend, to_np):
    X, y, u = separable_data()
    Xa = np.hstack([X, np.ones((len(X), 1))])
    R = np.linalg.norm(Xa, axis=1).max()
    gamma = np.min(np.where(y == 1, 1, -1) * (Xa @ u))
    p = nnx.Perceptron(3, dtype="float64")
    result = p.fit(nnx.asarray(X), nnx.asarray(y), max_epochs=1000)
    assert result.converged
    assert sum(result.mistakes) <= (R / gamma) ** 2   # Novikoff (1962)
    assert (to_np(p.predict(nnx.asarray(X))) == y).all()
    w_ref, b_ref, mistakes_ref = reference_perceptron(X.tolist(), y.tolist(), 1.0, 1000)
    assert result.mistakes == mistakes_ref
    np.testing.assert_allclose(to_np(p.w), w_ref, rtol=1e-12, atol=1e-12)


def test_learning_rate_only_scales_weights_from_zero(backend, to_np):
    # From zero weights every w is η times an integer combination of inputs: the sign of
    # w·x + b, hence the whole run, does not depend on η.
    X, y, _ = separable_data(n=40, d=2, seed=1)
    X, y = nnx.asarray(X), nnx.asarray(y)
    a, b = nnx.Perceptron(2, lr=1.0, dtype="float64"), nnx.Perceptron(2, lr=0.25, dtype="float64")
    ra, rb = a.fit(X, y, max_epochs=500), b.fit(X, y, max_epochs=500)
    assert ra.mistakes == rb.mistakes
    np.testing.assert_allclose(to_np(a.w) * 0.25, to_np(b.w), rtol=1e-12)


def test_seeded_shuffle_is_deterministic_across_backends(to_np):
    X, y, _ = separable_data(n=50, d=2, seed=2)
    runs = []
    for name in nnx.available_backends():
        with nnx.use_backend(name):
            p = nnx.Perceptron(2, seed=7, dtype="float64")
            result = p.fit(nnx.asarray(X), nnx.asarray(y), max_epochs=500)
            runs.append((result.mistakes, to_np(p.w).tolist()))
    assert all(run == runs[0] for run in runs)
    unshuffled = nnx.Perceptron(2, dtype="float64").fit(X, y, max_epochs=500).mistakes
    assert unshuffled != runs[0][0]          # the seed really changes the visiting order


def test_refit_starts_from_zero():
    p = nnx.Perceptron(2)
    first = p.fit(X_BOOL, AND)
    assert p.fit(X_BOOL, AND).mistakes == first.mistakes


@pytest.mark.parametrize("X,y,match", [
    (X_BOOL, [0, 1, 1], r"y must have shape \(4,\)"),
    (X_BOOL, [0, 1, 2, 1], "only the labels 0 and 1"),
    (X_BOOL, [-1, 1, 1, 1], r"−1/\+1"),
    ([[0, 0, 1]], [1], r"expects X of shape \(n, 2\)"),
    ([0, 1], [1], r"expects X of shape \(n, 2\)"),
])
def test_bad_input(X, y, match):
    with pytest.raises(ValueError, match=match):
        nnx.Perceptron(2).fit(X, y)


def test_bad_settings():
    with pytest.raises(ValueError, match="n_features"):
        nnx.Perceptron(0)
    with pytest.raises(ValueError, match="lr"):
        nnx.Perceptron(2, lr=0.0)
    with pytest.raises(ValueError, match="max_epochs"):
        nnx.Perceptron(2).fit(X_BOOL, AND, max_epochs=0)
