"""CuPy arrays on a CUDA GPU."""

from __future__ import annotations

from typing import Any

import array_api_compat.cupy as xp
import cupy
import numpy as np
from cupyx.scipy.special import erf as _erf


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
