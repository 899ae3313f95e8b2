"""The benchmark's units of work, each built on one backend and ready to time.

* :func:`floor` — the raw matrix products of an MLP training step, nothing else;
* :func:`training_step` — nnx's full step: forward, loss, backward, SGD update;
* :func:`dense_pass` / :func:`dense_floor` — one Dense layer's forward or forward+backward;
* :func:`torch_step` / :func:`torch_dense` — PyTorch's own, on the matching device;
* :func:`hand_written_step` / :func:`hand_written_xor` — the same step by hand in NumPy;
* :func:`kernel_launches` — the CUDA kernels one step launches (nnx's and PyTorch's).

Peak memory of a step: :mod:`nnx.benchmark.memory`.

Every builder returns a :class:`~nnx.benchmark.timing.Timed` whose ``sync`` waits for all
the work ``fn`` queued (GPU streams, JAX's asynchronous dispatch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .. import losses as _losses
from .. import optim as _optim
from ..backend import Backend, resolve_backend, use_backend
from ..layers import Dense
from ..sequential import MLP
from ..trainer import largest_product
from .timing import Timed

__all__ = ["Network", "make_batch", "floor", "training_step", "dense_pass", "dense_floor",
           "torch_reference", "torch_step", "torch_dense", "kernel_launches",
           "hand_written_xor", "hand_written_step"]


@dataclass(frozen=True)
class Network:
    """An MLP training problem: widths, batch rows, hidden activation, loss, learning rate,
    dtype and optimizer (``"sgd"`` or ``"adam"``)."""

    sizes: tuple[int, ...]
    batch: int
    activation: str = "relu"
    loss: str = "softmax_cross_entropy"
    lr: float = 0.01
    dtype: str = "float32"
    optimizer: str = "sgd"

    @property
    def label(self) -> str:
        return f"{'-'.join(map(str, self.sizes))} ×{self.batch}"

    def make_optimizer(self) -> Any:
        return (_optim.Adam(lr=self.lr) if self.optimizer == "adam"
                else _optim.SGD(lr=self.lr))


def make_batch(backend: Backend, net: Network, *, seed: int = 0) -> tuple[Any, Any]:
    """A random input batch (B, n₀) and a target that ``net.loss`` accepts.

    Softmax cross-entropy gets one-hot rows (B, k), binary cross-entropy 0/1 targets,
    MSE normal targets: each loss's cheapest valid form, as a training loop would pass.
    """
    n0, k = net.sizes[0], net.sizes[-1]
    x = backend.normal((net.batch, n0), seed=seed, dtype=net.dtype)
    u = backend.uniform((net.batch, k), low=0.0, high=1.0, seed=seed + 1, dtype=net.dtype)
    xp = backend.xp
    if net.loss == "softmax_cross_entropy":
        target = xp.astype(u == xp.max(u, axis=1, keepdims=True), u.dtype)   # one-hot rows
    elif net.loss in ("sigmoid_binary_cross_entropy", "binary_cross_entropy"):
        target = xp.astype(u > 0.5, u.dtype)
    else:
        target = backend.normal((net.batch, k), seed=seed + 1, dtype=net.dtype)
    return x, target


def _normal_list(backend: Backend, shapes: Sequence[tuple[int, int]], seed: int,
                 dtype: str) -> list[Any]:
    return [backend.normal(s, std=0.05, seed=seed + i, dtype=dtype) for i, s in enumerate(shapes)]


def floor(backend: Backend | str, net: Network, *, seed: int = 0) -> Timed:
    """The products of one training step of ``net``, timed alone.

    Forward X Wᵀ for every layer; backward δᵀ X (dW) for every layer and δ W (dX) for
    all but the first. Outputs go into preallocated buffers where the backend can write
    in place, so the floor pays for no allocation the step might avoid.
    """
    backend = resolve_backend(backend)
    ops, pairs = backend.ops, list(zip(net.sizes, net.sizes[1:]))
    B, dt = net.batch, net.dtype
    W = _normal_list(backend, [(o, i) for i, o in pairs], seed, dt)
    A = _normal_list(backend, [(B, i) for i, _ in pairs], seed + 100, dt)   # layer inputs
    D = _normal_list(backend, [(B, o) for _, o in pairs], seed + 200, dt)   # δ of each layer
    Z = [ops.matmul(a, w.T) for a, w in zip(A, W)]
    dW = [ops.matmul(d.T, a) for d, a in zip(D, A)]
    dX = [ops.matmul(d, w) for d, w in zip(D, W)]
    layers = range(len(pairs))

    def products() -> None:
        for i in layers:
            Z[i] = ops.matmul(A[i], W[i].T, out=Z[i])          # Z = X Wᵀ
        for i in reversed(layers):
            dW[i] = ops.matmul(D[i].T, A[i], out=dW[i])        # dW = δᵀ X
            if i:
                dX[i] = ops.matmul(D[i], W[i], out=dX[i])      # dX = δ W

    return Timed(products, lambda: backend.synchronize(*Z, *dW, *dX))


def training_step(backend: Backend | str, net: Network, *, seed: int = 0,
                  data: tuple[Any, Any] | None = None) -> Timed:
    """nnx's training step: forward, loss, backward (``input_grad=False``), the update.

    Written as a user's loop would be, and timed under the host thread setting that
    ``fit`` trains this network with (one BLAS thread for small networks on NumPy:
    :meth:`Backend.step_threads`); ``data`` is ``(x, target)`` (a random batch if None).
    The model and optimizer are on the returned object as ``.model`` and ``.optimizer``.
    """
    backend = resolve_backend(backend)
    x, target = make_batch(backend, net, seed=seed) if data is None else data
    with use_backend(backend):
        model = MLP(list(net.sizes), activation=net.activation, seed=seed, dtype=net.dtype)
    opt = net.make_optimizer()
    loss_fn = _losses.get(net.loss)

    def step() -> None:
        out = model.forward(x)
        _, grad = loss_fn(out, target)
        model.backward(grad, input_grad=False)
        opt.step(model)

    dense = model.dense_layers
    timed = Timed(step, lambda: backend.synchronize(*[p for d in dense for p in (d.W, d.b)]),
                  around=_fit_threads(backend, net))
    timed.model, timed.optimizer = model, opt  # type: ignore[attr-defined]
    return timed


def dense_pass(backend: Backend | str, n_in: int, n_out: int, batch: int, *, backward: bool,
               dtype: str = "float32", seed: int = 0) -> Timed:
    """A Dense layer's forward (caching its input), or forward then backward with dX."""
    backend = resolve_backend(backend)
    layer = Dense(n_in, n_out, dtype=dtype, seed=seed, backend=backend)
    x = backend.normal((batch, n_in), seed=seed + 1, dtype=dtype)
    dy = backend.normal((batch, n_out), seed=seed + 2, dtype=dtype)
    last: list[Any] = [None]

    def forward() -> None:
        last[0] = layer.forward(x)

    def forward_backward() -> None:
        layer.forward(x)
        last[0] = layer.backward(dy)

    return Timed(forward_backward if backward else forward,
                 lambda: backend.synchronize(*[a for a in (last[0], layer.dW) if a is not None]))


