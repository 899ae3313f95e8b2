"""PyTorch tensors, on the CPU or a CUDA device."""

from __future__ import annotations

from typing import Any

import array_api_compat.torch as xp
import numpy as np
import torch


def available() -> str | None:
    return None


def namespace():
    return xp


def array_type():
    return torch.Tensor


def default_device(device: Any = None) -> torch.device:
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("torch has no CUDA device here; use device='cpu'")
    return device


def from_numpy(a: np.ndarray, device: Any) -> torch.Tensor:
    return torch.tensor(a, device=device)


def to_numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy().copy()


def erf(x: torch.Tensor) -> torch.Tensor:
    return torch.special.erf(x)


def synchronize(device: Any) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def library_version() -> str:
    return torch.__version__


def device_name(device: Any) -> str:
    device = torch.device(device)
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


class _CudaMemory:
    """Peak bytes of torch's CUDA caching allocator (``max_memory_allocated``) since ``start``."""

    def __init__(self, device: torch.device) -> None:
        self._device = device
        self._base = 0

    def start(self) -> None:
        torch.cuda.synchronize(self._device)
        self._base = torch.cuda.memory_allocated(self._device)
        torch.cuda.reset_peak_memory_stats(self._device)

    def reset_peak(self) -> None:
        torch.cuda.synchronize(self._device)
        torch.cuda.reset_peak_memory_stats(self._device)

    def peak(self) -> int:
        torch.cuda.synchronize(self._device)
        return torch.cuda.max_memory_allocated(self._device) - self._base

    def stop(self) -> None:
        return None


def memory_tracker(device: Any) -> _CudaMemory | None:
    """On CUDA, torch's allocator statistics; on the CPU torch keeps no such count."""
    device = torch.device(device)
    return _CudaMemory(device) if device.type == "cuda" else None
