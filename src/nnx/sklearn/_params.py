"""The estimators' constructor parameters: scikit-learn's names, defaults and checks.

:class:`MLPParams` holds them exactly as given (scikit-learn's ``get_params`` /
``set_params`` contract). They are validated when ``fit`` starts by scikit-learn's own
machinery (``_parameter_constraints``: scikit-learn's MLP's own table plus nnx's
``backend`` and ``dtype``), so a bad value raises scikit-learn's ``InvalidParameterError``
with its text ("The 'alpha' parameter of MLPClassifier must be a float in the range
[0.0, inf). Got -1 instead."), and what it accepts (``np.int64(64)``, ``momentum=1.0``,
``np.float32(0.01)``) is accepted.
"""

from __future__ import annotations

import numbers

from sklearn import neural_network as _sk
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import StrOptions

from ..inputs import show

__all__ = ["MLPParams", "ACTIVATIONS", "CONSTRAINTS", "REGRESSOR_CONSTRAINTS", "NON_FINITE"]

#: the widest hidden layer accepted (a wider one could never be allocated).
MAX_WIDTH = 2**31 - 1

#: scikit-learn's error when training ends with non-finite weights
NON_FINITE = ("Solver produced non-finite parameter weights. The input data may contain "
              "large values and need to be preprocessed.")

#: scikit-learn's hidden activation names → nnx's.
ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}

#: nnx's own parameters: a backend name (resolved, and refused if unknown, at fit), dtype
#: and the compute dtype of the products (nnx.precision)
NNX_CONSTRAINTS: dict = {"backend": [str, None],
                         "dtype": [StrOptions({"float32", "float64"}), None],
                         "compute_dtype": [StrOptions({"bfloat16", "float16"}), None]}

#: scikit-learn's own MLP constraints (the same objects, so the same messages), plus nnx's.
CONSTRAINTS: dict = {**_sk.MLPClassifier._parameter_constraints, **NNX_CONSTRAINTS}
REGRESSOR_CONSTRAINTS: dict = {**_sk.MLPRegressor._parameter_constraints, **NNX_CONSTRAINTS}


class MLPParams(BaseEstimator):
    """The constructor parameters of both estimators, and their validation.

    Parameters (scikit-learn's, same defaults and meaning):
        hidden_layer_sizes: widths of the hidden layers, e.g. ``(100,)``.
        activation: ``"identity"``, ``"logistic"``, ``"tanh"`` or ``"relu"`` (hidden layers).
        solver: ``"lbfgs"``, ``"sgd"`` or ``"adam"``.
        alpha: L2 strength; adds ``alpha/(2·Σw) · Σ‖W‖²`` to the loss (Σw: the batch's
            sample weights, its row count without ``sample_weight``).
        batch_size: rows per step, ``"auto"`` = min(200, n_samples) (stochastic solvers).
        learning_rate: ``"constant"``, ``"invscaling"`` or ``"adaptive"`` (sgd only).
        learning_rate_init, power_t: the step size and the invscaling exponent.
        max_iter: epochs at most (sgd, adam); iterations at most (lbfgs).
        shuffle: permute the rows every epoch.
        random_state: seeds the weights, the shuffling and the validation split.
        tol, n_iter_no_change: stop after ``n_iter_no_change`` epochs without a ``tol``
            gain; for lbfgs, ``tol`` is L-BFGS-B's ``gtol``.
        verbose: print the loss per epoch. warm_start: continue from the last fit's weights.
        momentum, nesterovs_momentum: sgd's momentum (PyTorch's form; the same steps as
            scikit-learn's at a constant learning rate).
        early_stopping, validation_fraction: stop on a held-out score; keep its best weights.
        beta_1, beta_2, epsilon: Adam's moment decays and ε.
        max_fun: lbfgs's limit on loss evaluations.
        backend: nnx backend name (``"numpy"``, ``"cupy"``, ``"torch"``, ``"jax"``,
            ``"array_api_strict"``); the active one when None.
        dtype: ``"float32"``, ``"float64"``, or None for float32 only with float32 input.
        compute_dtype: None, ``"bfloat16"`` or ``"float16"``: the matrix products run in
            it with float32 master weights (:mod:`nnx.precision`); ``dtype`` None then
            means float32 for any input (float64 input is cast, as with
            ``dtype="float32"``) and ``dtype="float64"`` is refused at ``fit``. sgd and
            adam scale the loss for float16 (:mod:`nnx.loss_scale`); lbfgs does not.
    """

    _parameter_constraints: dict = CONSTRAINTS

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 backend=None, dtype=None, compute_dtype=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.backend = backend
        self.dtype = dtype
        self.compute_dtype = compute_dtype

    def _hidden_sizes(self) -> list[int]:
        """``hidden_layer_sizes`` as a list of ints, checked as scikit-learn's ``_fit`` does."""
        sizes = self.hidden_layer_sizes
        sizes = list(sizes) if hasattr(sizes, "__iter__") else [sizes]
        for s in sizes:   # scikit-learn's own fit raises a TypeError for these too
            if isinstance(s, bool) or not isinstance(s, numbers.Integral):
                raise TypeError("hidden_layer_sizes must hold integers (the widths of the "
                                f"hidden layers); got {type(s).__name__} {show(s)}")
        if any(s <= 0 for s in sizes):   # scikit-learn's words (huge integers summarized)
            shown = sizes if all(abs(s) < 2**64 for s in sizes) else [show(s) for s in sizes]
            raise ValueError(f"hidden_layer_sizes must be > 0, got {shown}.")
        if any(s > MAX_WIDTH for s in sizes):
            raise ValueError(f"hidden_layer_sizes: a width above {MAX_WIDTH} cannot be "
                             f"allocated; got {[show(s) for s in sizes]}")
        return [int(s) for s in sizes]

    def _master_dtype(self, X_dtype: str) -> str:
        """The parameters' dtype for a first fit on input of ``X_dtype``."""
        if self.compute_dtype is None:
            return self.dtype or ("float32" if X_dtype == "float32" else "float64")
        if self.dtype not in (None, "float32"):
            raise ValueError(f"compute_dtype={self.compute_dtype!r} multiplies in "
                             f"{self.compute_dtype} with float32 master weights: dtype must be "
                             f"None or 'float32'; got dtype={self.dtype!r}")
        return "float32"
