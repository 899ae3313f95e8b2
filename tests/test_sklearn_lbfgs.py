"""nnx.sklearn's solver="lbfgs": scikit-learn's L-BFGS-B trajectory, objective and stopping."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn import neural_network  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from nnx.sklearn import MLPClassifier, MLPRegressor  # noqa: E402


def _problem(kind, rng, n=40):
    X = rng.standard_normal((n, 4))
    if kind == "binary":
        return MLPClassifier, neural_network.MLPClassifier, X, np.where(X[:, 0] > 0, "b", "a")
    if kind == "multiclass":
        return MLPClassifier, neural_network.MLPClassifier, X, (X[:, :2] > 0).sum(1)
    if kind == "multilabel":
        return MLPClassifier, neural_network.MLPClassifier, X, (X[:, :3] > 0).astype(int)
    if kind == "regression":
        return MLPRegressor, neural_network.MLPRegressor, X, X[:, 0] * 2 + X[:, 1] ** 2
    if kind == "poisson":
        return (MLPRegressor, neural_network.MLPRegressor, X,
                rng.poisson(np.exp(0.5 * X[:, 0])).astype(float))
    return (MLPRegressor, neural_network.MLPRegressor, X,
            np.stack([X[:, 0] - X[:, 2], np.sin(X[:, 1])], axis=1))


def _same_start(ours_cls, their_cls, X, y, sample_weight=None, backend="numpy", **params):
    """Both estimators fitted once (max_iter=1), then scikit-learn's given nnx's weights."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = ours_cls(max_iter=1, backend=backend, warm_start=True, **params).fit(
            X, y, sample_weight=sample_weight)
        theirs = their_cls(max_iter=1, warm_start=True, **params).fit(
            X, y, sample_weight=sample_weight)
    theirs.coefs_ = [c.copy() for c in ours.coefs_]
    theirs.intercepts_ = [b.copy() for b in ours.intercepts_]
    return ours, theirs


def _assert_same_model(ours, theirs, X, rtol=1e-7, atol=1e-9):
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_,
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
    if isinstance(ours, MLPClassifier):
        np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    else:
        np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=rtol, atol=atol)


KINDS = ["binary", "multiclass", "multilabel", "regression", "multi-output", "poisson"]


@pytest.mark.parametrize("activation", ["tanh", "relu", "logistic"])
@pytest.mark.parametrize("kind", KINDS)
def test_lbfgs_follows_scikit_learn(kind, activation):
    """From the same weights, 25 L-BFGS-B iterations end on scikit-learn's weights."""
    ours_cls, their_cls, X, y = _problem(kind, np.random.default_rng(0))
    extra = dict(loss="poisson") if kind == "poisson" else {}
    ours, theirs = _same_start(ours_cls, their_cls, X, y, hidden_layer_sizes=(5, 3),
                               activation=activation, alpha=0.3, solver="lbfgs",
                               random_state=0, **extra)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.set_params(max_iter=25).fit(X, y)
        theirs.set_params(max_iter=25).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=1e-9)
    _assert_same_model(ours, theirs, X)
    assert ours.out_activation_ == theirs.out_activation_
    assert not hasattr(ours, "loss_curve_") and not hasattr(theirs, "loss_curve_")
    if ours_cls is MLPClassifier:
        np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-7)