def dense_floor(backend: Backend | str, n_in: int, n_out: int, batch: int, *, backward: bool,
                dtype: str = "float32", seed: int = 0) -> Timed:
    """The products of :func:`dense_pass`: X Wᵀ, and with ``backward`` δᵀ X and δ W."""
    backend = resolve_backend(backend)
    ops = backend.ops
    W, X, D = _normal_list(backend, [(n_out, n_in), (batch, n_in), (batch, n_out)], seed, dtype)
    out = [ops.matmul(X, W.T), ops.matmul(D.T, X), ops.matmul(D, W)]

    def products() -> None:
        out[0] = ops.matmul(X, W.T, out=out[0])
        if backward:
            out[1] = ops.matmul(D.T, X, out=out[1])
            out[2] = ops.matmul(D, W, out=out[2])

    return Timed(products, lambda: backend.synchronize(*out))


# -- PyTorch, the reference (its code lives behind the fence, in nnx.backends) ------------

def torch_reference() -> Any:
    """The ``nnx.backends.torch_reference`` module, or None when torch is not installed."""
    try:
        from ..backends import torch_reference as ref
    except ImportError:
        return None
    return ref


def _torch_device(backend: Backend) -> tuple[Any, str | None]:
    ref = torch_reference()
    return ref, (ref.device_for(backend) if ref is not None else None)


