"""The capture section: small networks' steps, eager and replayed as a CUDA graph.

``nnx bench --sections capture`` times, on every backend, the two small problems the GPU
loses to the CPU on when every kernel is launched from Python:

* XOR 2-4-1 (tanh, sigmoid cross-entropy on logits, SGD lr 0.5) at its full batch of 4;
* the digits demo's network 64-256-128-10 (ReLU, softmax cross-entropy, Adam lr 1e-3)
  at batch 32.

The rows of each problem, timed in one interleaved run:

* ``eager step`` — the hand-written loop of the main section (forward, loss, backward,
  the update; :func:`nnx.benchmark.cases.training_step`);
* ``eager fit`` — the step as ``fit`` runs it, ``capture=False``: the minibatch gathered
  from the shuffled data set, the loss summed on the device, one host read per epoch;
* ``captured fit`` — the same with ``capture=True``: the whole step recorded once as a
  CUDA graph and replayed (:mod:`nnx.capture`), on CUDA backends only.

The ``fit`` rows run one epoch of :data:`STEPS` batches of the problem's shape (its rows
repeated: XOR's 4 rows 256 times) through :class:`nnx.training.Trainer`, so the per-epoch
host read is spread over the steps; **time per step** is the epoch's time ÷ its steps.
``x_eager`` is the captured step's time ÷ the eager fit step's (paired per round), and
``kernels`` the CUDA kernels per step that torch's profiler sees (one epoch ÷ its steps;
in a graph they are replayed by one launch from the host).

Without CUDA the section shows the eager rows only and says why; where this build has no
``nnx.capture`` (or ``fit`` takes no ``capture``) it says ``capture: not available in
this build``.
"""

from __future__ import annotations

import importlib
import inspect
import statistics
from typing import Any

from ..backend import Backend, resolve_backend, use_backend
from ..sequential import MLP
from ..trainer import Trainer
from . import cases, timing
from .precision import is_cuda

__all__ = ["NETS", "STEPS", "QUICK_STEPS", "NOT_AVAILABLE", "NEEDS_CUDA", "why_not", "run"]

XOR = cases.Network((2, 4, 1), 4, activation="tanh", loss="sigmoid_binary_cross_entropy",
                    lr=0.5)
DIGITS = cases.Network((64, 256, 128, 10), 32, optimizer="adam", lr=1e-3)
NETS = (XOR, DIGITS)
#: batches per timed epoch (per network), and at --quick.
STEPS = {XOR.label: 256, DIGITS.label: 32}
QUICK_STEPS = 8
NOT_AVAILABLE = "capture: not available in this build"
NEEDS_CUDA = "capture needs CUDA (cupy, or torch on a CUDA device): eager figures only"


def _accepts_capture(fn: Any) -> bool:
    try:
        return "capture" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def why_not(backend: Backend | None = None) -> str | None:
    """Why no captured row can run (on ``backend``, when given), or None."""
    try:
        importlib.import_module("nnx.capture")
    except ImportError:
        return NOT_AVAILABLE
    if not _accepts_capture(Trainer):
        return NOT_AVAILABLE + " (nnx.training.Trainer takes no capture=)"
    if backend is not None and not is_cuda(backend):
        return NEEDS_CUDA
    return None


def _fit_epoch(backend: Backend, net: cases.Network, steps: int, capture: bool | None,
               seed: int = 0) -> timing.Timed:
    """One epoch of ``steps`` batches through ``Trainer``; ``.steps`` on the result.
    ``capture`` None leaves the argument out (a build without it)."""
    x, y = cases.make_batch(backend, cases.Network(net.sizes, net.batch * steps, net.activation,
                                                   net.loss), seed=seed)
    with use_backend(backend):
        model = MLP(list(net.sizes), activation=net.activation, seed=seed)
    extra = {} if capture is None else {"capture": capture}
    trainer = Trainer(model, x, y, loss=net.loss, optimizer=net.make_optimizer(),
                      batch_size=net.batch, shuffle=True, seed=seed, **extra)
    dense = model.dense_layers
    timed = timing.Timed(trainer.epoch,
                         lambda: backend.synchronize(*[p for d in dense for p in (d.W, d.b)]))
    timed.steps = steps  # type: ignore[attr-defined]
    return timed


def _per_step(t: timing.Timed) -> list[float]:
    steps = getattr(t, "steps", 1)
    return [s / steps for s in t.samples]


def _kernels(backend: Backend, t: timing.Timed) -> float | None:
    """CUDA kernels per step of ``t`` seen by torch's profiler; None where it sees none."""
    ref, device = cases._torch_device(backend)
    if device is None or not device.startswith("cuda"):
        return None
    names = ref.kernel_launches(t.fn, device)
    return None if not names else len(names) / getattr(t, "steps", 1)


def run(backend_name: str, cfg: dict[str, Any], *, quick: bool,
        log: Any = print) -> list[dict[str, Any]]:
    """The section's rows on one backend: timed rows, and ``skipped`` rows with a reason."""
    backend = resolve_backend(backend_name)
    has_capture, cuda = why_not() is None, is_cuda(backend)
    why = why_not(backend)
    if not cuda:   # both can hold: say both
        why = NEEDS_CUDA + ("" if has_capture else f"; {NOT_AVAILABLE}")
    out: list[dict[str, Any]] = []
    for net in NETS:
        steps = QUICK_STEPS if quick else STEPS[net.label]
        log(f"[{backend_name}] capture {net.label} ({steps} steps an epoch)")
        found: dict[str, timing.Timed] = {
            "eager step": cases.training_step(backend, net),
            "eager fit": _fit_epoch(backend, net, steps, False if has_capture else None)}
        refused = None
        if why is None:
            try:   # a first epoch records the graph: a refusal shows here, not mid-timing
                t = _fit_epoch(backend, net, steps, True)
                t.fn()
                found["captured fit"] = t
            except (RuntimeError, ValueError, NotImplementedError) as exc:
                refused = f"capture refused: {exc}"
        timing.measure(list(found.values()), rounds=cfg["small_rounds"],
                       min_sample_s=cfg["min_sample_s"], settle_s=cfg["settle_s"])
        eager = found["eager fit"]
        for case, t in found.items():
            per = _per_step(t)
            out.append({"backend": backend_name, "net": net.label, "case": case, "cuda": cuda,
                        "seconds": statistics.median(per), "sample_seconds": per,
                        "steps": getattr(t, "steps", 1),
                        "x_eager": statistics.median(a / b for a, b in
                                                     zip(per, _per_step(eager))),
                        "kernels": _kernels(backend, t)})
        if why or refused:
            out.append({"backend": backend_name, "net": net.label, "case": None,
                        "cuda": cuda, "skipped": why or refused})
    return out
