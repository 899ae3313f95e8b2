"""scikit-learn's MLPClassifier and MLPRegressor, computed by nnx on any backend.

    from nnx.sklearn import MLPClassifier
    clf = MLPClassifier(hidden_layer_sizes=(64,), backend="torch").fit(X, y)
    clf.predict(X_test), clf.predict_proba(X_test), clf.score(X_test, y_test)

A drop-in for ``sklearn.neural_network.MLPClassifier``/``MLPRegressor`` with the
stochastic solvers: the same constructor parameters and fitted attributes, the same
losses (half squared error; log-loss summed over labels), the same L2 term
(``alpha/2n · Σ‖W‖²`` per minibatch), Glorot-uniform initialization, stopping rules
(``tol``, ``n_iter_no_change``, ``early_stopping``) and learning-rate schedules. Not
bitwise the same numbers: the random draws and Adam's ε placement (PyTorch's) differ.

What differs: ``solver="lbfgs"`` is not offered (only ``"sgd"`` and ``"adam"``);
``fit`` takes no ``sample_weight``; ``backend=`` (a name such as ``"torch"``; the active
nnx backend when None) and ``dtype=`` (None: float32 for float32 input, else float64,
as scikit-learn) are added. Host inputs are copied to the backend once per ``fit``
with :func:`nnx.asarray`; every epoch runs there; ``coefs_``/``intercepts_`` are host
NumPy copies in scikit-learn's (in, out) orientation, refreshed after each fit.
Sparse inputs are accepted and densified. Pickling stores the weights on the host and
rebuilds the network on the same backend; the optimizer state is not kept.

``check_estimator`` passes for both classes; nnx asks to skip no check. (scikit-learn
itself skips three where they do not apply: pandas inputs when pandas is not installed,
array-API inputs unless ``SCIPY_ARRAY_API=1``, and the decision_function format check,
since MLPClassifier, like scikit-learn's, has no ``decision_function``.)

Layout: :mod:`._params` (the constructor parameters and their checks),
:mod:`._stochastic` (the sgd/adam epoch loop and its stopping rules), :mod:`._base`
(the network, its weights, ``fit``, pickling), :mod:`._estimators` (the two classes).
"""

from ._estimators import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]

# Pickles name the public path, as before the estimators moved into this package.
MLPClassifier.__module__ = MLPRegressor.__module__ = __name__
