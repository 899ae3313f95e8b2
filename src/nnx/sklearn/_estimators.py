"""The two estimators, MLPClassifier and MLPRegressor (see :mod:`nnx.sklearn`)."""

from __future__ import annotations

import math
from typing import Any

from sklearn.base import ClassifierMixin, RegressorMixin, _fit_context
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call,
    type_of_target,
    unique_labels,
)
from sklearn.utils.validation import column_or_1d, validate_data

from .. import losses as _losses
from ..backend import asarray, to_numpy
from ._base import BaseMLP
from ._losses import output, scaled_loss
from ._params import REGRESSOR_CONSTRAINTS

__all__ = ["MLPClassifier", "MLPRegressor"]


class MLPClassifier(ClassifierMixin, BaseMLP):
    """Multi-layer perceptron classifier (log-loss), a drop-in for scikit-learn's.

    Binary and multi-label targets get sigmoid outputs with binary log-loss summed over
    labels; multi-class targets a softmax with categorical log-loss. Parameters and
    attributes are scikit-learn's (see the module docstring for what differs).
    """

    def _validate_input(self, X: Any, y: Any, incremental: bool, reset: bool) -> tuple:
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=("float64", "float32"), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer().fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes, known = unique_labels(y), self._label_binarizer.classes_
            if self.warm_start and set(classes) != set(known):
                raise ValueError("warm_start can only be used where `y` has the same classes "
                                 f"as in the previous call to fit. Previously got "
                                 f"{known}, `y` has {classes}")
            if not self.warm_start and not set(classes) <= set(known):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` "
                                 f"has {known}. 'y' has {classes}.")
        self.out_activation_ = ("softmax" if self._label_binarizer.y_type_ == "multiclass"
                                else "logistic")
        return X, self._label_binarizer.transform(y).astype("float64")

    def _loss_name(self) -> str:
        return "log_loss" if self.out_activation_ == "softmax" else "binary_log_loss"

    def _fast_loss(self, k: int) -> Any:
        xp = self._backend.xp
        if self.out_activation_ == "softmax":
            return scaled_loss(_losses.softmax_cross_entropy, xp, 1.0, 1.0)
        return scaled_loss(_losses.sigmoid_binary_cross_entropy, xp, float(k), float(k))

    def _val_targets(self, y_val: Any) -> Any:
        return self._label_binarizer.inverse_transform(y_val)

    def _val_score(self, X_val: Any, y_val: Any, sample_weight: Any) -> float:
        labels = self._labels(self._model.predict(X_val))
        return float(accuracy_score(y_val, labels, sample_weight=sample_weight))

    def _labels(self, out: Any) -> Any:
        p = to_numpy(output(self.out_activation_, out, self._backend.xp))
        return self._label_binarizer.inverse_transform(p.ravel() if p.shape[1] == 1 else p)

    def predict(self, X: Any) -> Any:
        """Class labels (n_samples,), or a label indicator (n_samples, n_labels)."""
        out, _, to = self._forward(X)
        labels = self._labels(out)
        if to is None or labels.dtype.kind not in "biuf":   # strings stay NumPy
            return labels
        return asarray(labels, backend=to)

    def _proba_table(self, X: Any) -> tuple[Any, str, Any]:
        out, dtype, to = self._forward(X)
        p = output(self.out_activation_, out, self._backend.xp)
        if self.n_outputs_ == 1:  # binary: columns for classes_[0] and classes_[1]
            p = self._backend.xp.concat([1.0 - p, p], axis=1)
        return p, dtype, to

    def predict_proba(self, X: Any) -> Any:
        """Class probabilities (n_samples, n_classes), ordered as ``classes_``."""
        return self._deliver(*self._proba_table(X))

    def predict_log_proba(self, X: Any) -> Any:
        """The natural log of :meth:`predict_proba` (−inf where a probability is 0)."""
        p, dtype, to = self._proba_table(X)
        return self._deliver(self._backend.xp.log(p), dtype, to)

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None,
                    classes: Any = None) -> MLPClassifier:
        """One epoch over (X, y); ``classes`` (all labels) is required on the first call.

        Not available for ``solver="lbfgs"`` (an AttributeError, as scikit-learn).
        """
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            target = y if type_of_target(y).startswith("multilabel") else classes
            self._label_binarizer.fit(target)
        return self._fit(X, y, sample_weight, incremental=True)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        tags.input_tags.sparse = True
        return tags


class MLPRegressor(RegressorMixin, BaseMLP):
    """Multi-layer perceptron regressor, a drop-in for scikit-learn's.

    ``loss="squared_error"`` (half squared error, identity output) or ``"poisson"`` (half
    Poisson deviance with an exponential output: ``out_activation_ == "exp"``).
    Predictions are host arrays, (n_samples,) for one output, float32 only for float32
    input to a float32 model (as scikit-learn's).
    """

    _parameter_constraints: dict = REGRESSOR_CONSTRAINTS

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 backend=None, dtype=None, compute_dtype=None):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change,
            max_fun=max_fun, backend=backend, dtype=dtype, compute_dtype=compute_dtype)
        self.loss = loss

    def _validate_input(self, X: Any, y: Any, incremental: bool, reset: bool) -> tuple:
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             y_numeric=True, dtype=("float64", "float32"), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        self.out_activation_ = "exp" if self.loss == "poisson" else "identity"
        return X, y

    def _loss_name(self) -> str:
        return self.loss

    def _fast_loss(self, k: int) -> Any:
        if self.loss != "squared_error":
            return None
        # scikit-learn: loss = mean((Z − Y)²)/2, gradient (Z − Y)/n (mse's is 2(Z − Y)/nk)
        return scaled_loss(_losses.mse, self._backend.xp, 0.5, k / 2.0)

    def _val_targets(self, y_val: Any) -> Any:
        return y_val.ravel() if y_val.shape[1] == 1 else y_val

    def _val_score(self, X_val: Any, y_val: Any, sample_weight: Any) -> float:
        pred = self._host(self._model.predict(X_val), "float64")
        if not math.isfinite(float(pred.sum())):
            return math.nan                           # scikit-learn's score of a blow-up
        return float(r2_score(y_val, pred, sample_weight=sample_weight))

    def _host(self, out: Any, dtype: str) -> Any:
        p = to_numpy(output(self.out_activation_, out, self._backend.xp)).astype(dtype,
                                                                                  copy=False)
        return p.ravel() if p.shape[1] == 1 else p

    def predict(self, X: Any) -> Any:
        """Predicted values: (n_samples,) or (n_samples, n_outputs)."""
        out, dtype, to = self._forward(X)
        xp = self._backend.xp
        out = output(self.out_activation_, out, xp)
        if out.shape[1] == 1:
            out = xp.reshape(out, (-1,))
        return self._deliver(out, dtype, to)

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPRegressor:
        """One epoch over (X, y), continuing from the current weights (not for lbfgs)."""
        return self._fit(X, y, sample_weight, incremental=True)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags
