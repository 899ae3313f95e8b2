"""Loss functions, each returning ``(loss, grad)``.

``loss`` is a 0-d array of the inputs' backend; ``grad`` is dL/d(first argument), of
its shape. Reductions are means, as in ``torch.nn.functional``'s defaults, so the
gradients carry the 1/N; they are written Σ/N, the Σ through the backend's
``ops.sum``, because NumPy's ``mean`` and ``sum`` spend microseconds in Python per call,
as long as a whole step of a tiny network. All are
numerically stable: finite values and gradients for float32 logits of ±1e4 and for
probabilities of exactly 0 and 1.

Inputs are checked once per call, cheaply when prediction and target already agree:
both are brought to one real floating dtype — the promoted one of two floating dtypes,
else the floating one's, else the library's default (float64 on NumPy, float32 on
PyTorch), so an integer prediction is never rounded — and loss and gradient come in
that dtype. A 16-bit float prediction (float16, bfloat16) is computed in float32 and
rounded once at the end, as PyTorch computes half precision, so a loss whose value fits
never overflows in its sum (:func:`binary_cross_entropy` stays in float16, with its
gradient's clamp at float16's smallest normal). Empty inputs, mismatched shapes,
strings and complex numbers raise ``ValueError`` (a prediction that is not an array,
``TypeError``), and so do probabilities outside [0, 1] (or NaN) for
:func:`binary_cross_entropy`, as in PyTorch.

``LOSSES`` maps each name to its function.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import array_api_compat

from . import backends as _registry
from ._namespace import namespace_of, ops_of
from .inputs import default_float, layer_array

Array = Any
backend_of = _registry.backend_of

__all__ = ["mse", "binary_cross_entropy", "sigmoid_binary_cross_entropy",
           "softmax_cross_entropy", "LOSSES", "get"]

#: log(p) is clamped at this value, as torch.nn.functional.binary_cross_entropy does.
LOG_CLAMP = -100.0
#: the denominator p(1 − p) of the BCE gradient is clamped below at this value (as torch).
BCE_EPS = 1e-12


#: dtypes already seen to be real floating, keyed by identity (``==`` across libraries
#: warns on array-api-strict): a hit skips the checks, which cost more than the loss of a
#: tiny network. The values keep the dtypes alive, so their ids are never reused.
_FLOATING: dict[int, Any] = {}
#: array types already seen (so that ``.dtype`` exists).
_TYPES: tuple[type, ...] = ()


def _ready(pred: Array, target: Array) -> bool:
    """True when nothing needs checking: one array type, one real floating dtype, one
    shape, not empty."""
    return (type(target) is type(pred) and type(pred) in _TYPES and id(pred.dtype) in _FLOATING
            and target.dtype == pred.dtype and target.shape == pred.shape
            and 0 not in pred.shape)


def _common(pred: Array, target: Array, xp: Any, name: str) -> tuple[Array, Array]:
    """``(pred, target)`` in one real floating dtype and pred's shape (a (n,) target for
    (n, 1) predictions is reshaped); ValueError/TypeError for anything else.

    The dtype is the promoted one of the two floating dtypes, else the floating one's,
    else the library's default floating dtype (float64 on NumPy, float32 on PyTorch):
    an integer prediction against an integer target is computed in floating point.
    """
    global _FLOATING, _TYPES
    if not array_api_compat.is_array_api_obj(pred):
        raise TypeError(f"{name}: the prediction must be an array (of any backend); got "
                        f"{type(pred).__name__}")
    xp = namespace_of(pred, xp=xp)
    target = _same_backend(pred, target, xp, name)
    for what, a in (("prediction", pred), ("target", target)):
        if not xp.isdtype(a.dtype, ("real floating", "integral", "bool")):
            raise ValueError(f"{name}: the {what} must hold real, integer or boolean "
                             f"numbers; got dtype {a.dtype}")
    p_float, t_float = (xp.isdtype(a.dtype, "real floating") for a in (pred, target))
    if p_float and t_float:
        dtype = xp.result_type(pred.dtype, target.dtype)
    elif p_float or t_float:
        dtype = pred.dtype if p_float else target.dtype
    else:
        dtype = default_float(backend_of(pred))
    pred = pred if pred.dtype == dtype else xp.astype(pred, dtype)
    target = target if target.dtype == dtype else xp.astype(target, dtype)
    if tuple(target.shape) != tuple(pred.shape):
        if pred.ndim == 2 and pred.shape[1] == 1 and tuple(target.shape) == (pred.shape[0],):
            target = xp.reshape(target, (pred.shape[0], 1))
        else:
            raise ValueError(f"{name}: prediction has shape {tuple(pred.shape)} but target has "
                             f"shape {tuple(target.shape)}; they must match")
    if 0 in tuple(pred.shape):
        raise ValueError(f"{name}: the prediction is empty (shape {tuple(pred.shape)}); a mean "
                         "over no elements is undefined")
    if id(dtype) not in _FLOATING and len(_FLOATING) < 16 and not _half(pred):
        _FLOATING[id(dtype)] = dtype
    if type(pred) not in _TYPES and len(_TYPES) < 16:
        _TYPES = (*_TYPES, type(pred))
    return pred, target


def _same_backend(pred: Array, target: Array, xp: Any, name: str) -> Array:
    if isinstance(target, type(pred)):
        return target
    namespace_of(pred, target)  # raises a clear error when two libraries are mixed
    return layer_array(target, backend_of(pred), None, f"{name}: the target")


def _half(x: Array) -> bool:
    """Whether ``x`` holds a 16-bit float (float16, bfloat16): losses compute those in float32."""
    return str(x.dtype).endswith("float16")


def _in_float32(loss: Callable[..., tuple[Array, Array]], pred: Array,
                target: Array) -> tuple[Array, Array]:
    """``loss`` computed in float32 and rounded once to pred's 16-bit dtype, as PyTorch's
    losses compute half precision: a loss or gradient whose value fits never overflows in
    an intermediate (a sum of squares, (p − y)/(p(1 − p)) before the division by N)."""
    xp = namespace_of(pred)
    half = pred.dtype
    value, grad = loss(xp.astype(pred, xp.float32), xp.astype(target, xp.float32)
                       if xp.isdtype(target.dtype, "real floating") else target)
    return xp.astype(xp.asarray(value), half), xp.astype(grad, half)


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
    if not _ready(pred, target):
        pred, target = _common(pred, target, xp, "mse")
        if _half(pred):
            return _in_float32(mse, pred, target)
    diff = pred - target
    return ops_of(diff).mean(diff * diff), diff * (2.0 / _size(diff))


def binary_cross_entropy(prob: Array, target: Array, *, xp: Any = None) -> tuple[Array, Array]:
    """L = −mean(y log p + (1 − y) log(1 − p)) for probabilities ``prob`` in [0, 1].

    Shapes: ``prob`` (n, out), ``target`` (n, out) or (n,) for out = 1; ``grad`` as ``prob``.

    As in PyTorch, each log is clamped at −100 so p = 0 or 1 gives a finite loss, and
    the gradient (p − y) / (p(1 − p)) / N has its denominator clamped at 1e-12 (in
    float16, where 1e-12 is 0, at its smallest normal number, 6.1e-5).
    Prefer :func:`sigmoid_binary_cross_entropy` on logits: it never saturates.
    """
    return _binary_cross_entropy(prob, target, xp, check=True)


def _binary_cross_entropy_unchecked(prob: Array, target: Array, *,
                                    xp: Any = None) -> tuple[Array, Array]:
    """:func:`binary_cross_entropy` without the check that ``prob`` lies in [0, 1], the one
    host read of a loss: for a captured step (:mod:`nnx.capture`), whose targets were
    checked once and whose NaN shows in the epoch's loss."""
    return _binary_cross_entropy(prob, target, xp, check=False)


