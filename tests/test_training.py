"""The training loop: against a plain-NumPy reference, determinism, XOR, device batches, errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import nnx
from nnx import inputs, training

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
XOR_Y = np.array([0, 1, 1, 0], dtype=np.float32)


def _regression_data(n=10, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    Y = np.stack([np.sin(X[:, 0]) + X[:, 1] * X[:, 2], X[:, 0] - X[:, 2]], axis=1)
    return X, Y


def _reference_sgd(params, X, Y, *, lr, batch_size, epochs):
    """Minibatch SGD on tanh-MLP + MSE, written out with NumPy (no shuffling)."""
    W1, b1, W2, b2 = (p.copy() for p in params)
    n, history = X.shape[0], []
    for _ in range(epochs):
        total = 0.0
        for a in range(0, n, batch_size):
            xb, yb = X[a:a + batch_size], Y[a:a + batch_size]
            a1 = np.tanh(xb @ W1.T + b1)
            diff = a1 @ W2.T + b2 - yb
            total += np.mean(diff**2) * len(xb)
            g = 2 * diff / diff.size
            dW2, db2 = g.T @ a1, g.sum(0)
            dz1 = (g @ W2) * (1 - a1**2)
            dW1, db1 = dz1.T @ xb, dz1.sum(0)
            W1, b1, W2, b2 = W1 - lr * dW1, b1 - lr * db1, W2 - lr * dW2, b2 - lr * db2
        history.append(total / n)
    return (W1, b1, W2, b2), history


def test_fit_matches_a_numpy_reference(backend):
    X, Y = _regression_data()
    model = nnx.MLP([3, 5, 2], activation="tanh", seed=1, dtype="float64")
    params = [nnx.to_numpy(p) for p in model.parameters().values()]
    hist = model.fit(X, Y, loss="mse", optimizer=nnx.optim.SGD(lr=0.1), epochs=4,
                     batch_size=4, shuffle=False, progress=False)
    ref_params, ref_hist = _reference_sgd(params, X, Y, lr=0.1, batch_size=4, epochs=4)
    np.testing.assert_allclose(hist.loss, ref_hist, rtol=1e-10)
    for p, r in zip(model.parameters().values(), ref_params, strict=True):
        np.testing.assert_allclose(nnx.to_numpy(p), r, rtol=1e-10, atol=1e-12)


def test_fit_lowers_the_loss(backend):
    X, Y = _regression_data(64)
    model = nnx.MLP([3, 16, 2], activation="tanh", seed=0)
    hist = model.fit(X, Y, loss="mse", optimizer=nnx.optim.Adam(lr=0.02), epochs=30,
                     batch_size=16, seed=0, progress=False)
    assert len(hist.loss) == hist.epochs == 30
    assert all(isinstance(v, float) for v in hist.loss)
    assert hist.loss[-1] < 0.3 * hist.loss[0]


def test_same_seed_same_bits(backend):
    X, Y = _regression_data(50)

    def run(seed):
        model = nnx.MLP([3, 8, 2], seed=3)
        hist = model.fit(X, Y, loss="mse", optimizer="adam", epochs=3, batch_size=7,
                         seed=seed, progress=False)
        return hist.loss, [nnx.to_numpy(p) for p in model.parameters().values()]

    (h1, p1), (h2, p2), (_, p3) = run(11), run(11), run(12)
    assert h1 == h2
    assert all(np.array_equal(a, b) for a, b in zip(p1, p2, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(p1, p3, strict=True))


def test_xor_reaches_full_accuracy(backend):
    model = nnx.MLP([2, 4, 1], activation="tanh", seed=0)
    hist = model.fit(XOR_X, XOR_Y, loss="sigmoid_binary_cross_entropy",
                     optimizer=nnx.optim.SGD(lr=0.5, momentum=0.9), epochs=300,
                     progress=False, validation_data=(XOR_X, XOR_Y))
    logits = nnx.to_numpy(model.predict(XOR_X))[:, 0]
    np.testing.assert_array_equal(logits > 0, XOR_Y > 0.5)
    assert hist.val_accuracy[-1] == 1.0
    assert hist.loss[-1] < 0.05


def test_validation_history_matches_final_model(backend):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4))
    labels = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.5)
    Xv = rng.standard_normal((25, 4))
    yv = (Xv[:, 0] > 0).astype(np.int64) + (Xv[:, 1] > 0.5)
    model = nnx.MLP([4, 10, 3], seed=0, dtype="float64")
    hist = model.fit(X, labels, loss="softmax_cross_entropy", optimizer="adam", epochs=5,
                     batch_size=16, seed=0, validation_data=(Xv, yv), progress=False)
    assert len(hist.val_loss) == len(hist.val_accuracy) == 5
    # recompute the last entries with NumPy from the final weights
    W1, b1, W2, b2 = (nnx.to_numpy(p) for p in model.parameters().values())
    z = np.maximum(Xv @ W1.T + b1, 0) @ W2.T + b2
    logp = z - z.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    assert hist.val_loss[-1] == pytest.approx(-logp[np.arange(25), yv].mean(), rel=1e-10)
    assert hist.val_accuracy[-1] == pytest.approx(np.mean(z.argmax(1) == yv), abs=1e-12)
    assert hist["val_loss"] is hist.val_loss


def test_accuracy_of_each_classification_loss():
    with nnx.use_backend("numpy"):
        model = nnx.MLP([2, 1], activation=None, seed=0, dtype="float64")
        y = np.array([0.0, 1.0, 1.0, 0.0])
        hist = model.fit(XOR_X, y, loss="sigmoid_binary_cross_entropy", optimizer="sgd",
                         epochs=1, validation_data=(XOR_X, y), progress=False)
        z = XOR_X @ nnx.to_numpy(model[0].W).T + nnx.to_numpy(model[0].b)
        assert hist.val_accuracy[0] == pytest.approx(np.mean((z[:, 0] > 0) == (y > 0.5)))
        prob_model = nnx.MLP([2, 1], activation=None, output_activation="sigmoid", seed=0)
        hist = prob_model.fit(XOR_X, y, loss="binary_cross_entropy", optimizer="sgd", epochs=1,
                              validation_data=(XOR_X, y), progress=False)
        p = nnx.to_numpy(prob_model.predict(XOR_X))[:, 0]
        assert hist.val_accuracy[0] == pytest.approx(np.mean((p > 0.5) == (y > 0.5)))
        hist = model.fit(XOR_X, y, loss="mse", optimizer="sgd", epochs=2,
                         validation_data=(XOR_X, y), progress=False)
        assert len(hist.val_loss) == 2 and hist.val_accuracy == []


def test_class_ids_one_hot_rows_and_per_batch_encoding_agree(monkeypatch):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((30, 3))
    ids = rng.integers(0, 4, 30)

    def run(y):
        model = nnx.MLP([3, 6, 4], seed=0)
        hist = model.fit(X, y, loss="softmax_cross_entropy", optimizer="adam", epochs=2,
                         batch_size=8, seed=5, validation_data=(X, y), progress=False)
        return hist.loss + hist.val_loss + hist.val_accuracy

    from_ids = run(ids)
    assert run(np.eye(4)[ids]) == from_ids
    assert run(ids.astype(np.float64)) == from_ids           # integral floats are class ids
    monkeypatch.setattr(inputs, "ONE_HOT_LIMIT", 0)         # encode each minibatch instead
    assert run(ids) == from_ids


def test_minibatches_are_device_slices(backend, monkeypatch):
    calls = {"to_numpy": 0, "from_numpy": 0}
    for name in calls:
        original = getattr(nnx.Backend, name)

        def counted(self, x, _name=name, _original=original):
            calls[_name] += self.name == backend.name   # transfers to or from the device
            return _original(self, x)

        monkeypatch.setattr(nnx.Backend, name, counted)
    X, Y = _regression_data(20)                  # host NumPy input, float64
    model = nnx.MLP([3, 4, 2], seed=0)
    seen = []
    dense = model[0]
    forward = dense.forward
    monkeypatch.setattr(dense, "forward", lambda x: (seen.append(x), forward(x))[1])
    after_setup = dict(calls)
    model.fit(X, Y, loss="mse", optimizer="sgd", epochs=3, batch_size=6, seed=0,
              progress=False)
    assert len(seen) == 3 * 4
    assert all(isinstance(x, backend.array_type) and x.dtype == backend.xp.float32
               for x in seen)
    assert [x.shape[0] for x in seen[:4]] == [6, 6, 6, 2]
    # the host is touched once per epoch for the permutation, never per step
    assert calls["from_numpy"] - after_setup["from_numpy"] <= 2 + 3  # X and y once, + perms
    assert calls["to_numpy"] == after_setup["to_numpy"]            # nothing read back
    # shuffling: every row once per epoch, in a different order each epoch
    rows = [np.concatenate([nnx.to_numpy(x) for x in seen[4 * e:4 * e + 4]]) for e in range(3)]
    for r in rows:
        np.testing.assert_allclose(np.sort(r[:, 0]), np.sort(X[:, 0]).astype(np.float32))
    assert not np.array_equal(rows[0], rows[1])


def test_divergence_names_epoch_and_step():
    calls = []

    def exploding_mse(pred, y):
        calls.append(1)
        loss, grad = nnx.losses.mse(pred, y)
        return (loss * float("nan") if len(calls) == 5 else loss), grad

    X, Y = _regression_data(9)
    model = nnx.MLP([3, 4, 2], seed=0)
    with pytest.raises(training.TrainingDivergedError,
                       match=r"nan at epoch 2, step 2 of 3 .*smaller learning rate.*initial"):
        model.fit(X, Y, loss=exploding_mse, optimizer="sgd", epochs=4, batch_size=3,
                  progress=False)
    assert len(calls) == 6                        # stopped at the end of epoch 2


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid:RuntimeWarning")
def test_real_divergence_raises(backend):
    X, Y = _regression_data(16)
    model = nnx.MLP([3, 32, 2], seed=0)
    with pytest.raises(FloatingPointError, match="epoch .* step .* smaller learning rate"):
        model.fit(X * 1e3, Y * 1e3, loss="mse", optimizer=nnx.optim.SGD(lr=10.0), epochs=50,
                  progress=False)


def test_optimizer_state_carries_over_between_fits():
    X, Y = _regression_data(10)
    model = nnx.MLP([3, 4, 2], seed=0)
    adam = nnx.optim.Adam()
    model.fit(X, Y, loss="mse", optimizer=adam, epochs=2, batch_size=5, progress=False)
    model.fit(X, Y, loss="mse", optimizer=adam, epochs=1, batch_size=5, progress=False)
    assert adam.state_of(model[0]).t == 6


def test_predict_converts_and_batches(backend):
    X, _ = _regression_data(11)
    model = nnx.MLP([3, 4, 2], seed=0)
    full = model.predict(X)
    assert isinstance(full, backend.array_type) and tuple(full.shape) == (11, 2)
    np.testing.assert_allclose(nnx.to_numpy(model.predict(X.tolist(), batch_size=4)),
                               nnx.to_numpy(full), rtol=1e-6)
    W1, b1, W2, b2 = (nnx.to_numpy(p) for p in model.parameters().values())
    X32 = X.astype(np.float32)
    np.testing.assert_allclose(nnx.to_numpy(full),
                               np.maximum(X32 @ W1.T + b1, 0) @ W2.T + b2, rtol=1e-5, atol=1e-6)


def test_progress_bar_optional(monkeypatch, capsys):
    X, Y = _regression_data(10)
    model = nnx.MLP([3, 4, 2], seed=0)
    model.fit(X, Y, loss="mse", optimizer="sgd", epochs=2, progress=True)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)   # as if tqdm were not installed
    hist = model.fit(X, Y, loss="mse", optimizer="sgd", epochs=2, progress=True)
    assert len(hist.loss) == 2


@pytest.mark.parametrize("kwargs, y, match", [
    (dict(loss="mse"), np.zeros((9, 2)), "10 rows but y has 9"),
    (dict(loss="mse"), np.zeros((10, 3)), r"outputs \(10, 2\)"),
    (dict(loss="softmax_cross_entropy"), np.full(10, 0.5), "non-integer"),
    (dict(loss="softmax_cross_entropy"), np.arange(10), r"\[0, 2\).*from 0 to 9"),
    (dict(loss="softmax_cross_entropy"), np.array(["a", "b"] * 5), "numeric"),
    (dict(loss="sigmoid_binary_cross_entropy"), np.full((10, 2), 2.0), r"targets in \[0, 1\]"),
    (dict(loss="hinge"), np.zeros((10, 2)), "valid names: mse, binary_cross_entropy"),
    (dict(optimizer="rmsprop"), np.zeros((10, 2)), "valid names: sgd, adam"),
    (dict(batch_size=0), np.zeros((10, 2)), "batch_size must be a positive integer"),
    (dict(batch_size=-3), np.zeros((10, 2)), "batch_size"),
    (dict(epochs=0), np.zeros((10, 2)), "epochs must be a positive integer"),
    (dict(epochs=2.5), np.zeros((10, 2)), "epochs"),
    (dict(validation_data=np.zeros(3)), np.zeros((10, 2)), "validation_data must be a pair"),
    (dict(validation_data=(np.zeros((4, 3)), np.zeros((5, 2)))), np.zeros((10, 2)),
     "X_val has 4 rows but y_val has 5"),
])
def test_bad_input_raises_clear_errors(kwargs, y, match):
    X, _ = _regression_data(10)
    model = nnx.MLP([3, 4, 2], seed=0)
    args = dict(loss="mse", optimizer="sgd", epochs=1, progress=False) | kwargs
    with pytest.raises(ValueError, match=match):
        model.fit(X, y, **args)


def test_bad_x_shape_raises():
    model = nnx.MLP([3, 4, 2], seed=0)
    with pytest.raises(ValueError, match=r"X must have shape \(n, 3\)"):
        model.fit(np.zeros((5, 4)), np.zeros((5, 2)), loss="mse", optimizer="sgd", epochs=1)
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        model.predict(np.zeros(3))
