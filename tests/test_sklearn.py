"""nnx.sklearn: scikit-learn's estimator checks, its own MLP's arithmetic, search and pipelines."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn import neural_network  # noqa: E402
from sklearn.datasets import load_digits, load_iris  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from nnx.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@parametrize_with_checks([MLPClassifier(max_iter=100, backend="numpy"),
                          MLPRegressor(max_iter=100, backend="numpy"),
                          MLPClassifier(solver="lbfgs", max_iter=100, backend="numpy"),
                          MLPRegressor(solver="lbfgs", max_iter=100, backend="numpy")])
def test_check_estimator(estimator, check):
    check(estimator)


# -- the same arithmetic as scikit-learn's own MLP -----------------------------------------

def _problem(kind, rng):
    X = rng.standard_normal((30, 4))
    if kind == "binary":
        return MLPClassifier, neural_network.MLPClassifier, X, np.where(X[:, 0] > 0, "b", "a")
    if kind == "multiclass":
        return MLPClassifier, neural_network.MLPClassifier, X, (X[:, :2] > 0).sum(1)
    if kind == "multilabel":
        return (MLPClassifier, neural_network.MLPClassifier, X,
                (X[:, :3] > 0).astype(int))
    if kind == "regression":
        return MLPRegressor, neural_network.MLPRegressor, X, X[:, 0] * 2 + X[:, 1] ** 2
    return (MLPRegressor, neural_network.MLPRegressor, X,
            np.stack([X[:, 0] - X[:, 2], np.sin(X[:, 1])], axis=1))


SOLVERS = {
    "sgd": dict(solver="sgd", momentum=0.0, learning_rate_init=0.05),
    "sgd-invscaling": dict(solver="sgd", momentum=0.0, learning_rate="invscaling",
                           learning_rate_init=0.5, power_t=0.3),
    "sgd-nesterov": dict(solver="sgd", momentum=0.8, nesterovs_momentum=True,
                         learning_rate_init=0.02),
    # ε tiny: scikit-learn adds it after bias correction, PyTorch (and nnx) before
    "adam": dict(solver="adam", learning_rate_init=0.01, beta_1=0.8, beta_2=0.95,
                 epsilon=1e-300),
}


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel", "regression",
                                  "multi-output"])
def test_same_trajectory_as_scikit_learn(kind, solver):
    """From the same weights, three epochs give scikit-learn's losses and weights."""
    ours_cls, their_cls, X, y = _problem(kind, np.random.default_rng(0))
    params = dict(hidden_layer_sizes=(5, 3), activation="tanh", alpha=0.3, batch_size=8,
                  shuffle=False, tol=0.0, n_iter_no_change=100, warm_start=True,
                  random_state=0, **SOLVERS[solver])
    ours = ours_cls(max_iter=1, backend="numpy", **params).fit(X, y)
    theirs = their_cls(max_iter=1, **params).fit(X, y)
    theirs.coefs_ = [c.copy() for c in ours.coefs_]         # start both from our weights
    theirs.intercepts_ = [b.copy() for b in ours.intercepts_]
    ours.set_params(max_iter=3).fit(X, y)                   # warm start: a new optimizer
    theirs.set_params(max_iter=3).fit(X, y)
    np.testing.assert_allclose(ours.loss_curve_[1:], theirs.loss_curve_[1:], rtol=1e-10)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_,
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    if ours_cls is MLPClassifier:
        np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-9)
        np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    else:
        np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-9, atol=1e-12)


# -- behaviour -----------------------------------------------------------------------------

def test_digits_accuracy_comparable_to_scikit_learn():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, random_state=0)
    params = dict(hidden_layer_sizes=(64,), max_iter=60, random_state=0)
    ours = MLPClassifier(backend="numpy", **params).fit(X_train, y_train)
    theirs = neural_network.MLPClassifier(**params).fit(X_train, y_train)
    assert ours.score(X_test, y_test) >= min(0.95, theirs.score(X_test, y_test) - 0.02)
    assert ours.n_iter_ == len(ours.loss_curve_) and ours.loss_ == ours.loss_curve_[-1]
    assert [c.shape for c in ours.coefs_] == [(64, 64), (64, 10)]
    assert [b.shape for b in ours.intercepts_] == [(64,), (10,)]
    assert ours.n_features_in_ == 64 and list(ours.classes_) == list(range(10))
    assert isinstance(ours.coefs_[0], np.ndarray)


