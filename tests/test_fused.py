"""The compiled whole-buffer updates of NumPy's optimizers (backends/_fused.c).

Each must give the bits of NumPy's own update (the same operations, in the same order,
one rounding each) and of the portable per-array ``Ops``: at every option, in float32 and
float64, on edge values (±0, ±inf, NaN, subnormals), and on both sides of the NumPy
path's slice size. Its argument checks must refuse what it cannot read.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from nnx.backends import _numpy_ops

import nnx
from nnx import backends as registry

fused = pytest.importorskip(
    "nnx.backends._fused",
    reason="the compiled updates were not built (no C compiler when nnx was installed)")

CHUNK = _numpy_ops.UPDATE_CHUNK
SIZES = [1, 7, 8, 33, CHUNK - 1, CHUNK + 9]     # vector tails, and the NumPy path's slices
NUMPY = registry.load("numpy")


def _ops(with_fused: bool):
    ops = _numpy_ops.NumpyOps(NUMPY.xp)
    if not with_fused:
        ops.fused = None
    return ops


def _state(rng, n, dtype, *, edges=False):
    """p, g, m, v (v ≥ 0), buf as float arrays of n elements."""
    p, g, m, buf = (rng.standard_normal(n).astype(dtype) for _ in range(4))
    v = np.abs(rng.standard_normal(n)).astype(dtype)
    if edges and n >= 8:
        tiny = np.finfo(dtype).smallest_subnormal
        g[:8] = [0.0, -0.0, np.inf, -np.inf, np.nan, tiny, -tiny, 1e30]
        p[8 % n] = np.nan
        v[1] = 0.0
    return p, g, m, v, buf


def _adam_args(t=3, b1=0.9, b2=0.999, lr=1e-3, eps=1e-8, weight_decay=0.0):
    return dict(step_size=lr / (1.0 - b1 ** t), b1=b1, b2=b2,
                sqrt_bc2=math.sqrt(1.0 - b2 ** t), eps=eps, weight_decay=weight_decay)


def _same(a, b):
    np.testing.assert_array_equal(a, b)       # bits: NaN where NaN, -0.0 kept apart below
    assert (np.signbit(a) == np.signbit(b)).all()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_adam_gives_the_bits_of_the_numpy_calls_and_the_portable_ops(rng, dtype, n,
                                                                     weight_decay):
    draw = _state(rng, n, dtype, edges=True)
    results = []
    for ops in (_ops(True), _ops(False), registry.Ops(NUMPY.xp)):
        p, g, m, v, _ = (a.copy() for a in draw)
        for t in (1, 2, 3):                 # the state each step leaves feeds the next
            ops.adam_step(p, g, m, v, **_adam_args(t=t, weight_decay=weight_decay))
        results.append((p, m, v))
    for got in results[1:]:
        for a, b in zip(results[0], got):
            _same(a, b)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True)])
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_sgd_gives_the_bits_of_the_numpy_calls_and_the_portable_ops(rng, dtype, n, momentum,
                                                                    nesterov, weight_decay):
    draw = _state(rng, n, dtype, edges=True)
    results = []
    for ops in (_ops(True), _ops(False), registry.Ops(NUMPY.xp)):
        p, g, _, _, buf = (a.copy() for a in draw)
        for first in (True, False, False):
            ops.sgd_step(p, g, buf if momentum else None, lr=0.05, momentum=momentum,
                         nesterov=nesterov, weight_decay=weight_decay, first=first)
        results.append((p, buf))
    for got in results[1:]:
        for a, b in zip(results[0], got):
            _same(a, b)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(1,), (3, 5), (CHUNK + 9,)])
def test_sub_scaled_gives_the_bits_of_the_numpy_calls_and_the_portable_ops(rng, dtype,
                                                                           shape):
    p0, g, *_ = _state(rng, math.prod(shape), dtype, edges=True)
    p0, g = p0.reshape(shape), g.reshape(shape)
    runs = [ops.sub_scaled(p0.copy(), g, -0.37)
            for ops in (_ops(True), _ops(False), registry.Ops(NUMPY.xp))]
    for got in runs[1:]:
        _same(runs[0], got)


def test_sub_scaled_of_an_array_with_itself_takes_the_numpy_calls(rng):
    """p − α p: the loop refuses overlapping buffers, and the NumPy calls answer."""
    p0 = rng.standard_normal(40).astype(np.float32)
    a, b = p0.copy(), p0.copy()
    _same(_ops(True).sub_scaled(a, a, 0.25), _ops(False).sub_scaled(b, b, 0.25))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(1, 5), (3, 1), (64, 128), (1000, 3), (4097, 2)])
def test_relu_and_sum_rows_give_the_bits_of_the_numpy_calls_and_the_portable_ops(
        rng, dtype, shape):
    """Long columns too: a sum in any order but NumPy's row order would show."""
    z = rng.standard_normal(shape).astype(dtype) * 1e3
    dy = rng.standard_normal(shape).astype(dtype)
    flat = z.reshape(-1)
    flat[: min(6, flat.size)] = [0.0, -0.0, np.nan, -np.inf, np.inf, 1e-310][: min(6, flat.size)]
    dy.reshape(-1)[-min(3, dy.size):] = [np.inf, -0.0, np.nan][-min(3, dy.size):]
    ops = (_ops(True), _ops(False), registry.Ops(NUMPY.xp))
    for results in ([o.relu(z) for o in ops],
                    [o.relu_backward(dy, np.maximum(z, 0.0)) for o in ops],
                    [o.sum_rows(dy) for o in ops],
                    [o.sum_rows(dy, out=np.empty(shape[1:], dtype)) for o in ops]):
        for got in results[1:]:
            _same(results[0], got)
    out = np.empty(shape[1:], dtype)
    _same(ops[0].sum_rows_into(dy, out), np.add.reduce(dy, axis=0))


