"""The Backend object: one array library on one device, plus what the standard lacks.

Every adapter module (``numpy.py``, ``cupy.py``, ...) provides the same handful of
functions; :class:`Backend` wraps one of them so the portable core never has to ask
which library it is talking to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np


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
            from . import name_of_array

            raise ValueError(
                f"{what} is a {name_of_array(x)} array, but this computation runs on the "
                f"{self.name!r} backend; arrays of two backends cannot be mixed. Convert it "
                f"first with nnx.asarray(x, backend={self.name!r})."
            )
        return self.xp.asarray(x, dtype=dtype, device=self.device)

    # -- what the standard lacks -------------------------------------------------
    def erf(self, x: Any) -> Any:
        """The Gauss error function, elementwise (for the exact GELU)."""
        return self.adapter.erf(x)

    def synchronize(self) -> None:
        """Block until all queued work on the device has finished (for timing)."""
        self.adapter.synchronize(self.device)

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


def spawn_seeds(seed: Any, n: int) -> list[np.random.SeedSequence]:
    """``n`` independent child seeds of ``seed`` (fresh OS entropy when ``seed`` is None)."""
    return np.random.SeedSequence(seed).spawn(n)
