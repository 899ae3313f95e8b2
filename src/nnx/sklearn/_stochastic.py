"""The stochastic solvers' loop (``solver="sgd"`` / ``"adam"``), as scikit-learn runs it.

It follows scikit-learn's ``_fit_stochastic`` step by step: a per-epoch loss curve,
``tol`` / ``n_iter_no_change`` stopping on the training loss or, with
``early_stopping``, on a held-out (weighted) score whose best weights are restored; the
``invscaling`` and ``adaptive`` learning rates of ``solver="sgd"``; ``n_iter_`` counts
the epochs of the current call. The epochs themselves run in
:class:`nnx.trainer.Trainer`, on the estimator's backend; sample weights ride along as
the last column of the targets (see :mod:`._losses`).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

from sklearn.base import is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from ..trainer import Trainer, TrainingDivergedError
from ._params import NON_FINITE

__all__ = ["StochasticSolver"]


class StochasticSolver:
    """Mixin of :class:`nnx.sklearn._base.BaseMLP`: the epochs loop and its stopping rules.

    It uses the estimator's network (``_model``, ``_backend``, ``_optimizer``), its
    ``_to_device``, ``_targets``, ``_make_loss``, ``_fast_loss`` and the
    estimator-specific ``_val_targets`` / ``_val_score`` for ``early_stopping``.
    """

    def _fit_stochastic(self, X: Any, Y: Any, sample_weight: Any, rs: Any,
                        incremental: bool) -> None:
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        X_val = y_val = sw_val = None
        if self.early_stopping:
            stratify = Y if is_classifier(self) and self.n_outputs_ == 1 else None
            arrays = (X, Y) if sample_weight is None else (X, Y, sample_weight)
            parts = train_test_split(*arrays, random_state=rs, stratify=stratify,
                                     test_size=self.validation_fraction)
            X, X_val, Y, y_val = parts[:4]
            if sample_weight is not None:
                sample_weight, sw_val = parts[4:]
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
            y_val = self._val_targets(y_val)
            X_val = self._to_device(X_val)
            if getattr(self, "_best", None) is None:
                self._snapshot()
        n = X.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. "
                              "It is going to be clipped", stacklevel=3)
            batch_size = min(int(self.batch_size), n)
        opt = self._optimizer
        weighted = sample_weight is not None
        loss = None if weighted else self._fast_loss(Y.shape[1])
        cell = None
        if loss is None:
            loss, cell = self._make_loss(weighted=weighted)
        trainer = Trainer(self._model, self._to_device(X), self._targets(Y, sample_weight),
                          loss=loss, optimizer=opt, batch_size=batch_size,
                          shuffle=self.shuffle, seed=int(rs.randint(0, 2**31 - 1)),
                          penalty=self._penalty(cell if weighted else None))
        self.n_iter_ = 0
        try:
            for _ in range(self.max_iter):
                try:
                    self.loss_ = trainer.epoch()
                except TrainingDivergedError:
                    if not self.early_stopping:   # scikit-learn ends with this error
                        raise ValueError(NON_FINITE) from None
                    self.loss_ = math.nan        # scores become nan; the best weights return
                self.n_iter_ += 1
                self.t_ += n
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
                self._update_no_improvement_count(X_val, y_val, sw_val)
                if self.solver == "sgd" and self.learning_rate == "invscaling":
                    opt.lr = float(self.learning_rate_init) / (self.t_ + 1) ** self.power_t
                if self._no_improvement_count > self.n_iter_no_change:
                    if self._trigger_stopping():
                        break
                    self._no_improvement_count = 0
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                                  "reached and the optimization hasn't converged yet.",
                                  ConvergenceWarning, stacklevel=3)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", stacklevel=3)
        if self.early_stopping:
            for layer, (W, b) in zip(self._model.dense_layers, self._best, strict=True):
                layer.W, layer.b = W, b

    def _trigger_stopping(self) -> bool:
        """scikit-learn's ``optimizer.trigger_stopping``: stop, or (adaptive sgd) lr / 5."""
        what = "Validation score" if self.early_stopping else "Training loss"
        msg = (f"{what} did not improve more than tol={self.tol:f} for "
               f"{self.n_iter_no_change} consecutive epochs.")
        opt = self._optimizer
        if self.solver != "sgd" or self.learning_rate != "adaptive":
            if self.verbose:
                print(f"{msg} Stopping.")
            return True
        if opt.lr <= 1e-6:
            if self.verbose:
                print(f"{msg} Learning rate too small. Stopping.")
            return True
        opt.lr /= 5.0
        if self.verbose:
            print(f"{msg} Setting learning rate to {opt.lr:f}")
        return False

    def _penalty(self, cell: Any) -> Any:
        """scikit-learn's L2 term per step: grad += αW/s, loss += α/2s Σ‖W‖².

        ``s`` is the batch's row count, or with sample weights their sum (``cell.s``,
        left there by the loss of the same step).
        """
        alpha = float(self.alpha)
        if alpha == 0.0:
            return None
        xp, ops = self._backend.xp, self._backend.ops

        def l2(model: Any, n_batch: int) -> Any:
            s = n_batch if cell is None else cell.s
            flat = model.flat
            if flat is not None and len(flat.groups) == 1 and flat.ready():
                group = flat.groups[0]         # every weight in one slice (nnx.flat)
                W = group.weights
                ops.sub_scaled(group.weight_grads, W, -alpha / s)   # dW += αW/s, one op
                return xp.vecdot(W, W) * (0.5 * alpha / s)
            total = 0.0
            for layer in model.dense_layers:
                W, g = layer.W, layer.dW
                g += (alpha / s) * W
                layer.dW = g
                total = total + xp.sum(W * W)
            return total * (0.5 * alpha / s)
        return l2

    def _update_no_improvement_count(self, X_val: Any, y_val: Any, sw_val: Any) -> None:
        if self.early_stopping:
            score = self._val_score(X_val, y_val, sw_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Validation score: {score:f}")
            if score < self.best_validation_score_ + self.tol:   # nan: False, as sklearn
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
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    def _snapshot(self) -> None:
        xp = self._backend.xp
        self._best = [(xp.asarray(d.W, copy=True), xp.asarray(d.b, copy=True))
                      for d in self._model.dense_layers]
