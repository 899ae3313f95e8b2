"""PyTorch's own training step: the reference nnx's benchmark measures itself against.

``torch.nn.Linear`` layers, autograd and ``torch.optim.SGD``, written as a PyTorch user
would, on the torch device that matches the nnx backend under test (the same GPU for
CuPy, or for torch and JAX on CUDA; the CPU otherwise). Everything PyTorch-specific
the benchmark needs lives here, behind the backend fence.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from . import torch as _torch_adapter

__all__ = ["device_for", "Reference", "mlp_step", "ADAM_IMPLEMENTATIONS", "dense_forward",
           "dense_forward_backward", "count_kernel_launches", "train_classifier",
           "PRECISIONS", "precision_step"]

_ACTIVATIONS = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid,
                "identity": torch.nn.Identity}


def device_for(backend: Any) -> str | None:
    """The torch device beside an nnx :class:`Backend`'s device; None if torch lacks it."""
    name, device = backend.name, backend.device
    if name == "torch":
        return str(device)
    if name == "cupy":
        index = getattr(device, "id", 0)
        return f"cuda:{index}" if torch.cuda.is_available() else None
    if name == "jax" and getattr(device, "platform", "cpu") == "gpu":
        return f"cuda:{getattr(device, 'id', 0)}" if torch.cuda.is_available() else None
    return "cpu"


class Reference:
    """One callable unit of PyTorch work, with its device's ``synchronize``."""

    def __init__(self, fn: Callable[[], Any], device: str, module: torch.nn.Module | None,
                 data_bytes: int = 0) -> None:
        self.fn = fn
        self.device = torch.device(device)
        self.module = module
        self.data_bytes = data_bytes    # the input batch and targets it holds
        self.inputs: tuple[Any, ...] = ()   # (x, y) of a training step
        self.optimizer: Any = None

    def __call__(self) -> Any:
        return self.fn()

    def synchronize(self) -> None:
        _torch_adapter.synchronize(self.device)

    def memory_tracker(self) -> Any:
        """Peak-memory tracker on CUDA (``max_memory_allocated``); None on the CPU."""
        return _torch_adapter.memory_tracker(self.device)


def _mlp(sizes: Sequence[int], activation: str, dtype: torch.dtype, device: str,
         seed: int) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    layers: list[torch.nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        layers.append(torch.nn.Linear(n_in, n_out, dtype=dtype, device=device))
        if i < len(sizes) - 2:
            layers.append(_ACTIVATIONS[activation]())
    return torch.nn.Sequential(*layers)


#: PyTorch's Adam implementations: a loop over tensors, multi-tensor kernels, one fused kernel.
ADAM_IMPLEMENTATIONS = {"for-loop": {"foreach": False}, "foreach": {"foreach": True},
                        "fused": {"fused": True}}


def mlp_step(sizes: Sequence[int], batch: int, *, activation: str = "relu",
             loss: str = "softmax_cross_entropy", lr: float = 0.01, device: str = "cpu",
             dtype: str = "float32", seed: int = 0, optimizer: str = "sgd",
             adam: str = "fused") -> Reference:
    """A full PyTorch training step of the MLP ``sizes`` on a fixed random batch.

    forward, loss (``F.cross_entropy`` on class ids, ``F.binary_cross_entropy_with_logits``
    or ``F.mse_loss``), ``loss.backward()``, ``SGD.step()`` (or ``Adam.step()`` with
    ``optimizer="adam"``, in the implementation ``adam`` names: ``"for-loop"``,
    ``"foreach"`` or ``"fused"``) and ``zero_grad()``, as in any PyTorch training loop.
    """
    dt = getattr(torch, dtype)
    model = _mlp(sizes, activation, dt, device, seed)
    rng = np.random.default_rng(seed)
    x = torch.tensor(rng.standard_normal((batch, sizes[0])), dtype=dt, device=device)
    k = sizes[-1]
    if loss == "softmax_cross_entropy":
        y = torch.tensor(rng.integers(0, k, batch), device=device)
        loss_fn = torch.nn.functional.cross_entropy
    elif loss == "sigmoid_binary_cross_entropy":
        y = torch.tensor(rng.integers(0, 2, (batch, k)), dtype=dt, device=device)
        loss_fn = torch.nn.functional.binary_cross_entropy_with_logits
    elif loss == "mse":
        y = torch.tensor(rng.standard_normal((batch, k)), dtype=dt, device=device)
        loss_fn = torch.nn.functional.mse_loss
    else:
        raise ValueError(f"no PyTorch reference for loss {loss!r}")
    if optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=lr, **ADAM_IMPLEMENTATIONS[adam])
    elif optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=lr)
    else:
        raise ValueError(f"no PyTorch reference for optimizer {optimizer!r}")

    def step() -> None:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

    ref = Reference(step, device, model, _nbytes(x) + _nbytes(y))
    ref.inputs, ref.optimizer = (x, y), opt
    return ref


#: PyTorch's mixed-precision recipes: float32 matmul precision, autocast dtype, GradScaler.
PRECISIONS: dict[str, tuple[str, torch.dtype | None, bool]] = {
    "float32": ("highest", None, False),
    "tf32": ("high", None, False),
    "bfloat16": ("highest", torch.bfloat16, False),
    "float16": ("highest", torch.float16, True),
}


