"""NumPy on the CPU: the reference backend."""

from __future__ import annotations

import math
from typing import Any

import array_api_compat.numpy as xp
import numpy as np

try:  # SciPy's erf is vectorised; fall back to math.erf element by element without it.
    from scipy.special import erf as _scipy_erf
except ImportError:  # pragma: no cover - depends on the environment
    _scipy_erf = None

_math_erf = np.vectorize(math.erf, otypes=[np.float64])


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
    if _scipy_erf is not None:
        return _scipy_erf(x)
    return _math_erf(x).astype(x.dtype, copy=False)


def synchronize(device: Any) -> None:
    return None
