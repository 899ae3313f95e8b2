"""``nnx bench`` and ``python -m nnx.benchmark``: the command line over the suite.

    nnx bench                       # the full CPU suite (a few minutes on 2 cores)
    nnx bench --quick               # toy sizes: does everything run? (minutes, not hours)
    nnx bench --backends cupy,torch --sizes 4096,4096,4096,10 --batch 4096   # a GPU

It prints the tables and the targets, and writes ``<name>.json`` and ``<name>.png``
under ``--out``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ..backend import available_backends, resolve_backend
from . import report
from .suite import DEFAULT_SECTIONS, SECTIONS, run

__all__ = ["main"]


_DESCRIPTION = "nnx bench: nnx's training step against its matrix-product floor and PyTorch."


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
                                description=_DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="toy sizes, 3 rounds: does everything run? (minutes on 2 cores)")
    p.add_argument("--backends", type=lambda s: [v.strip() for v in s.split(",") if v.strip()],
                   help="comma-separated backends (default: every usable one but "
                        "array_api_strict)")
    p.add_argument("--out", default=os.path.join("bench", "results"),
                   help="folder for the JSON and PNG (default: bench/results)")
    p.add_argument("--name", help="file stem (default: quick, cpu or gpu, followed by the "
                   "sections' names when they are not the default ones)")
    p.add_argument("--sizes", type=_ints, help="the wide MLP's widths, e.g. 784,2048,2048,10")
    p.add_argument("--batch", type=int, help="the wide MLP's batch rows")
    p.add_argument("--widths", type=_ints, help="hidden widths of the width sweep")
    p.add_argument("--batches", type=_ints, help="batch sizes of the batch sweep")
    p.add_argument("--sweep-width", type=int, help="hidden width of the batch sweep")
    p.add_argument("--dense", type=_ints, help="in,out,batch of the Dense-layer rows")
    p.add_argument("--rounds", type=int, help="timed rounds per case")
    p.add_argument("--settle", type=float, help="seconds of quiet before each sample (default "
                   "0.15; lets other thread pools' spinning workers stop; 0 on a GPU)")
    p.add_argument("--sections", type=lambda s: [v.strip() for v in s.split(",") if v.strip()],
                   default=list(DEFAULT_SECTIONS), help="which parts to run, comma-separated: "
                   "main (the wide MLP, Dense layer, sweeps, XOR, memory), small (small "
                   "networks: SGD and Adam against NumPy by hand, PyTorch's Adams, "
                   "scikit-learn), precision (the wide step in float32, TF32, bfloat16, "
                   "float16 beside PyTorch's autocast; on the CPU a small check of "
                   "correctness), capture (XOR and the digits network, eager and as a CUDA "
                   "graph; the digits demo on cupy against NumPy), or all; default main,small")
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
    if args.sections == ["all"]:
        args.sections = list(SECTIONS)
    unknown = [v for v in args.sections if v not in SECTIONS]
    if unknown or not args.sections:
        print(f"nnx bench: --sections takes some of {', '.join(SECTIONS)}, or all; got "
              f"{','.join(args.sections)!r}", file=sys.stderr)
        return 2
    result = run(backends, quick=args.quick, use_torch=not args.no_torch, overrides=overrides,
                 log=lambda msg: print(msg, file=sys.stderr, flush=True), sections=args.sections)
    gpu = any(b == "cupy" or "cuda" in str(resolve_backend(b).device).lower() for b in backends)
    name = args.name or ("quick" if args.quick else "gpu" if gpu else "cpu")
    if not args.name and list(args.sections) != list(DEFAULT_SECTIONS):   # not cpu.json's rows
        name += "-" + "-".join(args.sections)
    m = result["machine"]
    print(f"\nnnx bench — {m['cpu']} ({m['cpu_count']} CPUs), "
          + ", ".join(f"{k}: {v['device_name']}" for k, v in m["backends"].items()))
    if result["rows"]:
        print(report.format_table(result["rows"]))
        print("\npeak memory of a training step (after a first step; input batch excluded)")
        print(report.format_memory(result["memory"]))
    if result["small"]:
        print("\nsmall networks: one training step (time per step; ratios per round)")
        print(report.format_small(result["small"]))
    _print_sections(result)
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
    missed = [t for t in result["targets"] if t["met"] is False]   # None: not measured
    return 1 if args.check and missed else 0


def _print_sections(result: dict) -> None:
    """The precision and capture sections' tables, what they skipped, the digits job."""
    prec, cap = result.get("precision") or [], result.get("capture") or []
    if prec:
        print("\nprecision: the wide step per precision (TFLOP/s: 6 × batch × Σ in·out per "
              "step; f32 time ÷: nnx float32's time over this row's; × torch: over "
              "PyTorch's step in the same precision; loss Δ: |L − L_f32| / L_f32 after "
              "20 steps)")
        if any(r.get("case") for r in prec):
            print(report.format_precision(prec))
        if any(r.get("skipped") for r in prec):
            print("not run:\n" + report.skipped_lines(prec))
    if cap:
        print("\ncapture: small steps eager and replayed as a CUDA graph (fit rows: one "
              "epoch ÷ its steps)")
        print(report.format_capture(cap))
        if any(r.get("skipped") for r in cap):
            print("not run:\n" + report.skipped_lines(cap))
    if result.get("digits_job"):
        print("\nthe digits demo's training (40 epochs of batch 32, after a 1-epoch warm-up)")
        print(report.format_digits_job(result["digits_job"]))
