"""The shared part of nnx.sklearn's estimators: parameters, validation, the training loop.

Imported only by :mod:`nnx.sklearn` (it needs scikit-learn). The loop follows
scikit-learn's ``_fit_stochastic`` step by step: per-epoch loss curve, ``tol`` /
``n_iter_no_change`` stopping on the training loss or, with ``early_stopping``, on a
held-out score whose best weights are restored; ``invscaling`` and ``adaptive``
learning rates for ``solver="sgd"``.
"""

from __future__ import annotations

import math
import warnings
from numbers import Integral, Real
from typing import Any

from sklearn.base import BaseEstimator, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from . import backends as _registry
from . import optim
from .backend import asarray, resolve_backend, to_numpy
from .sequential import MLP
from .training import Trainer, TrainingDivergedError

__all__ = ["BaseMLP", "ACTIVATIONS", "scaled_loss"]

ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}


def scaled_loss(fn: Any, xp: Any, scale: float, grad_scale: float) -> Any:
    """``fn`` with the namespace bound and its loss and gradient rescaled (sklearn's sums)."""
    if scale == 1.0 and grad_scale == 1.0:
        return lambda pred, y: fn(pred, y, xp=xp)

    def loss(pred: Any, y: Any) -> tuple[Any, Any]:
        value, grad = fn(pred, y, xp=xp)
        return value * scale, grad * grad_scale
    return loss


