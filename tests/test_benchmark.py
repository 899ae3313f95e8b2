"""The benchmark runs at a tiny size on every backend, and its accounting is right.

Nothing here asserts a time: benchmarks are not tests. FLOP counts and analytic
memory are checked against hand-computed numbers, the floor's products against those
counts, and the memory trackers against allocations of known size.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from nnx import backends as registry
from nnx import benchmark
from nnx.benchmark import accounting as acc
from nnx.benchmark import cases, report, suite, timing

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
    peak = cases.step_peak_memory("numpy", net)
    # after a step's forward pass, parameters, gradients and activations are all alive
    assert minimum <= peak <= 1.5 * minimum
    assert "jax" not in registry.available() or cases.step_peak_memory("jax", net) is None


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


def test_report_formats():
    assert report.format_time(96.1e-3) == "96.1 ms"
    assert report.format_time(12.34e-6) == "12.34 µs"
    assert report.format_time(1.5) == "1.5 s"
    row = {"backend": "numpy", "group": "XOR", "net": "2-4-1 ×4", "case": "nnx step",
           "seconds": 2e-5, "gflops": 0.01, "x_floor": 3.0, "x_torch": None}
    table = report.format_table([row]).splitlines()
    assert table[0].split()[:3] == ["backend", "benchmark", "network"]
    assert table[2].endswith("3.000        —")