def test_grid_search_and_pipeline():
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), MLPClassifier(max_iter=150, random_state=0,
                                                         learning_rate_init=0.02,
                                                         backend="numpy"))
    grid = {"mlpclassifier__hidden_layer_sizes": [(4,), (16,)],
            "mlpclassifier__alpha": [1e-4, 1e-1]}
    search = GridSearchCV(pipe, grid, cv=3).fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_score_ > 0.9
    assert search.score(X, y) > 0.95
    assert search.best_estimator_[-1].coefs_[0].shape[1] in (4, 16)


def test_every_backend(backend):
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, learning_rate_init=0.1,
                        random_state=0, backend=backend.name).fit(X, y)
    proba = clf.predict_proba(X)
    assert isinstance(proba, np.ndarray) and proba.shape == (150, 3)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-6)
    assert clf.score(X, y) > 0.9
    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=20, random_state=0,
                       backend=backend.name).fit(X[:, :3], X[:, 3])
    pred = reg.predict(X[:, :3])
    assert pred.dtype == np.float64 and pred.shape == (150,)
    again = pickle.loads(pickle.dumps(reg))
    np.testing.assert_array_equal(again.predict(X[:, :3]), pred)


def test_float32_input_trains_in_float32_and_dtype_override():
    X, y = load_iris(return_X_y=True)
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, backend="numpy").fit(
        X.astype(np.float32), y)
    assert clf.coefs_[0].dtype == np.float32
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, dtype="float32",
                        backend="numpy").fit(X, y)
    assert clf.coefs_[0].dtype == np.float32


def test_early_stopping_and_stopping_rules():
    X, y = load_digits(return_X_y=True)
    clf = MLPClassifier(hidden_layer_sizes=(32,), early_stopping=True, n_iter_no_change=3,
                        max_iter=200, random_state=0, backend="numpy").fit(X / 16, y)
    assert clf.n_iter_ < 200 and len(clf.validation_scores_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        with pytest.raises(ConvergenceWarning, match="Maximum iterations"):
            MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, backend="numpy").fit(X, y)


def test_partial_fit_needs_classes_first():
    X, y = load_iris(return_X_y=True)
    clf = MLPClassifier(hidden_layer_sizes=(4,), backend="numpy")
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X, y)
    theirs = neural_network.MLPClassifier(hidden_layer_sizes=(4,))
    for est in (clf, theirs):
        est.partial_fit(X[:50], y[:50], classes=[0, 1, 2])
        est.partial_fit(X[50:], y[50:])
    # n_iter_ counts the epochs of the current call (scikit-learn >= 1.9); t_ every row seen
    assert (clf.n_iter_, clf.t_, len(clf.loss_curve_)) == (
        theirs.n_iter_, theirs.t_, len(theirs.loss_curve_)) == (1, 150, 2)
    assert list(clf.classes_) == [0, 1, 2]


def test_import_of_nnx_does_not_import_scikit_learn():
    import subprocess
    import sys

    code = ("import sys, nnx; print('sklearn' in sys.modules); "
            "import nnx.sklearn; print('sklearn' in sys.modules)")   # the probe can see it
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "True"]


@pytest.mark.parametrize("params", [
    dict(solver="adam"),
    dict(solver="sgd", learning_rate="adaptive", learning_rate_init=0.01),
    dict(solver="sgd", learning_rate="adaptive", learning_rate_init=0.01, early_stopping=True),
])
def test_stopping_epochs_match_scikit_learn(params, capsys):
    # tol is huge, so no epoch counts as an improvement: when training stops (and how often
    # "adaptive" divides the learning rate by 5 first) is fixed by the rules alone
    X, y = load_iris(return_X_y=True)
    common = dict(hidden_layer_sizes=(4,), tol=1e9, n_iter_no_change=2, max_iter=100,
                  random_state=0, verbose=True, **params)
    ours = MLPClassifier(backend="numpy", **common).fit(X, y)
    ours_log = capsys.readouterr().out
    theirs = neural_network.MLPClassifier(**common).fit(X, y)
    theirs_log = capsys.readouterr().out
    assert ours.n_iter_ == theirs.n_iter_ < 100
    assert ours_log.count("Iteration ") == theirs_log.count("Iteration ") == ours.n_iter_
    assert ours_log.count("Setting learning rate to") == theirs_log.count("Setting learning rate")
    assert ours_log.splitlines()[-1].split(".")[0] == theirs_log.splitlines()[-1].split(".")[0]
