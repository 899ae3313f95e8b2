"""PyTorch tensors, on the CPU or a CUDA device.

Longer than 300 lines: every PyTorch fast path in one place (eager, a captured step's).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import array_api_compat.torch as xp
import numpy as np
import torch

from ._ops import Ops as _Ops


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
    x = x.detach().cpu()
    if x.dtype == torch.bfloat16:  # NumPy has no bfloat16: ml_dtypes' where installed
        try:
            import ml_dtypes
        except ImportError:
            return x.float().numpy()       # exact: every bfloat16 is a float32
        return x.view(torch.int16).numpy().view(ml_dtypes.bfloat16).copy()
    return x.numpy().copy()


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


def low_precision_dtypes() -> dict[str, Any]:
    return {"float16": torch.float16, "bfloat16": torch.bfloat16}


def set_matmul_precision(precision: str) -> None:
    """"highest" | "high" (TF32 on CUDA) | "medium" (bfloat16 products): PyTorch's own names."""
    torch.set_float32_matmul_precision(precision)


# -- fast paths (each checked against the portable Ops in tests/test_fastpaths.py) ------

def _fits(out: Any, like: Any, shape: tuple[int, ...]) -> bool:
    """Whether ``out`` can take a result of ``shape`` and of ``like``'s dtype and device."""
    return (out is not None and tuple(out.shape) == shape and out.dtype == like.dtype
            and out.device == like.device and not out.requires_grad)


