"""Issue 10's targets on a CUDA card, read from the precision and capture sections' rows.

* the bfloat16 wide step (batch and widths ≥ 4096) at least 8× the float32 step's
  throughput, and at most 1.05× the time of PyTorch's autocast bfloat16 step;
* the TF32 wide step at least 5× the float32 step's throughput;
* peak memory at most 1.3× the analytic minimum counting the low-precision copies (the
  worst nnx row of the precision section);
* the captured XOR step (2-4-1, batch 4) at most 25 µs;
* the digits demo's training on cupy faster than on NumPy (on the CPU).

A target that cannot be measured where the suite ran has ``met`` None and says why
(:data:`NOT_HERE` on a machine without CUDA): it prints as "not measured", never as met,
and ``nnx bench --check`` does not count it as missed.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PRECISION", "XOR_US", "NOT_HERE", "precision", "captured_xor", "digits_demo"]

#: bf16 ≥ 8× float32's throughput and ≤ 1.05× PyTorch's autocast step; TF32 ≥ 5×;
#: peak memory ≤ 1.3× the analytic minimum.
PRECISION = {"bf16_speedup": 8.0, "bf16_x_torch": 1.05, "tf32_speedup": 5.0, "memory": 1.3}
#: the captured XOR step, at most this many µs.
XOR_US = 25.0
NOT_HERE = "not measured here (needs CUDA)"


def _target(backend: str, what: str, op: str, bound: float, value: float | None,
            note: str, why: str = NOT_HERE) -> dict[str, Any]:
    if value is None:
        return {"backend": backend, "what": what, "value": None, "op": op, "bound": bound,
                "met": None, "note": why}
    return {"backend": backend, "what": what, "value": value, "op": op, "bound": bound,
            "met": value >= bound if op == "≥" else value <= bound, "note": note}


def _nnx_row(rows: list[dict[str, Any]], backend: str, name: str) -> dict[str, Any] | None:
    return next((r for r in rows if r["backend"] == backend and r.get("who") == "nnx"
                 and r["precision"] == name), None)


def precision(rows: list[dict[str, Any]], quick: bool) -> list[dict[str, Any]]:
    """The precision targets per CUDA backend in ``rows`` (those without the CPU label);
    with none, each target once, not measured."""
    note = "quick sizes: not the target's problem" if quick else ""
    cuda = sorted({r["backend"] for r in rows if r.get("case") and not r.get("label")})
    out: list[dict[str, Any]] = []
    for b in cuda or ["cuda"]:
        why = NOT_HERE if not cuda else "not measured in this run (the row did not run)"
        bf16, tf32 = _nnx_row(rows, b, "bfloat16"), _nnx_row(rows, b, "tf32")
        for what, op, key, r, field in (
                ("bfloat16 wide step: × float32's throughput", "≥", "bf16_speedup", bf16,
                 "x_f32"),
                ("bfloat16 wide step × torch autocast bf16", "≤", "bf16_x_torch", bf16,
                 "x_torch"),
                ("TF32 wide step: × float32's throughput", "≥", "tf32_speedup", tf32, "x_f32")):
            out.append(_target(b, what, op, PRECISION[key],
                               None if r is None else r.get(field), note, why))
        worst = max((r for r in rows if r["backend"] == b and r.get("who") == "nnx"
                     and r.get("x_min") is not None), key=lambda r: r["x_min"], default=None)
        what = "precision peak memory × min" + (f" ({worst['precision']})" if worst else "")
        out.append(_target(b, what, "≤", PRECISION["memory"],
                           None if worst is None else worst["x_min"], note, why))
    return out


def captured_xor(rows: list[dict[str, Any]], quick: bool, xor_label: str) -> list[dict[str, Any]]:
    """The captured XOR step's µs per backend that captured it; without one, not measured:
    :data:`NOT_HERE` where no CUDA backend ran, else why the CUDA backends captured nothing."""
    what = "captured XOR step (µs)"
    found = [r for r in rows if r.get("case") == "captured fit" and r["net"] == xor_label]
    if not found:
        why = next((r["skipped"] for r in rows if r.get("cuda") and r.get("skipped")), NOT_HERE)
        return [_target("cuda", what, "≤", XOR_US, None, "", why)]
    note = "quick: fewer steps an epoch" if quick else ""
    return [_target(r["backend"], what, "≤", XOR_US, r["seconds"] * 1e6, note) for r in found]


def digits_demo(rows: list[dict[str, Any]], quick: bool, cuda: bool) -> list[dict[str, Any]]:
    """cupy's digits-demo training time ÷ NumPy's ≤ 1 (``rows`` from
    :func:`nnx.benchmark.digits_job.run`; ``cuda``: whether any CUDA backend ran)."""
    what = "digits demo training × NumPy's time"
    r = next((r for r in rows if r["backend"] == "cupy"), None)
    if r is None:
        why = NOT_HERE if not cuda else "not measured in this run (cupy not among the backends)"
        return [_target("cupy", what, "≤", 1.0, None, "", why)]
    note = f"{r['seconds']:.2f} s against NumPy's {rows[0]['seconds']:.2f} s"
    return [_target("cupy", what, "≤", 1.0, r["x_numpy"], note + (", quick" if quick else ""))]
