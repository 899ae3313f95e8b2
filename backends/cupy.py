"""CuPy arrays on a CUDA GPU."""

from __future__ import annotations

import functools
from typing import Any

import array_api_compat.cupy as xp
import cupy
import numpy as np
from cupyx.scipy.special import erf as _erf

from ._ops import Ops as _Ops


def available() -> str | None:
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError, missing driver, ...
        return f"cupy is installed but no CUDA device answered ({type(exc).__name__}: {exc})"
    if count == 0:
        return "cupy is installed but this machine has no CUDA device"
    return None


def namespace():
    return xp


def array_type():
    return cupy.ndarray


def default_device(device: Any = None) -> Any:
    if device is None:
        return cupy.cuda.Device()
    if isinstance(device, cupy.cuda.Device):
        return device
    text = str(device)
    index = int(text.split(":")[-1]) if ":" in text else (int(text) if text.isdigit() else 0)
    return cupy.cuda.Device(index)


def from_numpy(a: np.ndarray, device: Any) -> cupy.ndarray:
    with device:
        return cupy.array(a, copy=True)


def to_numpy(x: cupy.ndarray) -> np.ndarray:
    return cupy.asnumpy(x)


def erf(x: cupy.ndarray) -> cupy.ndarray:
    return _erf(x)


def synchronize(device: Any) -> None:
    device.synchronize()


def library_version() -> str:
    return cupy.__version__


