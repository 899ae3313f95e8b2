"""Training in low precision, end to end on the CPU (issue 10, part 5).

The digits network (scikit-learn's 8×8 digits, 64-256-128-10, a fixed seed and split)
trains in bfloat16 on the torch backend and in float16 on NumPy to within one
percentage point of the same network's float32 test accuracy, trained alike. float16
trains under dynamic loss scaling (nnx.loss_scale) that backs off and still trains; a
trained low-precision model's file keeps float32 master weights; the scikit-learn
estimators take ``compute_dtype``.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import nnx
from nnx import backends as registry
from nnx.loss_scale import LossScaler

sklearn = pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.utils._param_validation import InvalidParameterError  # noqa: E402

from nnx.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

SIZES = [64, 256, 128, 10]
EPOCHS = 8


def _needs(name):
    reason = registry.why_unavailable(name)
    return pytest.mark.skipif(reason is not None, reason=str(reason))


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def _train(digits, backend, compute_dtype, loss_scale=None):
    X_train, X_test, y_train, y_test = digits
    model = nnx.MLP(SIZES, seed=0, backend=backend, compute_dtype=compute_dtype)
    history = model.fit(X_train, y_train, loss="softmax_cross_entropy",
                        optimizer=nnx.optim.Adam(lr=1e-3), epochs=EPOCHS, batch_size=32,
                        seed=0, progress=False, loss_scale=loss_scale)
    accuracy = float((nnx.to_numpy(model.predict(X_test)).argmax(axis=1) == y_test).mean())
    return model, history, accuracy


@pytest.mark.parametrize("backend, low", [
    pytest.param("torch", "bfloat16", marks=_needs("torch"), id="torch-bfloat16"),
    pytest.param("numpy", "float16", id="numpy-float16"),
])
def test_low_precision_trains_digits_within_a_point_of_float32(digits, backend, low):
    _, _, reference = _train(digits, backend, None)
    model, history, accuracy = _train(digits, backend, low)
    assert reference > 0.95
    assert abs(accuracy - reference) <= 0.01, (low, accuracy, reference)
    assert all(d.W.dtype == d.backend.xp.float32 for d in model.dense_layers)
    if low == "float16":   # loss_scale=None: dynamic scaling, because the model is float16
        assert len(history.loss_scale) == EPOCHS
    else:                  # bfloat16 has float32's range: no scaling
        assert history.loss_scale == [] and history.skipped == []


@pytest.mark.parametrize("backend", [pytest.param("numpy"),
                                     pytest.param("torch", marks=_needs("torch"))])
def test_float16_loss_scaling_backs_off_and_still_trains(digits, backend):
    """A scale of 2³⁰ makes δ·S overflow float16 (65504) in the backward pass: the first
    steps are skipped and the scale halves until the gradients fit; training goes on."""
    _, _, reference = _train(digits, backend, None)
    scaler = LossScaler(init_scale=2.0**30, growth_interval=200)
    model, history, accuracy = _train(digits, backend, "float16", loss_scale=scaler)
    assert sum(history.skipped) >= 3 and scaler.skipped == sum(history.skipped)
    assert scaler.scale < 2.0**30 and history.loss_scale[-1] == scaler.scale
    assert history.loss_scale[0] <= 2.0**27          # backed off during the first epoch
    assert abs(accuracy - reference) <= 0.01, (accuracy, reference)
    # the scaler's state carries over into the next fit
    before = scaler.skipped
    model.fit(digits[0], digits[2], loss="softmax_cross_entropy", optimizer="adam", epochs=1,
              batch_size=32, seed=1, progress=False, loss_scale=scaler)
    assert scaler.skipped >= before


def test_trained_low_precision_model_file_keeps_float32_master_weights(digits, tmp_path):
    model, _, accuracy = _train(digits, "numpy", "float16")
    path = tmp_path / "digits16.safetensors"
    nnx.save(model, path)
    back = nnx.load(path, backend="numpy")
    assert back.compute_dtype == "float16"
    for a, b in zip(model.dense_layers, back.dense_layers):
        assert b.W.dtype == np.float32 and b.b.dtype == np.float32
        np.testing.assert_array_equal(nnx.to_numpy(b.W), nnx.to_numpy(a.W))
        np.testing.assert_array_equal(nnx.to_numpy(b.b), nnx.to_numpy(a.b))
    X_test = digits[1]
    np.testing.assert_array_equal(nnx.to_numpy(back.predict(X_test)),
                                  nnx.to_numpy(model.predict(X_test)))


# -- the scikit-learn estimators --------------------------------------------------------------

def test_estimators_take_compute_dtype_by_scikit_learn_rules():
    clf = MLPClassifier(hidden_layer_sizes=(32,), compute_dtype="float16", random_state=0)
    assert clf.get_params()["compute_dtype"] == "float16"
    assert MLPClassifier().get_params()["compute_dtype"] is None
    assert MLPRegressor(compute_dtype="bfloat16").get_params()["compute_dtype"] == "bfloat16"
    twin = clone(clf)
    assert twin.get_params() == clf.get_params() and twin is not clf
    assert clf.set_params(compute_dtype=None).compute_dtype is None
    X, y = np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2
    with pytest.raises(InvalidParameterError, match="compute_dtype"):
        MLPClassifier(compute_dtype="float8").fit(X, y)
    with pytest.raises(ValueError, match="float32 master weights.*dtype='float64'"):
        MLPClassifier(compute_dtype="float16", dtype="float64").fit(X, y)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("backend, low", [
    pytest.param("numpy", "float16", id="numpy-float16"),
    pytest.param("torch", "bfloat16", marks=_needs("torch"), id="torch-bfloat16"),
])
def test_estimator_trains_in_low_precision(digits, backend, low):
    """float64 input with compute_dtype: float32 master weights (the input is cast), the
    products in the low dtype, accuracy within a point of the float32 estimator's."""
    X_train, X_test, y_train, y_test = (a.astype(np.float64) if a.dtype.kind == "f" else a
                                        for a in digits)
    kw = dict(hidden_layer_sizes=(128,), max_iter=15, random_state=0, backend=backend)
    ref = MLPClassifier(dtype="float32", **kw).fit(X_train, y_train)
    clf = MLPClassifier(compute_dtype=low, **kw).fit(X_train, y_train)
    assert clf._model.compute_dtype == low
    assert all(c.dtype == np.float32 for c in clf.coefs_)
    assert clf.predict_proba(X_test).dtype == np.float64     # as for float64 input
    assert abs(clf.score(X_test, y_test) - ref.score(X_test, y_test)) <= 0.01
    again = pickle.loads(pickle.dumps(clf))                  # rebuilt with its policy
    np.testing.assert_array_equal(again.predict_proba(X_test), clf.predict_proba(X_test))
    assert again._model.compute_dtype == low
    clf.set_params(compute_dtype=None)                       # takes effect at the next fit
    assert clf._model.compute_dtype == low
    clf.set_params(warm_start=True, max_iter=1).fit(X_train, y_train)
    assert clf._model.compute_dtype is None
