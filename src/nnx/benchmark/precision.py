"""The precision section: one wide training step in float32, TF32, bfloat16 and float16.

``nnx bench --sections precision`` times, on every backend, nnx's step (forward, loss,
backward, SGD) of the wide MLP in each precision it offers, and PyTorch's own step of the
same network in the same recipe beside it, all in one interleaved run:

* ``float32``: float32 arrays, ``nnx.set_matmul_precision("highest")``; PyTorch's step
  with ``torch.set_float32_matmul_precision("highest")``;
* ``tf32``: the same with ``"high"`` (TF32 products) on both sides;
* ``bfloat16``: ``MLP(..., compute_dtype="bfloat16")``; PyTorch's forward and loss under
  ``torch.autocast(device_type, dtype=torch.bfloat16)``;
* ``float16``: ``compute_dtype="float16"`` with the loss scaler ``fit`` uses
  (:mod:`nnx.loss_scale`, where this build has it; else the bare step, labelled so);
  PyTorch's autocast to float16 with ``torch.amp.GradScaler``.

Each row has its time per step, its TFLOP/s (:func:`~nnx.benchmark.accounting.
matmul_flops`: 6 × batch × Σ in·out per step, the products alone), ``x_f32`` (the nnx
float32 step's time ÷ this row's: the speed-up), ``x_torch`` (this row's time ÷ PyTorch's
step in the same precision), its peak memory against the analytic minimum
(:func:`~nnx.benchmark.accounting.mixed_min_bytes`, which counts the low-precision
copies), and ``loss_delta``: |L − L_f32| / L_f32 after :data:`CHECK_STEPS` steps from the
same start on the same batch (the precision trains the same network).

Matrix-product precision is global in every library, so each case sets its own at the
start of every call (a host-side switch, hidden behind the GPU's queue); the section
restores nnx's setting when it ends.

**On the CPU** there are no tensor cores and no TF32: the section runs the digits-sized
network (64-256-128-10 ×32) for correctness, not speed — NumPy in float32 and float16,
torch in float32, bfloat16 and float16 with PyTorch's float32 and autocast-bfloat16 steps
beside — and labels every row so. Other CPU backends are skipped with the reason.
"""

from __future__ import annotations

import statistics
from typing import Any

from .. import losses as _losses
from .. import precision as _precision
from ..backend import Backend, resolve_backend, use_backend
from ..sequential import MLP
from . import accounting as acc
from . import cases, memory, timing

__all__ = ["PRECISIONS", "CPU_NET", "CPU_LABEL", "CPU_BACKENDS", "CHECK_STEPS", "is_cuda",
           "loss_scaler", "run"]

#: the rows, in order: (nnx's matmul precision, nnx's compute dtype) per name.
PRECISIONS: dict[str, tuple[str, str | None]] = {
    "float32": ("highest", None), "tf32": ("high", None),
    "bfloat16": ("highest", "bfloat16"), "float16": ("highest", "float16"),
}
#: the CPU's problem: the digits network, for correctness.
CPU_NET = ((64, 256, 128, 10), 32)
CPU_LABEL = "CPU: for correctness, not speed"
#: the CPU backends the section runs on (every precision, each skipped with its reason
#: where the CPU or the library lacks it: no TF32 anywhere, no bfloat16 in NumPy).
CPU_BACKENDS = ("numpy", "torch")
#: steps trained from one start before the losses are compared.
CHECK_STEPS = 20


def is_cuda(backend: Backend) -> bool:
    """Whether ``backend`` computes on a CUDA device (cupy; torch or JAX on the GPU)."""
    return backend.name == "cupy" or "cuda" in str(backend.device).lower() \
        or "gpu" in str(backend.device).lower()


def loss_scaler() -> Any:
    """``nnx.loss_scale.LossScaler`` when this build has it (with the per-step methods
    ``fit`` uses), else None."""
    try:
        from .. import loss_scale
    except ImportError:
        return None
    cls = getattr(loss_scale, "LossScaler", None)
    needed = ("scale_gradient", "unscale_", "update")
    return cls if cls is not None and all(hasattr(cls, m) for m in needed) else None


