"""The stochastic solvers' loop (``solver="sgd"`` / ``"adam"``), as scikit-learn runs it.

It follows scikit-learn's ``_fit_stochastic`` step by step: a per-epoch loss curve,
``tol`` / ``n_iter_no_change`` stopping on the training loss or, with
``early_stopping``, on a held-out score whose best weights are restored; the
``invscaling`` and ``adaptive`` learning rates of ``solver="sgd"``. The epochs
themselves run in :class:`nnx.trainer.Trainer`, on the estimator's backend.
"""

from __future__ import annotations

import warnings
from typing import Any

from sklearn.base import is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from ..backend import asarray
from ..trainer import Trainer

__all__ = ["StochasticSolver"]


class StochasticSolver:
    """Mixin of :class:`nnx.sklearn._base.BaseMLP`: the epochs loop and its stopping rules.

    It uses the estimator's network (``_model``, ``_backend``, ``_optimizer``), its
    ``_to_device``, ``_loss`` and ``_penalty``, and the estimator-specific
    ``_val_targets`` / ``_val_score`` for ``early_stopping``.
    """

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
