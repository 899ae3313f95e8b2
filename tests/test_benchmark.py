"""The benchmark runs at a tiny size on every backend, and its accounting is right.

Nothing here asserts a time: benchmarks are not tests. FLOP counts and analytic
memory are checked against hand-computed numbers, the floor's products against those
counts, and the memory trackers against allocations of known size.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json

import pytest

import nnx
from nnx import backends as registry
from nnx import benchmark
from nnx.benchmark import accounting as acc
from nnx.benchmark import capture as capture_section
from nnx.benchmark import cases, gpu_targets, memory, report, suite, timing
from nnx.benchmark import precision as precision_section

Ops = registry.Ops   # the portable reference every fast path is checked against

# one hidden width throughout, so JAX compiles few distinct shapes
TINY = dict(sizes=(8, 16, 16, 4), batch=4, widths=(16,), batches=(2,), sweep_width=16,
            dense=(16, 16, 4), rounds=1, min_sample_s=0.0, settle_s=0.0)


# -- accounting, by hand -----------------------------------------------------------------

def test_flop_counts_by_hand():
    # [3, 4, 2]: W₁ 4×3 + b₁ 4, W₂ 2×4 + b₂ 2 → 26 parameters
    assert acc.param_count([3, 4, 2]) == 26
    assert acc.param_count([3, 4, 2], bias=False) == 20
    assert acc.step_flops([3, 4, 2], 5) == 6 * 5 * 26 == 780
    assert acc.forward_flops([3, 4, 2], 5) == 260
    # products: 3 per layer of 2·5·(3·4) and 2·5·(4·2), less the first layer's dX (2·5·12)
    assert acc.floor_flops([3, 4, 2], 5) == 3 * (120 + 80) - 120 == 480
    assert acc.dense_flops(3, 4, 5, backward=False) == 2 * 5 * 16
    assert acc.dense_flops(3, 4, 5, backward=True) == 6 * 5 * 16
    wide = 784 * 2048 + 2048 + 2048 * 2048 + 2048 + 2048 * 10 + 10
    assert acc.param_count([784, 2048, 2048, 10]) == wide == 5_824_522
    assert acc.step_flops([784, 2048, 2048, 10], 512) == 6 * 512 * wide


def test_analytic_memory_by_hand():
    m = acc.analytic_min_bytes([3, 4, 2], 5)
    assert m == {"params": 104, "grads": 104, "state": 0, "activations": 5 * 6 * 4,
                 "total": 328}
    adam = acc.analytic_min_bytes([3, 4, 2], 5, itemsize=8, optimizer="adam")
    assert adam["state"] == 2 * 26 * 8 and adam["total"] == 26 * 8 * 4 + 5 * 6 * 8
    with pytest.raises(ValueError, match="valid: sgd"):
        acc.analytic_min_bytes([3, 4, 2], 5, optimizer="lbfgs")
    with pytest.raises(ValueError, match="two positive widths"):
        acc.param_count([3])


class _CountingOps(Ops):
    """The portable ops, counting the FLOPs of every product they run."""

    def __init__(self, xp):
        super().__init__(xp)
        self.flops = 0

    def matmul(self, a, b, out=None):
        self.flops += 2 * a.shape[0] * a.shape[1] * b.shape[1]
        return super().matmul(a, b, out=out)


def _counting(name):
    base = registry.load(name)
    return dataclasses.replace(base, ops=_CountingOps(base.xp))


def test_floor_runs_exactly_the_counted_products(backend):
    net = cases.Network((5, 7, 6, 3), 4)
    b = _counting(backend.name)
    timed = cases.floor(b, net)
    b.ops.flops = 0
    timed.fn()
    assert b.ops.flops == acc.floor_flops(net.sizes, net.batch)


def test_step_runs_exactly_the_floors_products(backend):
    """Every product of the step (forward and backward) goes through ``ops.matmul``, and
    they are the floor's: 2·batch·Σ in·out forward, twice that backward less the first
    layer's dX."""
    net = cases.Network((5, 7, 6, 3), 4)
    b = _counting(backend.name)
    timed = cases.training_step(b, net)
    b.ops.flops = 0
    timed.fn()
    forward = 2 * net.batch * (5 * 7 + 7 * 6 + 6 * 3)
    backward = 2 * forward - 2 * net.batch * 5 * 7
    assert b.ops.flops == forward + backward == acc.floor_flops(net.sizes, net.batch)