def test_relu_writes_in_place_and_sum_rows_of_no_rows_is_zero():
    z = np.array([[-1.0, 2.0], [3.0, -0.0]], np.float32)
    assert _ops(True).relu(z, out=z) is z
    _same(z, np.array([[0.0, 2.0], [3.0, 0.0]], np.float32))
    out = np.full(3, 7.0)
    fused.sum_rows(np.zeros((0, 3)), out)
    _same(out, np.zeros(3))


def test_adam_matches_its_closed_form_in_float64(rng):
    """One step against the equations written out in Python floats (t = 1, decay on)."""
    p, g, m, v, _ = _state(rng, 5, "float64")
    want_m = 0.9 * m + 0.1 * (g + 0.01 * p)
    want_v = 0.999 * v + 0.001 * (g + 0.01 * p) ** 2
    denom = np.sqrt(want_v) / math.sqrt(1 - 0.999) + 1e-8
    want_p = p - (1e-2 / (1 - 0.9)) * want_m / denom
    _ops(True).adam_step(p, g, m, v, **_adam_args(t=1, lr=1e-2, weight_decay=0.01))
    np.testing.assert_allclose(m, want_m, rtol=1e-15)
    np.testing.assert_allclose(v, want_v, rtol=1e-15)
    np.testing.assert_allclose(p, want_p, rtol=1e-14)


class _Counting:
    """Stands in for the compiled module and counts the calls of each of its functions."""

    def __init__(self):
        self.calls = {"adam": 0, "sgd": 0, "relu": 0, "relu_backward": 0, "sum_rows": 0}

    def __getattr__(self, name):
        function = getattr(fused, name)

        def counted(*args):
            self.calls[name] += 1
            return function(*args)
        return counted


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("opt", ["adam", "sgd"])
def test_training_runs_the_compiled_update_with_the_bits_of_the_numpy_calls(rng, dtype,
                                                                           opt, monkeypatch):
    X = rng.standard_normal((40, 6)).astype(dtype)
    y = rng.integers(0, 3, 40)
    make = {"adam": lambda: nnx.optim.Adam(1e-2, weight_decay=1e-3),
            "sgd": lambda: nnx.optim.SGD(0.05, momentum=0.9, nesterov=True)}[opt]
    counting = _Counting()
    params = []
    for loops in (counting, None):       # NumPy's own ops object: every layer's and loss's
        monkeypatch.setattr(NUMPY.ops, "fused", loops)
        model = nnx.MLP([6, 8, 3], seed=2, dtype=dtype, backend=NUMPY)
        model.fit(X, y, loss="softmax_cross_entropy", optimizer=make(), epochs=3,
                  batch_size=8, seed=0, progress=False)
        params.append(np.concatenate([np.ravel(nnx.to_numpy(a))
                                      for a in model.parameters().values()]))
    other = {"adam": "sgd", "sgd": "adam"}[opt]
    assert counting.calls[opt] == 15 and counting.calls[other] == 0
    assert counting.calls["relu"] == counting.calls["relu_backward"] == 15   # and the
    assert counting.calls["sum_rows"] == 2 * 15                  # bias gradients, in fit
    _same(*params)


