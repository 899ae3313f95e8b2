"""The benchmark suite: which problems ``nnx bench`` times, and how rows and targets are made.

For each backend it times, in interleaved rounds (see :mod:`nnx.benchmark.timing`):

* the wide MLP (784-2048-2048-10, batch 512, ReLU, softmax cross-entropy, SGD):
  its floor, nnx's step and PyTorch's step;
* one Dense layer (2048 → 2048, batch 512), forward and forward + backward;
* a sweep of hidden widths and of batch sizes;
* the XOR network (2-4-1, tanh, batch 4), where per-call overhead dominates;

and measures the peak memory of a step against the analytic minimum. Times are medians
over rounds; a ratio is the median over rounds of the two cases' samples in that
round, so it holds on a busy machine where absolute times do not. On a GPU, the step
of the XOR network also reports its CUDA kernel launches.
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
from collections.abc import Sequence
from typing import Any

from ..backend import resolve_backend
from . import accounting as acc
from . import capture, cases, digits_job, gpu_targets, memory, precision, small, timing

__all__ = ["run", "TARGETS", "DEFAULTS", "QUICK", "XOR", "SECTIONS", "DEFAULT_SECTIONS"]

#: the full suite's problem sizes.
DEFAULTS: dict[str, Any] = dict(
    sizes=(784, 2048, 2048, 10), batch=512, widths=(256, 512, 1024, 2048),
    batches=(64, 256, 1024), sweep_width=1024, dense=(2048, 2048, 512),
    rounds=15, min_sample_s=0.005, settle_s=0.15, small_rounds=7,
    precision_sizes=(4096, 4096, 4096, 10), precision_batch=4096,   # on CUDA (else CPU_NET)
)
#: ``--quick``: the same suite at toy sizes (for tests and a first look).
QUICK: dict[str, Any] = dict(
    sizes=(32, 64, 64, 10), batch=16, widths=(16, 32), batches=(4, 16), sweep_width=16,
    dense=(32, 32, 8), rounds=3, min_sample_s=0.0005, settle_s=0.0, small_rounds=3,
    precision_sizes=(32, 64, 64, 10), precision_batch=16,
)
XOR = cases.Network((2, 4, 1), 4, activation="tanh", loss="sigmoid_binary_cross_entropy",
                    lr=0.5)

#: targets per backend: wide-MLP step ≤ bound × floor and × PyTorch's step, XOR step time,
#: peak memory ≤ bound × the analytic minimum.
TARGETS: dict[str, dict[str, float]] = {
    "numpy": {"x_floor": 1.08, "x_torch": 1.00, "xor_us": 25.0, "memory": 1.3},
    "cupy": {"x_floor": 1.10, "x_torch": 1.05, "memory": 1.3},
}


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return cpu


def _machine(backends: Sequence[str]) -> dict[str, Any]:
    cpu = cpu_name()
    devices = {}
    for name in backends:
        b = resolve_backend(name)
        devices[name] = {"device": str(b.device), "library": b.library_version(),
                         "device_name": b.device_name()}
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "backends": devices}


def _row(backend: str, group: str, net: str, case: str, t: timing.Timed, flops: int,
         **extra: Any) -> dict[str, Any]:
    s = t.median
    return {"backend": backend, "group": group, "net": net, "case": case, "seconds": s,
            "flops": flops, "gflops": flops / s / 1e9, "samples": len(t.samples),
            "number": t.number, "sample_seconds": list(t.samples), **extra}


def _compare(backend: str, group: str, label: str, trio: dict[str, timing.Timed | None],
             flops: int, cfg: dict[str, Any], **extra: Any) -> list[dict[str, Any]]:
    """Time floor / nnx step / torch step together; rows with their ratios."""
    present = {k: t for k, t in trio.items() if t is not None}
    timing.measure(list(present.values()), rounds=cfg["rounds"],
                   min_sample_s=cfg["min_sample_s"], settle_s=cfg["settle_s"])
    rows = {k: _row(backend, group, label, k, t, flops, **extra) for k, t in present.items()}
    for key, base in (("x_floor", present.get("floor")), ("x_torch", present.get("torch step"))):
        for k, r in rows.items():
            r[key] = None if base is None else _paired_ratio(present[k], base)
    return list(rows.values())


def _paired_ratio(t: timing.Timed, base: timing.Timed) -> float:
    """Median over rounds of t's sample / base's sample of the same round: a burst of load
    from elsewhere shifts both samples of a round alike, so it largely cancels."""
    return statistics.median(a / b for a, b in zip(t.samples, base.samples))


def _mlp_rows(backend: str, group: str, net: cases.Network, cfg: dict[str, Any],
              use_torch: bool, **extra: Any) -> list[dict[str, Any]]:
    trio = {"floor": cases.floor(backend, net), "nnx step": cases.training_step(backend, net),
            "torch step": cases.torch_step(backend, net) if use_torch else None}
    if group == "XOR":
        trio["numpy by hand"] = cases.hand_written_xor(backend, net)
    return _compare(backend, group, net.label, trio, acc.step_flops(net.sizes, net.batch), cfg,
                    **extra)


def _dense_rows(backend: str, cfg: dict[str, Any], use_torch: bool) -> list[dict[str, Any]]:
    n_in, n_out, batch = cfg["dense"]
    rows = []
    for backward, group in ((False, "dense forward"), (True, "dense fwd+bwd")):
        trio = {"floor": cases.dense_floor(backend, n_in, n_out, batch, backward=backward),
                "nnx step": cases.dense_pass(backend, n_in, n_out, batch, backward=backward),
                "torch step": (cases.torch_dense(backend, n_in, n_out, batch, backward=backward)
                               if use_torch else None)}
        rows += _compare(backend, group, f"{n_in}-{n_out} ×{batch}", trio,
                         acc.dense_flops(n_in, n_out, batch, backward=backward), cfg)
    return rows


def _memory_rows(backend: str, nets: Sequence[cases.Network],
                 use_torch: bool) -> list[dict[str, Any]]:
    rows = []
    for net in nets:
        itemsize = 4 if net.dtype == "float32" else 8
        minimum = acc.analytic_min_bytes(net.sizes, net.batch, itemsize=itemsize)
        who = [("nnx", memory.step_peak_memory)]
        if use_torch:
            who.append(("torch", memory.torch_step_peak_memory))
        for name, measure in who:
            peak = measure(backend, net)
            if peak is None and name == "torch":
                continue
            rows.append({"backend": backend, "net": net.label, "who": name, "peak_bytes": peak,
                         "min_bytes": minimum["total"], "min_parts": minimum,
                         "x_min": None if peak is None else peak / minimum["total"]})
    return rows


def _targets(rows: list[dict[str, Any]], memory: list[dict[str, Any]], wide: cases.Network,
             quick: bool) -> list[dict[str, Any]]:
    out = []
    note = "quick sizes: not the target's problem" if quick else ""
    for backend, bounds in TARGETS.items():
        wide_step = next((r for r in rows if r["backend"] == backend and r["group"] == "wide MLP"
                          and r["case"] == "nnx step"), None)
        if wide_step is None:
            continue
        for key in ("x_floor", "x_torch"):
            if key in bounds and wide_step.get(key) is not None:
                out.append({"backend": backend, "what": f"wide MLP step {key.replace('_', ' ')}",
                            "value": wide_step[key], "op": "≤", "bound": bounds[key],
                            "met": wide_step[key] <= bounds[key], "note": note})
        xor = next((r for r in rows if r["backend"] == backend and r["group"] == "XOR"
                    and r["case"] == "nnx step"), None)
        hand = next((r for r in rows if r["backend"] == backend and r["group"] == "XOR"
                     and r["case"] == "numpy by hand"), None)
        if "xor_us" in bounds and xor is not None:
            us = xor["seconds"] * 1e6
            calib = "" if hand is None else (f"(NumPy by hand: {hand['seconds'] * 1e6:.1f} µs, "
                                             f"nnx {xor['seconds'] / hand['seconds']:.2f}×)")
            out.append({"backend": backend, "what": "XOR step time (µs)", "value": us, "op": "≤",
                        "bound": bounds["xor_us"], "met": us <= bounds["xor_us"], "note": calib})
        for m in memory:
            if m["backend"] == backend and m["who"] == "nnx" and m["x_min"] is not None \
                    and m["net"] == wide.label:
                out.append({"backend": backend, "what": "wide MLP peak memory × min",
                            "value": m["x_min"], "op": "≤", "bound": bounds["memory"],
                            "met": m["x_min"] <= bounds["memory"], "note": note})
    return out


#: the parts of the suite: the wide network and its sweeps, the small networks, the
#: precisions of the wide step (:mod:`.precision`) and the captured small steps
#: (:mod:`.capture`, with the digits demo's job on cupy against NumPy).
SECTIONS = ("main", "small", "precision", "capture")
#: what ``nnx bench`` runs when no ``--sections`` is given.
DEFAULT_SECTIONS = ("main", "small")


def run(backends: Sequence[str], *, quick: bool = False, use_torch: bool = True,
        overrides: dict[str, Any] | None = None, log: Any = print,
        sections: Sequence[str] = DEFAULT_SECTIONS) -> dict[str, Any]:
    """Run the suite on ``backends`` and return the result dict (rows, memory, targets,
    ``small``: the small-network rows of :mod:`nnx.benchmark.small`, ``precision`` and
    ``capture``: those of :mod:`.precision` and :mod:`.capture`, ``digits_job``: the
    digits demo's training on NumPy and cupy, run with the capture section on CUDA)."""
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown benchmark sections {sorted(unknown)}; choose from {SECTIONS}")
    cfg = {**(QUICK if quick else DEFAULTS), **(overrides or {})}
    wide = cases.Network(tuple(cfg["sizes"]), cfg["batch"])
    rows: list[dict[str, Any]] = []
    memory: list[dict[str, Any]] = []
    launches: list[dict[str, Any]] = []
    small_rows: list[dict[str, Any]] = []
    extra: dict[str, list[dict[str, Any]]] = {"precision": [], "capture": [], "digits_job": []}
    for b in backends:
        if "main" in sections:
            _main_section(b, wide, cfg, use_torch, log, rows, memory, launches)
        if "small" in sections:
            small_rows += small.run(b, {**cfg, "rounds": cfg["small_rounds"]}, quick=quick,
                                    use_torch=use_torch, log=log)
        if "precision" in sections:
            extra["precision"] += precision.run(b, cfg, quick=quick, use_torch=use_torch, log=log)
        if "capture" in sections:
            extra["capture"] += capture.run(b, cfg, quick=quick, log=log)
    more_targets: list[dict[str, Any]] = []
    if "precision" in sections:
        more_targets += gpu_targets.precision(extra["precision"], quick)
    if "capture" in sections:
        more_targets += gpu_targets.captured_xor(extra["capture"], quick, capture.XOR.label)
        cuda = any(precision.is_cuda(resolve_backend(b)) for b in backends)
        on_gpu = [b for b in backends if b == "cupy"]
        extra["digits_job"] = digits_job.run(on_gpu, quick=quick, log=log) if on_gpu else []
        more_targets += gpu_targets.digits_demo(extra["digits_job"], quick, cuda)
    return {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": _machine(backends), "quick": quick, "config": {**cfg, "xor": XOR.label},
        "rows": rows, "memory": memory, "launches": launches, "small": small_rows,
        "targets": (_targets(rows, memory, wide, quick) + small.targets(small_rows, quick)
                    + more_targets), **extra,
    }


def _main_section(b: str, wide: cases.Network, cfg: dict[str, Any], use_torch: bool, log: Any,
                  rows: list[dict[str, Any]], memory: list[dict[str, Any]],
                  launches: list[dict[str, Any]]) -> None:
    log(f"[{b}] wide MLP {wide.label}")
    rows += _mlp_rows(b, "wide MLP", wide, cfg, use_torch)
    log(f"[{b}] dense layer")
    rows += _dense_rows(b, cfg, use_torch)
    for w in cfg["widths"]:
        log(f"[{b}] width sweep w={w}")
        net = cases.Network((wide.sizes[0], w, w, wide.sizes[-1]), wide.batch)
        rows += _mlp_rows(b, "width sweep", net, cfg, use_torch, width=w)
    for n in cfg["batches"]:
        log(f"[{b}] batch sweep n={n}")
        w = cfg["sweep_width"]
        net = cases.Network((wide.sizes[0], w, w, wide.sizes[-1]), n)
        rows += _mlp_rows(b, "batch sweep", net, cfg, use_torch, width=w)
    log(f"[{b}] XOR {XOR.label}")
    rows += _mlp_rows(b, "XOR", XOR, cfg, use_torch)
    log(f"[{b}] peak memory")
    memory += _memory_rows(b, [wide, XOR], use_torch)
    found = cases.kernel_launches(b, XOR) if use_torch else {}
    if found:
        launches.append({"backend": b, "net": XOR.label, **found})