# -- memory ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["numpy", "array_api_strict"])
def test_tracker_counts_a_known_allocation(name):
    if registry.why_unavailable(name):
        pytest.skip(registry.why_unavailable(name))
    b = registry.load(name)
    tracker = b.memory_tracker()
    tracker.start()
    try:
        keep = b.xp.ones((250_000,), dtype=b.xp.float32)    # 1,000,000 bytes
        del keep
        tracker.reset_peak()
        scratch = b.xp.zeros((500_000,), dtype=b.xp.float32)  # 2,000,000 bytes
        peak = tracker.peak()
        del scratch
    finally:
        tracker.stop()
    assert 2_000_000 <= peak < 2_000_000 + 64 * 1024


def test_trackers_exist_where_the_library_counts(backend):
    tracker = backend.memory_tracker()
    if backend.name in ("numpy", "array_api_strict", "cupy"):
        assert tracker is not None
    elif backend.name == "jax" or str(backend.device) == "cpu":
        assert tracker is None


def test_step_peak_memory_sits_between_the_minimum_and_a_margin():
    net = cases.Network((64, 256, 256, 10), 128)
    minimum = acc.analytic_min_bytes(net.sizes, net.batch)["total"]
    peak = memory.step_peak_memory("numpy", net)
    # after a step's forward pass, parameters, gradients and activations are all alive
    assert minimum <= peak <= 1.5 * minimum
    assert "jax" not in registry.available() or memory.step_peak_memory("jax", net) is None


# -- the suite runs, at toy sizes, everywhere --------------------------------------------

def test_suite_runs_on_every_backend(backend):
    result = benchmark.run([backend.name], quick=True, overrides=TINY, log=lambda _: None)
    rows = result["rows"]
    groups = {r["group"] for r in rows}
    assert groups == {"wide MLP", "dense forward", "dense fwd+bwd", "width sweep",
                      "batch sweep", "XOR"}
    torch_here = cases.torch_reference() is not None
    for r in rows:
        assert r["seconds"] > 0 and r["samples"] == 1
        assert r["gflops"] == pytest.approx(r["flops"] / r["seconds"] / 1e9)
        if r["case"] == "floor":
            assert r["x_floor"] == 1.0
        assert (r["x_torch"] is not None) == torch_here
    wide = [r for r in rows if r["group"] == "wide MLP"]
    assert {r["case"] for r in wide} == {"floor", "nnx step"} | ({"torch step"} if torch_here
                                                                 else set())
    assert all(r["flops"] == acc.step_flops(TINY["sizes"], TINY["batch"]) for r in wide)
    mem = [m for m in result["memory"] if m["who"] == "nnx"]
    assert [m["net"] for m in mem] == ["8-16-16-4 ×4", "2-4-1 ×4"]
    if backend.name in ("numpy", "array_api_strict"):
        assert all(m["peak_bytes"] >= m["min_bytes"] for m in mem)
    json.dumps(result)                            # the record is plain JSON


def test_main_prints_and_writes_json_and_png(tmp_path, capsys):
    code = benchmark.main(["--quick", "--backends", "numpy", "--out", str(tmp_path),
                           "--rounds", "1", "--widths", "8,16", "--no-torch"])
    assert code == 0
    out = capsys.readouterr().out
    assert "wide MLP" in out and "× floor" in out and "targets" in out
    data = json.loads((tmp_path / "quick.json").read_text())
    assert data["machine"]["backends"]["numpy"]["device_name"] == "cpu"
    assert {r["width"] for r in data["rows"] if r["group"] == "width sweep"} == {8, 16}
    assert (tmp_path / "quick.png").stat().st_size > 1000


def test_main_check_and_usage_errors(tmp_path, monkeypatch, capsys):
    args = ["--quick", "--backends", "numpy", "--out", str(tmp_path), "--rounds", "1",
            "--no-torch", "--no-plot", "--check", "--sizes", "4,8,3", "--batch", "2",
            "--widths", "8", "--batches", "2", "--dense", "4,4,2"]
    monkeypatch.setattr(suite, "TARGETS", {"numpy": {"memory": 1e9}})
    assert benchmark.main(args) == 0
    monkeypatch.setattr(suite, "TARGETS", {"numpy": {"memory": 1e-9}})
    assert benchmark.main(args) == 1
    assert "NOT met" in capsys.readouterr().out
    assert benchmark.main(["--backends", "no_such_lib"]) == 2
    with pytest.raises(SystemExit):
        benchmark.main(["--sizes", "4,x"])


