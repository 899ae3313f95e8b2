"""What ``fit`` and ``predict`` accept: arrays converted once to the model's backend and
dtype, targets checked once against the loss.

Conversion goes through :func:`nnx.asarray`, so NumPy arrays, lists and other backends'
arrays all work; strings, objects and complex numbers are refused with a message that
says what to do. Class labels are validated here, once per ``fit``, never per step.
"""

from __future__ import annotations

from typing import Any

from .backend import asarray

Array = Any

__all__ = ["ONE_HOT_LIMIT", "CLASSIFICATION", "positive_int", "convert", "prepare", "class_ids"]

#: above this many elements the (n, k) one-hot matrix is built per minibatch instead.
ONE_HOT_LIMIT = 1 << 24

#: the losses whose targets are class labels or probabilities.
CLASSIFICATION = ("binary_cross_entropy", "sigmoid_binary_cross_entropy",
                  "softmax_cross_entropy")


def positive_int(name: str, value: Any) -> int:
    """``value`` if it is an int ≥ 1 (bools refused); ValueError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"fit: {name} must be a positive integer; got {value!r}")
    return value


def convert(what: str, x: Any, backend: Any) -> Array:
    """``x`` as an array of ``backend`` with a real (or integer, bool) dtype."""
    if getattr(getattr(x, "dtype", None), "kind", None) in ("U", "S", "O"):
        raise ValueError(f"fit: {what} must be numeric; got an array of dtype {x.dtype}. "
                         "Map class names to integer ids first (nnx.sklearn.MLPClassifier "
                         "does this for you)")
    try:
        arr = asarray(x, backend=backend)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"fit: {what} could not be made a {backend.name} array: {exc}") from None
    if not backend.xp.isdtype(arr.dtype, ("real floating", "integral", "bool")):
        raise ValueError(f"fit: {what} must be real numbers; got dtype {arr.dtype}")
    return arr


def prepare(X: Any, y: Any, *, backend: Any, dtype: Any, n_in: int, n_out: int,
            loss_name: str | None, what: str = "") -> tuple[Array, Array, Array | None]:
    """``(X, y, classes)`` on ``backend``: X (n, n_in) in ``dtype``, y ready for the loss.

    ``classes`` (1, n_out) is set when integer class ids are kept and one-hot encoded per
    minibatch (more than :data:`ONE_HOT_LIMIT` elements); otherwise None. ``what`` is the
    suffix of the names in error messages (``"_val"`` for validation data).
    """
    xp, k = backend.xp, n_out
    X = convert(f"X{what}", X, backend)
    if X.ndim != 2 or X.shape[1] != n_in:
        raise ValueError(f"fit: X{what} must have shape (n, {n_in}) for this model; "
                         f"got {tuple(X.shape)}")
    if X.shape[0] < 1:
        raise ValueError(f"fit: X{what} has no rows")
    if X.dtype != dtype:
        X = xp.astype(X, dtype)
    y = convert(f"y{what}", y, backend)
    n = X.shape[0]
    if y.ndim == 0 or y.shape[0] != n:
        got = "a scalar" if y.ndim == 0 else f"{y.shape[0]} rows"
        raise ValueError(f"fit: X{what} has {n} rows but y{what} has {got}; "
                         "they must have one target per sample")
    if loss_name is None:  # a user's callable: hand y over as given, on the backend
        return X, y, None
    if loss_name == "softmax_cross_entropy":
        return X, *_class_targets(y, backend, dtype, k, what)
    if y.ndim == 1 and k == 1:
        y = xp.reshape(y, (n, 1))
    if tuple(y.shape) != (n, k):
        raise ValueError(f"fit: the model outputs ({n}, {k}) but y{what} has shape "
                         f"{tuple(y.shape)}")
    y = xp.astype(y, dtype) if y.dtype != dtype else y
    if loss_name in CLASSIFICATION and bool(xp.any((y < 0) | (y > 1))):
        raise ValueError(f"fit: {loss_name} needs targets in [0, 1] (0/1 class labels or "
                         f"probabilities); y{what} has values from {float(xp.min(y))} to "
                         f"{float(xp.max(y))}")
    return X, y, None


def _class_targets(y: Array, backend: Any, dtype: Any, k: int,
                   what: str) -> tuple[Array, Array | None]:
    xp, n = backend.xp, y.shape[0]
    if y.ndim == 2:
        if tuple(y.shape) != (n, k):
            raise ValueError(f"fit: softmax_cross_entropy needs class ids ({n},) or rows "
                             f"({n}, {k}); y{what} has shape {tuple(y.shape)}")
        y = xp.astype(y, dtype) if y.dtype != dtype else y
        if bool(xp.any((y < 0) | (y > 1))):
            raise ValueError(f"fit: the rows of y{what} must be one-hot or probabilities "
                             "in [0, 1]")
        return y, None
    if y.ndim != 1:
        raise ValueError(f"fit: y{what} must be class ids (n,) or rows (n, {k}); "
                         f"got shape {tuple(y.shape)}")
    try:
        ids = class_ids(y, k, xp)
    except ValueError as exc:
        raise ValueError(f"fit: y{what} for softmax_cross_entropy: {exc}") from None
    classes = xp.arange(k, dtype=xp.int64, device=backend.device)[None, :]
    if n * k <= ONE_HOT_LIMIT:  # one-hot once; else per minibatch, to save memory
        return xp.astype(ids[:, None] == classes, dtype), None
    return ids, classes


def class_ids(y: Array, k: int, xp: Any) -> Array:
    """(n,) labels as int64 class ids, checked once: integers (or integral floats) in [0, k)."""
    if xp.isdtype(y.dtype, "real floating"):
        if not bool(xp.all(y == xp.round(y))):
            raise ValueError(f"class labels must be integers in [0, {k}); got non-integer "
                             f"values (dtype {y.dtype})")
    elif not xp.isdtype(y.dtype, ("integral", "bool")):
        raise ValueError(f"class labels must be integers in [0, {k}); got dtype {y.dtype}")
    ids = xp.astype(y, xp.int64)
    if bool(xp.any((ids < 0) | (ids >= k))):
        raise ValueError(f"class labels must lie in [0, {k}) for a model with {k} outputs; "
                         f"got values from {int(xp.min(ids))} to {int(xp.max(ids))}")
    return ids
