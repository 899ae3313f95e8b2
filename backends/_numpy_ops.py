"""NumPy's fast paths for the hot operations: ``out=`` writes, in-place updates, fused losses.

Each gives the portable :class:`~nnx.backends.Ops` numbers bit for bit (the same NumPy
operations in the same order, into arrays it reuses, or one compiled loop of
:mod:`._numpy_loops`); ``tests/test_fastpaths.py``, ``tests/test_flat.py`` and
``tests/test_fused.py`` check them on both sides of every size threshold below.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import numpy as np

from . import _numpy_loops as _loops
from ._ops import Ops as _Ops

__all__ = ["NumpyOps", "UPDATE_CHUNK", "SMALL"]


@functools.cache
def _expit_impl() -> Any:
    """SciPy's logistic σ (one pass, stable), imported on first use; None without SciPy."""
    try:
        from scipy.special import expit
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    return expit


# -- fast paths (each checked against the portable Ops in tests/test_fastpaths.py) ------

#: elements per slice of the in-place update: its scratch slice (1 MiB of float32) stays in
#: cache, where a whole-array `alpha * g` temporary would cost a full extra pass (and its
#: page faults) through memory.
UPDATE_CHUNK = 1 << 18
#: results with fewer elements than this are allocated afresh rather than written in place.
SMALL = 1 << 12


