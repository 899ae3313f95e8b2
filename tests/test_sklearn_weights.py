"""nnx.sklearn's sample_weight: scikit-learn >= 1.7's semantics, for every solver."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

import sklearn  # noqa: E402
from sklearn import neural_network  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from nnx.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SOLVERS = {
    "sgd": dict(solver="sgd", momentum=0.5, learning_rate_init=0.05),
    "adam": dict(solver="adam", learning_rate_init=0.01, epsilon=1e-300),  # ε: see test_sklearn
    "lbfgs": dict(solver="lbfgs"),
}


def _problem(kind, rng, n=30):
    X = rng.standard_normal((n, 3))
    if kind == "multiclass":
        return MLPClassifier, neural_network.MLPClassifier, X, (X[:, :2] > 0).sum(1), {}
    if kind == "binary":
        return MLPClassifier, neural_network.MLPClassifier, X, X[:, 0] > 0.2, {}
    if kind == "multilabel":
        return MLPClassifier, neural_network.MLPClassifier, X, (X[:, :2] > 0).astype(int), {}
    if kind == "poisson":
        return (MLPRegressor, neural_network.MLPRegressor, X,
                rng.poisson(np.exp(0.5 * X[:, 0])).astype(float), dict(loss="poisson"))
    return (MLPRegressor, neural_network.MLPRegressor, X,
            np.stack([X[:, 0] - X[:, 2], np.sin(X[:, 1])], axis=1), {})


def _assert_same(ours, theirs, rtol=1e-9, atol=1e-11):
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_,
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def _from_same_weights(ours, theirs, X, y, w):
    """Fit both once, then give scikit-learn nnx's weights (and early stopping's state)."""
    ours.fit(X, y, sample_weight=w)
    theirs.fit(X, y, sample_weight=w)
    theirs.coefs_ = [c.copy() for c in ours.coefs_]
    theirs.intercepts_ = [b.copy() for b in ours.intercepts_]
    if ours.early_stopping:
        theirs._best_coefs = [c.copy() for c in ours.coefs_]
        theirs._best_intercepts = [b.copy() for b in ours.intercepts_]
        theirs.best_validation_score_ = ours.best_validation_score_


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("kind", ["multiclass", "binary", "multilabel", "multi-output",
                                  "poisson"])
def test_weighted_fit_follows_scikit_learn(kind, solver):
    """From the same weights, weighted training gives scikit-learn's weights."""
    ours_cls, their_cls, X, y, extra = _problem(kind, np.random.default_rng(0))
    w = np.random.default_rng(1).uniform(0.0, 3.0, X.shape[0])
    params = dict(hidden_layer_sizes=(4,), activation="tanh", alpha=0.5, batch_size=7,
                  shuffle=False, tol=0.0, n_iter_no_change=100, warm_start=True,
                  random_state=0, max_iter=1, **SOLVERS[solver], **extra)
    ours, theirs = ours_cls(backend="numpy", **params), their_cls(**params)
    _from_same_weights(ours, theirs, X, y, w)
    ours.set_params(max_iter=4).fit(X, y, sample_weight=w)
    theirs.set_params(max_iter=4).fit(X, y, sample_weight=w)
    rtol = 1e-7 if solver == "lbfgs" else 1e-9
    _assert_same(ours, theirs, rtol=rtol)
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=rtol)
    if solver != "lbfgs":
        np.testing.assert_allclose(ours.loss_curve_[1:], theirs.loss_curve_[1:], rtol=1e-9)


@pytest.mark.parametrize("cls, kind", [(MLPClassifier, "multiclass"),
                                       (MLPRegressor, "multi-output")])
def test_weighted_partial_fit_follows_scikit_learn(cls, kind):
    _, their_cls, X, y, _ = _problem(kind, np.random.default_rng(2))
    w = np.random.default_rng(3).uniform(0.0, 2.0, X.shape[0])
    params = dict(hidden_layer_sizes=(4,), solver="sgd", batch_size=10, shuffle=False,
                  learning_rate_init=0.1, alpha=0.2, random_state=0)
    ours, theirs = cls(backend="numpy", **params), their_cls(**params)
    first = dict(classes=np.unique(y)) if cls is MLPClassifier else {}
    ours.partial_fit(X, y, sample_weight=w, **first)
    theirs.partial_fit(X, y, sample_weight=w, **first)
    theirs.coefs_ = [c.copy() for c in ours.coefs_]
    theirs.intercepts_ = [b.copy() for b in ours.intercepts_]
    theirs._optimizer.velocities = [np.zeros_like(p) for p in theirs.coefs_ + theirs.intercepts_]
    ours._optimizer.reset()                       # both momentum buffers start from zero
    for _ in range(3):
        ours.partial_fit(X, y, sample_weight=w)
        theirs.partial_fit(X, y, sample_weight=w)
    _assert_same(ours, theirs)
    np.testing.assert_allclose(ours.loss_curve_[1:], theirs.loss_curve_[1:], rtol=1e-9)