def test_lbfgs_on_every_backend(backend):
    """The device computes each evaluation; the result is still scikit-learn's."""
    if backend.name == "jax":
        pytest.importorskip("jax").config.update("jax_enable_x64", True)
    ours_cls, their_cls, X, y = _problem("multiclass", np.random.default_rng(1))
    ours, theirs = _same_start(ours_cls, their_cls, X, y, backend=backend.name,
                               hidden_layer_sizes=(6,), activation="tanh", alpha=0.1,
                               solver="lbfgs", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.set_params(max_iter=30).fit(X, y)
        theirs.set_params(max_iter=30).fit(X, y)
    _assert_same_model(ours, theirs, X, rtol=1e-6, atol=1e-8)


def test_lbfgs_objective_is_scikit_learns():
    """One evaluation: loss and packed gradient equal scikit-learn's _loss_grad_lbfgs."""
    ours_cls, their_cls, X, y = _problem("multiclass", np.random.default_rng(2))
    w = np.random.default_rng(3).uniform(0.0, 2.0, X.shape[0])
    ours, theirs = _same_start(ours_cls, their_cls, X, y, sample_weight=w,
                               hidden_layer_sizes=(4,), alpha=0.7, solver="lbfgs",
                               random_state=0)
    # max_iter=1 from the same weights: L-BFGS-B's first step is -g/|g| scaled, so equal
    # results after it mean equal loss and gradient at the start
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(X, y, sample_weight=w)
        theirs.fit(X, y, sample_weight=w)
    _assert_same_model(ours, theirs, X, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=1e-12)


@pytest.mark.parametrize("limit, status", [(dict(max_iter=3), "ITERATIONS REACHED LIMIT"),
                                           (dict(max_fun=4), "NO. OF F")])
def test_lbfgs_stops_and_warns_as_scikit_learn(limit, status):
    ours_cls, their_cls, X, y = _problem("regression", np.random.default_rng(0))
    params = dict(hidden_layer_sizes=(5,), solver="lbfgs", random_state=0, **limit)
    with pytest.warns(ConvergenceWarning) as ours_w:
        ours = ours_cls(backend="numpy", **params).fit(X, y)
    with pytest.warns(ConvergenceWarning) as theirs_w:
        theirs = their_cls(**params).fit(X, y)
    ours_msg = [str(w.message) for w in ours_w if w.category is ConvergenceWarning]
    theirs_msg = [str(w.message) for w in theirs_w if w.category is ConvergenceWarning]
    assert status in ours_msg[0]
    assert [m.split("\n")[0][:30] for m in ours_msg] == [m.split("\n")[0][:30]
                                                         for m in theirs_msg]
    assert ours.n_iter_ <= limit.get("max_iter", 100) and theirs.n_iter_ <= 100


def test_lbfgs_converges_without_warning_on_an_easy_problem():
    X = np.linspace(-1, 1, 30)[:, None]
    y = 3 * X[:, 0] + 1
    params = dict(hidden_layer_sizes=(2,), activation="identity", solver="lbfgs", tol=1e-6,
                  alpha=0.0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        ours = MLPRegressor(backend="numpy", **params).fit(X, y)
        theirs = neural_network.MLPRegressor(**params).fit(X, y)
    np.testing.assert_allclose(ours.predict(X), 3 * X[:, 0] + 1, atol=1e-4)  # closed form
    assert ours.n_iter_ < 200 and theirs.n_iter_ < 200


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_partial_fit_is_unavailable_for_lbfgs(cls):
    est = cls(solver="lbfgs")
    assert not hasattr(est, "partial_fit")
    with pytest.raises(AttributeError, match="has no attribute 'partial_fit'"):
        est.partial_fit  # noqa: B018
    theirs = neural_network.MLPClassifier(solver="lbfgs")
    assert not hasattr(theirs, "partial_fit")   # (scikit-learn's regressor forgets to check)
    assert hasattr(cls(solver="sgd"), "partial_fit") and hasattr(cls(), "partial_fit")


@pytest.mark.parametrize("tol", [1e-4, 10.0])
def test_lbfgs_tol_is_the_gradient_tolerance_and_verbose_prints_as_scikit_learn(tol, capsys):
    """tol is L-BFGS-B's gtol: a huge one stops both at once; verbose prints alike."""
    ours_cls, their_cls, X, y = _problem("regression", np.random.default_rng(5))
    ours, theirs = _same_start(ours_cls, their_cls, X, y, hidden_layer_sizes=(4,),
                               solver="lbfgs", random_state=0)
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.set_params(max_iter=40, tol=tol, verbose=True).fit(X, y)
        ours_out = capsys.readouterr().out
        theirs.set_params(max_iter=40, tol=tol, verbose=True).fit(X, y)
        theirs_out = capsys.readouterr().out
    assert ours.n_iter_ == theirs.n_iter_
    assert (ours.n_iter_ == 0) == (tol == 10.0)
    assert ours_out == theirs_out


def test_lbfgs_moves_one_vector_each_way_per_evaluation(monkeypatch):
    """Per evaluation: the packed weights go to the device once, and the gradient (with
    the loss as its last element) comes back once; the data never travels again."""
    from nnx.sklearn import _lbfgs

    calls = {"to_device": 0, "to_host": 0, "evaluations": 0}
    real_asarray, real_to_numpy = _lbfgs.asarray, _lbfgs.to_numpy
    real_minimize = _lbfgs.scipy.optimize.minimize

    def to_device(*args, **kwargs):
        calls["to_device"] += 1
        return real_asarray(*args, **kwargs)

    def to_host(*args, **kwargs):
        calls["to_host"] += 1
        return real_to_numpy(*args, **kwargs)

    def minimize(fun, x0, **kwargs):
        def counted(v):
            calls["evaluations"] += 1
            return fun(v)
        return real_minimize(counted, x0, **kwargs)

    monkeypatch.setattr(_lbfgs, "asarray", to_device)
    monkeypatch.setattr(_lbfgs, "to_numpy", to_host)
    monkeypatch.setattr(_lbfgs.scipy.optimize, "minimize", minimize)
    ours_cls, _, X, y = _problem("multiclass", np.random.default_rng(4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours_cls(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=8, random_state=0,
                 backend="numpy").fit(X, y)
    n = calls["evaluations"]
    assert n >= 8
    assert calls["to_device"] == n + 1        # each evaluation, and the final weights
    assert calls["to_host"] == n + 1          # each evaluation, and the initial weights


def test_lbfgs_on_the_digits_converges_to_scikit_learns_model():
    """The bench's network, to convergence: the same iterations, weights and accuracy."""
    from sklearn.datasets import load_digits
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    ours, theirs = _same_start(MLPClassifier, neural_network.MLPClassifier, X, y,
                               hidden_layer_sizes=(128, 64), solver="lbfgs", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)   # both converge (gtol=tol)
        ours.set_params(max_iter=200).fit(X, y)
        theirs.set_params(max_iter=200).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ < 200
    _assert_same_model(ours, theirs, X, rtol=1e-6, atol=1e-9)


def test_only_scipys_blas_runs_one_thread_during_lbfgs():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from nnx.sklearn._lbfgs import scipy_blas_single_threaded

    def pools():
        return {i["filepath"]: i["num_threads"] for i in threadpoolctl.threadpool_info()}

    def is_scipys(path):
        return "scipy" in os.path.basename(os.path.dirname(path))

    before = pools()
    with scipy_blas_single_threaded():
        during = pools()
    assert pools() == before                                     # restored afterwards
    assert any(is_scipys(p) for p in during)                     # (SciPy's wheels bundle one)
    for path, threads in during.items():
        assert threads == (1 if is_scipys(path) else before[path])
