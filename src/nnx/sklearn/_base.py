"""The shared part of nnx.sklearn's estimators: the network, its weights and ``fit``.

:class:`BaseMLP` combines the parameters (:mod:`._params`) and the two solvers
(:mod:`._stochastic`, :mod:`._lbfgs`) with what both estimators do the same way: build
the nnx MLP on the chosen backend with scikit-learn's Glorot initialization, validate
parameters, inputs and ``sample_weight`` as scikit-learn does, and keep ``coefs_`` /
``intercepts_`` as the model.

``coefs_`` (in, out) and ``intercepts_`` are host NumPy arrays, and they are the model,
as in scikit-learn: the device network is loaded from them when a fit continues
(``warm_start``, ``partial_fit``) and on every prediction, so assigning to them (or to
their elements) changes what ``predict`` returns. They are refreshed at the end of each
fit. Pickles hold them and nothing device-bound; the network is rebuilt on load.
"""

from __future__ import annotations

import math
from typing import Any

from sklearn import get_config
from sklearn.base import _fit_context, is_classifier
from sklearn.utils import check_random_state
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from .. import backends as _registry
from .. import optim
from ..backend import asarray, resolve_backend, to_numpy
from ..sequential import MLP
from ._lbfgs import LbfgsSolver
from ._losses import Cell, make_loss
from ._params import ACTIVATIONS, NON_FINITE, MLPParams
from ._stochastic import StochasticSolver

__all__ = ["BaseMLP", "dispatch_backend"]


def dispatch_backend(X: Any) -> Any:
    """The nnx backend (with its device) of ``X`` when scikit-learn's ``array_api_dispatch``
    is on and ``X`` is an array of another library than NumPy; None otherwise."""
    if not get_config().get("array_api_dispatch", False) or hasattr(X, "toarray"):
        return None
    try:
        backend = _registry.backend_of(X)
    except (TypeError, ValueError):   # a list, a pandas frame, ...: not an array library's
        return None
    return None if backend.name == "numpy" else backend


def _host(a: Any) -> Any:
    """``a`` as a host NumPy array if it is an array of another library, else ``a``."""
    return to_numpy(a) if dispatch_backend(a) is not None else a


