"""NumPy's compiled loops (``backends/_fused.c``) behind the fast paths of :mod:`._numpy_ops`.

Each function below runs one loop of the module ``loops`` (the extension, or a stand-in
with the same functions) and returns its result, or None/False where the loop cannot take
the arrays: another dtype or shape (checked here), strided, read-only or overlapping
buffers (refused by the loop itself). The caller's NumPy calls answer then. A loop gives
the bits of those calls (``tests/test_fused.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:    # optional: built by setup.py where a C compiler is found
    from . import _fused as LOOPS
except ImportError:  # pragma: no cover - built without a C compiler: the NumPy calls run
    LOOPS = None

__all__ = ["LOOPS", "fused_updates", "relu", "relu_backward", "sum_rows", "sub_scaled",
           "sgd", "adam"]

#: the dtypes of the loops (native byte order: these very objects).
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
#: what the loops raise for arrays they cannot take (strided, read-only, overlapping)
_REFUSED = (ValueError, BufferError)


def fused_updates() -> str | None:
    """The instruction set of the compiled loops (``"avx2"``, ``"baseline"``), or None
    where the extension was not built and NumPy calls run instead."""
    return None if LOOPS is None else str(LOOPS.instruction_set)


def _takes(p: np.ndarray, *others: np.ndarray | None) -> bool:
    """One float32 or float64 dtype and one shape for ``p`` and every other array given."""
    dtype, shape = p.dtype, p.shape
    if dtype is not _DTYPES[0] and dtype is not _DTYPES[1]:
        return False
    for a in others:
        if a is not None and (a.dtype is not dtype or a.shape != shape):
            return False
    return True


def _run(fn: Any, *args: Any) -> bool:
    try:
        fn(*args)
    except _REFUSED:
        return False
    return True


def relu(loops: Any, z: np.ndarray, out: np.ndarray | None) -> np.ndarray | None:
    """maximum(z, 0) into ``out`` (a new array if None); ``out`` may be ``z``."""
    if loops is None or not _takes(z, out):
        return None
    done = np.empty_like(z) if out is None else out
    return done if _run(loops.relu, z, done) else None


def relu_backward(loops: Any, dy: np.ndarray, a: np.ndarray,
                  out: np.ndarray | None) -> np.ndarray | None:
    """dy · (a > 0) into ``out`` (a new array if None)."""
    if loops is None or not _takes(dy, a, out):
        return None
    done = np.empty_like(dy) if out is None else out
    return done if _run(loops.relu_backward, dy, a, done) else None


def sum_rows(loops: Any, x: np.ndarray, out: np.ndarray | None) -> np.ndarray | None:
    """add.reduce(x, axis=0) of a 2-d ``x`` into ``out`` (k,) (a new array if None)."""
    if loops is None or x.ndim != 2 or not _takes(x):
        return None
    if out is not None and (out.dtype is not x.dtype or out.shape != x.shape[1:]):
        return None
    done = np.empty(x.shape[1:], x.dtype) if out is None else out
    return done if _run(loops.sum_rows, x, done) else None


def sub_scaled(loops: Any, p: np.ndarray, g: np.ndarray, alpha: float) -> bool:
    """p ← p − g·α in place (α rounded to p's dtype)."""
    return loops is not None and _takes(p, g) and _run(
        loops.sgd, p, g, None, alpha, 0.0, 0.0, False, False)


def sgd(loops: Any, p: np.ndarray, g: np.ndarray, buf: np.ndarray | None, *, lr: float,
        momentum: float, nesterov: bool, weight_decay: float, first: bool) -> bool:
    """One SGD step over flat buffers in place (``buf``: the momentum buffer)."""
    return loops is not None and _takes(p, g, buf) and _run(
        loops.sgd, p, g, buf if momentum else None, lr, momentum, weight_decay, first,
        nesterov)


def adam(loops: Any, p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, *,
         step_size: float, b1: float, b2: float, sqrt_bc2: float, eps: float,
         weight_decay: float) -> bool:
    """One Adam step over flat buffers in place."""
    return loops is not None and _takes(p, g, m, v) and _run(
        loops.adam, p, g, m, v, step_size, b1, 1.0 - b1, b2, 1.0 - b2, sqrt_bc2, eps,
        weight_decay)
