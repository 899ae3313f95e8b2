"""Presenting benchmark results: the text table, the JSON record and the PNG plot.

A result is a plain dict (see :func:`nnx.benchmark.run`): ``rows`` of timings, each
with ``backend``, ``group``, ``net``, ``case``, ``seconds``, ``gflops``, ``x_floor`` and
``x_torch``; ``memory`` rows; ``targets``; and the ``machine`` that produced them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

__all__ = ["format_time", "format_table", "format_memory", "format_targets", "write_json",
           "plot", "format_small", "format_precision", "format_capture", "format_digits_job",
           "skipped_lines"]


def format_time(seconds: float) -> str:
    """Seconds with a unit that keeps 3–4 significant digits: ``"12.3 µs"``, ``"96.1 ms"``."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.4g} {unit}"
    return f"{seconds / 1e-9:.4g} ns"


def _ratio(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def _columns(header: Sequence[str], lines: list[list[str]], right: set[int]) -> str:
    widths = [max(len(r[i]) for r in [list(header), *lines]) for i in range(len(header))]

    def fmt(r: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(r, widths))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(header), rule, *(fmt(r) for r in lines)])


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The timing rows as an aligned text table."""
    header = ["backend", "benchmark", "network", "case", "time", "GFLOP/s", "× floor", "× torch"]
    lines = [[r["backend"], r["group"], r["net"], r["case"], format_time(r["seconds"]),
              f"{r['gflops']:.1f}", _ratio(r.get("x_floor")), _ratio(r.get("x_torch"))]
             for r in rows]
    return _columns(header, lines, right={4, 5, 6, 7})


def format_small(rows: Sequence[dict[str, Any]]) -> str:
    """The small-network rows: time per step and its ratios to the floor, to the step
    hand-written in NumPy, and to PyTorch's fastest step of the same problem."""
    header = ["backend", "network", "dtype", "opt", "case", "time", "× floor", "× by hand",
              "× torch best"]
    lines = [[r["backend"], r["net"], r["dtype"], r["optimizer"], r["case"],
              format_time(r["seconds"]), _ratio(r.get("x_floor")), _ratio(r.get("x_hand")),
              _ratio(r.get("x_torch"))] for r in rows]
    return _columns(header, lines, right={5, 6, 7, 8})


def format_memory(rows: Sequence[dict[str, Any]]) -> str:
    """Peak memory of a step against the analytic minimum."""
    header = ["backend", "network", "who", "peak", "analytic min", "× min"]
    lines = [[r["backend"], r["net"], r["who"],
              "—" if r["peak_bytes"] is None else f"{r['peak_bytes'] / 2**20:.2f} MiB",
              f"{r['min_bytes'] / 2**20:.2f} MiB", _ratio(r.get("x_min"))] for r in rows]
    return _columns(header, lines, right={3, 4, 5})


def format_targets(rows: Sequence[dict[str, Any]]) -> str:
    """One line per target: what was measured, the bound, and whether it holds; a target
    not measured (``met`` None) shows its bound and why, never "met"."""
    out = []
    for t in rows:
        note = f"  {t['note']}" if t.get("note") else ""
        if t["met"] is None:   # the note says why (e.g. "not measured here (needs CUDA)")
            out.append(f"  {t['backend']:<6} {t['what']:<44} {'—':>9} {t['op']} "
                       f"{t['bound']:<6g} {t.get('note') or 'not measured'}")
            continue
        mark = "met" if t["met"] else "NOT met"
        out.append(f"  {t['backend']:<6} {t['what']:<44} {t['value']:>9.3f} {t['op']} "
                   f"{t['bound']:<6g} {mark}{note}")
    return "\n".join(out)


def _mib(b: int | None) -> str:
    return "—" if b is None else f"{b / 2**20:.2f} MiB"