class TorchOps(_Ops):
    """PyTorch's ``out=`` arguments: gradients written into their previous buffers, the
    ReLU backward into the gradient it is handed, and the update as one fused ``sub_``
    (PyTorch's own SGD update) instead of a product and a difference."""

    kind = "torch"

    def matmul(self, a, b, out=None):
        shape = (a.shape[0], b.shape[1])
        if a.dtype == b.dtype and _fits(out, a, shape):
            return torch.matmul(a, b, out=out)
        return a @ b

    def sum_rows(self, x, out=None):
        if _fits(out, x, tuple(x.shape[1:])):
            return torch.sum(x, dim=0, out=out)
        return torch.sum(x, dim=0)

    def relu_backward(self, dy, a, out=None):
        if a.shape == dy.shape and _fits(out, dy, tuple(dy.shape)):
            return torch.mul(dy, a > 0, out=out)       # bool mask: no float copy of it
        return dy * (a > 0)

    # array_api_compat's maximum/minimum turn a Python 0.0 into a tensor on z's device: a
    # copy from the host on every call, which waits for it and which a CUDA graph cannot
    # record. The same products against a zero made once per dtype and device:
    def _zero(self, z):
        zeros = self.__dict__.setdefault("_zeros", {})
        zero = zeros.get((z.dtype, z.device))
        if zero is None:
            zero = zeros[(z.dtype, z.device)] = torch.zeros((), dtype=z.dtype, device=z.device)
        return zero

    def relu(self, z, out=None):
        if not z.is_floating_point():
            return super().relu(z)
        return torch.maximum(z, self._zero(z))             # max(z, 0), as xp.maximum(z, 0.0)

    def sigmoid_bce(self, z, y):
        if not z.is_floating_point():
            return super().sigmoid_bce(z, y)
        e = torch.exp(-torch.abs(z))                       # the portable expressions, with
        m = torch.minimum(z, self._zero(z))                # the zero made once
        loss = self.mean(z - m - z * y + torch.log1p(e))
        sigma = torch.exp(m) / (1.0 + e)
        return loss, (sigma - y) / z.numel()

    def sub_scaled(self, p, g, alpha):
        if p.dtype != g.dtype or p.shape != g.shape or p.requires_grad:
            return super().sub_scaled(p, g, alpha)
        return p.sub_(g, alpha=alpha)                  # p ← p − α g in one pass (may fuse)


    # -- the flat-buffer path ------------------------------------------------------------
    flat = True

    def view(self, buffer, start, shape):
        return buffer[start:start + math.prod(shape)].view(shape)   # a view, or an error

    def copy_into(self, out, x):
        return out.copy_(x)

    def matmul_into(self, a, b, out):
        return torch.matmul(a, b, out=out)

    def sum_rows_into(self, x, out):
        return torch.sum(x, dim=0, out=out)

    def _pair(self, p):
        """Two p-sized scratch tensors (kept for the last size, dtype and device asked)."""
        key = (p.shape[0], p.dtype, p.device)
        pair = getattr(self, "_scratch_pair", None)
        if pair is None or pair[0] != key:
            pair = self._scratch_pair = (key, torch.empty_like(p), torch.empty_like(p))
        return pair[1], pair[2]

    # The per-array path's operations in the same order, written into scratch tensors.
    def sgd_step(self, p, g, buf, *, lr, momentum, nesterov, weight_decay, first):
        if p.dtype != g.dtype or p.requires_grad:
            return super().sgd_step(p, g, buf, lr=lr, momentum=momentum, nesterov=nesterov,
                                    weight_decay=weight_decay, first=first)
        pair = self._pair(p)
        g = self._sgd_direction(p, g, buf, pair.__getitem__, momentum=momentum,
                                nesterov=nesterov, weight_decay=weight_decay, first=first)
        p.sub_(g, alpha=lr)                                # p ← p − η g
        return None

    def _sgd_direction(self, p, g, buf, scratch, *, momentum, nesterov, weight_decay, first):
        """SGD's direction, the momentum buffer updated in place; ``scratch(i)`` gives the
        p-sized tensor i (0, 1) for temporaries."""
        if weight_decay:                                   # g ← g + λ p
            s = scratch(0)
            g = torch.add(g, torch.mul(p, weight_decay, out=s), out=s)
        if momentum:
            if first:
                buf.copy_(g)                               # buf₁ = g₁
            else:
                buf.mul_(momentum).add_(g)                 # buf ← μ buf + g
            if nesterov:
                s = scratch(1)
                g = torch.add(g, torch.mul(buf, momentum, out=s), out=s)
            else:
                g = buf
        return g

    def adam_step(self, p, g, m, v, *, step_size, b1, b2, sqrt_bc2, eps, weight_decay):
        if p.dtype != g.dtype or p.requires_grad:
            return super().adam_step(p, g, m, v, step_size=step_size, b1=b1, b2=b2,
                                     sqrt_bc2=sqrt_bc2, eps=eps, weight_decay=weight_decay)
        s1, s2 = self._pair(p)
        if weight_decay:                                   # g ← g + λ p
            g = torch.add(g, torch.mul(p, weight_decay, out=s1), out=s1)
        m.mul_(b1).add_(torch.mul(g, 1.0 - b1, out=s2))   # m ← β₁ m + (1 − β₁) g
        v.mul_(b2).add_(torch.mul(g, g, out=s2).mul_(1.0 - b2))   # v ← β₂ v + (1 − β₂) g²
        denom = torch.sqrt(v, out=s2).div_(sqrt_bc2).add_(eps)
        p.sub_(torch.div(m, denom, out=s2), alpha=step_size)      # p ← p − step · m/denom
        return None

    # -- a captured step (nnx.capture): lr and Adam's t read from float64 device tensors --
    # The operations of sgd_step/adam_step in the same order; ``p.sub_(x, alpha=α)`` becomes
    # ``p.addcmul_(x, α, value=-1)``, which rounds alike (one fused multiply-add on the
    # CPU, measured bitwise equal). Scratch tensors are made per call, so that a capture
    # draws them from its graph's own pool.
    def take_rows_into(self, x, idx, out):
        return torch.index_select(x, 0, idx, out=out)

    def fill(self, out, value):
        return out.fill_(value)

    def accumulate(self, total, value, weight):
        return total.add_(value, alpha=weight)

    def sgd_step_capturable(self, p, g, buf, lr, *, momentum, nesterov, weight_decay,
                            first):
        if p.dtype != g.dtype or p.requires_grad:
            return super().sgd_step_capturable(p, g, buf, lr, momentum=momentum,
                                               nesterov=nesterov, weight_decay=weight_decay,
                                               first=first)
        rate = lr.to(p.dtype)
        g = self._sgd_direction(p, g, buf, lambda i: torch.empty_like(p), momentum=momentum,
                                nesterov=nesterov, weight_decay=weight_decay, first=first)
        p.addcmul_(g, rate, value=-1)                      # p ← p − η g
        return None

    def adam_step_capturable(self, p, g, m, v, t, lr, *, b1, b2, eps, weight_decay):
        if p.dtype != g.dtype or p.requires_grad:
            return super().adam_step_capturable(p, g, m, v, t, lr, b1=b1, b2=b2, eps=eps,
                                                weight_decay=weight_decay)
        t.add_(1.0)                                        # t ← t + 1, then in float64:
        step = torch.div(lr, torch.pow(b1, t).neg_().add_(1.0)).to(p.dtype)  # lr/(1 − β₁ᵗ)
        sqrt_bc2 = torch.pow(b2, t).neg_().add_(1.0).sqrt_().to(p.dtype)    # √(1 − β₂ᵗ)
        s1, s2 = torch.empty_like(p), torch.empty_like(p)
        if weight_decay:                                   # g ← g + λ p
            g = torch.add(g, torch.mul(p, weight_decay, out=s1), out=s1)
        m.mul_(b1).add_(torch.mul(g, 1.0 - b1, out=s2))   # m ← β₁ m + (1 − β₁) g
        v.mul_(b2).add_(torch.mul(g, g, out=s2).mul_(1.0 - b2))   # v ← β₂ v + (1 − β₂) g²
        denom = torch.sqrt(v, out=s2).div_(sqrt_bc2).add_(eps)
        p.addcmul_(torch.div(m, denom, out=s2), step, value=-1)   # p ← p − step · m/denom
        return None


