"""NumPy on the CPU: the reference backend (its fast paths: :mod:`._numpy_ops`)."""

from __future__ import annotations

import contextlib
import functools
import math
import tracemalloc
from collections.abc import Iterator
from typing import Any

import array_api_compat.numpy as xp
import numpy as np

from ._numpy_loops import fused_updates as fused_updates  # the compiled loops, if built
from ._numpy_ops import NumpyOps

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


def low_precision_dtypes() -> dict[str, Any]:
    """float16 (no bfloat16 in NumPy): products through float32 BLAS, for correctness."""
    return {"float16": np.float16}


def set_matmul_precision(precision: str) -> None:
    """No effect: the CPU multiplies float32 in float32 (no TF32 units)."""


#: A training step whose every matrix product has at most this many multiply-adds runs
#: with one BLAS thread. OpenBLAS's idle threads spin for a while after each product, and
#: on a 2-vCPU VM that spinning slowed the step's other work (elementwise passes, the
#: optimizer, Python) 2-4×: with one thread the digits demo's step (64-256-128-10 ×32,
#: largest product 1M) took 0.95× its time with two, scikit-learn's digits MLP (float64,
#: 64-128-64-10 ×64) 0.88×, 256-512-512-10 ×256 (67M) 0.92×; from 256-1024-1024 ×256 (268M)
#: up, two threads halve the products and win (bench/README.md, "Small networks").
ONE_THREAD_MACS = 1 << 25


@functools.cache
def _blas_controller() -> Any:
    """threadpoolctl's view of the BLAS pools loaded with NumPy (made once, ~0.2 ms; a
    BLAS another library loads later, such as SciPy's, is not NumPy's and not steered),
    or None."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency of nnx
        return None
    return ThreadpoolController().select(user_api="blas")


@contextlib.contextmanager
def step_threads(macs: int) -> Iterator[None]:
    """One BLAS thread while steps whose largest product has ``macs`` ≤ ONE_THREAD_MACS
    multiply-adds run (an ~8 µs switch, made once per epoch); otherwise as configured."""
    pools = _blas_controller() if macs <= ONE_THREAD_MACS else None
    if not pools or all(p.get("num_threads", 1) <= 1 for p in pools.info()):
        yield
        return
    with pools.limit(limits=1):
        yield


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