def test_strided_float16_and_mixed_buffers_take_the_numpy_calls(rng):
    """What the loop cannot take gives the NumPy calls' numbers: float16 and mixed dtypes
    never reach it; a strided view reaches it once, is refused, and the calls answer."""
    draw = _state(rng, 16, "float32")
    for make, asked in ((lambda a: a.astype(np.float16), 0), (lambda a: a[::2], 1)):
        counting = _Counting()
        ops = _ops(True)
        ops.fused = counting
        runs = []
        for o in (ops, _ops(False)):
            p, g, m, v, _ = (make(a.copy()) for a in draw)
            o.adam_step(p, g, m, v, **_adam_args())
            runs.append(p)
        _same(*runs)
        assert counting.calls["adam"] == asked and counting.calls["sgd"] == 0
    counting = _Counting()
    ops = _ops(True)
    ops.fused = counting
    p, g, m, v, _ = _state(rng, 8, "float32")
    ops.adam_step(p, g.astype(np.float64), m, v, **_adam_args())
    assert counting.calls["adam"] == 0      # the per-array update (its float32 p − step·m/d:
                                            # the loop's sub_scaled, one call)


# -- the extension's own checks (it is called with whatever arrays reach it) --------------
def _adam(p, g, m, v):
    fused.adam(p, g, m, v, 0.1, 0.9, 0.1, 0.999, 0.001, 0.5, 1e-8, 0.0)


def test_refuses_other_dtypes_with_a_type_error():
    for dtype in (np.float16, np.int32, np.complex64, ">f4"):
        a = np.zeros(4, dtype=dtype)
        with pytest.raises(TypeError, match="expected a float32 or float64 buffer"):
            _adam(a, a.copy(), a.copy(), a.copy())
    with pytest.raises(TypeError, match="g: expected a float32 or float64 buffer, got "
                                        "format B"):
        _adam(np.zeros(1, np.float32), b"abcd", np.zeros(1, np.float32),
              np.zeros(1, np.float32))


def test_refuses_mismatched_lengths_dtypes_and_overlap():
    a = [np.zeros(6, np.float32) for _ in range(4)]
    with pytest.raises(ValueError, match="g: expected 24 bytes"):
        _adam(a[0], np.zeros(5, np.float32), a[2], a[3])
    with pytest.raises(ValueError, match="m: expected 24 bytes"):
        _adam(a[0], a[1], np.zeros(6, np.float64), a[3])
    whole = np.zeros(12, np.float32)
    with pytest.raises(ValueError, match="p and v overlap"):
        _adam(whole[:6], a[1], a[2], whole[3:9])
    with pytest.raises(ValueError, match="momentum needs a buffer"):
        fused.sgd(a[0], a[1], None, 0.1, 0.9, 0.0, False, False)


def test_sum_rows_refuses_what_does_not_fit():
    x = np.zeros((4, 3))
    with pytest.raises(ValueError, match="out: expected the dtype of x"):
        fused.sum_rows(x, np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="expected a multiple of the 5 items of out, got 12"):
        fused.sum_rows(x, np.zeros(5))
    with pytest.raises(ValueError, match="x and out overlap"):
        fused.sum_rows(x, x[1])
    with pytest.raises(ValueError, match="expected a multiple of the 0 items"):
        fused.sum_rows(x, np.zeros(0))


