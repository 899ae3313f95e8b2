"""NumPy on the CPU: the reference backend."""

from __future__ import annotations

import functools
import math
import threading
import tracemalloc
from typing import Any

import array_api_compat.numpy as xp
import numpy as np

from ._ops import Ops as _Ops

_math_erf = np.vectorize(math.erf, otypes=[np.float64])


@functools.cache
def _erf_impl() -> Any:
    """SciPy's vectorised erf, imported on first use (it costs ~0.1 s at import); without
    SciPy, math.erf element by element."""
    try:
        from scipy.special import erf
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    return erf


@functools.cache
def _expit_impl() -> Any:
    """SciPy's logistic σ (one pass, stable), imported on first use; None without SciPy."""
    try:
        from scipy.special import expit
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    return expit


def available() -> str | None:
    return None


def namespace():
    return xp


def array_type():
    return np.ndarray


def default_device(device: Any = None) -> str:
    if device not in (None, "cpu"):
        raise ValueError(f"the numpy backend runs on 'cpu' only; got device={device!r}")
    return "cpu"


def from_numpy(a: np.ndarray, device: Any) -> np.ndarray:
    return np.array(a, copy=True)


def to_numpy(x: Any) -> np.ndarray:
    return np.array(x, copy=True)


def erf(x: np.ndarray) -> np.ndarray:
    scipy_erf = _erf_impl()
    if scipy_erf is not None:
        return scipy_erf(x)
    return _math_erf(x).astype(x.dtype, copy=False)


def synchronize(device: Any) -> None:
    return None


def library_version() -> str:
    return np.__version__


def device_name(device: Any) -> str:
    return "cpu"


# -- fast paths (each checked against the portable Ops in tests/test_fastpaths.py) ------

#: elements per slice of the in-place update: its scratch slice (1 MiB of float32) stays in
#: cache, where a whole-array `alpha * g` temporary would cost a full extra pass (and its
#: page faults) through memory.
UPDATE_CHUNK = 1 << 18
#: results with fewer elements than this are allocated afresh rather than written in place.
SMALL = 1 << 12