class BaseMLP(BaseEstimator):
    """Shared parameters, validation and the stochastic training loop.

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

    # -- device helpers ------------------------------------------------------------------
    def _to_device(self, X: Any) -> Any:
        if hasattr(X, "toarray"):  # scipy sparse: densify (the engine is dense)
            X = X.toarray()
        xp = self._backend.xp
        X = asarray(X, backend=self._backend)
        return X if X.dtype == self._xp_dtype else xp.astype(X, self._xp_dtype)

    def _forward(self, X: Any) -> Any:
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False,
                          dtype=("float64", "float32"))
        return self._model.predict(self._to_device(X))

    def _initialize(self, n_features: int, n_outputs: int, sizes: list[int], dtype: str,
                    rs: Any) -> None:
        self._backend = backend = resolve_backend(self.backend)
        self._dtype_name = dtype
        self._xp_dtype = getattr(backend.xp, dtype)
        units = [n_features, *sizes, n_outputs]
        self._model = MLP(units, activation=ACTIVATIONS[self.activation], init="zeros",
                          dtype=dtype, backend=backend)
        factor = 2.0 if self.activation == "logistic" else 6.0  # Glorot, as scikit-learn
        seeds = _registry.spawn_seeds(int(rs.randint(0, 2**31 - 1)), 2 * len(units))
        for i, layer in enumerate(self._model.dense_layers):
            bound = math.sqrt(factor / (layer.in_features + layer.out_features))
            layer.W = backend.uniform((layer.out_features, layer.in_features), low=-bound,
                                      high=bound, seed=seeds[2 * i], dtype=dtype)
            layer.b = backend.uniform((layer.out_features,), low=-bound, high=bound,
                                      seed=seeds[2 * i + 1], dtype=dtype)
        self.n_outputs_ = n_outputs
        self.n_layers_ = len(units)
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_ = []
        self._no_improvement_count = 0
        self.validation_scores_ = [] if self.early_stopping else None
        self.best_validation_score_ = -math.inf if self.early_stopping else None
        self.best_loss_ = None if self.early_stopping else math.inf

    def _penalty(self) -> Any:
        alpha = float(self.alpha)
        if alpha == 0.0:
            return None
        xp = self._backend.xp

        def l2(model: Any, n_batch: int) -> Any:   # sklearn: grad += αW/n, loss += α/2n Σ‖W‖²
            total = 0.0
            for layer in model.dense_layers:
                W, g = layer.W, layer.dW
                g += (alpha / n_batch) * W
                layer.dW = g
                total = total + xp.sum(W * W)
            return total * (0.5 * alpha / n_batch)
        return l2

    def _make_optimizer(self) -> optim.Optimizer:
        if self.solver == "sgd":
            return optim.SGD(self.learning_rate_init, momentum=self.momentum,
                             nesterov=self.nesterovs_momentum and self.momentum > 0)
        return optim.Adam(self.learning_rate_init, betas=(self.beta_1, self.beta_2),
                          eps=self.epsilon)

    # -- training ------------------------------------------------------------------------
    def _fit(self, X: Any, y: Any, incremental: bool = False) -> BaseMLP:
        sizes = self._check_params()
        first = not hasattr(self, "_model") or (not self.warm_start and not incremental)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        X, Y = self._validate_input(X, y, incremental, reset=first)
        if Y.ndim == 1:
            Y = Y.reshape((-1, 1))
        rs = check_random_state(self.random_state)
        if first:
            dtype = self.dtype or ("float32" if X.dtype == "float32" else "float64")
            self._initialize(X.shape[1], Y.shape[1], sizes, dtype, rs)
        elif Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {Y.shape[1]} outputs but the fitted network has "
                             f"{self.n_outputs_}; refit without warm_start")
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = self._make_optimizer()
        try:
            self._fit_stochastic(X, Y, rs, incremental)
        except TrainingDivergedError as exc:
            raise ValueError(f"Solver produced non-finite parameter weights: {exc}. The input "
                             "data may contain large values and need to be preprocessed.") from None
        self._export_weights()
        return self

    def _fit_stochastic(self, X: Any, Y: Any, rs: Any, incremental: bool) -> None:
        X_val = y_val = None
        if self.early_stopping:
            stratify = Y if is_classifier(self) and self.n_outputs_ == 1 else None
            X, X_val, Y, y_val = train_test_split(X, Y, random_state=rs, stratify=stratify,
                                                  test_size=self.validation_fraction)
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
            y_val = self._val_targets(y_val)
            X_val = self._to_device(X_val)
            self._snapshot()
        n = X.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. "
                              "It is going to be clipped", stacklevel=3)
            batch_size = min(self.batch_size, n)
        opt = self._optimizer
        trainer = Trainer(self._model, self._to_device(X), asarray(Y, backend=self._backend,
                          dtype=self._dtype_name), loss=self._loss(Y.shape[1]), optimizer=opt,
                          batch_size=batch_size, shuffle=self.shuffle,
                          seed=int(rs.randint(0, 2**31 - 1)), penalty=self._penalty())
        for _ in range(self.max_iter):
            self.loss_ = trainer.epoch()
            self.n_iter_ += 1
            self.t_ += n
            self.loss_curve_.append(self.loss_)
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
            self._update_no_improvement_count(X_val, y_val)
            if self.solver == "sgd" and self.learning_rate == "invscaling":
                opt.lr = self.learning_rate_init / (self.t_ + 1) ** self.power_t
            if self._no_improvement_count > self.n_iter_no_change:
                what = "Validation score" if self.early_stopping else "Training loss"
                msg = (f"{what} did not improve more than tol={self.tol:f} for "
                       f"{self.n_iter_no_change} consecutive epochs.")
                if self.solver == "sgd" and self.learning_rate == "adaptive" and opt.lr > 1e-6:
                    opt.lr /= 5.0
                    self._no_improvement_count = 0
                    if self.verbose:
                        print(f"{msg} Setting learning rate to {opt.lr:f}")
                else:
                    if self.verbose:
                        print(f"{msg} Stopping.")
                    break
            if incremental:
                break
            if self.n_iter_ == self.max_iter:
                warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                              "reached and the optimization hasn't converged yet.",
                              ConvergenceWarning, stacklevel=3)
        if self.early_stopping:
            for layer, (W, b) in zip(self._model.dense_layers, self._best, strict=True):
                layer.W, layer.b = W, b

    def _update_no_improvement_count(self, X_val: Any, y_val: Any) -> None:
        if self.early_stopping:
            score = self._val_score(X_val, y_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Validation score: {score:f}")
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._snapshot()
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            self.best_loss_ = min(self.best_loss_, self.loss_curve_[-1])

    def _snapshot(self) -> None:
        xp = self._backend.xp
        self._best = [(xp.asarray(d.W, copy=True), xp.asarray(d.b, copy=True))
                      for d in self._model.dense_layers]

    def _export_weights(self) -> None:
        self.coefs_ = [to_numpy(d.W).T.copy() for d in self._model.dense_layers]
        self.intercepts_ = [to_numpy(d.b) for d in self._model.dense_layers]

    def fit(self, X: Any, y: Any) -> BaseMLP:
        """Fit to data X (n_samples, n_features) and targets y; returns self."""
        return self._fit(X, y, incremental=False)

    # -- pickling: weights travel as host arrays, the network is rebuilt on load ---------
    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())  # a copy: never strip the live object
        for key in ("_model", "_optimizer", "_backend", "_xp_dtype", "_best"):
            state.pop(key, None)
        if hasattr(self, "_model"):
            state["_host_weights"] = [(to_numpy(d.W), to_numpy(d.b))
                                      for d in self._model.dense_layers]
            state["_backend_name"] = self._backend.name
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        weights = state.pop("_host_weights", None)
        backend_name = state.pop("_backend_name", None)
        super().__setstate__(state)
        if weights is not None:
            self._backend = backend = resolve_backend(backend_name)
            self._xp_dtype = getattr(backend.xp, self._dtype_name)
            units = [weights[0][0].shape[1]] + [W.shape[0] for W, _ in weights]
            self._model = MLP(units, activation=ACTIVATIONS[self.activation], init="zeros",
                              dtype=self._dtype_name, backend=backend)
            for layer, (W, b) in zip(self._model.dense_layers, weights, strict=True):
                layer.W, layer.b = backend.from_numpy(W), backend.from_numpy(b)


