"""The two estimators, MLPClassifier and MLPRegressor (see :mod:`nnx.sklearn`)."""

from __future__ import annotations

from typing import Any

from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call,
    type_of_target,
    unique_labels,
)
from sklearn.utils.validation import column_or_1d, validate_data

from .. import activations as F
from .. import losses as _losses
from ..backend import to_numpy
from ._base import BaseMLP, scaled_loss

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
            classes = unique_labels(y)
            if self.warm_start and set(classes) != set(self.classes_):
                raise ValueError("warm_start can only be used where `y` has the same classes "
                                 f"as in the previous call to fit. Previously got "
                                 f"{self.classes_}, `y` has {classes}")
            if not self.warm_start and not set(classes) <= set(self.classes_):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` "
                                 f"has {self.classes_}. 'y' has {classes}.")
        self.out_activation_ = ("softmax" if self._label_binarizer.y_type_ == "multiclass"
                                else "logistic")
        return X, self._label_binarizer.transform(y).astype("float64")

    def _loss(self, k: int) -> Any:
        xp = self._backend.xp
        if self.out_activation_ == "softmax":
            return scaled_loss(_losses.softmax_cross_entropy, xp, 1.0, 1.0)
        return scaled_loss(_losses.sigmoid_binary_cross_entropy, xp, float(k), float(k))

    def _val_targets(self, y_val: Any) -> Any:
        return self._label_binarizer.inverse_transform(y_val)

    def _val_score(self, X_val: Any, y_val: Any) -> float:
        return accuracy_score(y_val, self._labels(self._model.predict(X_val)))

    def _proba(self, out: Any) -> Any:
        xp = self._backend.xp
        if self.out_activation_ == "softmax":
            return F.softmax(out, xp=xp)
        return F.sigmoid(out, xp=xp)

    def _labels(self, out: Any) -> Any:
        p = to_numpy(self._proba(out))
        return self._label_binarizer.inverse_transform(p.ravel() if p.shape[1] == 1 else p)

    def predict(self, X: Any) -> Any:
        """Class labels (n_samples,), or a label indicator (n_samples, n_labels)."""
        return self._labels(self._forward(X))

    def _proba_table(self, X: Any) -> Any:
        p = self._proba(self._forward(X))
        if self.n_outputs_ == 1:  # binary: columns for classes_[0] and classes_[1]
            p = self._backend.xp.concat([1.0 - p, p], axis=1)
        return p

    def predict_proba(self, X: Any) -> Any:
        """Class probabilities (n_samples, n_classes), ordered as ``classes_``."""
        return to_numpy(self._proba_table(X))

    def predict_log_proba(self, X: Any) -> Any:
        """The natural log of :meth:`predict_proba` (−inf where a probability is 0)."""
        p = self._proba_table(X)
        return to_numpy(self._backend.xp.log(p))

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> MLPClassifier:
        """One epoch over (X, y); ``classes`` (all labels) is required on the first call."""
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            target = y if type_of_target(y).startswith("multilabel") else classes
            self._label_binarizer.fit(target)
        return self._fit(X, y, incremental=True)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        tags.input_tags.sparse = True
        return tags


class MLPRegressor(RegressorMixin, BaseMLP):
    """Multi-layer perceptron regressor (half squared error), a drop-in for scikit-learn's.

    Predictions are float64 host arrays, (n_samples,) for one output.
    """

    out_activation_ = "identity"

    def _validate_input(self, X: Any, y: Any, incremental: bool, reset: bool) -> tuple:
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             y_numeric=True, dtype=("float64", "float32"), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def _loss(self, k: int) -> Any:
        # scikit-learn: loss = mean((pred − y)²)/2, gradient (pred − y)/n (mse's is 2(pred − y)/nk)
        return scaled_loss(_losses.mse, self._backend.xp, 0.5, k / 2.0)

    def _val_targets(self, y_val: Any) -> Any:
        return y_val.ravel() if y_val.shape[1] == 1 else y_val

    def _val_score(self, X_val: Any, y_val: Any) -> float:
        return r2_score(y_val, self._host(self._model.predict(X_val)))

    def _host(self, out: Any) -> Any:
        p = to_numpy(out).astype("float64")
        return p.ravel() if p.shape[1] == 1 else p

    def predict(self, X: Any) -> Any:
        """Predicted values, float64: (n_samples,) or (n_samples, n_outputs)."""
        return self._host(self._forward(X))

    def partial_fit(self, X: Any, y: Any) -> MLPRegressor:
        """One epoch over (X, y), continuing from the current weights."""
        return self._fit(X, y, incremental=True)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags
