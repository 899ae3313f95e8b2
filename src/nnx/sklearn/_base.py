"""The shared part of nnx.sklearn's estimators: the network, its weights and ``fit``.

:class:`BaseMLP` combines the parameters (:mod:`._params`) and the stochastic solvers'
loop (:mod:`._stochastic`) with what both estimators do the same way: build the nnx MLP
on the chosen backend with scikit-learn's Glorot initialization, add scikit-learn's L2
term to every step, export ``coefs_`` / ``intercepts_``, and pickle through host arrays.
"""

from __future__ import annotations

import math
from typing import Any

from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .. import backends as _registry
from .. import optim
from ..backend import asarray, resolve_backend, to_numpy
from ..sequential import MLP
from ..trainer import TrainingDivergedError
from ._params import ACTIVATIONS, MLPParams
from ._stochastic import StochasticSolver

__all__ = ["BaseMLP", "scaled_loss"]


def scaled_loss(fn: Any, xp: Any, scale: float, grad_scale: float) -> Any:
    """``fn`` with the namespace bound and its loss and gradient rescaled (sklearn's sums)."""
    if scale == 1.0 and grad_scale == 1.0:
        return lambda pred, y: fn(pred, y, xp=xp)

    def loss(pred: Any, y: Any) -> tuple[Any, Any]:
        value, grad = fn(pred, y, xp=xp)
        return value * scale, grad * grad_scale
    return loss


class BaseMLP(StochasticSolver, MLPParams):
    """Both estimators' network, weights, ``fit`` and pickling (parameters: :class:`MLPParams`)."""

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