class BaseMLP(StochasticSolver, LbfgsSolver, MLPParams):
    """Both estimators' network, weights, ``fit`` and pickling (parameters: :class:`MLPParams`)."""

    # -- device helpers ------------------------------------------------------------------
    def _to_device(self, X: Any) -> Any:
        if hasattr(X, "toarray"):  # scipy sparse: densify (the engine is dense)
            X = X.toarray()
        xp = self._backend.xp
        X = asarray(X, backend=self._backend)
        return X if X.dtype == self._xp_dtype else xp.astype(X, self._xp_dtype)

    def _targets(self, Y: Any, sample_weight: Any) -> Any:
        """Y (n, k) on the device, with the sample weights as a last column if given."""
        Y = asarray(Y, backend=self._backend, dtype=self._dtype_name)
        if sample_weight is None:
            return Y
        xp = self._backend.xp
        w = asarray(sample_weight, backend=self._backend, dtype=self._dtype_name)
        return xp.concat([Y, xp.reshape(w, (-1, 1))], axis=1)

    def _make_loss(self, *, weighted: bool) -> tuple[Any, Cell]:
        cell = Cell()
        return make_loss(self._loss_name(), self._backend.xp, weighted=weighted, cell=cell), cell

    def _forward(self, X: Any) -> tuple[Any, str, Any]:
        """``(Z, dtype, to)``: the network's raw output Z (n, k) on the device, from the
        current ``coefs_``; the dtype of the results (float32 only for float32 input to a
        float32 model, as scikit-learn); the backend to return them on (None: NumPy)."""
        check_is_fitted(self)
        to = dispatch_backend(X)   # under array_api_dispatch X stays in its library
        X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        self._load_weights()
        single = str(X.dtype).endswith("float32") and self._dtype_name == "float32"
        return self._model.forward(self._to_device(X)), "float32" if single else "float64", to

    def _deliver(self, out: Any, dtype: str, to: Any) -> Any:
        """A result on the model's backend, as ``dtype``, in NumPy or on backend ``to``."""
        if to is None:
            return to_numpy(out).astype(dtype, copy=False)
        xp = self._backend.xp
        out = xp.astype(out, getattr(xp, dtype))
        if to.name == self._backend.name and str(to.device) == str(self._backend.device):
            return out
        return asarray(out, backend=to)

    # -- the network and its weights -----------------------------------------------------
    def _build(self, units: list[int], backend: Any = None) -> None:
        self._backend = backend or resolve_backend(self._backend_name)
        self._xp_dtype = getattr(self._backend.xp, self._dtype_name)
        self._model = MLP(units, activation=ACTIVATIONS[self.activation], init="zeros",
                          dtype=self._dtype_name, backend=self._backend,
                          compute_dtype=getattr(self, "_compute_name", None))

    def _load_weights(self) -> None:
        """The device network from ``coefs_`` / ``intercepts_`` (built if needed)."""
        if getattr(self, "_model", None) is None:
            self._build([self.coefs_[0].shape[0]] + [c.shape[1] for c in self.coefs_])
        backend = self._backend
        for layer, W, b in zip(self._model.dense_layers, self.coefs_, self.intercepts_,
                               strict=True):
            layer.W = asarray(W.T, backend=backend)
            layer.b = asarray(b, backend=backend)

    def _export_weights(self) -> None:
        self.coefs_ = [to_numpy(d.W).T.copy() for d in self._model.dense_layers]
        self.intercepts_ = [to_numpy(d.b) for d in self._model.dense_layers]

    def _initialize(self, n_features: int, n_outputs: int, sizes: list[int], dtype: str,
                    rs: Any, backend: Any) -> None:
        self._dtype_name = dtype
        self._compute_name = self.compute_dtype   # what predict computes in, until a refit
        units = [n_features, *sizes, n_outputs]
        self._build(units, backend)
        self._backend_name = self._backend.name
        backend = self._backend
        factor = 2.0 if self.activation == "logistic" else 6.0  # Glorot, as scikit-learn
        seeds = _registry.spawn_seeds(int(rs.randint(0, 2**31 - 1)), 2 * len(units))
        for i, layer in enumerate(self._model.dense_layers):
            bound = math.sqrt(factor / (layer.in_features + layer.out_features))
            layer.W = backend.uniform((layer.out_features, layer.in_features), low=-bound,
                                      high=bound, seed=seeds[2 * i], dtype=dtype)
            layer.b = backend.uniform((layer.out_features,), low=-bound, high=bound,
                                      seed=seeds[2 * i + 1], dtype=dtype)
        self._export_weights()
        self.n_outputs_ = n_outputs
        self.n_layers_ = len(units)
        self.n_iter_ = 0
        self.t_ = 0
        for name in ("loss_curve_", "best_loss_", "validation_scores_",
                     "best_validation_score_"):
            self.__dict__.pop(name, None)
        if self.solver != "lbfgs":
            self.loss_curve_ = []
            self._no_improvement_count = 0
            self.validation_scores_ = [] if self.early_stopping else None
            self.best_validation_score_ = -math.inf if self.early_stopping else None
            self.best_loss_ = None if self.early_stopping else math.inf
        self._best = None   # early_stopping's best weights: the initial ones until a score

    def _make_optimizer(self) -> optim.Optimizer:
        if self.solver == "sgd":
            # nnx's SGD takes momentum < 1; scikit-learn's also 1.0: the float just below it
            momentum = min(float(self.momentum), 1.0 - 2.0**-53)
            return optim.SGD(float(self.learning_rate_init), momentum=momentum,
                             nesterov=bool(self.nesterovs_momentum) and momentum > 0)
        return optim.Adam(float(self.learning_rate_init),
                          betas=(float(self.beta_1), float(self.beta_2)),
                          eps=float(self.epsilon))

    # -- training ------------------------------------------------------------------------
    def _fit(self, X: Any, y: Any, sample_weight: Any = None,
             incremental: bool = False) -> BaseMLP:
        sizes = self._hidden_sizes()
        first = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        source = dispatch_backend(X)   # array_api_dispatch: train where X lives
        y_source = dispatch_backend(y)
        X, y, sample_weight = _host(X), _host(y), _host(sample_weight)   # checked on the host
        X, Y = self._validate_input(X, y, incremental, reset=first)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
        if Y.ndim == 1:
            Y = Y.reshape((-1, 1))
        rs = check_random_state(self.random_state)
        if first:
            dtype = self._master_dtype(str(X.dtype))
            backend = resolve_backend(self.backend) if self.backend is not None or \
                source is None else source
            self._initialize(X.shape[1], Y.shape[1], sizes, dtype, rs, backend)
        elif Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {Y.shape[1]} outputs but the fitted network has "
                             f"{self.n_outputs_}; refit without warm_start")
        else:
            self._load_weights()   # coefs_ / intercepts_ are the model: continue from them
            if self.compute_dtype != getattr(self, "_compute_name", None):   # set_params
                if self.compute_dtype is not None and self._dtype_name != "float32":
                    raise ValueError(f"compute_dtype={self.compute_dtype!r} needs float32 master "
                                     f"weights; the fitted network's are {self._dtype_name}: "
                                     "refit without warm_start")
                self._model.compute_dtype = self._compute_name = self.compute_dtype
        if self.solver == "lbfgs":
            self._fit_lbfgs(X, Y, sample_weight)
        else:
            if not incremental or not hasattr(self, "_optimizer"):
                self._optimizer = self._make_optimizer()
            self._fit_stochastic(X, Y, sample_weight, rs, incremental)
        self._export_weights()
        if not all(math.isfinite(float(a.sum())) for a in self.coefs_ + self.intercepts_):
            raise ValueError(NON_FINITE)
        if is_classifier(self) and y_source is not None:  # classes_ in y's library, as
            classes = self._label_binarizer.classes_     # scikit-learn under dispatch
            if classes.dtype.kind in "biuf":
                self.classes_ = asarray(classes, backend=y_source)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> BaseMLP:
        """Fit to data X (n_samples, n_features) and targets y; returns self.

        ``sample_weight`` (n_samples,): per-sample weights, as scikit-learn ≥ 1.7 (a
        weighted mean loss; the L2 term divided by the sum of the weights).
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def _check_solver(self) -> bool:
        if self.solver not in ("sgd", "adam"):
            raise AttributeError("partial_fit is only available for stochastic optimizers. "
                                 f"{self.solver} is not stochastic.")
        return True

    # -- pickling: weights travel as host arrays, the network is rebuilt on load ---------
    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())  # a copy: never strip the live object
        for key in ("_model", "_optimizer", "_backend", "_xp_dtype", "_best"):
            state.pop(key, None)
        return state