def precision_step(sizes: Sequence[int], batch: int, *, precision: str, lr: float = 0.01,
                   device: str = "cpu", seed: int = 0, optimizer: str = "sgd") -> Reference:
    """:func:`mlp_step` (ReLU, cross-entropy, float32 ``nn.Linear``) in one of PyTorch's
    own precision recipes, as its documentation writes them:

    ``"float32"``: ``torch.set_float32_matmul_precision("highest")``; ``"tf32"``: the
    same with ``"high"``; ``"bfloat16"``: the forward and the loss under
    ``torch.autocast(device_type, dtype=torch.bfloat16)``; ``"float16"``: autocast to
    float16 with ``torch.amp.GradScaler`` (``scale(loss).backward()``, ``step``,
    ``update``). The matmul precision is set at the start of every step (a host-side
    switch), so steps of different recipes can be timed interleaved.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    matmul, low, scaled = PRECISIONS[precision]
    r = mlp_step(sizes, batch, lr=lr, device=device, seed=seed, optimizer=optimizer)
    model, dev = r.module, r.device
    x, y = r.inputs
    opt = r.optimizer
    scaler = torch.amp.GradScaler(dev.type) if scaled else None
    loss_fn = torch.nn.functional.cross_entropy

    def step() -> None:
        torch.set_float32_matmul_precision(matmul)
        opt.zero_grad()
        with (torch.autocast(device_type=dev.type, dtype=low) if low is not None
              else contextlib.nullcontext()):
            loss = loss_fn(model(x), y)
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()

    return Reference(step, device, model, r.data_bytes)


def _nbytes(t: torch.Tensor) -> int:
    return t.element_size() * t.nelement()


def _linear(n_in: int, n_out: int, batch: int, dtype: str, device: str,
            seed: int) -> tuple[torch.nn.Linear, torch.Tensor, torch.Tensor]:
    dt = getattr(torch, dtype)
    torch.manual_seed(seed)
    layer = torch.nn.Linear(n_in, n_out, dtype=dt, device=device)
    rng = np.random.default_rng(seed)
    x = torch.tensor(rng.standard_normal((batch, n_in)), dtype=dt, device=device)
    dy = torch.tensor(rng.standard_normal((batch, n_out)), dtype=dt, device=device)
    return layer, x, dy


def dense_forward(n_in: int, n_out: int, batch: int, *, device: str = "cpu",
                  dtype: str = "float32", seed: int = 0) -> Reference:
    """``nn.Linear`` forward on a (batch, n_in) input, recording the autograd graph."""
    layer, x, _ = _linear(n_in, n_out, batch, dtype, device, seed)
    return Reference(lambda: layer(x), device, layer)


def dense_forward_backward(n_in: int, n_out: int, batch: int, *, device: str = "cpu",
                           dtype: str = "float32", seed: int = 0) -> Reference:
    """``nn.Linear`` forward, then backward of a given dL/dy into weight, bias and input."""
    layer, x, dy = _linear(n_in, n_out, batch, dtype, device, seed)
    x.requires_grad_(True)

    def fwd_bwd() -> None:
        layer.zero_grad()
        x.grad = None
        layer(x).backward(dy)

    return Reference(fwd_bwd, device, layer)


def count_kernel_launches(fn: Callable[[], Any], device: str) -> int | None:
    """CUDA kernels launched by one call of ``fn`` (any library's, seen through CUPTI by
    ``torch.profiler``); None on the CPU or where the profiler cannot see kernels."""
    names = kernel_launches(fn, device)
    return len(names) if names else None


def kernel_launches(fn: Callable[[], Any], device: str) -> list[str] | None:
    """The names of the CUDA kernels one call of ``fn`` launches, in order (copies and
    memsets left out); None on the CPU or where the profiler cannot see kernels."""
    dev = torch.device(device)
    if dev.type != "cuda":
        return None
    from torch.profiler import ProfilerActivity, profile

    fn()
    torch.cuda.synchronize(dev)
    try:
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            fn()
            torch.cuda.synchronize(dev)
    except Exception:  # profiler unavailable (no CUPTI): report unknown, not a failure
        return None
    kernels = [e for e in prof.events()
               if e.device_type == torch.autograd.DeviceType.CUDA and "memcpy" not in e.name.lower()
               and "memset" not in e.name.lower()]
    kernels.sort(key=lambda e: e.time_range.start)
    return [e.name for e in kernels] or None


def train_classifier(X_train: Any, y_train: Any, X_test: Any, y_test: Any, *,
                     sizes: Sequence[int], epochs: int, batch: int, lr: float,
                     adam: str = "fused", seed: int = 0) -> dict[str, float]:
    """The digits demo's job as a PyTorch user writes it: ``nn.Sequential`` of Linear and
    ReLU, ``F.cross_entropy``, ``torch.optim.Adam`` (implementation ``adam``), shuffled
    minibatches of ``batch`` rows every epoch, the mean training loss and the test loss and
    accuracy after every epoch (as ``nnx``'s ``fit`` with ``validation_data`` reports).

    Host arrays in; returns ``{"seconds": training time, "accuracy": final test accuracy}``.
    """
    import time

    torch.manual_seed(seed)
    model = _mlp(sizes, "relu", torch.float32, "cpu", seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, **ADAM_IMPLEMENTATIONS[adam])
    Xt, yt = torch.as_tensor(np.asarray(X_train, np.float32)), torch.as_tensor(y_train)
    Xv, yv = torch.as_tensor(np.asarray(X_test, np.float32)), torch.as_tensor(y_test)
    loss_fn = torch.nn.functional.cross_entropy
    n = Xt.shape[0]
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    accuracy = 0.0
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        X, y = Xt[perm], yt[perm]
        total = torch.zeros(())
        for a in range(0, n, batch):
            xb, yb = X[a:a + batch], y[a:a + batch]
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.detach() * xb.shape[0]
        float(total / n)                                   # the epoch's mean loss
        with torch.no_grad():
            out = model(Xv)
            float(loss_fn(out, yv))
            accuracy = float((out.argmax(1) == yv).float().mean())
    return {"seconds": time.perf_counter() - start, "accuracy": accuracy}
