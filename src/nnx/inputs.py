"""What the public entry points accept: numbers and arrays, checked once per call.

``fit`` and ``predict`` convert their data once to the model's backend and dtype
(:func:`nnx.asarray`, so NumPy arrays, lists and other backends' arrays all work);
strings (numeric ones too), objects and complex numbers are refused with a message that
says what to do, and ``fit`` refuses NaN and infinity in X and y before training. Class
labels are validated here, once per ``fit``, never per step. :func:`real_number` and
:func:`positive_int` check the scalar settings of optimizers, initializers and layers
(booleans are not numbers there); :func:`layer_array` is what layers accept.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from .backend import asarray

Array = Any

__all__ = ["ONE_HOT_LIMIT", "CLASSIFICATION", "cut", "show", "positive_int", "real_number",
           "layer_array", "default_float", "convert", "prepare", "class_ids"]

#: what ``xp.asarray`` raises for data it cannot make an array of numbers from.
_CONVERSION_ERRORS = (TypeError, ValueError, OverflowError, RuntimeError)


def cut(text: str, limit: int = 80) -> str:
    """``text`` cut to about ``limit`` characters: messages never echo a huge value."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def show(value: Any, limit: int = 80) -> str:
    """``repr(value)`` for a message, never huge: cut to about ``limit`` characters, a long
    integer summarized (int -> str is quadratic), a repr that fails named by its type."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    try:
        text = repr(value)
    except Exception:  # a repr that itself fails (or is too long for Python to make)
        return f"a {type(value).__name__}"
    return cut(text, limit)

#: above this many elements the (n, k) one-hot matrix is built per minibatch instead.
ONE_HOT_LIMIT = 1 << 24

#: the losses whose targets are class labels or probabilities (validation reports accuracy).
CLASSIFICATION = ("binary_cross_entropy", "sigmoid_binary_cross_entropy",
                  "softmax_cross_entropy")


def positive_int(name: str, value: Any, owner: str = "fit") -> int:
    """``value`` if it is an int ≥ 1 (bools refused); ValueError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive integer; got {show(value)}")
    return int(value)


def real_number(owner: str, name: str, value: Any, *, low: float, low_open: bool = False,
                high: float | None = None, high_open: bool = True) -> float:
    """``value`` as a finite float in the interval given; ValueError naming ``owner`` and
    ``name`` otherwise. Python and NumPy reals are accepted; booleans, strings, NaN,
    infinities and integers too large for a float are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or type(value).__name__ == "bool_":
        raise ValueError(f"{owner}: {name} must be a real number; got {show(value)}")
    try:
        x = float(value)
    except (OverflowError, ValueError, TypeError):
        x = math.inf
    if math.isnan(x):
        raise ValueError(f"{owner}: {name} must be a real number; got {show(value)}")
    too_low = x <= low if low_open else x < low
    too_high = high is not None and (x >= high if high_open else x > high)
    if too_low or too_high or math.isinf(x):
        lo = "(" if low_open else "["
        hi = "∞)" if high is None else (f"{high})" if high_open else f"{high}]")
        raise ValueError(f"{owner}: {name} must lie in {lo}{low}, {hi}; got {show(value)}")
    return x


def _refuse_text(what: str, x: Any) -> None:
    kind = getattr(getattr(x, "dtype", None), "kind", None)
    if kind in ("U", "S", "O") or isinstance(x, (str, bytes)):
        dtype = getattr(x, "dtype", type(x).__name__)
        raise ValueError(f"{what} must be numeric; got {dtype} data (strings, numeric ones "
                         "too, and Python objects are not converted). Convert it to numbers "
                         "first; map class names to integer ids")


def layer_array(x: Any, backend: Any, dtype: Any, what: str) -> Array:
    """``x`` as an array of ``backend`` in ``dtype`` (None: its own): arrays of the backend
    and array-likes (lists, scalars) of real, integer or boolean numbers are cast; strings,
    objects, complex numbers and arrays of another backend are refused with a ValueError."""
    _refuse_text(what, x)
    try:
        given = x
        x = backend.asarray(given, what=what)
        if dtype is not None and x.dtype != dtype and not isinstance(given, backend.array_type) \
                and backend.xp.isdtype(x.dtype, "real floating"):
            x = backend.asarray(given, dtype=dtype, what=what)  # no detour through float32
    except _CONVERSION_ERRORS as exc:
        raise ValueError(f"{what} could not be made an array of numbers: "
                         f"{str(exc)[:300]}") from None
    if dtype is None or x.dtype != dtype:
        _refuse_text(what, x)
        if not backend.xp.isdtype(x.dtype, ("real floating", "integral", "bool")):
            raise ValueError(f"{what} must hold real, integer or boolean numbers; "
                             f"got dtype {x.dtype}")
        if dtype is not None:
            x = backend.xp.astype(x, dtype)
    return x


def default_float(backend: Any) -> Any:
    """The library's default real floating dtype (float64 on NumPy, float32 on PyTorch):
    what integer and boolean arrays become where no other floating dtype is given."""
    info = backend.xp.__array_namespace_info__()
    return info.default_dtypes(device=backend.device)["real floating"]


def convert(what: str, x: Any, backend: Any) -> Array:
    """``x`` as an array of ``backend`` with a real (or integer, bool) dtype (``fit`` and
    ``predict``: the messages name the array, ``what``)."""
    _refuse_text(what, x)
    try:
        arr = asarray(x, backend=backend)
    except _CONVERSION_ERRORS as exc:
        raise ValueError(f"{what} could not be made a {backend.name} array: "
                         f"{str(exc)[:200]}") from None
    _refuse_text(what, arr)
    if not backend.xp.isdtype(arr.dtype, ("real floating", "integral", "bool")):
        raise ValueError(f"{what} must be real numbers; got dtype {arr.dtype}")
    return arr


def _finite(what: str, x: Array, xp: Any) -> None:
    """ValueError naming ``what`` when the floating array ``x`` holds NaN or infinity."""
    if xp.isdtype(x.dtype, "real floating") and not bool(xp.all(xp.isfinite(x))):
        raise ValueError(f"fit: {what} contains NaN or infinity (after the cast to {x.dtype}, "
                         "values beyond its range become infinite); remove or impute them "
                         "before training")


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
    _finite(f"X{what}", X, xp)
    y = convert(f"y{what}", y, backend)
    n = X.shape[0]
    if y.ndim == 0 or y.shape[0] != n:
        got = "a scalar" if y.ndim == 0 else f"{y.shape[0]} rows"
        raise ValueError(f"fit: X{what} has {n} rows but y{what} has {got}; "
                         "they must have one target per sample")
    _finite(f"y{what}", y, xp)
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
    _finite(f"y{what}", y, xp)
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
        _finite(f"y{what}", y, xp)
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
