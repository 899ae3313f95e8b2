"""scikit-learn's MLP losses (``neural_network/_base.py``) on any backend, with sample weights.

Each loss maps the network's raw output ``Z`` (n, k) — before the output activation —
and the targets to ``(loss, dL/dZ)``, exactly as scikit-learn's ``_backprop`` defines
them (w: the sample weights, a column (n, 1); ``s = Σw``, or n without weights):

=================  ===============  =========================================  ==============
loss               output ``g(Z)``  loss                                       dL/dZ
=================  ===============  =========================================  ==============
squared_error      identity         ½ Σ w (Z − Y)² / (s k)                     w (Z − Y) / s
poisson            exp              Σ w (Y log(Y/μ) − Y + μ) / s,  μ = e^Z     w (μ − Y) / s
log_loss           softmax          −Σ w Y log P / s                           w (P − Y) / s
binary_log_loss    logistic         −Σ w (Y log P + (1−Y) log(1−P)) / s        w (P − Y) / s
=================  ===============  =========================================  ==============

Probabilities are clipped to [ε, 1 − ε] in the loss (not in the gradient), as
scikit-learn does. With weights, ``y`` carries them as its last column (so that the
core :class:`~nnx.trainer.Trainer` shuffles and slices them with the rows), and the
loss leaves ``s`` in ``cell.s`` for the L2 term of the same step.
"""

from __future__ import annotations

from typing import Any

from .. import activations as F

__all__ = ["OUT_ACTIVATIONS", "Cell", "make_loss", "output", "scaled_loss"]

#: the loss → scikit-learn's ``out_activation_``
OUT_ACTIVATIONS = {"squared_error": "identity", "poisson": "exp", "log_loss": "softmax",
                   "binary_log_loss": "logistic"}


class Cell:
    """The last loss evaluation's weight sum ``s`` (a device scalar, or the row count)."""

    __slots__ = ("s",)

    def __init__(self) -> None:
        self.s: Any = None


def output(name: str, Z: Any, xp: Any) -> Any:
    """The output activation ``g(Z)`` of scikit-learn's ``out_activation_`` ``name``."""
    if name == "softmax":
        return F.softmax(Z, xp=xp)
    if name == "logistic":
        return F.sigmoid(Z, xp=xp)
    if name == "exp":
        return xp.exp(Z)
    return Z


def make_loss(name: str, xp: Any, *, weighted: bool, cell: Cell) -> Any:
    """``loss(Z, y) -> (value, dL/dZ)`` for scikit-learn's loss ``name`` (see the table).

    ``y`` is (n, k), or (n, k + 1) with the sample weights last when ``weighted``.
    """
    out_name = OUT_ACTIVATIONS[name]

    def loss(Z: Any, y: Any) -> tuple[Any, Any]:
        k = Z.shape[1]
        if weighted:
            Y, w = y[:, :k], y[:, k:]
            s = xp.sum(w)
        else:
            Y, w, s = y, None, Z.shape[0]
        cell.s = s
        P = output(out_name, Z, xp)
        diff = P - Y
        if name == "squared_error":
            terms = diff * diff
        elif name == "poisson":
            positive = Y > 0
            ratio = xp.where(positive, Y, 1.0) / P           # Y/μ where Y > 0
            terms = xp.where(positive, Y * xp.log(ratio), 0.0) + diff   # xlogy(Y, Y/μ) − Y + μ
        else:
            eps = xp.finfo(Z.dtype).eps
            logp = xp.log(xp.clip(P, eps, 1.0 - eps))
            terms = -(Y * logp)                              # Y ∈ {0, 1}: xlogy(Y, P)
            if name == "binary_log_loss":
                terms = terms - (1.0 - Y) * xp.log(xp.clip(1.0 - P, eps, 1.0 - eps))
        if w is not None:
            terms = terms * w
            diff = diff * w
        value = xp.sum(terms) / s
        if name == "squared_error":
            value = value * (0.5 / k)
        return value, diff / s
    return loss


def scaled_loss(fn: Any, xp: Any, scale: float, grad_scale: float) -> Any:
    """A core nnx loss ``fn`` with the namespace bound and its loss and gradient rescaled.

    The unweighted stochastic path uses the core's fused losses this way: scikit-learn's
    binary/multi-label log-loss is k × nnx's mean over k labels, its squared error
    ½ × nnx's ``mse`` with the gradient (Z − Y)/n (not the mean's 2(Z − Y)/(nk)).
    """
    if scale == 1.0 and grad_scale == 1.0:
        return lambda pred, y: fn(pred, y, xp=xp)

    def loss(pred: Any, y: Any) -> tuple[Any, Any]:
        value, grad = fn(pred, y, xp=xp)
        return value * scale, grad * grad_scale
    return loss
