"""Loss functions, each returning ``(loss, grad)``.

``loss`` is a 0-d array of the inputs' backend; ``grad`` is dL/d(first argument), of
its shape. Reductions are means, as in ``torch.nn.functional``'s defaults, so the
gradients carry the 1/N; they are written Σ/N, the Σ through the backend's
``ops.sum``, because NumPy's ``mean`` and ``sum`` spend microseconds in Python per call,
as long as a whole step of a tiny network. All are
numerically stable: finite values and gradients for float32 logits of ±1e4 and for
probabilities of exactly 0 and 1.

``LOSSES`` maps each name to its function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import array_api_compat

from ._namespace import namespace_of, ops_of

Array = Any

__all__ = ["mse", "binary_cross_entropy", "sigmoid_binary_cross_entropy",
           "softmax_cross_entropy", "LOSSES", "get"]

#: log(p) is clamped at this value, as torch.nn.functional.binary_cross_entropy does.
LOG_CLAMP = -100.0
#: the denominator p(1 − p) of the BCE gradient is clamped below at this value (as torch).
BCE_EPS = 1e-12


def _float_target(pred: Array, target: Array, xp: Any, name: str) -> Array:
    """``target`` as pred's dtype and shape; a (n,) target for (n, 1) predictions is reshaped."""
    if type(target) is type(pred) and target.dtype == pred.dtype and target.shape == pred.shape:
        return target  # already right: skip the checks (they cost more than a tiny step)
    target = _same_backend(pred, target, xp, name)
    if not xp.isdtype(target.dtype, ("real floating", "integral", "bool")):
        raise ValueError(f"{name}: target must be real, integer or boolean; got {target.dtype}")
    if target.dtype != pred.dtype:
        target = xp.astype(target, pred.dtype)
    if tuple(target.shape) != tuple(pred.shape):
        if pred.ndim == 2 and pred.shape[1] == 1 and tuple(target.shape) == (pred.shape[0],):
            target = xp.reshape(target, (pred.shape[0], 1))
        else:
            raise ValueError(f"{name}: prediction has shape {tuple(pred.shape)} but target has "
                             f"shape {tuple(target.shape)}; they must match")
    return target


def _same_backend(pred: Array, target: Array, xp: Any, name: str) -> Array:
    if isinstance(target, type(pred)):
        return target
    namespace_of(pred, target)  # raises a clear error when two libraries are mixed
    return xp.asarray(target)


def _size(x: Array) -> int:
    n = 1
    for d in x.shape:
        n *= int(d)
    return n


def mse(pred: Array, target: Array, *, xp: Any = None) -> tuple[Array, Array]:
    """Mean squared error L = mean((pred − target)²) over all N elements.

    Shapes: ``pred`` (n, out), ``target`` (n, out); ``grad`` (n, out); ``loss`` 0-d.

    The gradient is 2(pred − target)/N. ``target`` may be (n,) for predictions (n, 1).
    """
    xp = namespace_of(pred, xp=xp)
    target = _float_target(pred, target, xp, "mse")
    diff = pred - target
    n = _size(diff)
    return ops_of(diff).sum(diff * diff) / n, diff * (2.0 / n)


def binary_cross_entropy(prob: Array, target: Array, *, xp: Any = None) -> tuple[Array, Array]:
    """L = −mean(y log p + (1 − y) log(1 − p)) for probabilities ``prob`` in [0, 1].

    Shapes: ``prob`` (n, out), ``target`` (n, out) or (n,) for out = 1; ``grad`` as ``prob``.

    As in PyTorch, each log is clamped at −100 so p = 0 or 1 gives a finite loss, and
    the gradient (p − y) / (p(1 − p)) / N has its denominator clamped at 1e-12.
    Prefer :func:`sigmoid_binary_cross_entropy` on logits: it never saturates.
    """
    xp = namespace_of(prob, xp=xp)
    y = _float_target(prob, target, xp, "binary_cross_entropy")
    # log of the smallest subnormal is below −100, so clamping the argument first keeps
    # log(0) = −inf (and its warning) out while leaving torch's −100 clamp exact.
    finfo = xp.finfo(prob.dtype)
    tiny = finfo.smallest_normal * finfo.eps
    log_p = xp.clip(xp.log(xp.clip(prob, min=tiny)), min=LOG_CLAMP)
    log_1mp = xp.clip(xp.log(xp.clip(1.0 - prob, min=tiny)), min=LOG_CLAMP)
    loss = -ops_of(prob).sum(y * log_p + (1.0 - y) * log_1mp) / _size(prob)
    denom = xp.clip(prob * (1.0 - prob), min=BCE_EPS)
    return loss, (prob - y) / denom / _size(prob)


