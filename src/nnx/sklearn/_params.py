"""The estimators' constructor parameters: scikit-learn's names, defaults and checks.

:class:`MLPParams` holds them exactly as given (scikit-learn's ``get_params`` /
``set_params`` contract) and :meth:`MLPParams._check_params` validates them when ``fit``
starts, with scikit-learn's own messages ("The 'alpha' parameter of MLPClassifier must
be a float in [0.0, inf). Got -1 instead.").
"""

from __future__ import annotations

import math
from numbers import Integral, Real

from sklearn.base import BaseEstimator

__all__ = ["MLPParams", "ACTIVATIONS"]

#: scikit-learn's hidden activation names → nnx's.
ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}


class MLPParams(BaseEstimator):
    """The constructor parameters of both estimators, and their validation.

    Parameters (scikit-learn's, same defaults and meaning):
        hidden_layer_sizes: widths of the hidden layers, e.g. ``(100,)``.
        activation: ``"identity"``, ``"logistic"``, ``"tanh"`` or ``"relu"`` (hidden layers).
        solver: ``"adam"`` or ``"sgd"``.
        alpha: L2 strength; adds ``alpha/(2·batch) · Σ‖W‖²`` to each minibatch's loss.
        batch_size: rows per step, ``"auto"`` = min(200, n_samples).
        learning_rate: ``"constant"``, ``"invscaling"`` or ``"adaptive"`` (sgd only).
        learning_rate_init, power_t: the step size and the invscaling exponent.
        max_iter: epochs at most. shuffle: permute the rows every epoch.
        random_state: seeds the weights, the shuffling and the validation split.
        tol, n_iter_no_change: stop after ``n_iter_no_change`` epochs without a ``tol`` gain.
        verbose: print the loss per epoch. warm_start: continue from the last fit's weights.
        momentum, nesterovs_momentum: sgd's momentum (PyTorch's form; the same steps as
            scikit-learn's at a constant learning rate).
        early_stopping, validation_fraction: stop on a held-out score; keep its best weights.
        beta_1, beta_2, epsilon: Adam's moment decays and ε.
        backend: nnx backend name (``"numpy"``, ``"cupy"``, ``"torch"``, ``"jax"``,
            ``"array_api_strict"``); the active one when None.
        dtype: ``"float32"``, ``"float64"``, or None for float32 only with float32 input.
    """

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, backend=None,
                 dtype=None):
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
        self.backend = backend
        self.dtype = dtype

    # -- validation ----------------------------------------------------------------------
    def _check_params(self) -> list[int]:
        name = type(self).__name__

        def bad(param: str, expected: str) -> ValueError:
            return ValueError(f"The '{param}' parameter of {name} must be {expected}. "
                              f"Got {getattr(self, param)!r} instead.")

        def number(param: str, low: float, high: float = math.inf, *, low_open: bool = False,
                   high_open: bool = True, integral: bool = False) -> None:
            v = getattr(self, param)
            kind = Integral if integral else Real
            ok = isinstance(v, kind) and not isinstance(v, bool) and not math.isnan(v) and (
                v > low if low_open else v >= low) and (v < high if high_open else v <= high)
            if not ok:
                lo, hi = "(" if low_open else "[", ")" if high_open else "]"
                raise bad(param, f"{'an int' if integral else 'a float'} in "
                                 f"{lo}{low}, {high}{hi}")

        sizes = self.hidden_layer_sizes
        sizes = list(sizes) if hasattr(sizes, "__iter__") else [sizes]
        if not all(isinstance(s, Integral) and not isinstance(s, bool) and s > 0 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
        if self.activation not in ACTIVATIONS:
            raise bad("activation", f"a str among {sorted(ACTIVATIONS)}")
        if self.solver not in ("sgd", "adam"):
            hint = " (nnx offers the stochastic solvers only)" if self.solver == "lbfgs" else ""
            raise bad("solver", f"a str among ['adam', 'sgd']{hint}")
        if self.learning_rate not in ("constant", "invscaling", "adaptive"):
            raise bad("learning_rate", "a str among ['adaptive', 'constant', 'invscaling']")
        if self.batch_size != "auto":
            number("batch_size", 1, integral=True)
        for flag in ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping"):
            if not isinstance(getattr(self, flag), bool):
                raise bad(flag, "an instance of 'bool'")
        number("alpha", 0.0)
        number("learning_rate_init", 0.0, low_open=True)
        number("power_t", 0.0)
        number("max_iter", 1, integral=True)
        number("tol", 0.0)
        number("momentum", 0.0, 1.0, high_open=False)
        number("validation_fraction", 0.0, 1.0)
        number("beta_1", 0.0, 1.0)
        number("beta_2", 0.0, 1.0)
        number("epsilon", 0.0, low_open=True)
        if self.n_iter_no_change != math.inf:
            number("n_iter_no_change", 1, integral=True)
        if self.dtype not in (None, "float32", "float64"):
            raise bad("dtype", "None, 'float32' or 'float64'")
        return sizes