def _nnx_step(backend: Backend, net: cases.Network, name: str, data: tuple[Any, Any],
              seed: int = 0) -> timing.Timed:
    """nnx's step in precision ``name``; ``.model``, ``.scaled`` on the returned Timed."""
    matmul, compute = PRECISIONS[name]
    with use_backend(backend):
        model = MLP(list(net.sizes), activation=net.activation, seed=seed,
                    compute_dtype=compute)
    opt, loss_fn = net.make_optimizer(), _losses.get(net.loss)
    x, target = data
    scaler_cls = loss_scaler() if compute == "float16" else None
    scaler = scaler_cls() if scaler_cls is not None else None
    set_precision = _precision.set_matmul_precision

    def step() -> None:
        set_precision(matmul)
        _, grad = loss_fn(model.forward(x), target)
        model.backward(grad, input_grad=False)
        opt.step(model)

    def scaled_step() -> None:   # as fit runs it: dL/dout × S, ÷ S, skip on inf/NaN
        set_precision(matmul)
        _, grad = loss_fn(model.forward(x), target)
        model.backward(scaler.scale_gradient(grad), input_grad=False)
        if not scaler.update(scaler.unscale_(model)):
            opt.step(model)

    dense = model.dense_layers
    timed = timing.Timed(scaled_step if scaler is not None else step,
                         lambda: backend.synchronize(*[p for d in dense for p in (d.W, d.b)]))
    timed.model, timed.scaled = model, scaler is not None  # type: ignore[attr-defined]
    return timed


def _torch_step(backend: Backend, net: cases.Network, name: str,
                seed: int = 0) -> timing.Timed | None:
    ref, device = cases._torch_device(backend)
    if device is None or not hasattr(ref, "precision_step"):
        return None
    r = ref.precision_step(net.sizes, net.batch, precision=name, lr=net.lr, device=device,
                           seed=seed, optimizer=net.optimizer)
    timed = timing.Timed(r, r.synchronize)
    timed.reference = r  # type: ignore[attr-defined]
    return timed


def _loss_after(backend: Backend, net: cases.Network, name: str, data: tuple[Any, Any]) -> float:
    """The float32 loss on ``data`` after :data:`CHECK_STEPS` steps in precision ``name``."""
    t = _nnx_step(backend, net, name, data)
    for _ in range(CHECK_STEPS):
        t.fn()
    with _precision.matmul_precision("highest"):
        value, _ = _losses.get(net.loss)(t.model.forward(data[0]), data[1])  # type: ignore
    return float(value)


def _peak(backend: Backend, build: Any, data_bytes: int = 0) -> int | None:
    tracker = backend.memory_tracker()
    if tracker is None:
        return None
    return memory.peak(tracker, build) - data_bytes


def _torch_peak(backend: Backend, net: cases.Network, name: str) -> int | None:
    """PyTorch's step's peak bytes (CUDA: ``max_memory_allocated``), its batch excluded."""
    ref, device = cases._torch_device(backend)
    if device is None or not hasattr(ref, "precision_step"):
        return None
    tracker = ref.Reference(lambda: None, device, None).memory_tracker()
    if tracker is None:
        return None
    holder: list[Any] = []

    def build() -> Any:
        t = _torch_step(backend, net, name)
        holder.append(t.reference)  # type: ignore[union-attr]
        return t

    return memory.peak(tracker, build) - holder[0].data_bytes


def _plan(backend: Backend, cfg: dict[str, Any], quick: bool) -> tuple[cases.Network,
                                                                         list[str], str]:
    """The network, the precisions to run and the row label for ``backend``."""
    if is_cuda(backend):
        sizes, batch = cfg["precision_sizes"], cfg["precision_batch"]
        return cases.Network(tuple(sizes), batch), list(PRECISIONS), ""
    sizes, batch = CPU_NET if not quick else (cfg["precision_sizes"], cfg["precision_batch"])
    names = list(PRECISIONS) if backend.name in CPU_BACKENDS else []
    return cases.Network(tuple(sizes), batch), names, CPU_LABEL