def ops(xp: Any) -> TorchOps:
    return TorchOps(xp)


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


# -- CUDA graphs (nnx.capture) ----------------------------------------------------------
def graph_unsupported(device: Any) -> str | None:
    """None on a CUDA device; on the CPU, why there is no graph to record."""
    if torch.device(device).type != "cuda":
        return f"torch runs on {torch.device(device)}; CUDA graphs need a CUDA device"
    if getattr(torch.version, "hip", None):
        return "torch on ROCm (HIP): nnx records CUDA graphs on NVIDIA devices only"
    return None


class _Graph:
    """``fn()`` as a ``torch.cuda.CUDAGraph``, used as PyTorch's documentation shows:
    :meth:`warm_up` runs it on a side stream (lazy initialisation, cuBLAS workspaces and
    kernel loading stay out of the capture), :meth:`capture` records it under
    ``torch.cuda.graph`` (its own side stream and private memory pool) without running it,
    and :meth:`replay` launches it on the current stream and returns what ``fn`` returned
    when recorded (the same tensors, refilled)."""

    def __init__(self, fn: Callable[[], Any], device: Any) -> None:
        self._fn, self._device = fn, torch.device(device)
        self._graph: Any = None
        self._out: Any = None

    def warm_up(self) -> Any:
        current = torch.cuda.current_stream(self._device)
        side = torch.cuda.Stream(self._device)
        side.wait_stream(current)
        with torch.cuda.device(self._device), torch.cuda.stream(side):
            out = self._fn()
        current.wait_stream(side)
        return out

    def capture(self) -> None:
        g = torch.cuda.CUDAGraph()
        with torch.cuda.device(self._device):
            with torch.cuda.graph(g):
                out = self._fn()
        self._graph, self._out = g, out

    def replay(self) -> Any:
        self._graph.replay()
        return self._out


def graph(fn: Callable[[], Any], device: Any, ops: Any) -> _Graph | None:
    return _Graph(fn, device) if graph_unsupported(device) is None else None
