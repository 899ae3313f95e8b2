"""nnx.sklearn behaves as scikit-learn's estimators where a script can see it."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

import scipy.sparse  # noqa: E402
from sklearn import neural_network  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.utils._param_validation import InvalidParameterError  # noqa: E402

from nnx.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

PAIRS = {"classifier": (MLPClassifier, neural_network.MLPClassifier),
         "regressor": (MLPRegressor, neural_network.MLPRegressor)}


def _data(which, rng=None, n=40):
    rng = rng or np.random.default_rng(0)
    X = rng.standard_normal((n, 3))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0) if which == "classifier" else X[:, 0] - X[:, 1]
    return X, y


def _outcome(fn):
    """(exception type, message) of ``fn()``, or None if it returned."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", RuntimeWarning)   # overflow, for the blow-ups
            fn()
    except Exception as exc:  # noqa: BLE001 - the type is what is compared
        return type(exc), str(exc)
    return None


@pytest.mark.parametrize("which", PAIRS)
@pytest.mark.parametrize("params", [
    dict(solver="newton"), dict(activation="softplus"), dict(alpha=-1.0),
    dict(hidden_layer_sizes=(4, 0)), dict(hidden_layer_sizes="a"), dict(learning_rate_init=0.0),
    dict(batch_size=0), dict(batch_size="big"), dict(momentum=1.5), dict(max_iter=0),
    dict(max_iter=2.5), dict(max_fun=0), dict(tol=-1), dict(verbose="x"), dict(shuffle=1),
    dict(beta_1=1.0), dict(validation_fraction=1.0), dict(epsilon=0.0),
    dict(n_iter_no_change=0), dict(learning_rate="fast"), dict(power_t=-0.5),
    dict(random_state="seed"),
])
def test_bad_parameters_raise_scikit_learns_error(which, params):
    ours_cls, their_cls = PAIRS[which]
    X, y = _data(which)
    ours = _outcome(lambda: ours_cls(backend="numpy", **params).fit(X, y))
    theirs = _outcome(lambda: their_cls(**params).fit(X, y))
    assert theirs is not None and ours == theirs
    if theirs[0] is InvalidParameterError:
        assert f"The '{next(iter(params))}' parameter of {ours_cls.__name__}" in ours[1]


def test_regressor_loss_parameter_is_checked_as_scikit_learn():
    X, y = _data("regressor")
    ours = _outcome(lambda: MLPRegressor(loss="absolute_error").fit(X, y))
    theirs = _outcome(lambda: neural_network.MLPRegressor(loss="absolute_error").fit(X, y))
    assert ours == theirs and ours[0] is InvalidParameterError


@pytest.mark.parametrize("nnx_params", [dict(backend="tensorflow"), dict(dtype="float16")])
def test_nnx_parameters_are_checked(nnx_params):
    X, y = _data("classifier")
    with pytest.raises(ValueError, match="tensorflow|dtype"):
        MLPClassifier(**nnx_params).fit(X, y)


@pytest.mark.parametrize("which", PAIRS)
@pytest.mark.parametrize("params", [
    dict(batch_size=np.int64(8)), dict(max_iter=np.int32(3)), dict(momentum=1.0, solver="sgd"),
    dict(learning_rate_init=np.float32(0.01)), dict(hidden_layer_sizes=np.array([3, 2])),
    dict(hidden_layer_sizes=np.int64(3)), dict(n_iter_no_change=np.inf),
    dict(alpha=np.float64(0.5)), dict(verbose=np.bool_(False)), dict(verbose=0),
    dict(solver="lbfgs", max_fun=np.int64(20), max_iter=np.int64(5)),
    dict(random_state=np.random.RandomState(0)),
])
def test_values_scikit_learn_accepts_are_accepted(which, params):
    ours_cls, their_cls = PAIRS[which]
    X, y = _data(which)
    base = dict(max_iter=3) if "max_iter" not in params else {}
    assert _outcome(lambda: their_cls(**base, **params).fit(X, y)) is None
    assert _outcome(lambda: ours_cls(backend="numpy", **base, **params).fit(X, y)) is None