def test_timing_calibrates_interleaves_and_settles_only_long_calls():
    now = [0.0]
    calls: list[str] = []

    def work(name, cost):
        def fn():
            calls.append(name)
            now[0] += cost
        return fn

    slow = timing.Timed(work("slow", 2e-3))      # 2 ms a call: wakes thread pools
    fast = timing.Timed(work("fast", 1e-5))      # 10 µs a call
    timing.measure([slow, fast], rounds=4, warmup=1, min_sample_s=5e-3, settle_s=1e-6,
                   clock=lambda: now[0])
    assert slow.number == 4 and fast.number == 1024           # powers of 4 reaching 5 ms
    assert slow.settle == 1e-6 and fast.settle == 0.0
    assert len(slow.samples) == len(fast.samples) == 4
    assert slow.median == pytest.approx(2e-3) and fast.median == pytest.approx(1e-5)
    # a settled sample first runs one untimed sample's worth of calls
    assert calls.count("slow") == 1 + (1 + 4) + 4 * (4 + 4)


def test_timing_runs_every_sampled_call_inside_the_cases_context():
    inside = [False]
    seen: list[bool] = []

    @contextlib.contextmanager
    def around():
        inside[0] = True
        yield
        inside[0] = False

    t = timing.Timed(lambda: seen.append(inside[0]), around=around)
    timing.measure([t], rounds=3, warmup=0, min_sample_s=0.0)
    assert seen and all(seen) and not inside[0]


def test_small_steps_are_timed_with_fits_thread_setting(monkeypatch):
    """The nnx step and the hand-written one run under Backend.step_threads of the net's
    largest product, as fit trains it; the floor keeps the library's own setting."""
    asked: list[int] = []
    backend = nnx.backend.resolve_backend("numpy")
    monkeypatch.setattr(type(backend), "step_threads",
                        lambda self, macs: asked.append(macs) or contextlib.nullcontext())
    net = cases.Network((6, 16, 3), 8, "relu", "softmax_cross_entropy", optimizer="adam",
                        lr=1e-3)
    for make in (cases.training_step, cases.hand_written_step, cases.floor):
        with make(backend, net).around():
            pass
    assert asked == [8 * 6 * 16] * 2


def test_report_formats():
    assert report.format_time(96.1e-3) == "96.1 ms"
    assert report.format_time(12.34e-6) == "12.34 µs"
    assert report.format_time(1.5) == "1.5 s"
    row = {"backend": "numpy", "group": "XOR", "net": "2-4-1 ×4", "case": "nnx step",
           "seconds": 2e-5, "gflops": 0.01, "x_floor": 3.0, "x_torch": None}
    table = report.format_table([row]).splitlines()
    assert table[0].split()[:3] == ["backend", "benchmark", "network"]
    assert table[2].endswith("3.000        —")


# -- issue 10: the precision and capture sections, and their targets ---------------------

TINY_PRECISION = {**benchmark.QUICK, "precision_sizes": (8, 16, 16, 4), "precision_batch": 4,
                  "rounds": 1, "small_rounds": 1, "min_sample_s": 0.0, "settle_s": 0.0}


def test_matmul_flops_and_mixed_minimum_by_hand():
    # [3, 4, 2] at batch 5: Σ in·out = 12 + 8 = 20 → 6·5·20 products' FLOPs, biases left out
    assert acc.matmul_flops([3, 4, 2], 5) == 600
    assert acc.matmul_flops([784, 2048, 2048, 10], 512) == \
        6 * 512 * (784 * 2048 + 2048 * 2048 + 2048 * 10)
    m = acc.mixed_min_bytes([3, 4, 2], 5)
    # float32 masters 4·26 each; W rounded to 2 bytes (12 + 8); input and hidden activation
    # in 2 bytes (5·3 + 5·4), the output in float32 (5·2·4)
    assert m == {"params": 104, "grads": 104, "state": 0, "weight_copies": 40,
                 "activations": 2 * 5 * (3 + 4) + 4 * 5 * 2, "total": 358}
    assert acc.mixed_min_bytes([3, 4, 2], 5, optimizer="adam")["state"] == 208
    # nothing to round when the compute dtype is the master dtype
    assert acc.mixed_min_bytes([3, 4, 2], 5, compute_itemsize=4) == \
        acc.analytic_min_bytes([3, 4, 2], 5)
    with pytest.raises(ValueError, match="valid: sgd"):
        acc.mixed_min_bytes([3, 4, 2], 5, optimizer="lbfgs")


