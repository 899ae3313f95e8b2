"""array-api-strict: a NumPy-backed namespace that allows only the standard.

Running the suite on it proves the core uses nothing outside the Array API.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import numpy as _numpy_adapter

try:
    import array_api_strict as xp
except ImportError as exc:  # re-raised with the pip hint by the registry
    raise ImportError(str(exc)) from exc


def available() -> str | None:
    return None


def namespace():
    return xp


def array_type():
    return type(xp.asarray(0))


def default_device(device: Any = None) -> Any:
    if device is None or str(device) == str(xp.Device("CPU_DEVICE")):
        return xp.Device("CPU_DEVICE")
    raise ValueError(f"the array_api_strict backend uses its default device; got {device!r}")


def from_numpy(a: np.ndarray, device: Any) -> Any:
    return xp.asarray(np.array(a, copy=True), device=device)


def to_numpy(x: Any) -> np.ndarray:
    return np.array(np.from_dlpack(x), copy=True)


def erf(x: Any) -> Any:
    return xp.asarray(_numpy_adapter.erf(to_numpy(x)), dtype=x.dtype, device=x.device)


def synchronize(device: Any) -> None:
    return None


def library_version() -> str:
    return xp.__version__


def device_name(device: Any) -> str:
    return "cpu"


def set_matmul_precision(precision: str) -> None:
    """No effect: NumPy underneath multiplies float32 in float32."""


def memory_tracker(device: Any):
    """array-api-strict wraps NumPy arrays, whose buffers ``tracemalloc`` sees."""
    return _numpy_adapter.memory_tracker(device)