def sigmoid_binary_cross_entropy(logits: Array, target: Array, *,
                                 xp: Any = None) -> tuple[Array, Array]:
    """Binary cross-entropy of σ(logits): L = mean(max(z, 0) − z y + log(1 + e^(−|z|))).

    Shapes: ``logits`` (n, out), ``target`` (n, out) or (n,) for out = 1; ``grad`` as ``logits``.

    Stable for any logits; grad = (σ(z) − y)/N. Matches
    ``torch.nn.functional.binary_cross_entropy_with_logits``.
    """
    if type(target) is not type(logits) or target.dtype != logits.dtype \
            or target.shape != logits.shape:         # (the checks cost more than a tiny loss)
        xp = namespace_of(logits, xp=xp)
        target = _float_target(logits, target, xp, "sigmoid_binary_cross_entropy")
    return ops_of(logits).sigmoid_bce(logits, target)   # the formula: nnx.backends.Ops


def softmax_cross_entropy(logits: Array, labels: Array, *,
                          xp: Any = None) -> tuple[Array, Array]:
    """Cross-entropy of softmax(logits) against ``labels``, averaged over the n rows.

    Args:
        logits: (n, k) raw scores.
        labels: integer class ids (n,) in [0, k), or (n, k) one-hot / probability rows.

    Returns:
        ``(loss, grad)`` with grad = (softmax(logits) − Y) / n, Y the one-hot rows.
        Matches ``torch.nn.functional.cross_entropy``.
    """
    xp = namespace_of(logits, xp=xp)
    if logits.ndim != 2:
        raise ValueError(f"softmax_cross_entropy: logits must be (n, k); got {tuple(logits.shape)}")
    n, k = logits.shape
    labels = _same_backend(logits, labels, xp, "softmax_cross_entropy")
    if labels.ndim == 1:
        labels = class_ids_to_one_hot(labels, k, dtype=logits.dtype, xp=xp)
    elif tuple(labels.shape) == (n, k):
        labels = xp.astype(labels, logits.dtype) if labels.dtype != logits.dtype else labels
    else:
        raise ValueError(f"softmax_cross_entropy: labels must be class ids ({n},) or rows "
                         f"({n}, {k}); got {tuple(labels.shape)}")
    if labels.shape[0] != n:
        raise ValueError(f"softmax_cross_entropy: {n} rows of logits but {labels.shape[0]} labels")
    # log p = log_softmax(z); L = −Σ Y ⊙ log p / n; dL/dz = (softmax(z) − Y) / n, in one
    # backend op (the portable Ops.softmax_xent is these expressions, fast paths fuse them)
    return ops_of(logits).softmax_xent(logits, labels)


def class_ids_to_one_hot(labels: Array, k: int, *, dtype: Any, xp: Any) -> Array:
    """(n,) integer ids in [0, k) → (n, k) one-hot rows; ``ValueError`` for anything else."""
    if not xp.isdtype(labels.dtype, "integral"):
        if xp.isdtype(labels.dtype, "real floating") and bool(xp.all(labels == xp.round(labels))):
            labels = xp.astype(labels, xp.int64)
        else:
            raise ValueError(f"class labels must be integers in [0, {k}); got dtype {labels.dtype}")
    if labels.shape[0] and (bool(xp.any(labels < 0)) or bool(xp.any(labels >= k))):
        lo, hi = int(xp.min(labels)), int(xp.max(labels))
        raise ValueError(f"class labels must lie in [0, {k}) for {k} outputs; "
                         f"got values from {lo} to {hi}")
    classes = xp.arange(k, dtype=labels.dtype, device=array_api_compat.device(labels))
    return xp.astype(labels[:, None] == classes[None, :], dtype)


LOSSES: dict[str, Callable[..., tuple[Array, Array]]] = {
    "mse": mse,
    "binary_cross_entropy": binary_cross_entropy,
    "sigmoid_binary_cross_entropy": sigmoid_binary_cross_entropy,
    "softmax_cross_entropy": softmax_cross_entropy,
}


def get(name: str | Callable[..., tuple[Array, Array]]) -> Callable[..., tuple[Array, Array]]:
    """The loss named ``name`` (a callable passes through); ``ValueError`` lists the names."""
    if callable(name):
        return name
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown loss {name!r}; valid names: {', '.join(LOSSES)}") from None