def run(backend_name: str, cfg: dict[str, Any], *, quick: bool, use_torch: bool,
        log: Any = print) -> list[dict[str, Any]]:
    """The section's rows on one backend (timed rows, and ``skipped`` rows with a reason)."""
    backend = resolve_backend(backend_name)
    net, names, label = _plan(backend, cfg, quick)
    if not names:
        return [_skip(backend_name, net, "all", f"on the CPU the precision rows run on "
                      f"{' and '.join(CPU_BACKENDS)} only ({CPU_LABEL})")]
    before = _precision.get_matmul_precision()
    try:
        return _run(backend, net, names, label, cfg, use_torch, log)
    finally:
        _precision.set_matmul_precision(before)   # torch's switch too, where torch is loaded


def _skip(backend: str, net: cases.Network, name: str, why: str) -> dict[str, Any]:
    return {"backend": backend, "net": net.label, "precision": name, "case": None,
            "skipped": why}


def _available(backend: Backend, name: str) -> str | None:
    """Why nnx cannot run precision ``name`` on ``backend``, or None."""
    if name == "tf32" and not is_cuda(backend):
        return "tf32: no TF32 on the CPU (float32 products stay float32)"
    compute = PRECISIONS[name][1]
    if compute is not None:
        try:
            backend.dtype(compute)
        except ValueError as exc:
            return f"{name}: {exc}"
    return None


def _run(backend: Backend, net: cases.Network, names: list[str], label: str,
         cfg: dict[str, Any], use_torch: bool, log: Any) -> list[dict[str, Any]]:
    b = backend.name
    log(f"[{b}] precision {net.label}: {', '.join(names)}")
    data = cases.make_batch(backend, net)
    found: dict[tuple[str, str], timing.Timed] = {}
    out: list[dict[str, Any]] = []
    for name in names:
        why = _available(backend, name)
        if why is not None:
            out.append(_skip(b, net, name, why))
            continue
        found[("nnx", name)] = _nnx_step(backend, net, name, data)
        if use_torch and (is_cuda(backend) or (b == "torch" and name in ("float32", "bfloat16"))):
            t = _torch_step(backend, net, name)
            if t is not None:
                found[("torch", name)] = t
    rounds = cfg["rounds"] if is_cuda(backend) else min(cfg["rounds"], cfg["small_rounds"])
    timing.measure(list(found.values()), rounds=rounds, min_sample_s=cfg["min_sample_s"],
                   settle_s=cfg["settle_s"])
    base = found.get(("nnx", "float32"))
    flops = acc.matmul_flops(net.sizes, net.batch)
    reference_loss = _loss_after(backend, net, "float32", data) if base is not None else None
    for (who, name), t in found.items():
        torch_t = found.get(("torch", name))
        compute = PRECISIONS[name][1]
        minimum = (acc.analytic_min_bytes(net.sizes, net.batch) if compute is None
                   else acc.mixed_min_bytes(net.sizes, net.batch))
        if who == "nnx":
            peak = _peak(backend, lambda n=name: _nnx_step(backend, net, n, data))
            loss = _loss_after(backend, net, name, data)
            delta = (None if reference_loss is None
                     else abs(loss - reference_loss) / abs(reference_loss))
            case = "nnx " + name + (" + loss scaling" if getattr(t, "scaled", False) else
                                    " (unscaled: no nnx.loss_scale)"
                                    if compute == "float16" else "")
        else:
            peak = _torch_peak(backend, net, name) if is_cuda(backend) else None
            loss, delta = None, None
            case = {"float32": "torch float32", "tf32": "torch tf32",
                    "bfloat16": "torch autocast bf16",
                    "float16": "torch autocast fp16 + GradScaler"}[name]
        s = t.median
        out.append({
            "backend": b, "net": net.label, "precision": name, "who": who, "case": case,
            "seconds": s, "flops": flops, "tflops": flops / s / 1e12,
            "sample_seconds": list(t.samples), "number": t.number,
            "x_f32": None if base is None else _paired(base, t),
            "x_torch": None if who == "torch" or torch_t is None else _paired(t, torch_t),
            "peak_bytes": peak, "min_bytes": minimum["total"], "min_parts": minimum,
            "x_min": None if peak is None else peak / minimum["total"],
            "loss": loss, "loss_delta": delta, "label": label})
    return out


def _paired(t: timing.Timed, base: timing.Timed) -> float:
    """Median over rounds of t's sample ÷ base's sample of the same round."""
    return statistics.median(a / c for a, c in zip(t.samples, base.samples))