def device_name(device: Any) -> str:
    name = cupy.cuda.runtime.getDeviceProperties(device.id)["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


@functools.cache
def low_precision_dtypes() -> dict[str, Any]:
    """float16; bfloat16 where this CuPy computes with ml_dtypes' bfloat16 (CuPy 14+)."""
    found = {"float16": cupy.float16}
    try:
        import ml_dtypes

        (cupy.ones((2, 2), dtype=ml_dtypes.bfloat16) @ cupy.ones((2, 2), dtype=ml_dtypes.bfloat16))
        found["bfloat16"] = ml_dtypes.bfloat16
    except Exception:  # noqa: BLE001  (no ml_dtypes, or a CuPy without bfloat16 kernels)
        pass
    return found


def set_matmul_precision(precision: str) -> None:
    """CuPy's cuBLAS compute type for float32 products (what ``CUPY_TF32=1`` selects):
    TF32 for "high", bfloat16 for "medium", the default (full float32) for "highest"."""
    import os

    from cupy._core import _routines_linalg as linalg

    kind = {"highest": getattr(linalg, "COMPUTE_TYPE_DEFAULT", 1),
            "high": getattr(linalg, "COMPUTE_TYPE_TF32", 7),
            "medium": getattr(linalg, "COMPUTE_TYPE_BF16", 6)}[precision]
    os.environ["CUPY_TF32"] = "1" if precision == "high" else "0"
    linalg.set_compute_type(cupy.float32, kind)


# -- fast paths (each checked against the portable Ops in tests/test_fastpaths.py) ------
# One fused kernel where the portable expression launches two or three; products and
# sums write into nnx's previous gradient buffers instead of taking fresh pool blocks.

_relu_backward = cupy.ElementwiseKernel(
    "T dy, T a", "T dz",
    "dz = dy * (a > (T)0 ? (T)1 : (T)0)",          # dL/dz = dL/da ⊙ [a > 0]
    "nnx_relu_backward")

_tanh_backward = cupy.ElementwiseKernel(
    "T dy, T a", "T dz",
    "dz = dy * ((T)1 - a * a)",                    # dL/dz = dL/da ⊙ (1 − a²)
    "nnx_tanh_backward")

_sigmoid_backward = cupy.ElementwiseKernel(
    "T dy, T a", "T dz",
    "dz = dy * (a * ((T)1 - a))",                  # dL/dz = dL/da ⊙ a(1 − a)
    "nnx_sigmoid_backward")

# Binary cross-entropy on logits: the mean of the stable per-element term in one
# reduction kernel, the gradient (σ(z) − y)/N in one elementwise kernel.
_sigmoid_bce_sum = cupy.ReductionKernel(
    "T z, T y", "T loss",
    "z - (z < (T)0 ? z : (T)0) - z * y + log1p(exp(-fabs(z)))",
    "a + b", "loss = a", "0", "nnx_sigmoid_bce_sum")

_sigmoid_bce_grad = cupy.ElementwiseKernel(
    "T z, T y, T n", "T grad",
    """
    T e = exp(-fabs(z));
    T m = z < (T)0 ? z : (T)0;
    grad = (exp(m) / ((T)1 + e) - y) / n;
    """,
    "nnx_sigmoid_bce_grad")

_sub_scaled = cupy.ElementwiseKernel(
    "T g, T alpha", "T p",
    "p -= alpha * g",                              # p ← p − α g, in place
    "nnx_sub_scaled")


# The flat optimizer steps, one kernel over the whole parameter buffer (torch.optim's
# formulas; ``first`` sets the momentum buffer to g, ``wd`` is the L2 coefficient).
_sgd_momentum_step = cupy.ElementwiseKernel(
    "T g, T lr, T mu, T wd, bool nesterov, bool first", "T p, T buf",
    """
    T gg = wd == (T)0 ? g : g + wd * p;
    buf = first ? gg : buf * mu + gg;
    p -= lr * (nesterov ? gg + mu * buf : buf);
    """,
    "nnx_sgd_momentum_step")

_sgd_decay_step = cupy.ElementwiseKernel(
    "T g, T lr, T wd", "T p",
    "p -= lr * (g + wd * p)",
    "nnx_sgd_decay_step")

_adam_step = cupy.ElementwiseKernel(
    "T g, T step, T b1, T c1, T b2, T c2, T sqrt_bc2, T eps, T wd", "T p, T m, T v",
    """
    T gg = wd == (T)0 ? g : g + wd * p;
    m = m * b1 + c1 * gg;
    v = v * b2 + c2 * (gg * gg);
    p -= step * (m / (sqrt(v) / sqrt_bc2 + eps));
    """,
    "nnx_adam_step")


class CupyOps(_Ops):
    """CuPy fast paths: ``out=`` products and sums, fused elementwise kernels."""

    kind = "cupy"

    def matmul(self, a, b, out=None):
        if (out is not None and out.shape == (a.shape[0], b.shape[1])
                and out.dtype == a.dtype == b.dtype):
            return cupy.matmul(a, b, out=out)
        return cupy.matmul(a, b)

    def sum_rows(self, x, out=None):
        if out is not None and out.shape == x.shape[1:] and out.dtype == x.dtype:
            return cupy.sum(x, axis=0, out=out)
        return cupy.sum(x, axis=0)

    # An ElementwiseKernel takes its outputs as trailing arguments or not at all (None is
    # refused), and may write into an input, element for element.
    def relu_backward(self, dy, a, out=None):
        return _elementwise(_relu_backward, dy, a, out)

    def tanh_backward(self, dy, a, out=None):
        return _elementwise(_tanh_backward, dy, a, out)

    def sigmoid_backward(self, dy, a, out=None):
        return _elementwise(_sigmoid_backward, dy, a, out)

    def sigmoid_bce(self, z, y):
        if z.dtype != y.dtype or z.shape != y.shape:
            return super().sigmoid_bce(z, y)
        n = z.dtype.type(z.size)
        return _sigmoid_bce_sum(z, y) / n, _sigmoid_bce_grad(z, y, n)

    def sub_scaled(self, p, g, alpha):
        if p.dtype != g.dtype or p.shape != g.shape:
            p -= alpha * g
            return p
        _sub_scaled(g, p.dtype.type(alpha), p)
        return p


    # -- the flat-buffer path: products into the gradient views, one kernel per update ---
    flat = True

    def copy_into(self, out, x):
        # casting as `out[...] = x` casts (a bfloat16 gradient into the float32 buffer:
        # ml_dtypes' bfloat16 is not of float kind, so 'same_kind' would refuse it)
        cupy.copyto(out, x, casting="unsafe")
        return out

    def matmul_into(self, a, b, out):
        return cupy.matmul(a, b, out=out)

    def sum_rows_into(self, x, out):
        return cupy.sum(x, axis=0, out=out)

    def sgd_step(self, p, g, buf, *, lr, momentum, nesterov, weight_decay, first):
        if p.dtype != g.dtype:
            return super().sgd_step(p, g, buf, lr=lr, momentum=momentum, nesterov=nesterov,
                                    weight_decay=weight_decay, first=first)
        t = p.dtype.type
        if momentum:
            _sgd_momentum_step(g, t(lr), t(momentum), t(weight_decay), bool(nesterov),
                               bool(first), p, buf)
        elif weight_decay:
            _sgd_decay_step(g, t(lr), t(weight_decay), p)
        else:
            _sub_scaled(g, t(lr), p)
        return None

    def adam_step(self, p, g, m, v, *, step_size, b1, b2, sqrt_bc2, eps, weight_decay):
        if p.dtype != g.dtype:
            return super().adam_step(p, g, m, v, step_size=step_size, b1=b1, b2=b2,
                                     sqrt_bc2=sqrt_bc2, eps=eps, weight_decay=weight_decay)
        t = p.dtype.type
        _adam_step(g, t(step_size), t(b1), t(1.0 - b1), t(b2), t(1.0 - b2), t(sqrt_bc2), t(eps),
                   t(weight_decay), p, m, v)
        return None


def _elementwise(kernel: Any, dy: Any, a: Any, out: Any) -> Any:
    """``kernel(dy, a)`` written into ``out`` where it fits the result, else a new array."""
    if out is not None and out.shape == dy.shape == a.shape and out.dtype == dy.dtype == a.dtype:
        return kernel(dy, a, out)
    return kernel(dy, a)


def ops(xp: Any) -> CupyOps:
    return CupyOps(xp)


class _PoolPeak(cupy.cuda.MemoryHook):
    """Counts the bytes handed out by CuPy's memory pool, and their peak."""

    name = "nnx_pool_peak"

    def __init__(self) -> None:
        self.current = 0
        self.peak = 0

    def malloc_postprocess(self, **kwargs: Any) -> None:
        self.current += kwargs["mem_size"]
        if self.current > self.peak:
            self.peak = self.current

    def free_postprocess(self, **kwargs: Any) -> None:
        self.current -= kwargs["mem_size"]


class _PoolTracker:
    """Peak bytes of CuPy's memory pool (rounded block sizes) since ``start``."""

    def __init__(self, device: Any) -> None:
        self._device = device
        self._hook = _PoolPeak()

    def start(self) -> None:
        self._device.synchronize()
        self._hook.__enter__()

    def reset_peak(self) -> None:
        self._device.synchronize()
        self._hook.peak = self._hook.current

    def peak(self) -> int:
        self._device.synchronize()
        return self._hook.peak

    def stop(self) -> None:
        self._hook.__exit__(None, None, None)


def memory_tracker(device: Any) -> _PoolTracker:
    return _PoolTracker(device)