class NumpyOps(_Ops):
    """NumPy's ``out=`` arguments: gradients written into their previous buffers, no
    float copy of the ReLU mask, and parameter updates without a full-size temporary."""

    kind = "numpy"

    def __init__(self, xp: Any) -> None:
        super().__init__(xp)
        self._scratch = threading.local()
        self._alpha: tuple[float, Any, np.ndarray] = (0.0, None, np.zeros(()))
        self._zero_rows: dict[tuple[int, Any], np.ndarray] = {}
        self._counts: dict[tuple[int, Any], Any] = {}

    def _scalar(self, alpha: float, dtype: Any) -> np.ndarray:
        """α as a 0-d array of ``dtype``: a Python float costs NumPy ~0.3 µs to convert per
        call, as much as the whole update of a tiny layer. Rounded as ``g * α`` would."""
        self._alpha = (alpha, dtype, np.asarray(alpha, dtype=dtype))
        return self._alpha[2]

    # Small results are simply allocated: for them the checks cost more than a fresh array.
    def matmul(self, a, b, out=None):
        if out is None or out.size < SMALL or out.shape != (a.shape[0], b.shape[1]) \
                or not out.dtype == a.dtype == b.dtype:
            # (n, k)·(k, m): np.dot is the same sgemm, dispatched ~0.35 µs faster than `@`
            # (a ufunc); large products measured alike (8.8 ms at 512×784·784×2048)
            return np.dot(a, b)
        return np.matmul(a, b, out=out)

    def sum(self, x):
        return np.add.reduce(x, axis=None)     # np.sum without its Python wrapper (~1 µs)

    def sum_rows(self, x, out=None):
        if out is None or out.size < SMALL or out.shape != x.shape[1:] or out.dtype != x.dtype:
            return np.add.reduce(x, axis=0)
        return np.add.reduce(x, axis=0, out=out)

    def relu(self, z):
        # NumPy's maximum against a broadcast scalar takes a slow loop; against a row of
        # zeros (contiguous along the last axis) its SIMD loop runs, twice as fast.
        if z.ndim == 0 or z.size < SMALL:
            return np.maximum(z, 0.0)
        key = (z.shape[-1], z.dtype)
        zero = self._zero_rows.get(key)
        if zero is None:
            if len(self._zero_rows) > 16:
                self._zero_rows.clear()
            zero = self._zero_rows[key] = np.zeros(z.shape[-1], dtype=z.dtype)
        return np.maximum(z, zero)

    def relu_backward(self, dy, a, out=None):
        if out is not None and out.size >= SMALL and out.shape == dy.shape \
                and out.dtype == dy.dtype:
            return np.multiply(dy, a > 0, out=out)
        return np.multiply(dy, a > 0)      # bool × float: no float copy of the mask

    # The portable expressions, operation for operation (so bit for bit); for large
    # arrays the factor is made in one scratch array and the product written into ``out``
    # (small ones: the operators, which NumPy dispatches faster than out= calls).
    def tanh_backward(self, dy, a, out=None):
        if dy.size < SMALL:
            return dy * (1.0 - a * a)
        factor = np.multiply(a, a)
        np.subtract(1.0, factor, out=factor)              # 1 − a²
        return np.multiply(dy, factor, out=self._out(out, dy, factor))

    def sigmoid_backward(self, dy, a, out=None):
        if dy.size < SMALL:
            return dy * (a * (1.0 - a))
        factor = np.subtract(1.0, a)
        np.multiply(a, factor, out=factor)                # a(1 − a)
        return np.multiply(dy, factor, out=self._out(out, dy, factor))

    @staticmethod
    def _out(out, dy, scratch):
        """``out`` where it fits the result, else the scratch array where that does."""
        if out is not None and out.shape == dy.shape and out.dtype == dy.dtype:
            return out
        return scratch if scratch.shape == np.broadcast_shapes(dy.shape, scratch.shape) \
            and scratch.dtype == np.result_type(dy, scratch) else None

    def sigmoid_bce(self, z, y):
        # 4 ufunc calls and a reduction where the portable form makes 14: on a tiny
        # network the loss is a quarter of the step. softplus(z) = max(z,0) + log(1+e^−|z|).
        expit = _expit_impl()
        if expit is None or z.dtype != y.dtype:  # pragma: no cover - without SciPy
            return super().sigmoid_bce(z, y)
        n = self._count(z.size, z.dtype)    # N as a scalar of z's dtype: what `/ N` converts to
        term = np.logaddexp(0.0, z)         # softplus(z), stable for any z
        term -= z * y
        grad = expit(z)
        grad -= y
        grad /= n
        return np.add.reduce(term, None) / n, grad

    def _count(self, n, dtype):
        cached = self._counts.get((n, dtype))
        if cached is None:
            if len(self._counts) > 64:
                self._counts.clear()
            cached = self._counts[(n, dtype)] = dtype.type(n)
        return cached

    def sub_scaled(self, p, g, alpha):
        dtype = p.dtype
        if g.dtype is not dtype:            # mixed precision: NumPy's own promotion rules
            p -= alpha * g
            return p
        n = p.size
        if (n <= UPDATE_CHUNK or not p.flags.c_contiguous or not g.flags.c_contiguous
                or p.shape != g.shape):
            a, cached_dtype, scalar = self._alpha
            if a != alpha or cached_dtype is not dtype:
                scalar = self._scalar(alpha, dtype)
            return np.subtract(p, np.multiply(g, scalar), out=p)   # p -= α g
        buf = getattr(self._scratch, "buf", None)
        if buf is None or buf.dtype != p.dtype:
            buf = self._scratch.buf = np.empty(UPDATE_CHUNK, dtype=p.dtype)
        flat_p, flat_g = p.reshape(-1), g.reshape(-1)
        for i in range(0, n, UPDATE_CHUNK):
            j = min(i + UPDATE_CHUNK, n)
            step = np.multiply(flat_g[i:j], alpha, out=buf[: j - i])   # α g, one slice
            np.subtract(flat_p[i:j], step, out=flat_p[i:j])            # p ← p − α g
        return p


def ops(xp: Any) -> NumpyOps:
    return NumpyOps(xp)


def memory_tracker(device: Any) -> _TraceMalloc:
    """NumPy reports its array buffers to ``tracemalloc``: count them."""
    return _TraceMalloc()


class _TraceMalloc:
    """Bytes allocated (through Python's allocators and NumPy's) since ``start``."""

    def __init__(self) -> None:
        self._was_tracing = False

    def start(self) -> None:
        self._was_tracing = tracemalloc.is_tracing()
        if not self._was_tracing:
            tracemalloc.start()
        self._base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()

    def reset_peak(self) -> None:
        tracemalloc.reset_peak()

    def peak(self) -> int:
        return tracemalloc.get_traced_memory()[1] - self._base

    def stop(self) -> None:
        if not self._was_tracing:
            tracemalloc.stop()