def _binary_cross_entropy(prob: Array, target: Array, xp: Any, *,
                          check: bool) -> tuple[Array, Array]:
    if not _ready(prob, target):
        prob, target = _common(prob, target, xp, "binary_cross_entropy")
    xp = namespace_of(prob, xp=xp)
    y = target
    if check and not bool(xp.all((prob >= 0.0) & (prob <= 1.0))):   # also refuses NaN, as torch
        raise ValueError("binary_cross_entropy: probabilities must lie in [0, 1]; got values "
                         f"from {float(xp.min(prob))} to {float(xp.max(prob))} (for raw scores "
                         "use sigmoid_binary_cross_entropy)")
    # log of the smallest subnormal is below −100 in float32 and float64, so clamping the
    # argument first keeps log(0) = −inf (and its warning) out while leaving torch's −100
    # clamp exact. In float16 it is −16.6: there 0 maps to −100 explicitly.
    finfo = xp.finfo(prob.dtype)
    tiny = finfo.smallest_normal * finfo.eps
    clip_min = ops_of(prob).clip_min           # xp.clip(·, min=·), without a host read
    log_p = clip_min(xp.log(clip_min(prob, tiny)), LOG_CLAMP)
    log_1mp = clip_min(xp.log(clip_min(1.0 - prob, tiny)), LOG_CLAMP)
    if math.log(float(tiny)) > LOG_CLAMP:
        log_p = xp.where(prob > 0.0, log_p, LOG_CLAMP)
        log_1mp = xp.where(prob < 1.0, log_1mp, LOG_CLAMP)
    loss = -ops_of(prob).mean(y * log_p + (1.0 - y) * log_1mp)
    denom = clip_min(prob * (1.0 - prob), max(BCE_EPS, finfo.smallest_normal))  # float16
    return loss, (prob - y) / (denom * _size(prob))   # one division: no overflow before / N