def format_precision(rows: Sequence[dict[str, Any]]) -> str:
    """The precision rows: time per step, TFLOP/s (6·batch·Σ in·out), the speed-up over
    nnx's float32 step, the ratio to PyTorch's step in the same precision, peak memory
    against the analytic minimum, and the trained loss's distance from float32's."""
    header = ["backend", "network", "case", "time", "TFLOP/s", "f32 time ÷", "× torch",
              "peak", "× min", "loss Δ", "note"]
    lines = [[r["backend"], r["net"], r["case"], format_time(r["seconds"]), f"{r['tflops']:.3g}",
              _ratio(r.get("x_f32")), _ratio(r.get("x_torch")), _mib(r.get("peak_bytes")),
              _ratio(r.get("x_min")),
              "—" if r.get("loss_delta") is None else f"{r['loss_delta']:.1e}",
              r.get("label") or ""] for r in rows if r.get("case")]
    return _columns(header, lines, right={3, 4, 5, 6, 7, 8, 9})


def format_capture(rows: Sequence[dict[str, Any]]) -> str:
    """The capture rows: time per step, the ratio to the eager ``fit`` step, kernels per step."""
    header = ["backend", "network", "case", "time/step", "× eager fit", "kernels/step"]
    lines = [[r["backend"], r["net"], r["case"], format_time(r["seconds"]),
              _ratio(r.get("x_eager")),
              "—" if r.get("kernels") is None else f"{r['kernels']:.1f}"]
             for r in rows if r.get("case")]
    return _columns(header, lines, right={3, 4, 5})


def format_digits_job(rows: Sequence[dict[str, Any]]) -> str:
    """The digits demo's training per backend: seconds, test accuracy, × NumPy's time."""
    header = ["backend", "epochs", "training", "test accuracy", "× numpy"]
    lines = [[r["backend"], str(r["epochs"]), f"{r['seconds']:.2f} s", f"{r['accuracy']:.2%}",
              _ratio(r.get("x_numpy"))] for r in rows]
    return _columns(header, lines, right={1, 2, 3, 4})


def skipped_lines(rows: Sequence[dict[str, Any]]) -> str:
    """One line per row that did not run: backend, network, and why."""
    return "\n".join(f"  {r['backend']} {r['net']}: {r['skipped']}"
                     for r in rows if r.get("skipped"))
def write_json(path: str, result: dict[str, Any]) -> str:
    """Write ``result`` as indented JSON to ``path`` (its folder is created); return the path."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1, ensure_ascii=False)
        f.write("\n")
    return path


_STYLE = {"nnx step": "-", "floor": "--", "torch step": ":"}


def plot(path: str, rows: Sequence[dict[str, Any]], *, title: str = "") -> str | None:
    """GFLOP/s against hidden width, one colour per backend: nnx's step (solid), its floor
    (dashed), PyTorch's step (dotted). None if matplotlib is missing or there is no sweep."""
    sweep = [r for r in rows if r["group"] == "width sweep"]
    if not sweep:
        return None
    try:
        from matplotlib.figure import Figure  # no pyplot: leaves the user's backend alone
    except ImportError:
        return None
    fig = Figure(figsize=(7, 4.5), dpi=120)
    ax = fig.add_subplot()
    backends = list(dict.fromkeys(r["backend"] for r in sweep))
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]
    for color, b in zip(colors, backends):
        for case, style in _STYLE.items():
            pts = sorted((r["width"], r["gflops"]) for r in sweep
                         if r["backend"] == b and r["case"] == case)
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, style, marker="o", ms=3, color=color, label=f"{b}: {case}")
    ax.set_xscale("log", base=2)
    n0, k = sweep[0]["net"].split(" ")[0].split("-")[::3]
    ax.set_xlabel(f"hidden width w (MLP {n0}-w-w-{k}, batch {sweep[0]['net'].split('×')[1]})")
    ax.set_ylabel("GFLOP/s (6 × batch × parameters per step)")
    ax.set_title(title or "training step throughput against its matrix-product floor")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    return path