class _CountingLowOps(_CountingOps):
    """... and those of the compute dtype (``matmul_low``)."""

    def matmul_low(self, a, b):
        self.flops += 2 * a.shape[0] * a.shape[1] * b.shape[1]
        return super().matmul_low(a, b)


def test_float16_step_runs_the_counted_products():
    """The precision rows credit 6·B·Σ in·out; the float16 step runs exactly that less the
    first layer's dX (not asked for), all of it in the compute dtype."""
    base = registry.load("numpy")
    b = dataclasses.replace(base, ops=_CountingLowOps(base.xp))
    net = cases.Network((5, 7, 6, 3), 4)
    t = precision_section._nnx_step(b, net, "float16", cases.make_batch(b, net))
    assert t.model.compute_dtype == "float16"
    b.ops.flops = 0
    t.fn()
    assert b.ops.flops == acc.matmul_flops(net.sizes, net.batch) - 2 * 4 * 5 * 7


def test_mixed_minimum_bounds_a_measured_float16_step():
    net = cases.Network((64, 256, 256, 10), 128)
    b = registry.load("numpy")
    data = cases.make_batch(b, net)
    peak = precision_section._peak(b, lambda: precision_section._nnx_step(b, net, "float16",
                                                                          data))
    minimum = acc.mixed_min_bytes(net.sizes, net.batch)["total"]
    # NumPy has no float16 BLAS: its widest product (dW of the 256×256 layer, δᵀ X) runs
    # on float32 copies of both operands and a float32 result, rounded once more
    n_in = n_out = 256
    emulation = 4 * (128 * n_out + 128 * n_in + n_in * n_out) + 2 * n_in * n_out
    assert minimum <= peak <= minimum + emulation + 64 * 1024


@pytest.mark.parametrize("name", ["numpy", "torch"])
def test_precision_section_on_the_cpu_is_labelled_and_trains_alike(name):
    if registry.why_unavailable(name):
        pytest.skip(registry.why_unavailable(name))
    before = nnx.get_matmul_precision()
    rows = precision_section.run(name, TINY_PRECISION, quick=True, use_torch=True,
                                 log=lambda _: None)
    assert nnx.get_matmul_precision() == before
    timed = [r for r in rows if r.get("case")]
    skipped = {r["precision"]: r["skipped"] for r in rows if r.get("skipped")}
    assert all(r["label"] == precision_section.CPU_LABEL for r in timed)
    assert "no TF32 on the CPU" in skipped["tf32"]
    nnx_rows = {r["precision"]: r for r in timed if r["who"] == "nnx"}
    if name == "numpy":
        assert set(nnx_rows) == {"float32", "float16"} and "bfloat16" in skipped
    else:
        assert set(nnx_rows) == {"float32", "bfloat16", "float16"}
        torch_rows = {r["precision"]: r["case"] for r in timed if r["who"] == "torch"}
        assert torch_rows == {"float32": "torch float32", "bfloat16": "torch autocast bf16"}
    assert nnx_rows["float32"]["x_f32"] == 1.0 and nnx_rows["float32"]["loss_delta"] == 0.0
    for r in nnx_rows.values():
        assert r["tflops"] == pytest.approx(r["flops"] / r["seconds"] / 1e12)
        assert r["flops"] == acc.matmul_flops((8, 16, 16, 4), 4)
        assert r["loss_delta"] < 0.02        # 20 steps in 16 bits train as float32 does
    json.dumps(rows)


