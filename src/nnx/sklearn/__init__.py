"""scikit-learn's MLPClassifier and MLPRegressor, computed by nnx on any backend.

    from nnx.sklearn import MLPClassifier
    clf = MLPClassifier(hidden_layer_sizes=(64,), backend="torch").fit(X, y)
    clf.predict(X_test), clf.predict_proba(X_test), clf.score(X_test, y_test)

A drop-in for ``sklearn.neural_network.MLPClassifier``/``MLPRegressor`` (scikit-learn
1.7+): the same constructor parameters (validated by scikit-learn's own constraint
table, so the same ``InvalidParameterError`` texts), fitted attributes and solvers —
``"lbfgs"`` (scikit-learn's L-BFGS-B through SciPy, each loss and gradient computed by
nnx on the backend; only the packed weight vector crosses to the host), ``"sgd"`` and
``"adam"`` (nnx's epoch loop) — the same losses (half squared error, half Poisson
deviance with ``loss="poisson"``, log-loss summed over labels), the same L2 term
(``alpha/2s · Σ‖W‖²``, s the batch's rows or its sum of ``sample_weight``), Glorot-uniform
initialization, stopping rules and learning-rate schedules, and ``sample_weight`` in
``fit`` and ``partial_fit`` with metadata routing. From the same weights, nnx follows
scikit-learn's trajectory to rounding (tested). Not bitwise the same numbers: the
random draws and Adam's ε placement (PyTorch's) differ.

What nnx adds: ``backend=`` (a name such as ``"torch"``; the active nnx backend when
None), ``dtype=`` (None: float32 for float32 input, else float64, as scikit-learn) and
``compute_dtype=`` (``"bfloat16"``/``"float16"``: low-precision products with float32
master weights, :mod:`nnx.precision`; float64 input is then cast to float32, and
``dtype="float64"`` is a ValueError).
Host inputs are copied to the backend once per ``fit``; every epoch (or L-BFGS
evaluation) runs there. ``coefs_``/``intercepts_`` are host NumPy arrays in
scikit-learn's (in, out) orientation and they are the model: the network is loaded
from them on every prediction and when a fit continues, so editing them changes
``predict``, as in scikit-learn. Sparse inputs are accepted and densified. Under
scikit-learn's ``array_api_dispatch``, arrays of another library (torch, CuPy, JAX,
array-api-strict) train with that library on their device unless ``backend=`` says
otherwise, and predictions come back in the input's library (``fit`` checks its inputs
on the host: one round trip per fit). Pickles hold
host arrays only; the network is rebuilt on the same backend when first used.

``check_estimator`` passes for both classes; nnx asks to skip no check. (scikit-learn
itself skips three where they do not apply: pandas inputs when pandas is not installed,
array-API inputs unless ``SCIPY_ARRAY_API=1``, and the decision_function format check,
since MLPClassifier, like scikit-learn's, has no ``decision_function``.)

Layout: :mod:`._params` (the constructor parameters and their checks), :mod:`._losses`
(scikit-learn's losses with sample weights, on any backend), :mod:`._stochastic` (the
sgd/adam epoch loop and its stopping rules), :mod:`._lbfgs` (L-BFGS-B), :mod:`._base`
(the network, its weights, ``fit``, pickling), :mod:`._estimators` (the two classes).
"""

from ._estimators import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]

# Pickles name the public path, as before the estimators moved into this package.
MLPClassifier.__module__ = MLPRegressor.__module__ = __name__