def test_grid_search_hands_numpy_scalars_over():
    X, y = _data("classifier", n=60)
    grid = {"batch_size": np.array([8, 16]), "learning_rate_init": np.array([0.01, 0.1],
                                                                           dtype=np.float32)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = GridSearchCV(MLPClassifier(hidden_layer_sizes=(4,), max_iter=5,
                                            backend="numpy"), grid, cv=2,
                              error_score="raise").fit(X, y)
    assert len(search.cv_results_["params"]) == 4


@pytest.mark.parametrize("which", PAIRS)
@pytest.mark.parametrize("bad", ["strings", "nan", "3-d", "features"])
def test_bad_inputs_to_predict_are_refused_as_scikit_learn(which, bad):
    ours_cls, their_cls = PAIRS[which]
    X, y = _data(which)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = ours_cls(hidden_layer_sizes=(3,), max_iter=2, backend="numpy").fit(X, y)
        theirs = their_cls(hidden_layer_sizes=(3,), max_iter=2).fit(X, y)
    Xb = {"strings": X.astype(str), "nan": np.where(X > 1, np.nan, X),
          "3-d": X[:, :, None], "features": X[:, :2]}[bad]
    got = _outcome(lambda: ours.predict(Xb))
    assert got is not None and got == _outcome(lambda: theirs.predict(Xb))


@pytest.mark.parametrize("which", PAIRS)
def test_lists_and_sparse_inputs_as_scikit_learn(which):
    ours_cls, their_cls = PAIRS[which]
    X, y = _data(which)
    params = dict(hidden_layer_sizes=(3,), solver="lbfgs", max_iter=5, random_state=0,
                  warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = ours_cls(backend="numpy", **params).fit(X.tolist(), y.tolist())
        theirs = their_cls(**params).fit(X, y)
        theirs.coefs_ = [c.copy() for c in ours.coefs_]
        theirs.intercepts_ = [b.copy() for b in ours.intercepts_]
        ours.fit(scipy.sparse.csr_matrix(X), y)
        theirs.fit(scipy.sparse.csr_matrix(X), y)
    np.testing.assert_allclose(ours.coefs_[0], theirs.coefs_[0], rtol=1e-9)
    np.testing.assert_allclose(ours.predict(X.tolist()), theirs.predict(X), rtol=1e-9)


# -- the fitted model ----------------------------------------------------------------------

@pytest.mark.parametrize("which", PAIRS)
def test_coefs_are_the_model(which):
    """Assigning to coefs_ / intercepts_ (or their elements) changes predict and
    partial_fit continues from them, as in scikit-learn's."""
    ours_cls, their_cls = PAIRS[which]
    X, y = _data(which)
    params = dict(hidden_layer_sizes=(4,), solver="sgd", momentum=0.0, shuffle=False,
                  batch_size=10, learning_rate_init=0.1, random_state=0, max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = ours_cls(backend="numpy", **params).fit(X, y)
        theirs = their_cls(**params).fit(X, y)
    theirs.coefs_ = [c.copy() for c in ours.coefs_]      # scikit-learn's given nnx's values,
    theirs.intercepts_ = [b.copy() for b in ours.intercepts_]
    for est in (ours, theirs):                           # then both edited alike
        est.coefs_[0][0, :] = 0.7
        est.intercepts_[-1][...] = -0.3
        est.coefs_[1] = est.coefs_[1] * 2.0
    if which == "classifier":
        np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-10)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-10)
    ours.partial_fit(X, y)
    theirs.partial_fit(X, y)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_,
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("which", PAIRS)
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_warm_start_n_iter_and_warning_as_scikit_learn(which, solver):
    ours_cls, their_cls = PAIRS[which]
    X, y = _data(which)
    params = dict(hidden_layer_sizes=(3,), max_iter=4, warm_start=True, solver=solver,
                  random_state=0, tol=0.0)
    for est in (ours_cls(backend="numpy", **params), their_cls(**params)):
        with pytest.warns(ConvergenceWarning):
            est.fit(X, y)
        with pytest.warns(ConvergenceWarning):   # the warm-started fit stops at max_iter too
            est.fit(X, y)
        assert est.n_iter_ == 4                  # this fit's iterations, not the sum
        if solver != "lbfgs":
            assert len(est.loss_curve_) == 8 and est.t_ == 8 * X.shape[0]


@pytest.mark.parametrize("x_dtype", ["float32", "float64"])
@pytest.mark.parametrize("which", PAIRS)
def test_prediction_dtype_as_scikit_learn(which, x_dtype):
    ours_cls, their_cls = PAIRS[which]
    X, y = _data(which)
    X = X.astype(x_dtype)
    params = dict(hidden_layer_sizes=(3,), max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = ours_cls(backend="numpy", **params).fit(X, y)
        theirs = their_cls(**params).fit(X, y)
    method = "predict" if which == "regressor" else "predict_proba"
    assert getattr(ours, method)(X).dtype == getattr(theirs, method)(X).dtype
    assert ours.coefs_[0].dtype == theirs.coefs_[0].dtype


def test_poisson_regressor_as_scikit_learn():
    """loss="poisson": exp output, half Poisson deviance; sgd epochs equal scikit-learn's."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((50, 3))
    y = rng.poisson(np.exp(0.5 * X[:, 0] - 0.2)).astype(float)
    params = dict(loss="poisson", hidden_layer_sizes=(4,), solver="sgd", momentum=0.0,
                  learning_rate_init=0.02, batch_size=10, shuffle=False, alpha=0.1,
                  random_state=0, warm_start=True, max_iter=1, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPRegressor(backend="numpy", **params).fit(X, y)
        theirs = neural_network.MLPRegressor(**params).fit(X, y)
        theirs.coefs_ = [c.copy() for c in ours.coefs_]
        theirs.intercepts_ = [b.copy() for b in ours.intercepts_]
        ours.set_params(max_iter=5).fit(X, y)
        theirs.set_params(max_iter=5).fit(X, y)
    assert ours.out_activation_ == theirs.out_activation_ == "exp"
    np.testing.assert_allclose(ours.loss_curve_[1:], theirs.loss_curve_[1:], rtol=1e-10)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-10)
    assert (ours.predict(X) > 0).all()


def _blow_up(which, early_stopping):
    ours_cls, their_cls = PAIRS[which]
    X, y = _data(which, n=60)
    params = dict(hidden_layer_sizes=(5,), solver="sgd", momentum=0.0, shuffle=False,
                  learning_rate_init=1e3, batch_size=10, early_stopping=early_stopping,
                  validation_fraction=0.3, random_state=0, max_iter=1, warm_start=True,
                  n_iter_no_change=100)
    y = y * 1e3 if which == "regressor" else y
    ours, theirs = ours_cls(backend="numpy", **params), their_cls(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours.set_params(learning_rate_init=1e-9).fit(X, y)
        theirs.set_params(learning_rate_init=1e-9).fit(X, y)
        theirs.coefs_ = [c.copy() for c in ours.coefs_]
        theirs.intercepts_ = [b.copy() for b in ours.intercepts_]
        if early_stopping:
            theirs._best_coefs = [c.copy() for c in ours.coefs_]
            theirs._best_intercepts = [b.copy() for b in ours.intercepts_]
            theirs.best_validation_score_ = ours.best_validation_score_
        for est in (ours, theirs):
            est.set_params(max_iter=6, learning_rate_init=1e3)
    return ours, theirs, X, y


def test_overflow_under_early_stopping_ends_on_the_best_weights_as_scikit_learn():
    ours, theirs, X, y = _blow_up("regressor", early_stopping=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours.fit(X, y)
        theirs.fit(X, y)
    assert np.isnan(theirs.validation_scores_[-1])
    np.testing.assert_allclose(ours.validation_scores_[1:], theirs.validation_scores_[1:],
                               rtol=1e-9)    # nan where scikit-learn's is nan
    assert ours.n_iter_ == theirs.n_iter_ == 6
    for a, b in zip(ours.coefs_, theirs.coefs_, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10)


def test_overflow_without_early_stopping_raises_scikit_learns_error():
    ours, theirs, X, y = _blow_up("regressor", early_stopping=False)
    got = _outcome(lambda: ours.fit(X, y))
    assert got is not None and got == _outcome(lambda: theirs.fit(X, y))


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_stochastic_epochs_with_l2_on_every_backend(backend, solver):
    """The L2 term reaches the update on every backend: scikit-learn's epochs, float64."""
    if backend.name == "jax":
        pytest.importorskip("jax").config.update("jax_enable_x64", True)
    X, y = _data("classifier")
    params = dict(hidden_layer_sizes=(4,), activation="tanh", alpha=0.5, batch_size=8,
                  shuffle=False, tol=0.0, n_iter_no_change=100, warm_start=True,
                  random_state=0, max_iter=1, solver=solver, learning_rate_init=0.05,
                  momentum=0.5, epsilon=1e-300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPClassifier(backend=backend.name, dtype="float64", **params).fit(X, y)
        theirs = neural_network.MLPClassifier(**params).fit(X, y)
        theirs.coefs_ = [c.copy() for c in ours.coefs_]
        theirs.intercepts_ = [b.copy() for b in ours.intercepts_]
        ours.set_params(max_iter=3).fit(X, y)
        theirs.set_params(max_iter=3).fit(X, y)
    np.testing.assert_allclose(ours.loss_curve_[1:], theirs.loss_curve_[1:], rtol=1e-9)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_,
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-11)
