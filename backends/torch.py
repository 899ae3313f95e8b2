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
