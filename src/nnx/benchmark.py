"""``nnx bench``: nnx's training step against its matrix-product floor and PyTorch.

    nnx bench                       # the full CPU suite (a few minutes on 2 cores)
    nnx bench --quick               # tiny sizes, a few seconds: does everything run?
    nnx bench --backends cupy,torch --sizes 4096,4096,4096,10 --batch 4096   # a GPU

For each backend it times, in interleaved rounds (see :mod:`nnx.bench_timing`):

* the wide MLP (784-2048-2048-10, batch 512, ReLU, softmax cross-entropy, SGD):
  its floor, nnx's step and PyTorch's step;
* one Dense layer (2048 → 2048, batch 512), forward and forward + backward;
* a sweep of hidden widths and of batch sizes;
* the XOR network (2-4-1, tanh, batch 4), where per-call overhead dominates;

and measures the peak memory of a step against the analytic minimum. It prints the
tables and the targets, and writes ``<name>.json`` and ``<name>.png`` under ``--out``.
Times are medians over rounds; a ratio is the median over rounds of the two cases'
samples in that round, so it holds on a busy machine where absolute times do not. On a
GPU, the step of the XOR network also reports its CUDA kernel launches.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
from collections.abc import Sequence
from typing import Any

from . import bench_accounting as acc
from . import bench_cases as cases
from . import bench_report as report
from . import bench_timing as timing
from .backend import available_backends, resolve_backend

__all__ = ["main", "run", "TARGETS", "DEFAULTS", "QUICK"]

#: the full suite's problem sizes.
DEFAULTS: dict[str, Any] = dict(
    sizes=(784, 2048, 2048, 10), batch=512, widths=(256, 512, 1024, 2048),
    batches=(64, 256, 1024), sweep_width=1024, dense=(2048, 2048, 512),
    rounds=15, min_sample_s=0.005, settle_s=0.15,
)
#: ``--quick``: the same suite at toy sizes (for tests and a first look).
QUICK: dict[str, Any] = dict(
    sizes=(32, 64, 64, 10), batch=16, widths=(16, 32), batches=(4, 16), sweep_width=16,
    dense=(32, 32, 8), rounds=3, min_sample_s=0.0005, settle_s=0.0,
)
XOR = cases.Network((2, 4, 1), 4, activation="tanh", loss="sigmoid_binary_cross_entropy",
                    lr=0.5)

#: targets per backend: wide-MLP step ≤ bound × floor and × PyTorch's step, XOR step time,
#: peak memory ≤ bound × the analytic minimum.
TARGETS: dict[str, dict[str, float]] = {
    "numpy": {"x_floor": 1.08, "x_torch": 1.00, "xor_us": 25.0, "memory": 1.3},
    "cupy": {"x_floor": 1.10, "x_torch": 1.05, "memory": 1.3},
}


def _machine(backends: Sequence[str]) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
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
        who = [("nnx", cases.step_peak_memory)]
        if use_torch:
            who.append(("torch", cases.torch_step_peak_memory))
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


def run(backends: Sequence[str], *, quick: bool = False, use_torch: bool = True,
        overrides: dict[str, Any] | None = None, log: Any = print) -> dict[str, Any]:
    """Run the suite on ``backends`` and return the result dict (rows, memory, targets)."""
    cfg = {**(QUICK if quick else DEFAULTS), **(overrides or {})}
    wide = cases.Network(tuple(cfg["sizes"]), cfg["batch"])
    rows: list[dict[str, Any]] = []
    memory: list[dict[str, Any]] = []
    launches: list[dict[str, Any]] = []
    for b in backends:
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
    return {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": _machine(backends), "quick": quick, "config": {**cfg, "xor": XOR.label},
        "rows": rows, "memory": memory, "launches": launches,
        "targets": _targets(rows, memory, wide, quick),
    }


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers; got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers; got {text!r}")
    return values


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nnx bench",
                                description=__doc__.split("\n\n")[0].replace("``", ""),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="toy sizes, 3 rounds (seconds)")
    p.add_argument("--backends", type=lambda s: [v.strip() for v in s.split(",") if v.strip()],
                   help="comma-separated backends (default: every usable one but "
                        "array_api_strict)")
    p.add_argument("--out", default=os.path.join("bench", "results"),
                   help="folder for the JSON and PNG (default: bench/results)")
    p.add_argument("--name", help="file stem (default: quick, cpu or gpu)")
    p.add_argument("--sizes", type=_ints, help="the wide MLP's widths, e.g. 784,2048,2048,10")
    p.add_argument("--batch", type=int, help="the wide MLP's batch rows")
    p.add_argument("--widths", type=_ints, help="hidden widths of the width sweep")
    p.add_argument("--batches", type=_ints, help="batch sizes of the batch sweep")
    p.add_argument("--sweep-width", type=int, help="hidden width of the batch sweep")
    p.add_argument("--dense", type=_ints, help="in,out,batch of the Dense-layer rows")
    p.add_argument("--rounds", type=int, help="timed rounds per case")
    p.add_argument("--settle", type=float, help="seconds of quiet before each sample (default "
                   "0.15; lets other thread pools' spinning workers stop; 0 on a GPU)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference")
    p.add_argument("--no-plot", action="store_true", help="write no PNG")
    p.add_argument("--check", action="store_true", help="exit 1 when a target is not met")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark from command-line arguments ``argv``; return the exit code."""
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    usable = available_backends()
    backends = args.backends or [b for b in usable if b != "array_api_strict"]
    unusable = [b for b in backends if b not in usable]
    if unusable:
        print(f"nnx bench: backend(s) {', '.join(unusable)} cannot run here; usable: "
              f"{', '.join(usable)}", file=sys.stderr)
        return 2
    overrides = {k: v for k, v in (("sizes", args.sizes), ("batch", args.batch),
                                   ("widths", args.widths), ("batches", args.batches),
                                   ("rounds", args.rounds), ("sweep_width", args.sweep_width),
                                   ("settle_s", args.settle))
                 if v is not None}
    if args.dense is not None:
        if len(args.dense) != 3:
            print("nnx bench: --dense takes in,out,batch", file=sys.stderr)
            return 2
        overrides["dense"] = args.dense
    result = run(backends, quick=args.quick, use_torch=not args.no_torch, overrides=overrides,
                 log=lambda msg: print(msg, file=sys.stderr, flush=True))
    gpu = any(b == "cupy" or "cuda" in str(resolve_backend(b).device).lower() for b in backends)
    name = args.name or ("quick" if args.quick else "gpu" if gpu else "cpu")
    m = result["machine"]
    print(f"\nnnx bench — {m['cpu']} ({m['cpu_count']} CPUs), "
          + ", ".join(f"{k}: {v['device_name']}" for k, v in m["backends"].items()))
    print(report.format_table(result["rows"]))
    print("\npeak memory of a training step (after a first step; input batch excluded)")
    print(report.format_memory(result["memory"]))
    for n in result["launches"]:
        print(f"\nCUDA kernel launches per step, {n['backend']} {n['net']}: "
              f"nnx {n.get('nnx')}, torch {n.get('torch')}")
        for who in ("nnx", "torch"):
            names = n.get(f"{who}_kernels") or []
            if names:
                print(f"  {who}: " + ", ".join(k[:36] for k in names))
    if result["targets"]:
        print("\ntargets")
        print(report.format_targets(result["targets"]))
    path = report.write_json(os.path.join(args.out, f"{name}.json"), result)
    print(f"\nwrote {path}")
    if not args.no_plot:
        png = report.plot(os.path.join(args.out, f"{name}.png"), result["rows"],
                          title=f"nnx training step vs floor — {m['cpu']}")
        print(f"wrote {png}" if png else "no plot (matplotlib missing, or no width sweep)")
    missed = [t for t in result["targets"] if not t["met"]]
    return 1 if args.check and missed else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