def torch_step(backend: Backend | str, net: Network, *, seed: int = 0,
               adam: str = "fused") -> Timed | None:
    """PyTorch's step of ``net`` on the device matching ``backend``; None without torch.
    ``adam`` picks PyTorch's Adam implementation (``"for-loop"``, ``"foreach"``, ``"fused"``)."""
    ref, device = _torch_device(resolve_backend(backend))
    if device is None:
        return None
    r = ref.mlp_step(net.sizes, net.batch, activation=net.activation, loss=net.loss,
                     lr=net.lr, device=device, dtype=net.dtype, seed=seed,
                     optimizer=net.optimizer, adam=adam)
    timed = Timed(r, r.synchronize)
    timed.reference = r  # type: ignore[attr-defined]
    return timed


def torch_dense(backend: Backend | str, n_in: int, n_out: int, batch: int, *, backward: bool,
                dtype: str = "float32", seed: int = 0) -> Timed | None:
    """``nn.Linear`` forward (or forward + backward) beside :func:`dense_pass`."""
    ref, device = _torch_device(resolve_backend(backend))
    if device is None:
        return None
    make = ref.dense_forward_backward if backward else ref.dense_forward
    r = make(n_in, n_out, batch, device=device, dtype=dtype, seed=seed)
    return Timed(r, r.synchronize)


def hand_written_xor(backend: Backend | str, net: Network, *, seed: int = 0) -> Timed | None:
    """NumPy's XOR step written by hand (``nnx.backends.numpy_reference``): the machine's
    speed for per-call overhead, beside nnx's step. None for other backends."""
    if resolve_backend(backend).name != "numpy":
        return None
    from ..backends import numpy_reference

    return Timed(numpy_reference.xor_step(lr=net.lr, seed=seed),
                 around=_fit_threads(resolve_backend(backend), net))


def hand_written_step(backend: Backend | str, net: Network, *, seed: int = 0) -> Timed | None:
    """The step of ``net`` hand-written in NumPy with one flat buffer for parameters,
    gradients and optimizer state (``nnx.backends.numpy_reference.mlp_step``): the
    overhead floor of a small network. None for other backends."""
    if resolve_backend(backend).name != "numpy":
        return None
    from ..backends import numpy_reference

    return Timed(numpy_reference.mlp_step(net.sizes, net.batch, optimizer=net.optimizer,
                                          lr=net.lr, activation=net.activation, loss=net.loss,
                                          dtype=net.dtype, seed=seed),
                 around=_fit_threads(resolve_backend(backend), net))


def _fit_threads(backend: Backend, net: Network) -> Any:
    """The host thread setting ``fit`` trains ``net`` with (``Backend.step_threads`` of its
    largest product): the nnx step and the hand-written one are both timed under it."""
    macs = largest_product(net.batch, zip(net.sizes, net.sizes[1:]))
    return lambda: backend.step_threads(macs)


# -- GPU kernel launches -----------------------------------------------------------------

def kernel_launches(backend: Backend | str, net: Network, *, seed: int = 0) -> dict[str, Any]:
    """CUDA kernels launched by one step of nnx and of PyTorch (seen by torch's profiler):
    ``{"nnx": count, "nnx_kernels": [names], "torch": ..., "torch_kernels": ...}``; empty
    on the CPU or without torch."""
    backend = resolve_backend(backend)
    ref, device = _torch_device(backend)
    if device is None or not device.startswith("cuda"):
        return {}
    out: dict[str, Any] = {}
    for who, timed in (("nnx", training_step(backend, net, seed=seed)),
                       ("torch", torch_step(backend, net, seed=seed))):
        if timed is not None:
            names = ref.kernel_launches(timed.fn, device)
            out[who] = len(names) if names else None
            out[f"{who}_kernels"] = names
    return out