def sigmoid_binary_cross_entropy(logits: Array, target: Array, *,
                                 xp: Any = None) -> tuple[Array, Array]:
    """Binary cross-entropy of σ(logits): L = mean(max(z, 0) − z y + log(1 + e^(−|z|))).

    Shapes: ``logits`` (n, out), ``target`` (n, out) or (n,) for out = 1; ``grad`` as ``logits``.

    Stable for any logits; grad = (σ(z) − y)/N. Matches
    ``torch.nn.functional.binary_cross_entropy_with_logits``.
    """
    if not (type(target) is type(logits) and type(logits) in _TYPES     # as _ready, inline:
            and id(logits.dtype) in _FLOATING and target.dtype == logits.dtype  # the checks cost
            and target.shape == logits.shape and 0 not in logits.shape):    # more than the loss
        logits, target = _common(logits, target, xp, "sigmoid_binary_cross_entropy")
        if _half(logits):
            return _in_float32(sigmoid_binary_cross_entropy, logits, target)
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
    if not array_api_compat.is_array_api_obj(logits):
        raise TypeError("softmax_cross_entropy: the logits must be an array (of any backend); "
                        f"got {type(logits).__name__}")
    xp = namespace_of(logits, xp=xp)
    if logits.ndim != 2 or 0 in tuple(logits.shape):
        raise ValueError("softmax_cross_entropy: logits must be (n, k) with n, k ≥ 1; got "
                         f"{tuple(logits.shape)}")
    if id(logits.dtype) not in _FLOATING:
        logits = _common(logits, logits, xp, "softmax_cross_entropy")[0]
        if _half(logits):
            return _in_float32(softmax_cross_entropy, logits, labels)
    n, k = logits.shape
    labels = _same_backend(logits, labels, xp, "softmax_cross_entropy")
    if labels.ndim == 1:
        labels = class_ids_to_one_hot(labels, k, dtype=logits.dtype, xp=xp)
    elif tuple(labels.shape) == (n, k):
        if labels.dtype != logits.dtype:     # (the logits' dtype is real floating by now)
            if not xp.isdtype(labels.dtype, ("real floating", "integral", "bool")):
                raise ValueError("softmax_cross_entropy: label rows must hold real numbers; "
                                 f"got dtype {labels.dtype}")
            labels = xp.astype(labels, logits.dtype)
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
        if xp.isdtype(labels.dtype, "real floating") and bool(
                xp.all(xp.isfinite(labels) & (labels == xp.round(labels)))):
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
