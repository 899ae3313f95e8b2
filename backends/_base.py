"""The Backend object: one array library on one device, plus what the standard lacks.

Every adapter module (``numpy.py``, ``cupy.py``, ...) provides the same handful of
functions; :class:`Backend` wraps one of them so the portable core never has to ask
which library it is talking to.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

from ._ops import Ops


@dataclass(frozen=True, eq=False)
class Backend:
    """An array library on one device.

    Attributes:
        name: one of ``numpy``, ``cupy``, ``torch``, ``jax``, ``array_api_strict``.
        xp: the Array API namespace (array_api_compat-wrapped where needed).
        device: the device new arrays are created on.
        array_type: the library's array class (for fast ``isinstance`` checks).
    """

    name: str
    xp: Any
    device: Any
    array_type: Any = field(repr=False)
    adapter: ModuleType = field(repr=False)
    #: the hot operations (:class:`~nnx.backends._ops.Ops`): the adapter's fast paths, or
    #: the portable reference when it has none or ``NNX_OPS=portable`` is set.
    ops: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.ops is None:
            make = getattr(self.adapter, "ops", None)
            if os.environ.get("NNX_OPS", "").strip().lower() == "portable":
                make = None        # the reference path alone: for A/B timing and triage
            object.__setattr__(self, "ops", make(self.xp) if make else Ops(self.xp))

    @property
    def immutable_arrays(self) -> bool:
        """True when the library's arrays cannot be written in place (JAX)."""
        return getattr(self.adapter, "IMMUTABLE_ARRAYS", False)

    # -- conversions -------------------------------------------------------------
    def from_numpy(self, a: np.ndarray) -> Any:
        """Copy a host NumPy array onto this backend's device."""
        return self.adapter.from_numpy(np.ascontiguousarray(a), self.device)

    def to_numpy(self, x: Any) -> np.ndarray:
        """Return a host NumPy copy of ``x`` (for saving, plotting, printing)."""
        return self.adapter.to_numpy(x)

    def owns(self, x: Any) -> bool:
        """True when ``x`` is an array of this backend's library."""
        return isinstance(x, self.array_type)

    def asarray(self, x: Any, *, dtype: Any = None, what: str = "input") -> Any:
        """``x`` as an array of this backend; arrays of another library are refused.

        Python scalars, nested lists and tuples are converted. An array that belongs
        to a different array library raises ``ValueError`` rather than being copied
        silently across devices: use :func:`nnx.asarray` to convert on purpose.
        """
        if isinstance(x, self.array_type):
            return x if dtype is None or x.dtype == dtype else self.xp.astype(x, dtype)
        if array_api_compat.is_array_api_obj(x):
            raise ValueError(
                f"{what} is a {name_of_array(x)} array, but this computation runs on the "
                f"{self.name!r} backend; arrays of two backends cannot be mixed. Convert it "
                f"first with nnx.asarray(x, backend={self.name!r})."
            )
        return self.xp.asarray(x, dtype=dtype, device=self.device)

    # -- what the standard lacks -------------------------------------------------
    def dtype(self, name: str) -> Any:
        """The library's floating dtype called ``name``: ``"float32"`` and ``"float64"``
        everywhere, the 16-bit ``"float16"`` and ``"bfloat16"`` where the library has them
        (outside the standard). ``ValueError`` says which ones this backend offers."""
        if name in ("float32", "float64"):
            return getattr(self.xp, name)
        low = getattr(self.adapter, "low_precision_dtypes", None)
        found = low() if low is not None else {}
        if name in found:
            return found[name]
        offered = ", ".join(["float32", "float64", *found])
        known = name in ("float16", "bfloat16")
        why = (f"the {self.name} backend has no {name}" if known
               else f"{name!r} is not a floating dtype nnx knows")
        hint = (" (bfloat16 runs on the torch and jax backends, and on cupy with ml_dtypes)"
                if name == "bfloat16" else "")
        raise ValueError(f"{why}; it offers {offered}{hint}")

    def erf(self, x: Any) -> Any:
        """The Gauss error function, elementwise (for the exact GELU)."""
        return self.adapter.erf(x)

    def synchronize(self, *arrays: Any) -> None:
        """Block until all queued work on the device, and ``arrays`` in particular, is done
        (for timing: JAX dispatches asynchronously even on the CPU)."""
        wait = getattr(self.adapter, "wait", None)
        if arrays and wait is not None:
            wait(arrays)
        self.adapter.synchronize(self.device)

    def library_version(self) -> str:
        """The array library's version string (for benchmark records)."""
        fn = getattr(self.adapter, "library_version", None)
        return fn() if fn else "unknown"

    def device_name(self) -> str:
        """A readable name of the device ("cpu", or the GPU's model)."""
        fn = getattr(self.adapter, "device_name", None)
        return fn(self.device) if fn else str(self.device)

    def step_threads(self, macs: int) -> Any:
        """A context manager for training steps whose largest matrix product has ``macs``
        multiply-adds: where the library's host thread pool slows small steps (NumPy's
        BLAS; see ``backends/numpy.py``), it runs them with one thread; elsewhere nothing."""
        fn = getattr(self.adapter, "step_threads", None)
        return fn(macs) if fn else contextlib.nullcontext()

    def memory_tracker(self) -> Any:
        """A tracker of the bytes this library allocates on the device, or None where the
        library exposes no such count (torch and JAX on the CPU).

        ``start()`` begins counting from zero, ``reset_peak()`` forgets the peak so far,
        ``peak()`` is the most bytes live at once since then (relative to ``start``), and
        ``stop()`` ends counting.
        """
        make = getattr(self.adapter, "memory_tracker", None)
        return make(self.device) if make else None

    # -- model files: raw little-endian bytes, through a host copy ----------------------
    def to_bytes(self, x: Any) -> tuple[str, tuple[int, ...], bytes]:
        """``(safetensors dtype code, shape, little-endian bytes)`` of array ``x``."""
        from ._host import to_le_bytes

        return to_le_bytes(self.to_numpy(x))

    def from_bytes(self, buf: bytes | memoryview, dtype: str, shape: tuple[int, ...]) -> Any:
        """An array on this device from little-endian ``buf`` (safetensors ``dtype`` code)."""
        from ._host import from_le_bytes

        return self.from_numpy(from_le_bytes(buf, dtype, shape))

    def host_permutation(self, n: int, *, seed: Any = None) -> list[int]:
        """A seeded permutation of ``range(n)`` as Python ints (for host-side loops)."""
        return [int(i) for i in np.random.default_rng(seed).permutation(n)]

    # -- seeded randomness: drawn on the host, so every backend gets the same bits --
    def normal(self, shape: tuple[int, ...], *, std: float = 1.0, seed: Any = None,
               dtype: str = "float32") -> Any:
        """Draw N(0, std²) samples of ``shape`` from ``seed`` (bitwise equal on all backends)."""
        rng = np.random.default_rng(seed)
        return self.from_numpy((rng.standard_normal(shape) * std).astype(dtype))

    def uniform(self, shape: tuple[int, ...], *, low: float, high: float, seed: Any = None,
                dtype: str = "float32") -> Any:
        """Draw U[low, high) samples of ``shape`` from ``seed`` (bitwise equal on all backends)."""
        rng = np.random.default_rng(seed)
        return self.from_numpy(rng.uniform(low, high, shape).astype(dtype))

    def permutation(self, n: int, *, seed: Any = None) -> Any:
        """A seeded random permutation of ``range(n)`` as an int64 array on the device."""
        return self.from_numpy(np.random.default_rng(seed).permutation(n).astype(np.int64))

    # -- CUDA graphs (nnx.capture); kept apart from the rest of the class -----------------
    def graph_unsupported(self) -> str | None:
        """None where :meth:`graph` can record work as a CUDA graph (CuPy, torch on a CUDA
        device); otherwise a sentence saying why not."""
        why = getattr(self.adapter, "graph_unsupported", None)
        if why is None:
            return f"the {self.name} backend has no CUDA graphs"
        return why(self.device)

    def graph(self, fn: Any) -> Any:
        """A recorder of ``fn()`` (no arguments; every array it reads or writes outlives
        it) as a CUDA graph, or None where :meth:`graph_unsupported` says why not.

        ``warm_up()`` runs ``fn`` once as the graph will and returns its result;
        ``capture()`` records it without running it (call ``warm_up`` first: kernels are
        compiled and lazily made state exists); ``replay()`` runs the recording on the
        current stream and returns what ``fn`` returned when recorded, refilled.
        """
        if self.graph_unsupported() is not None:
            return None
        return self.adapter.graph(fn, self.device, self.ops)


def spawn_seeds(seed: Any, n: int) -> list[np.random.SeedSequence]:
    """``n`` independent child seeds of ``seed`` (fresh OS entropy when ``seed`` is None)."""
    return np.random.SeedSequence(seed).spawn(n)


def _name_of_namespace(xp: Any) -> str:
    checks = (
        ("numpy", array_api_compat.is_numpy_namespace),
        ("cupy", array_api_compat.is_cupy_namespace),
        ("torch", array_api_compat.is_torch_namespace),
        ("jax", array_api_compat.is_jax_namespace),
        ("array_api_strict", array_api_compat.is_array_api_strict_namespace),
    )
    for name, check in checks:
        if check(xp):
            return name
    raise TypeError(f"nnx has no backend for the array namespace {getattr(xp, '__name__', xp)}")


def name_of_array(x: Any) -> str:
    """The backend name of one array (``'torch'`` for a torch.Tensor, ...)."""
    return _name_of_namespace(array_api_compat.array_namespace(x))
