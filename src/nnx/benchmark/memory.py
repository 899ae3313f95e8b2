"""Peak memory of one training step: nnx's (NumPy's and CuPy's counters) and PyTorch's (CUDA).

The count starts before the model is built, so parameters, gradients and optimizer state
are in it, and is read over the second step (the first makes the gradients and state).
"""

from __future__ import annotations

from typing import Any

from ..backend import Backend, resolve_backend
from . import cases
from .cases import Network
from .timing import Timed

__all__ = ["peak", "step_peak_memory", "torch_step_peak_memory"]


def peak(tracker: Any, build: Any) -> int:
    """Peak bytes ``tracker`` counts during the second step of the Timed ``build()`` makes."""
    tracker.start()
    try:
        timed = build()
        timed.fn()                     # first step: gradients and optimizer state appear
        timed.sync()
        tracker.reset_peak()
        timed.fn()
        timed.sync()
        return int(tracker.peak())
    finally:
        tracker.stop()


def step_peak_memory(backend: Backend | str, net: Network, *, seed: int = 0) -> int | None:
    """Peak bytes alive during one nnx step (after a first step), parameters, gradients and
    optimizer state included, the input batch not; None where the library counts nothing."""
    backend = resolve_backend(backend)
    tracker = backend.memory_tracker()
    if tracker is None:
        return None
    data = cases.make_batch(backend, net, seed=seed)   # the caller's data: made before counting
    return peak(tracker, lambda: cases.training_step(backend, net, seed=seed, data=data))


def torch_step_peak_memory(backend: Backend | str, net: Network, *, seed: int = 0) -> int | None:
    """The same for PyTorch's step (CUDA only: torch counts no CPU memory)."""
    ref, device = cases._torch_device(resolve_backend(backend))
    if device is None:
        return None
    probe = ref.Reference(lambda: None, device, None)
    tracker = probe.memory_tracker()
    if tracker is None:
        return None
    holder: list[Any] = []

    def build() -> Timed:
        t = cases.torch_step(backend, net, seed=seed)
        holder.append(t.reference)  # type: ignore[union-attr]
        return t  # type: ignore[return-value]

    found = peak(tracker, build)
    return found - holder[0].data_bytes