@pytest.mark.parametrize("solver", SOLVERS)
def test_integer_weights_are_repeated_rows(solver):
    _, _, X, y, _ = _problem("multiclass", np.random.default_rng(4))
    w = np.random.default_rng(5).integers(0, 4, X.shape[0])
    params = dict(hidden_layer_sizes=(5,), alpha=0.3, random_state=0, max_iter=15,
                  backend="numpy", **SOLVERS[solver])    # batch_size="auto": one full batch
    weighted = MLPClassifier(**params).fit(X, y, sample_weight=w)
    repeated = MLPClassifier(**params).fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    _assert_same(weighted, repeated, rtol=1e-7)


@pytest.mark.parametrize("solver", SOLVERS)
def test_zero_weights_are_dropped_rows(solver):
    _, _, X, y, _ = _problem("multi-output", np.random.default_rng(6))
    w = (np.arange(X.shape[0]) % 3 != 0).astype(float)
    params = dict(hidden_layer_sizes=(5,), alpha=0.3, random_state=0, max_iter=15,
                  backend="numpy", **SOLVERS[solver])
    weighted = MLPRegressor(**params).fit(X, y, sample_weight=w)
    dropped = MLPRegressor(**params).fit(X[w > 0], y[w > 0])
    _assert_same(weighted, dropped, rtol=1e-7)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_weighted_early_stopping_follows_scikit_learn(cls):
    """Weighted validation scores, and the end on the best of them, as scikit-learn's."""
    kind = "multiclass" if cls is MLPClassifier else "multi-output"
    _, their_cls, X, y, _ = _problem(kind, np.random.default_rng(7), n=80)
    w = np.random.default_rng(8).uniform(0.1, 3.0, X.shape[0])
    params = dict(hidden_layer_sizes=(6,), solver="sgd", momentum=0.0, batch_size=9,
                  learning_rate_init=0.8, shuffle=False, early_stopping=True,
                  validation_fraction=0.25, n_iter_no_change=30, tol=0.0, warm_start=True,
                  random_state=0, max_iter=1)
    ours, theirs = cls(backend="numpy", **params), their_cls(**params)
    _from_same_weights(ours, theirs, X, y, w)
    ours.set_params(max_iter=25).fit(X, y, sample_weight=w)
    theirs.set_params(max_iter=25).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(ours.validation_scores_[1:], theirs.validation_scores_[1:],
                               rtol=1e-9)                # [0]: each its own first weights
    best = int(np.argmax(ours.validation_scores_))
    assert best < len(ours.validation_scores_) - 1   # the last epoch is not the best one:
    _assert_same(ours, theirs)                       # so equal weights prove the restore


def test_metadata_routing_in_pipeline_and_grid_search():
    _, _, X, y, _ = _problem("multiclass", np.random.default_rng(9), n=90)
    w = np.random.default_rng(10).uniform(0.0, 2.0, X.shape[0])
    params = dict(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=20, random_state=0,
                  backend="numpy")
    with sklearn.config_context(enable_metadata_routing=True):
        clf = MLPClassifier(**params).set_fit_request(sample_weight=True)
        clf.set_score_request(sample_weight=True)
        pipe = make_pipeline(StandardScaler().set_fit_request(sample_weight=False), clf)
        pipe.fit(X, y, sample_weight=w)
        search = GridSearchCV(pipe, {"mlpclassifier__alpha": [1e-4, 1.0]}, cv=3)
        search.fit(X, y, sample_weight=w)
    Xs = StandardScaler().fit_transform(X)
    direct = MLPClassifier(**params).fit(Xs, y, sample_weight=w)
    unweighted = MLPClassifier(**params).fit(Xs, y)
    _assert_same(pipe[-1], direct)
    assert not np.allclose(direct.coefs_[0], unweighted.coefs_[0])
    assert len(search.cv_results_["params"]) == 2


def test_bad_sample_weight_is_refused_as_scikit_learn():
    _, _, X, y, _ = _problem("multiclass", np.random.default_rng(11))
    for w in (np.ones(X.shape[0] - 1), np.ones((X.shape[0], 2))):
        with pytest.raises(ValueError) as theirs:
            neural_network.MLPClassifier(max_iter=2).fit(X, y, sample_weight=w)
        with pytest.raises(ValueError) as ours:
            MLPClassifier(max_iter=2, backend="numpy").fit(X, y, sample_weight=w)
        assert str(ours.value) == str(theirs.value)


def test_weights_on_every_backend(backend):
    """The weight column rides on every backend: integer weights == repeated rows."""
    if backend.name == "jax":
        pytest.importorskip("jax").config.update("jax_enable_x64", True)
    _, _, X, y, _ = _problem("binary", np.random.default_rng(12))
    w = np.random.default_rng(13).integers(0, 3, X.shape[0])
    params = dict(hidden_layer_sizes=(3,), solver="adam", learning_rate_init=0.05,
                  max_iter=5, random_state=0, backend=backend.name, dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        weighted = MLPClassifier(**params).fit(X, y, sample_weight=w)
        repeated = MLPClassifier(**params).fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    _assert_same(weighted, repeated, rtol=1e-7)