def test_refuses_read_only_and_strided_buffers():
    a = [np.zeros(6, np.float32) for _ in range(4)]
    frozen = np.zeros(6, np.float32)
    frozen.flags.writeable = False
    with pytest.raises((BufferError, ValueError)):
        _adam(frozen, a[1], a[2], a[3])
    with pytest.raises((BufferError, ValueError)):
        _adam(np.zeros(12, np.float32)[::2], a[1], a[2], a[3])
    _adam(a[0], frozen, a[2], a[3])          # g is only read: a read-only g is fine


def test_empty_buffers_are_a_no_op():
    e = np.zeros(0, np.float64)
    _adam(e, e.copy(), e.copy(), e.copy())
    fused.sgd(e, e.copy(), None, 0.1, 0.0, 0.0, True, False)


def test_fused_updates_names_the_instruction_set():
    from nnx.backends import numpy as numpy_adapter

    assert numpy_adapter.fused_updates() == fused.instruction_set
    assert fused.instruction_set in ("avx2", "baseline")


# -- fuzzing: whatever arrays reach a loop, it answers or refuses, and never misreads ------
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FUZZ_DTYPES = ["float32", "float64", ">f4", "float16", "int32", "bool", "complex64"]
REFUSALS = (TypeError, ValueError, BufferError)


@st.composite
def _buffer(draw, base):
    """An array like ``base`` in a drawn dtype and layout: contiguous, strided, a view of
    ``base`` itself (overlapping), read-only, a wrong length, or not an array at all."""
    kind = draw(st.sampled_from(["same", "dtype", "strided", "alias", "shifted", "frozen",
                                 "short", "list", "bytes", "zero-d"]))
    if kind == "dtype":
        return np.ones(base.shape, draw(st.sampled_from(FUZZ_DTYPES)))
    if kind == "strided":
        return np.ones(base.size * 2, base.dtype)[::2].reshape(base.shape)
    if kind == "alias":
        return base
    if kind == "shifted" and base.size > 1:
        return base.reshape(-1)[1:]
    if kind == "frozen":
        a = np.ones_like(base)
        a.flags.writeable = False
        return a
    if kind == "short":
        return np.ones(max(base.size - 1, 0), base.dtype)
    if kind == "list":
        return base.tolist()
    if kind == "bytes":
        return base.tobytes()
    if kind == "zero-d":
        return np.ones((), base.dtype)
    return np.ones_like(base)


@pytest.mark.parametrize("examples", [pytest.param(60, id="quick"),
                                      pytest.param(2000, id="long",
                                                   marks=pytest.mark.fuzz_long)])
def test_the_loops_answer_or_refuse_whatever_they_are_given(examples):
    @settings(max_examples=examples, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data(), dtype=st.sampled_from(FUZZ_DTYPES),
           n=st.integers(0, 40), name=st.sampled_from(
               ["adam", "sgd", "relu", "relu_backward", "sum_rows"]))
    def check(data, dtype, n, name):
        base = np.arange(n, dtype=dtype) if dtype != "bool" else np.ones(n, bool)
        arity = {"adam": 4, "sgd": 3, "relu": 2, "relu_backward": 3, "sum_rows": 2}[name]
        args = [base] + [data.draw(_buffer(base)) for _ in range(arity - 1)]
        if name == "sum_rows" and n and data.draw(st.booleans()):
            args = [base.reshape(-1, 1) if n % 2 else base.reshape(2, -1), args[1]]
        scalars = {"adam": (0.1, 0.9, 0.1, 0.999, 0.001, 0.5, 1e-8, 0.0),
                   "sgd": (0.1, 0.9, 0.0, False, True)}.get(name, ())
        before = [np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args]
        try:
            getattr(fused, name)(*args, *scalars)
        except REFUSALS:
            for a, b in zip(args, before):         # a refusal writes nothing
                if isinstance(a, np.ndarray):
                    np.testing.assert_array_equal(a, b)
            return
        # it ran: then every buffer was a native float32/float64 one it may use
        arrays = [a for a in args if isinstance(a, np.ndarray)]
        assert all(a.dtype in (np.float32, np.float64) and a.dtype.isnative for a in arrays)
        if name == "relu":
            want = np.maximum(before[0], 0.0)
            _same(args[1].reshape(want.shape), want)

    check()