def test_precision_section_on_a_cuda_backend_reads_every_target(monkeypatch):
    """The CUDA path, exercised on torch's CPU: all four precisions, PyTorch's recipe beside
    each, and every precision target evaluated from the rows."""
    if registry.why_unavailable("torch"):
        pytest.skip(registry.why_unavailable("torch"))
    monkeypatch.setattr(precision_section, "is_cuda", lambda b: True)
    rows = precision_section.run("torch", TINY_PRECISION, quick=True, use_torch=True,
                                 log=lambda _: None)
    cases_ = {(r["who"], r["precision"]): r["case"] for r in rows}
    assert cases_[("torch", "float16")] == "torch autocast fp16 + GradScaler"
    assert cases_[("torch", "tf32")] == "torch tf32" and len(cases_) == 8
    assert all(not r["label"] for r in rows)
    found = gpu_targets.precision(rows, quick=True)
    assert [t["backend"] for t in found] == ["torch"] * 4
    bf16 = next(r for r in rows if r["who"] == "nnx" and r["precision"] == "bfloat16")
    speedup = next(t for t in found if t["what"].startswith("bfloat16 wide step: ×"))
    assert speedup["value"] == bf16["x_f32"] and speedup["met"] == (bf16["x_f32"] >= 8)
    assert all(t["met"] is not None for t in found[:3])


def test_gpu_targets_compare_and_never_call_unmeasured_met():
    rows = [{"backend": "cupy", "who": "nnx", "precision": "bfloat16", "case": "nnx bfloat16",
             "label": "", "x_f32": 9.0, "x_torch": 1.06, "x_min": 1.2},
            {"backend": "cupy", "who": "nnx", "precision": "tf32", "case": "nnx tf32",
             "label": "", "x_f32": 4.0, "x_torch": None, "x_min": 1.31}]
    met = [t["met"] for t in gpu_targets.precision(rows, quick=False)]
    assert met == [True, False, False, False]     # 9 ≥ 8; 1.06 > 1.05; 4 < 5; 1.31 > 1.3
    for t in (gpu_targets.precision([], quick=False) + gpu_targets.captured_xor([], False, "x")
              + gpu_targets.digits_demo([], False, cuda=False)):
        assert t["met"] is None and t["note"] == gpu_targets.NOT_HERE
    xor = [{"backend": "cupy", "net": "2-4-1 ×4", "case": "captured fit", "seconds": 2e-5}]
    assert gpu_targets.captured_xor(xor, False, "2-4-1 ×4")[0]["met"] is True
    text = report.format_targets(gpu_targets.captured_xor([], False, "x"))
    assert "not measured here (needs CUDA)" in text and " met" not in text


def test_capture_section_on_the_cpu_shows_eager_figures_and_says_why():
    rows = capture_section.run("numpy", TINY_PRECISION, quick=True, log=lambda _: None)
    timed = [r for r in rows if r.get("case")]
    assert {(r["net"], r["case"]) for r in timed} == {
        (n.label, c) for n in capture_section.NETS for c in ("eager step", "eager fit")}
    for r in timed:
        assert r["steps"] == (capture_section.QUICK_STEPS if r["case"] == "eager fit" else 1)
        assert r["seconds"] > 0 and r["kernels"] is None
    reasons = [r["skipped"] for r in rows if r.get("skipped")]
    assert len(reasons) == 2 and all(capture_section.NEEDS_CUDA in why for why in reasons)
    assert (capture_section.NOT_AVAILABLE in reasons[0]) == (capture_section.why_not() is not None)


def test_new_sections_from_the_command_line_without_cuda(tmp_path, capsys):
    code = benchmark.main(["--quick", "--backends", "numpy", "--sections", "precision,capture",
                           "--out", str(tmp_path), "--rounds", "1", "--no-plot", "--check",
                           "--no-torch"])
    out = capsys.readouterr().out
    assert code == 0                      # unmeasured targets are not missed ones
    assert "CPU: for correctness, not speed" in out and "nnx float16" in out
    assert "capture needs CUDA" in out and "eager fit" in out
    lines = [ln for ln in out.splitlines() if "not measured here (needs CUDA)" in ln]
    assert len(lines) == 6 and not any(ln.rstrip().endswith(" met") for ln in lines)
    data = json.loads((tmp_path / "quick-precision-capture.json").read_text())
    assert data["precision"] and data["capture"] and data["digits_job"] == []
    assert benchmark.main(["--sections", "precision,nope"]) == 2
