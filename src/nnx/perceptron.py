"""Rosenblatt's perceptron and its learning rule (chapter 10.1–10.2).

    ŷ = 1 if w·x + b > 0 else 0
    w ← w + η (y − ŷ) x,   b ← b + η (y − ŷ)       (one sample at a time)

    p = nnx.Perceptron(2)
    result = p.fit([[0, 0], [0, 1], [1, 0], [1, 1]], [0, 0, 0, 1])   # AND
    result.converged, result.mistakes        # True, [2, 3, 3, 1, 0] or similar
    p.predict([[1, 1]])                      # [1]

Conventions (decided here, not in the chapter):

* weights and bias start at zero, and every ``fit`` starts afresh;
* ``seed=None`` visits the samples in the order given, every epoch (the textbook
  algorithm, fully deterministic); with a seed, each epoch visits them in a fresh
  random order drawn from that seed (same seed → same run, on every backend);
* an epoch *converges* when it makes no mistake: every sample was already classified
  correctly when visited, so no weight moved. Rosenblatt's theorem guarantees this
  happens for linearly separable data; on XOR it never does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import backends as _registry
from .backend import Backend, resolve_backend
from .inputs import layer_array, positive_int, real_number

Array = Any

__all__ = ["Perceptron", "PerceptronResult"]


@dataclass(frozen=True)
class PerceptronResult:
    """What :meth:`Perceptron.fit` reports.

    Attributes:
        converged: an epoch ended without a single mistake.
        epochs: how many epochs ran (the converging epoch included).
        mistakes: misclassifications (= weight updates) in each epoch, in order.
    """

    converged: bool
    epochs: int
    mistakes: list[int] = field(default_factory=list)

    def __str__(self) -> str:
        state = "converged" if self.converged else "did NOT converge"
        return f"{state} after {self.epochs} epochs; mistakes per epoch: {self.mistakes}"


class Perceptron:
    """A single perceptron with a hard step, trained by Rosenblatt's rule.

    Args:
        n_features: d, the width of each input row.
        lr: the learning rate η (> 0).
        seed: None for the given sample order every epoch; otherwise the seed of a
            fresh shuffle per epoch.
        dtype: ``"float32"`` or ``"float64"`` for the weights.
        backend: where the weights live; the active backend when None.

    Attributes ``w`` (d,) and ``b`` (0-d) are the weights and the bias.
    """

    def __init__(self, n_features: int, lr: float = 1.0, seed: Any = None, *,
                 dtype: str = "float32", backend: str | Backend | None = None) -> None:
        n_features = positive_int("n_features", n_features, "Perceptron")
        lr = real_number("Perceptron", "lr", lr, low=0.0, low_open=True)
        if dtype not in ("float32", "float64"):
            raise ValueError(f"Perceptron: dtype must be 'float32' or 'float64'; got {dtype!r}")
        self.n_features = n_features
        self.lr = float(lr)
        self.seed = seed
        self.dtype = dtype
        self.backend = resolve_backend(backend)
        self._xp = self.backend.xp
        self._dtype = getattr(self._xp, dtype)
        self._reset()

    def __repr__(self) -> str:
        return (f"Perceptron({self.n_features}, lr={self.lr}, seed={self.seed!r}, "
                f"dtype={self.dtype!r}, backend={self.backend.name!r})")

    def _reset(self) -> None:
        # The bias rides along as the weight of a constant input 1: wb = [w, b], xa = [x, 1].
        xp = self._xp
        self._wb = xp.zeros((self.n_features + 1,), dtype=self._dtype, device=self.backend.device)

    # -- parameters ------------------------------------------------------------------
    @property
    def w(self) -> Array:
        """The weights, shape ``(n_features,)``."""
        return self._wb[:self.n_features]

    @property
    def b(self) -> Array:
        """The bias, a 0-d array."""
        return self._wb[self.n_features]

    def set_params(self, w: Array, b: Array) -> None:
        """Replace the weights (d,) and the bias (0-d or (1,)) with copies of the given ones."""
        xp = self._xp
        w = xp.astype(self.backend.asarray(w, what="Perceptron w"), self._dtype)
        b = xp.reshape(xp.astype(self.backend.asarray(b, what="Perceptron b"), self._dtype), (1,))
        if tuple(w.shape) != (self.n_features,):
            raise ValueError(f"{self!r}: w must have shape ({self.n_features},); "
                             f"got {tuple(w.shape)}")
        self._wb = xp.concat([w, b])

    # -- input checks ----------------------------------------------------------------
    def _inputs(self, X: Array) -> Array:
        X = layer_array(X, self.backend, self._dtype, f"X given to {self!r}")
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"{self!r} expects X of shape (n, {self.n_features}); "
                             f"got {tuple(X.shape)}")
        return X

    def _finite_inputs(self, X: Array) -> Array:
        X = self._inputs(X)
        if not bool(self._xp.all(self._xp.isfinite(X))):
            raise ValueError(f"Perceptron.fit: X contains NaN or infinity (in {self.dtype}); "
                             "remove or impute them before training")
        return X

    def _labels(self, y: Array, n: int) -> list[float]:
        xp = self._xp
        y = self.backend.asarray(y, what="y")
        if y.ndim == 2 and y.shape[1] == 1:
            y = xp.reshape(y, (y.shape[0],))
        if y.ndim != 1 or y.shape[0] != n:
            raise ValueError(f"Perceptron.fit: y must have shape ({n},), one label per row of "
                             f"X; got {tuple(y.shape)}")
        if not xp.isdtype(y.dtype, ("real floating", "integral", "bool")):
            raise ValueError(f"Perceptron.fit: y must hold 0/1 labels; got dtype {y.dtype}")
        y = xp.astype(y, self._dtype)
        if n and not bool(xp.all((y == 0) | (y == 1))):
            raise ValueError("Perceptron.fit: y must hold only the labels 0 and 1 "
                             "(map −1/+1 labels with (y + 1) / 2)")
        return [float(v) for v in self.backend.to_numpy(y).tolist()]

    # -- learning ----------------------------------------------------------------------
    def fit(self, X: Array, y: Array, max_epochs: int = 100) -> PerceptronResult:
        """Train from zero weights until an epoch makes no mistake, or ``max_epochs`` pass.

        Args:
            X: (n, d) inputs.
            y: (n,) labels, 0 or 1.
            max_epochs: the most passes over the data (≥ 1).

        Returns:
            A :class:`PerceptronResult`; non-convergence is reported, not raised.
        """
        max_epochs = positive_int("max_epochs", max_epochs, "Perceptron.fit")
        xp = self._xp
        X = self._finite_inputs(X)
        n = X.shape[0]
        if n == 0:
            raise ValueError("Perceptron.fit: X has no rows")
        ys = self._labels(y, n)
        ones = xp.ones((n, 1), dtype=self._dtype, device=self.backend.device)
        Xa = xp.concat([X, ones], axis=1)
        rows = [Xa[i, :] for i in range(n)]       # sliced once, reused every epoch
        seeds = None if self.seed is None else _registry.spawn_seeds(self.seed, max_epochs)
        self._reset()
        wb, lr = self._wb, self.lr
        mistakes: list[int] = []
        for epoch in range(max_epochs):
            order = (range(n) if seeds is None
                     else self.backend.host_permutation(n, seed=seeds[epoch]))
            missed = xp.zeros((), dtype=self._dtype, device=self.backend.device)
            for i in order:
                x = rows[i]
                y_hat = xp.astype(wb @ x > 0, self._dtype)   # ŷ = step(w·x + b)
                err = ys[i] - y_hat                           # y − ŷ ∈ {−1, 0, 1}
                wb = wb + (lr * err) * x                      # w ← w + η (y − ŷ) x
                missed = missed + err * err
            mistakes.append(int(missed))
            if mistakes[-1] == 0:
                break
        self._wb = wb
        return PerceptronResult(converged=mistakes[-1] == 0, epochs=len(mistakes),
                                mistakes=mistakes)

    # -- inference ------------------------------------------------------------------------
    def decision_function(self, X: Array) -> Array:
        """The pre-activation z = X w + b, shape (n,)."""
        X = self._inputs(X)
        return X @ self.w + self.b

    def predict(self, X: Array) -> Array:
        """0/1 labels (int64), shape (n,): 1 where w·x + b > 0."""
        return self._xp.astype(self.decision_function(X) > 0, self._xp.int64)

    def score(self, X: Array, y: Array) -> float:
        """The fraction of rows of ``X`` (n, d) whose 0/1 label in ``y`` (n,) is predicted."""
        xp = self._xp
        pred = self.predict(X)
        y = xp.reshape(self.backend.asarray(y, what="y"), (-1,))
        if y.shape[0] != pred.shape[0]:
            raise ValueError(f"Perceptron.score: {pred.shape[0]} rows of X but {y.shape[0]} labels")
        return float(xp.mean(xp.astype(pred == xp.astype(y, xp.int64), self._dtype)))
