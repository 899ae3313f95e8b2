"""nnx.sklearn under scikit-learn's array_api_dispatch: inputs train and answer where they are."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

import sklearn  # noqa: E402
from sklearn import neural_network  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

import nnx  # noqa: E402
from nnx.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

LIBRARIES = ["torch", "array_api_strict"]


@pytest.fixture
def dispatch(monkeypatch):
    """scikit-learn's array_api_dispatch on (it asks for SciPy's flag in the environment)."""
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    with sklearn.config_context(array_api_dispatch=True):
        yield


def _data(which, rng=None):
    rng = rng or np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0) if which == "classifier" else X[:, 0] - X[:, 1]
    return X, y


def _library(name):
    pytest.importorskip(name)
    return nnx.backends.load(name)


def _theirs_from(ours, which, X, y):
    """scikit-learn's estimator fitted on NumPy, then given nnx's weights."""
    their_cls = neural_network.MLPClassifier if which == "classifier" \
        else neural_network.MLPRegressor
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs = their_cls(hidden_layer_sizes=(4,), max_iter=1).fit(X, y)
    theirs.coefs_ = [c.copy() for c in ours.coefs_]
    theirs.intercepts_ = [b.copy() for b in ours.intercepts_]
    return theirs


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("which", ["classifier", "regressor"])
def test_inputs_train_and_answer_in_their_library(dispatch, library, which):
    lib = _library(library)
    X, y = _data(which)
    Xl, yl = lib.from_numpy(X), lib.from_numpy(y)
    cls = MLPClassifier if which == "classifier" else MLPRegressor
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = cls(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=10, random_state=0).fit(
            Xl, yl)
    assert ours._backend.name == library        # trained with the input's library
    theirs = _theirs_from(ours, which, X, y)
    methods = ["predict", "predict_proba", "predict_log_proba"] if which == "classifier" \
        else ["predict"]
    for method in methods:
        got = getattr(ours, method)(Xl)
        assert isinstance(got, lib.array_type), (method, type(got))
        want = getattr(theirs, method)(X)
        np.testing.assert_allclose(lib.to_numpy(got), want, rtol=1e-9, atol=1e-12)
    # (scikit-learn scores torch inputs in torch's default float32)
    np.testing.assert_allclose(ours.score(Xl, yl), theirs.score(X, y), rtol=1e-6)
    if which == "classifier":
        assert isinstance(ours.classes_, lib.array_type)
        np.testing.assert_array_equal(lib.to_numpy(ours.classes_), theirs.classes_)


@pytest.mark.parametrize("library", LIBRARIES)
def test_backend_parameter_overrides_the_input_library(dispatch, library):
    lib = _library(library)
    X, y = _data("regressor")
    reg = MLPRegressor(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=5, random_state=0,
                       backend="numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(lib.from_numpy(X), lib.from_numpy(y))
    assert reg._backend.name == "numpy"
    pred = reg.predict(lib.from_numpy(X))
    assert isinstance(pred, lib.array_type)          # the answer still in the input's library
    theirs = _theirs_from(reg, "regressor", X, y)
    np.testing.assert_allclose(lib.to_numpy(pred), theirs.predict(X), rtol=1e-9, atol=1e-12)


def test_dispatch_off_numpy_in_numpy_out():
    lib = _library("torch")
    X, y = _data("classifier")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, backend="torch").fit(X, y)
    assert clf._backend.name == "torch"
    proba = clf.predict_proba(X)
    assert isinstance(proba, np.ndarray) and isinstance(clf.classes_, np.ndarray)
    assert isinstance(clf.predict(X), np.ndarray)
    theirs = _theirs_from(clf, "classifier", X, y)
    np.testing.assert_allclose(proba, theirs.predict_proba(X), rtol=1e-9)
    assert lib.name == "torch"
