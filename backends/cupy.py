"""CuPy arrays on a CUDA GPU.

Longer than 300 lines: every CuPy kernel in one place (fast paths, a captured step's).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
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
# SGD with momentum on one element (rate: the learning rate), shared by the eager kernel
# and the captured one, which reads the rate on the device
_SGD_MOMENTUM_UPDATE = """
    T gg = wd == (T)0 ? g : g + wd * p;
    buf = first ? gg : buf * mu + gg;
    p -= rate * (nesterov ? gg + mu * buf : buf);
    """

_sgd_momentum_step = cupy.ElementwiseKernel(
    "T g, T rate, T mu, T wd, bool nesterov, bool first", "T p, T buf",
    _SGD_MOMENTUM_UPDATE, "nnx_sgd_momentum_step")

_sgd_decay_step = cupy.ElementwiseKernel(
    "T g, T lr, T wd", "T p",
    "p -= lr * (g + wd * p)",
    "nnx_sgd_decay_step")

# Adam's update of one element (step size s, bc = √(1 − β₂ᵗ)), shared by the eager kernel,
# which takes s and bc as arguments, and the captured one, which reads them on the device
_ADAM_UPDATE = """
    T gg = wd == (T)0 ? g : g + wd * p;
    m = m * b1 + c1 * gg;
    v = v * b2 + c2 * (gg * gg);
    p -= s * (m / (sqrt(v) / bc + eps));
    """

_adam_step = cupy.ElementwiseKernel(
    "T g, T s, T b1, T c1, T b2, T c2, T bc, T eps, T wd", "T p, T m, T v",
    _ADAM_UPDATE, "nnx_adam_step")


# -- a captured step (nnx.capture) ------------------------------------------------------
# CuPy refuses every cuBLAS call while a stream captures (``cublas.setStream`` raises
# NotImplementedError during capture, CuPy 9 to 14; CuPy issue #6290), so the products
# of a captured step run on this kernel instead: one thread per element of C = A B, a
# plain loop over k accumulating in T (float32, float64), A and B any strided 2-d views
# (Wᵀ, δᵀ) read through CuPy's multi-index. Graphs are for small networks, whose step is
# launch-bound; there this is as fast as cuBLAS and the launches it saves are the point.
_graph_gemm = cupy.ElementwiseKernel(
    "raw T a, raw T b, int64 k_dim, int64 n_cols", "T c",
    """
    const ptrdiff_t row = i / n_cols;
    const ptrdiff_t col = i % n_cols;
    T acc = 0;
    for (ptrdiff_t k = 0; k < k_dim; ++k) {
        const ptrdiff_t ia[2] = {row, k};
        const ptrdiff_t ib[2] = {k, col};
        acc += a[ia] * b[ib];
    }
    c = acc;
    """,
    "nnx_graph_gemm")

# The capturable optimizer steps: the learning rate (and Adam's step count t) are read
# from float64 device arrays (1,), never baked into the graph as kernel arguments.
_sgd_capturable_plain = cupy.ElementwiseKernel(
    "T g, raw float64 lr, T wd", "T p",
    """
    const T rate = (T)lr[0];
    p -= rate * (wd == (T)0 ? g : g + wd * p);
    """,
    "nnx_sgd_capturable_plain")

_sgd_capturable_momentum = cupy.ElementwiseKernel(
    "T g, raw float64 lr, T mu, T wd, bool nesterov, bool first", "T p, T buf",
    """
    const T rate = (T)lr[0];""" + _SGD_MOMENTUM_UPDATE,
    "nnx_sgd_capturable_momentum")

# t ← t + 1, then lr / (1 − β₁ᵗ) and √(1 − β₂ᵗ) in float64, on one thread
_adam_bias_corrections = cupy.ElementwiseKernel(
    "float64 lr, float64 b1, float64 b2", "float64 t, float64 step, float64 sqrt_bc2",
    """
    t = t + 1.0;
    step = lr / (1.0 - pow(b1, t));
    sqrt_bc2 = sqrt(1.0 - pow(b2, t));
    """,
    "nnx_adam_bias_corrections")

_adam_capturable = cupy.ElementwiseKernel(
    "T g, raw float64 step, raw float64 sqrt_bc2, T b1, T c1, T b2, T c2, T eps, T wd",
    "T p, T m, T v",
    """
    const T s = (T)step[0];
    const T bc = (T)sqrt_bc2[0];""" + _ADAM_UPDATE,
    "nnx_adam_capturable")

# out[i, c] = x[perm[offset + i], c]: a minibatch's rows in one kernel per array, read at
# the device's offset (x and out seen as 2-d)
_gather_rows = cupy.ElementwiseKernel(
    "raw T x, raw int64 perm, raw int64 offset, int64 cols", "T out",
    """
    const ptrdiff_t src[2] = {(ptrdiff_t)perm[offset[0] + i / cols], i % cols};
    out = x[src];
    """,
    "nnx_gather_rows")

_accumulate = cupy.ElementwiseKernel(
    "T value, T weight", "T total",
    "total += value * weight",
    "nnx_accumulate")


class CupyOps(_Ops):
    """CuPy fast paths: ``out=`` products and sums, fused elementwise kernels."""

    kind = "cupy"

    #: set while a captured step runs (:func:`graph`): products avoid cuBLAS
    graph_safe = False
    #: ``fit(capture=None)`` records a step only while its largest product is at most this
    #: many multiply-adds: beyond, cuBLAS outruns the graph's own kernel (not yet measured)
    graph_max_product = 1 << 22

    def matmul(self, a, b, out=None):
        if self.graph_safe:
            return _graph_matmul(a, b, out)
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

    def clip_min(self, x, low):
        # array_api_compat's clip assigns through a boolean mask, which reads the mask's count
        # on the host (a sync per call, and no CUDA graph); cupy.maximum keeps NaN as clip does
        return cupy.maximum(x, x.dtype.type(low))

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
        if self.graph_safe:
            return _graph_matmul(a, b, out)
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

    # -- a captured step: the same updates, with lr and t read from the device ---------
    def take_rows_into(self, x, idx, out):
        return cupy.take(x, idx, axis=0, out=out)

    def gather_rows_into(self, perm, offset, at, pairs):
        for x, out in pairs:
            if x.dtype != out.dtype or x.ndim != out.ndim or x.ndim > 2:
                super().gather_rows_into(perm, offset, at, ((x, out),))
                continue
            x2, out2 = x.reshape(x.shape[0], -1), out.reshape(out.shape[0], -1)
            if out2.base is None and out2 is not out:   # not a view: write through instead
                super().gather_rows_into(perm, offset, at, ((x, out),))
                continue
            _gather_rows(x2, perm, offset, out2.shape[1], out2)

    def fill(self, out, value):
        out.fill(value)
        return out

    def accumulate(self, total, value, weight):
        if total.dtype != value.dtype:
            return super().accumulate(total, value, weight)
        return _accumulate(value, total.dtype.type(weight), total)

    def sgd_step_capturable(self, p, g, buf, lr, *, momentum, nesterov, weight_decay,
                            first):
        if p.dtype != g.dtype:
            return super().sgd_step_capturable(p, g, buf, lr, momentum=momentum,
                                               nesterov=nesterov, weight_decay=weight_decay,
                                               first=first)
        t = p.dtype.type
        if momentum:
            _sgd_capturable_momentum(g, lr, t(momentum), t(weight_decay), bool(nesterov),
                                     bool(first), p, buf)
        else:
            _sgd_capturable_plain(g, lr, t(weight_decay), p)
        return None

    def adam_step_capturable(self, p, g, m, v, t, lr, *, b1, b2, eps, weight_decay):
        if p.dtype != g.dtype:
            return super().adam_step_capturable(p, g, m, v, t, lr, b1=b1, b2=b2, eps=eps,
                                                weight_decay=weight_decay)
        step, sqrt_bc2 = cupy.empty_like(t), cupy.empty_like(t)
        _adam_bias_corrections(lr, float(b1), float(b2), t, step, sqrt_bc2)
        k = p.dtype.type
        _adam_capturable(g, step, sqrt_bc2, k(b1), k(1.0 - b1), k(b2), k(1.0 - b2), k(eps),
                         k(weight_decay), p, m, v)
        return None


def _graph_matmul(a: Any, b: Any, out: Any) -> Any:
    """a @ b ((n, k) @ (k, m) → (n, m)) without cuBLAS, into ``out`` where it fits."""
    shape = (a.shape[0], b.shape[1])
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0] or a.dtype != b.dtype \
            or a.dtype.kind != "f" or a.dtype.itemsize < 4:
        raise NotImplementedError(
            f"a captured step multiplies float32/float64 matrices only (CuPy cannot record "
            f"cuBLAS in a CUDA graph); got {a.dtype} {tuple(a.shape)} @ {b.dtype} "
            f"{tuple(b.shape)}")
    if out is None or tuple(out.shape) != shape or out.dtype != a.dtype:
        out = cupy.empty(shape, dtype=a.dtype)
    _graph_gemm(a, b, a.shape[1], shape[1], out)
    return out


def _elementwise(kernel: Any, dy: Any, a: Any, out: Any) -> Any:
    """``kernel(dy, a)`` written into ``out`` where it fits the result, else a new array."""
    if out is not None and out.shape == dy.shape == a.shape and out.dtype == dy.dtype == a.dtype:
        return kernel(dy, a, out)
    return kernel(dy, a)


def ops(xp: Any) -> CupyOps:
    return CupyOps(xp)


# -- CUDA graphs (nnx.capture) ----------------------------------------------------------
def graph_unsupported(device: Any) -> str | None:
    """None: every CuPy device can record CUDA graphs (CuPy ≥ 9; not on ROCm/HIP)."""
    if cupy.cuda.runtime.is_hip:
        return "CuPy on ROCm (HIP) records no CUDA graphs"
    return None


@contextlib.contextmanager
def _graph_safe(ops: Any) -> Iterator[None]:
    """Products through the graph-safe kernel (no cuBLAS) while the block runs."""
    was = getattr(ops, "graph_safe", False)
    ops.graph_safe = True
    try:
        yield
    finally:
        ops.graph_safe = was


class _Graph:
    """``fn()`` as a CUDA graph: :meth:`warm_up` runs it as the graph will (compiling its
    kernels), :meth:`capture` records it on a side stream without running it, with every
    allocation from a memory pool of its own that nothing else draws from (so that a
    replay never writes into memory handed out since), and :meth:`replay` launches it on
    the current stream and returns what ``fn`` returned when recorded (the same arrays,
    refilled)."""

    def __init__(self, fn: Callable[[], Any], device: Any, ops: Any) -> None:
        self._fn, self._device, self._ops = fn, device, ops
        self._graph: Any = None
        self._pool: Any = None
        self._out: Any = None

    def warm_up(self) -> Any:
        with self._device, _graph_safe(self._ops):
            return self._fn()

    def capture(self) -> None:
        pool = cupy.cuda.MemoryPool()
        stream = cupy.cuda.Stream(non_blocking=True)
        with self._device:
            cupy.cuda.get_current_stream().synchronize()
            with cupy.cuda.using_allocator(pool.malloc), _graph_safe(self._ops), stream:
                stream.begin_capture()   # relaxed mode: the pool may cudaMalloc meanwhile
                try:
                    out = self._fn()
                except BaseException:
                    with contextlib.suppress(Exception):
                        stream.end_capture()     # leave capture mode; the graph is dropped
                    raise
                graph = stream.end_capture()
        self._graph, self._pool, self._stream, self._out = graph, pool, stream, out

    def replay(self) -> Any:
        self._graph.launch()       # on the current stream, after the work queued there
        return self._out


def graph(fn: Callable[[], Any], device: Any, ops: Any) -> _Graph:
    return _Graph(fn, device, ops)


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