class NumpyOps(_Ops):
    """NumPy's ``out=`` arguments and compiled loops: gradients written into their
    previous buffers, no float copy of the ReLU mask, updates without a temporary."""

    kind = "numpy"
    flat = True
    #: the compiled loops (``_fused``), or None: the NumPy calls below (the same bits)
    fused: Any = _loops.LOOPS

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

    def matmul_low(self, a, b):
        # NumPy has no float16 BLAS (its own loop is ~100× slower): float16 values are exact
        # in float32, so float32 BLAS and one rounding give the tensor-core semantics
        return np.dot(a.astype(np.float32), b.astype(np.float32)).astype(a.dtype)

    def sum(self, x):
        return np.add.reduce(x, axis=None)     # np.sum without its Python wrapper (~1 µs)

    def mean(self, x):
        if x.dtype.itemsize == 2:              # float16: np.mean accumulates in float32
            return np.mean(x)
        return np.add.reduce(x, axis=None) / x.size

    def sum_rows(self, x, out=None):
        if out is None or out.size < SMALL or out.shape != x.shape[1:] or out.dtype != x.dtype:
            out = None
        done = _loops.sum_rows(self.fused, x, out)    # one pass, NumPy's row order
        return done if done is not None else np.add.reduce(x, axis=0, out=out)

    def relu(self, z, out=None):
        # NumPy's maximum against a broadcast scalar takes a slow loop; against a row of
        # zeros (contiguous along the last axis) its SIMD loop runs, twice as fast.
        if out is not None and (out.shape != z.shape or out.dtype != z.dtype):
            out = None
        done = _loops.relu(self.fused, z, out)    # one compiled pass, the same bits
        if done is not None:
            return done
        if z.ndim == 0 or z.size < SMALL:
            return np.maximum(z, 0.0, out=out)
        key = (z.shape[-1], z.dtype)
        zero = self._zero_rows.get(key)
        if zero is None:
            if len(self._zero_rows) > 16:
                self._zero_rows.clear()
            zero = self._zero_rows[key] = np.zeros(z.shape[-1], dtype=z.dtype)
        return np.maximum(z, zero, out=out)

    def tanh(self, z, out=None):
        if out is not None and (out.shape != z.shape or out.dtype != z.dtype):
            out = None
        return np.tanh(z, out=out)

    def relu_backward(self, dy, a, out=None):
        if out is not None and (out.size < SMALL or out.shape != dy.shape
                                or out.dtype != dy.dtype):
            out = None
        done = _loops.relu_backward(self.fused, dy, a, out)   # one compiled pass
        if done is not None:
            return done
        if out is not None:
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
        if expit is None or z.dtype != y.dtype or z.dtype.itemsize < 4:  # SciPy's expit
            # has no float16 loop (it would answer in float32): the portable form keeps it
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
        if _loops.sub_scaled(self.fused, p, g, alpha):   # p − g·α in one pass
            return p
        n = p.size
        if (n <= UPDATE_CHUNK or not p.flags.c_contiguous or not g.flags.c_contiguous
                or p.shape != g.shape):
            a, cached_dtype, scalar = self._alpha
            if a != alpha or cached_dtype is not dtype:
                scalar = self._scalar(alpha, dtype)
            return np.subtract(p, np.multiply(g, scalar), out=p)   # p -= α g
        buf = self._pair(p.dtype)[0]
        flat_p, flat_g = p.reshape(-1), g.reshape(-1)
        for i in range(0, n, UPDATE_CHUNK):
            j = min(i + UPDATE_CHUNK, n)
            step = np.multiply(flat_g[i:j], alpha, out=buf[: j - i])   # α g, one slice
            np.subtract(flat_p[i:j], step, out=flat_p[i:j])            # p ← p − α g
        return p

    def softmax_xent(self, z, y):
        # The portable expressions, operation for operation (so bit for bit), each written
        # into an array the loss has already made instead of a fresh temporary.
        if z.dtype != y.dtype or z.ndim != 2:
            return super().softmax_xent(z, y)
        n = self._count(z.shape[0], z.dtype)
        log_p = np.subtract(z, np.maximum.reduce(z, axis=1, keepdims=True))
        e = np.exp(log_p)
        log_p -= np.log(np.add.reduce(e, axis=1, keepdims=True))   # z − max − log Σ e^(z − max)
        grad = np.exp(log_p, out=e)                                # softmax(z)
        term = np.multiply(y, log_p, out=log_p)
        loss = -np.add.reduce(term, None) / n
        if loss != loss:          # NaN: drop the 0 · (−inf) terms (as torch), keep real NaNs
            loss = -np.add.reduce(np.where(y == 0, 0.0, term), None) / n
        grad -= y
        grad /= n
        return loss, grad

    # -- the flat-buffer path ------------------------------------------------------------
    def copy_into(self, out, x):
        np.copyto(out, x)
        return out

    def matmul_into(self, a, b, out):
        if a.dtype == b.dtype == out.dtype and out.flags.c_contiguous:
            return np.dot(a, b, out=out)       # dot's out= needs exactly this; views qualify
        return np.matmul(a, b, out=out)

    def sum_rows_into(self, x, out):
        if _loops.sum_rows(self.fused, x, out) is not None:
            return out
        return np.add.reduce(x, axis=0, out=out)

    def _pair(self, dtype):
        """Two chunk-sized scratch arrays of ``dtype`` (per thread), reused by every step."""
        pair = getattr(self._scratch, "pair", None)
        if pair is None or pair[0].dtype != dtype:
            pair = self._scratch.pair = (np.empty(UPDATE_CHUNK, dtype),
                                         np.empty(UPDATE_CHUNK, dtype))
        return pair

    # The flat steps run the per-array path's operations in the same order, slice by slice
    # (each slice's temporaries in cache-sized scratch), so the numbers are the same bits.
    def sgd_step(self, p, g, buf, *, lr, momentum, nesterov, weight_decay, first):
        if p.dtype != g.dtype:
            return super().sgd_step(p, g, buf, lr=lr, momentum=momentum,
                                    nesterov=nesterov, weight_decay=weight_decay, first=first)
        if _loops.sgd(self.fused, p, g, buf, lr=lr, momentum=momentum, nesterov=nesterov,
                      weight_decay=weight_decay, first=first):
            return None
        if not (weight_decay or momentum):
            self.sub_scaled(p, g, lr)
            return None
        s1, s2 = self._pair(p.dtype)
        rate = p.dtype.type(lr)
        for i in range(0, p.shape[0], UPDATE_CHUNK):
            j = min(i + UPDATE_CHUNK, p.shape[0])
            pi, gi, k = p[i:j], g[i:j], j - i
            if weight_decay:                           # g ← g + λ p
                gi = np.add(gi, np.multiply(pi, weight_decay, out=s1[:k]), out=s1[:k])
            if momentum:
                bi = buf[i:j]
                if first:
                    np.copyto(bi, gi)                  # buf₁ = g₁
                else:
                    np.multiply(bi, momentum, out=bi)  # buf ← μ buf + g
                    np.add(bi, gi, out=bi)
                if nesterov:
                    gi = np.add(gi, np.multiply(bi, momentum, out=s2[:k]), out=s2[:k])
                else:
                    gi = bi
            np.subtract(pi, np.multiply(gi, rate, out=s2[:k]), out=pi)   # p ← p − η g
        return None

    def adam_step(self, p, g, m, v, *, step_size, b1, b2, sqrt_bc2, eps,
                  weight_decay):
        if p.dtype != g.dtype:
            return super().adam_step(p, g, m, v, step_size=step_size, b1=b1, b2=b2,
                                     sqrt_bc2=sqrt_bc2, eps=eps, weight_decay=weight_decay)
        if _loops.adam(self.fused, p, g, m, v, step_size=step_size, b1=b1, b2=b2,
                       sqrt_bc2=sqrt_bc2, eps=eps, weight_decay=weight_decay):
            return None
        c1, c2 = 1.0 - b1, 1.0 - b2
        s1, s2 = self._pair(p.dtype)
        step = p.dtype.type(step_size)
        for i in range(0, p.shape[0], UPDATE_CHUNK):
            j = min(i + UPDATE_CHUNK, p.shape[0])
            pi, gi, mi, vi, k = p[i:j], g[i:j], m[i:j], v[i:j], j - i
            t1, t2 = s1[:k], s2[:k]
            if weight_decay:                           # g ← g + λ p
                gi = np.add(gi, np.multiply(pi, weight_decay, out=t1), out=t1)
            np.multiply(mi, b1, out=mi)                # m ← β₁ m + (1 − β₁) g
            np.add(mi, np.multiply(gi, c1, out=t2), out=mi)
            np.multiply(vi, b2, out=vi)                # v ← β₂ v + (1 − β₂) g²
            np.multiply(gi, gi, out=t2)
            np.add(vi, np.multiply(t2, c2, out=t2), out=vi)
            np.sqrt(vi, out=t2)                        # √v / √(1 − β₂ᵗ) + ε
            np.divide(t2, sqrt_bc2, out=t2)
            np.add(t2, eps, out=t2)
            np.divide(mi, t2, out=t2)                  # p ← p − step · m / denom
            np.subtract(pi, np.multiply(t2, step, out=t2), out=pi)
        return None
