"""A hypothesis-driven fuzzer of the public API: a clear error or a correct answer.

Generated inputs — arrays of bool, integer, float16/32/64 and complex dtypes, shapes empty
and mismatched, values with NaN, infinities, huge and subnormal numbers, Python lists,
scalars and strings — go to ``Dense.forward``/``backward``, every loss, the optimizers and
initializers, ``fit``/``predict`` and the scikit-learn estimators. Every call must either
raise ``ValueError``/``TypeError`` with a message, or return what NumPy computes in
float64 from the documented casts; and the caller's arrays must be left as they were.

Deterministic (``derandomize=True``) and small by default; the ``fuzz_long`` marker runs
the same properties with many more examples: ``pytest -m fuzz_long tests/test_fuzz_api.py``.
"""

from __future__ import annotations

import warnings
from collections import Counter

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

import nnx  # noqa: E402
from nnx import backends as registry  # noqa: E402
from nnx import init, losses, optim  # noqa: E402
from nnx.training import TrainingDivergedError  # noqa: E402

#: (examples per property) quick in every run; long behind the fuzz_long marker.
RUNS = [pytest.param(40, id="quick"),
        pytest.param(1000, id="long", marks=pytest.mark.fuzz_long)]
BACKENDS = [pytest.param(name, id=name, marks=[pytest.mark.skip(reason=reason)] if reason
                         else []) for name in ("numpy", "torch", "array_api_strict")
            for reason in [registry.why_unavailable(name)]]

DTYPES = ["bool", "int8", "uint8", "int32", "int64", "float16", "float32", "float64",
          "complex64", "complex128"]
SPECIAL = [0.0, -0.0, 1.0, np.nan, np.inf, -np.inf, 1e308, -1.7e308, 5e-324, 1e-310, 3.4e38,
           65504.0, 1e-45]


def _settings(examples: int):
    return settings(max_examples=examples, derandomize=True, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))


def _elements(dtype: str):
    if dtype.startswith("float") or dtype.startswith("complex"):
        return hnp.from_dtype(np.dtype(dtype), allow_nan=True, allow_infinity=True,
                              allow_subnormal=dtype != "float16")
    return hnp.from_dtype(np.dtype(dtype))


@st.composite
def arrays(draw, shapes):
    """A NumPy array of a drawn dtype and one of ``shapes``, specials mixed in."""
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(st.sampled_from(shapes))
    unit = dtype.startswith("float") and draw(st.integers(0, 2)) == 0   # probabilities
    elements = st.floats(0, 1, width=int(dtype[5:])) if unit else _elements(dtype)
    a = draw(hnp.arrays(np.dtype(dtype), shape, elements=elements))
    if a.size and dtype.startswith("float") and draw(st.booleans()):
        with np.errstate(over="ignore"):
            a.flat[draw(st.integers(0, a.size - 1))] = draw(st.sampled_from(SPECIAL))
    return a


@st.composite
def inputs(draw, shapes):
    """``(value, reference)``: what is passed (an array of the backend, a NumPy array, a
    list, a scalar, a string) and the NumPy array it stands for (None: not numbers)."""
    a = draw(arrays(shapes))
    form = draw(st.sampled_from(["backend"] * 6 + ["numpy", "list", "string", "scalar"]))
    if form == "list":   # an empty array's list can lose dimensions: [] is shape (0,)
        return "list", a.tolist(), np.asarray(a.tolist(), dtype=a.dtype)
    if form == "string":
        return "string", draw(st.sampled_from([a.astype(str), a.astype(str).tolist(), "1.0"])), None
    if form == "scalar":
        return "scalar", draw(st.sampled_from([1, 2.5, True, 10**400, None])), None
    return form, a, a


def _on(backend, form, value):
    """The value as handed to nnx on ``backend``; None when the backend cannot hold it."""
    if form != "backend":
        return value
    try:
        return backend.adapter.from_numpy(np.ascontiguousarray(value), backend.device)
    except Exception:  # a dtype this library lacks (float16, uint8 on some): not nnx's API
        return None


#: calls made by the properties, by outcome (printed at the end of the module with -s).
COUNTS: Counter = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report_counts():
    yield
    if COUNTS:
        print(f"\nAPI fuzzer calls: {sum(COUNTS.values())}, " +
              ", ".join(f"{k} {v}" for k, v in sorted(COUNTS.items())))


def _error_or(fn):
    """``(result, None)`` or ``(None, error)`` for a ValueError/TypeError with a message;
    any other exception fails the property."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = fn()
        COUNTS["answers"] += 1
        return result, None
    except (ValueError, TypeError) as exc:
        assert str(exc).strip(), f"{type(exc).__name__} without a message"
        assert len(str(exc)) < 2000, "a message echoing a huge value"
        COUNTS[type(exc).__name__] += 1
        return None, exc


def _unchanged(before, after):
    if isinstance(before, np.ndarray):
        assert after.dtype == before.dtype and after.shape == before.shape
        assert np.array_equal(after, before, equal_nan=before.dtype.kind in "fc"), \
            "the caller's array was modified"


def _real(a) -> bool:
    return a is not None and a.dtype.kind in "biuf"


def _np64(x):
    with np.errstate(all="ignore"):
        return np.asarray(nnx.to_numpy(x)).astype(np.float64)


def _close(got, ref, bound, what):
    """|got − ref| ≤ bound where ref is finite and far from overflow; same NaN/inf pattern
    where ref is not finite."""
    got = np.asarray(got, dtype=np.float64)
    assert got.shape == ref.shape, f"{what}: shape {got.shape}, expected {ref.shape}"
    finite = np.isfinite(ref) & np.isfinite(bound)
    with np.errstate(all="ignore"):
        err = np.abs(got - ref)
    ok = ~finite | (err <= bound)
    assert ok.all(), f"{what}: {got[~ok]} but NumPy float64 says {ref[~ok]}"
    nan = np.isnan(ref)
    assert np.isnan(got[nan]).all(), f"{what}: NaN expected where the input had NaN"


def _dot_bound(a, b, eps):
    """A bound on the rounding error of a @ b computed with unit roundoff eps; inf where
    the float computation may overflow (then only the non-finite pattern is checked)."""
    with np.errstate(all="ignore"):
        s = np.abs(a) @ np.abs(b)
    k = a.shape[-1] + 2
    return np.where(s < 1e30 if eps > 1e-10 else s < 1e300, 4 * k * eps * s + 1e-300, np.inf)


# -- Dense forward and backward ---------------------------------------------------------------
@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("examples", RUNS)
def test_dense_forward_backward(name, examples):
    backend = registry.load(name)

    @_settings(examples)
    @given(data=st.data(), dtype=st.sampled_from(["float32", "float64"]))
    def prop(data, dtype):
        layer = nnx.Dense(3, 2, seed=0, dtype=dtype, backend=backend)
        W, b = _np64(layer.W), _np64(layer.b)
        eps = float(np.finfo(dtype).eps)
        form, x, ref = data.draw(inputs([(2, 3), (0, 3), (1, 3), (3,), (2, 4), (2, 3, 1)]))
        x = _on(backend, form, x)
        if x is None:
            return
        before = np.array(ref, copy=True) if ref is not None else None
        out, err = _error_or(lambda: layer.forward(x))
        _unchanged(before, ref)
        valid = (_real(ref) and ref.shape[1:] == (3,) and ref.ndim == 2
                 and (form != "numpy" or name == "numpy"))
        assert (err is None) == valid, f"forward({form} {getattr(ref, 'dtype', x)!r}): {err}"
        if err is not None:
            return
        with np.errstate(all="ignore"):
            xc = ref.astype(dtype).astype(np.float64)      # the documented cast
            want = xc @ W.T + b
        _close(_np64(out), want, _dot_bound(xc, W.T, eps), "Dense.forward")
        form, dy, dref = data.draw(inputs([(xc.shape[0], 2), (xc.shape[0], 3), (2,)]))
        dy = _on(backend, form, dy)
        if dy is None:
            return
        before = np.array(dref, copy=True) if dref is not None else None
        dx, err = _error_or(lambda: layer.backward(dy))
        _unchanged(before, dref)
        valid = (_real(dref) and dref.shape == (xc.shape[0], 2)
                 and (form != "numpy" or name == "numpy"))
        assert (err is None) == valid, f"backward({form} {getattr(dref, 'dtype', dy)!r}): {err}"
        if err is not None:
            return
        with np.errstate(all="ignore"):
            dc = dref.astype(dtype).astype(np.float64)
            _close(_np64(dx), dc @ W, _dot_bound(dc, W, eps), "dL/dX")
            _close(_np64(layer.dW), dc.T @ xc, _dot_bound(dc.T, xc, eps), "dL/dW")
        assert layer.dW.dtype == layer.W.dtype and dx.dtype == layer.W.dtype

    prop()


# -- losses ---------------------------------------------------------------------------------
def _common_dtype(p, t):
    pf, tf = p.dtype.kind == "f", t.dtype.kind == "f"
    if pf and tf:
        return np.result_type(p.dtype, t.dtype)
    if pf or tf:
        return p.dtype if pf else t.dtype
    return None       # the library's default floating dtype


def _loss_ref(name, p, t, dtype):
    """(loss, grad, loss_scale, grad_scale) in float64 from p and t already cast to the
    common dtype; the scales bound the terms, so rounding errors are a few eps of them."""
    n = p.size
    eps = max(1e-12, float(np.finfo(dtype).smallest_normal))   # 1e-12 is 0 in float16
    with np.errstate(all="ignore"):
        if name == "mse":
            d = p - t
            return np.sum(d * d) / n, 2 * d / n, np.sum((np.abs(p) + np.abs(t)) ** 2) / n, \
                2 * (np.abs(p) + np.abs(t)) / n
        if name == "sigmoid_binary_cross_entropy":
            terms = np.maximum(p, 0) - p * t + np.log1p(np.exp(-np.abs(p)))
            sig = np.where(p >= 0, 1 / (1 + np.exp(-p)), np.exp(p) / (1 + np.exp(p)))
            scale = np.abs(p) * (1 + np.abs(t)) + 1
            return np.sum(terms) / n, (sig - t) / n, np.sum(scale) / n, (1 + np.abs(t)) / n
        log_p = np.maximum(np.log(p), -100.0)
        log_q = np.maximum(np.log(1 - p), -100.0)
        denom = np.maximum(p * (1 - p), eps)
        scale = np.abs(t) * 100 + np.abs(1 - t) * 100
        return (-np.sum(t * log_p + (1 - t) * log_q) / n, (p - t) / denom / n,
                np.sum(scale) / n, (np.abs(p) + np.abs(t)) / denom / n)


def _list_dtype(a, name):
    """The dtype ``xp.asarray`` gives a list of a's values (PyTorch: float32 for floats)."""
    kind = a.dtype.kind
    if kind == "b":
        return np.bool_
    if kind in "iu":
        return np.int64
    return np.float32 if name == "torch" else np.float64


@pytest.mark.parametrize("loss", ["mse", "binary_cross_entropy",
                                  "sigmoid_binary_cross_entropy"])
@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("examples", RUNS)
def test_elementwise_losses(name, examples, loss):
    backend = registry.load(name)
    info = backend.xp.__array_namespace_info__().default_dtypes(device=backend.device)
    default = np.dtype(str(info["real floating"]).split(".")[-1])

    @_settings(examples)
    @given(data=st.data())
    def prop(data):
        shapes = [(3, 1), (2, 2), (0, 1), (3,), (1, 1)]
        form_p, p, p_ref = data.draw(inputs(shapes))
        like = [tuple(p_ref.shape)] * 4 if p_ref is not None else []
        form_t, t, t_ref = data.draw(inputs(like + shapes))
        p, t = _on(backend, form_p, p), _on(backend, form_t, t)
        if p is None or t is None:
            return
        copies = [np.array(a, copy=True) if a is not None else None for a in (p_ref, t_ref)]
        result, err = _error_or(lambda: losses.get(loss)(p, t))
        _unchanged(copies[0], p_ref)
        _unchanged(copies[1], t_ref)
        if form_t == "list" and _real(t_ref):   # what the library makes of a list
            with np.errstate(over="ignore"):
                t_ref = t_ref.astype(_list_dtype(t_ref, name if form_p == "backend"
                                                 else "numpy"))
        lib = {"backend": name, "numpy": "numpy", "list": "any"}
        reshape = (p_ref is not None and t_ref is not None and p_ref.ndim == 2
                   and p_ref.shape[1] == 1 and t_ref.shape == p_ref.shape[:1])
        valid = (form_p in ("backend", "numpy") and _real(p_ref) and _real(t_ref)
                 and lib.get(form_t) in (lib[form_p], "any")
                 and (t_ref.shape == p_ref.shape or reshape) and p_ref.size > 0)
        if valid:
            dtype = _common_dtype(p_ref, t_ref) or (default if form_p == "backend"
                                                     else np.dtype(np.float64))
            with np.errstate(all="ignore"):
                pc = p_ref.astype(dtype).astype(np.float64)
                tc = t_ref.astype(dtype).astype(np.float64).reshape(pc.shape)
            if loss == "binary_cross_entropy" and not ((pc >= 0) & (pc <= 1)).all():
                valid = False
        assert (err is None) == valid, f"{loss}({form_p}, {form_t}): {err}"
        if err is not None:
            return
        value, grad = result
        assert np.dtype(str(grad.dtype).split(".")[-1]) == dtype
        want, want_grad, scale, grad_scale = _loss_ref(loss, pc, tc, dtype)
        eps = float(np.finfo(dtype).eps)
        moderate = np.all(np.abs(np.concatenate([pc.ravel(), tc.ravel()])) < 1e3)
        if moderate:   # away from overflow the answers agree to rounding
            with np.errstate(over="ignore"):   # the exact answer, rounded to the dtype:
                rounded = float(np.asarray(want).astype(dtype))   # inf where it overflows
                grad_rounded = want_grad.astype(dtype).astype(np.float64)
            if np.isinf(rounded):
                assert float(value) == rounded, f"{loss}: {float(value)} vs {want} ({dtype})"
            else:
                tol = 64 * eps * (1 + scale)
                assert abs(float(value) - want) <= tol, f"{loss}: {float(value)} vs {want}"
            got_grad = _np64(grad)
            over = np.isinf(grad_rounded) & np.isfinite(want_grad)
            assert (got_grad[over] == grad_rounded[over]).all(), f"grad: overflow in {dtype}"
            _close(got_grad, np.where(over, np.inf, want_grad),
                   64 * eps * grad_scale + 1e-300, "grad")
        elif np.isnan(want):
            assert np.isnan(float(value)), f"{loss}: NaN expected, got {float(value)}"

    prop()


@pytest.mark.parametrize("examples", RUNS)
def test_softmax_cross_entropy(examples):
    @_settings(examples)
    @given(data=st.data(), ids=st.booleans())
    def prop(data, ids):
        form, z, z_ref = data.draw(inputs([(3, 4), (0, 4), (3, 0), (4,), (2, 4)]))
        if ids:
            dtype = data.draw(st.sampled_from(["int64", "int8", "float64", "bool"]))
            values = [0, 1, 3, 4, -1] if dtype.startswith("int") else \
                [0, 1, 3, 4, -1, 2.5, np.nan, np.inf] if dtype == "float64" else [0, 1]
            n = data.draw(st.sampled_from([3, 2, 0]))
            labels = np.array(data.draw(st.lists(st.sampled_from(values), min_size=n,
                                                 max_size=n)), dtype=dtype)
        else:
            labels = data.draw(arrays([(3, 4), (2, 4), (3, 3)]))
        labels_copy = labels.copy()
        z_copy = np.array(z_ref, copy=True) if z_ref is not None else None
        result, err = _error_or(lambda: losses.softmax_cross_entropy(z, labels))
        _unchanged(z_copy, z_ref)
        _unchanged(labels_copy, labels)
        valid = (form in ("backend", "numpy") and _real(z_ref) and z_ref.ndim == 2
                 and 0 not in z_ref.shape)
        if valid:
            n, k = z_ref.shape
            if ids:
                with np.errstate(invalid="ignore"):
                    integral = labels.dtype != np.bool_ and np.all(
                        np.isfinite(labels) & (labels == np.round(labels)))
                valid = (labels.shape == (n,) and integral
                         and bool(np.all((labels >= 0) & (labels < k))))
            else:
                valid = labels.shape == (n, k) and labels.dtype.kind in "biuf"
        assert (err is None) == valid, f"softmax_cross_entropy: {err}"
        if err is not None:
            return
        value, grad = result
        dtype = z_ref.dtype if z_ref.dtype.kind == "f" else np.float64
        zc = z_ref.astype(dtype).astype(np.float64)
        Y = np.eye(k)[labels.astype(int)] if ids else labels.astype(dtype).astype(np.float64)
        with np.errstate(all="ignore"):
            m = zc.max(axis=1, keepdims=True)
            log_p = zc - m - np.log(np.exp(zc - m).sum(axis=1, keepdims=True))
            want = -np.where(Y == 0, 0.0, Y * log_p).sum() / n
        if np.all(np.abs(zc) < 1e3) and np.all(np.abs(Y) < 1e3):
            eps = float(np.finfo(dtype).eps)
            assert abs(float(value) - want) <= 64 * eps * (1 + abs(want) + np.abs(Y).sum())
            _close(_np64(grad), (np.exp(log_p) - Y) / n, 64 * eps * (1 + np.abs(Y)), "grad")

    prop()


# -- optimizers and initializers ---------------------------------------------------------------
NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10),
                    st.sampled_from([10**400, -10**400, True, False, "0.1", None, [0.1],
                                     np.float32(0.5), np.int64(2), np.bool_(True), 1e-320]))


def _in(v, lo, hi, lo_open=False, hi_open=True):
    import numbers
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        return False
    try:
        x = float(v)
    except OverflowError:
        return False
    if not np.isfinite(x):
        return False
    return (x > lo if lo_open else x >= lo) and (hi is None or (x < hi if hi_open else x <= hi))


@pytest.mark.parametrize("examples", RUNS)
def test_optimizers(examples):
    @_settings(examples)
    @given(lr=NUMBERS, momentum=NUMBERS, wd=NUMBERS, eps=NUMBERS, adam=st.booleans())
    def prop(lr, momentum, wd, eps, adam):
        if adam:
            opt, err = _error_or(lambda: optim.Adam(lr=lr, betas=(momentum, 0.999), eps=eps,
                                                    weight_decay=wd))
            valid = (_in(lr, 0, None, lo_open=True) and _in(momentum, 0, 1)
                     and _in(eps, 0, None) and _in(wd, 0, None))
        else:
            opt, err = _error_or(lambda: optim.SGD(lr=lr, momentum=momentum, weight_decay=wd))
            valid = _in(lr, 0, None, lo_open=True) and _in(momentum, 0, 1) and _in(wd, 0, None)
        assert (err is None) == valid, f"lr={lr!r} momentum={momentum!r}: {err}"
        if err is not None:
            return
        layer = nnx.Dense(2, 2, seed=0, dtype="float64", backend="numpy")
        layer.forward(np.ones((1, 2)))
        layer.backward(np.ones((1, 2)))
        W, g = np.array(layer.W), np.array(layer.dW)
        opt.step(layer)
        if not adam and momentum == 0:            # plain SGD: W − lr (g + wd W)
            with np.errstate(all="ignore"):
                want = W - float(lr) * (g + float(wd) * W)
            _close(np.array(layer.W), want, 4e-16 * (np.abs(W) + float(lr) * np.abs(g)
                                                     * (1 + float(wd)) + 1e-300), "SGD step")
        _, err = _error_or(lambda: opt.step(lr))
        assert err is not None

    prop()


@pytest.mark.parametrize("examples", RUNS)
def test_initializers(examples):
    dims = st.one_of(st.integers(-2, 5), st.sampled_from([True, 2.0, "3", None, 10**400]))

    @_settings(examples)
    @given(name=st.sampled_from(sorted(init.INITIALIZERS)), dtype=st.sampled_from(
        ["float32", "float64", "float16", "int32", None, 3]),
        shape=st.one_of(st.tuples(dims, dims), st.tuples(dims), st.sampled_from([5, None, "ab"])))
    def prop(name, dtype, shape):
        W, err = _error_or(lambda: init.get(name)(shape, seed=0, dtype=dtype, backend="numpy"))
        ok_dims = isinstance(shape, tuple) and all(
            isinstance(d, int) and not isinstance(d, bool) and 1 <= d < 10**6 for d in shape)
        valid = ok_dims and dtype in ("float32", "float64") and (
            len(shape) == 2 or name in ("zeros", "normal"))
        assert (err is None) == valid, f"{name}{shape} {dtype}: {err}"
        if err is None:
            assert W.shape == shape and W.dtype == np.dtype(dtype) and np.isfinite(W).all()
            if name == "xavier_uniform":
                assert np.abs(W).max() <= np.sqrt(6 / sum(shape))

    prop()


# -- fit and predict -----------------------------------------------------------------------------
@pytest.mark.parametrize("examples", RUNS)
def test_fit_and_predict(examples):
    @_settings(max(5, examples // 3))
    @given(data=st.data(), loss=st.sampled_from(["mse", "sigmoid_binary_cross_entropy",
                                                 "softmax_cross_entropy"]))
    def prop(data, loss):
        k = 2 if loss == "softmax_cross_entropy" else 1
        model = nnx.MLP([2, 3, k], seed=0, dtype="float64", backend="numpy")
        form, X, X_ref = data.draw(inputs([(4, 2), (0, 2), (4, 3)]))
        y = data.draw(arrays([(4,), (4, k), (3,)]))
        copies = (np.array(X_ref, copy=True) if X_ref is not None else None, y.copy())
        def fit():
            try:
                return model.fit(X, y, loss=loss, optimizer="sgd", epochs=2, progress=False)
            except TrainingDivergedError:  # documented: huge finite data may overflow the loss
                return None

        history, err = _error_or(fit)
        _unchanged(copies[0], X_ref)
        _unchanged(copies[1], y)
        if err is None:          # then the data was numbers, finite, of the right shapes
            assert _real(X_ref) and np.isfinite(X_ref.astype(np.float64)).all()
            assert np.isfinite(y.astype(np.float64)).all()
            assert history is None or history.epochs == 2
        elif _real(X_ref) and X_ref.shape == (4, 2) and np.isfinite(X_ref).all() and \
                y.dtype.kind in "biuf" and np.isfinite(y).all() and y.shape[0] == 4:
            assert "must" in str(err) or "labels" in str(err) or "targets" in str(err)
        out, err = _error_or(lambda: model.predict(X))
        valid = _real(X_ref) and X_ref.ndim == 2 and X_ref.shape[1] == 2
        assert (err is None) == valid, f"predict: {err}"
        if valid:
            W0, b0 = _np64(model[0].W), _np64(model[0].b)
            W1, b1 = _np64(model[2].W), _np64(model[2].b)
            with np.errstate(all="ignore"):
                xc = X_ref.astype(np.float64)
                want = np.maximum(xc @ W0.T + b0, 0) @ W1.T + b1
            if np.isfinite(xc).all() and np.all(np.abs(xc) < 1e3):
                np.testing.assert_allclose(_np64(out), want, rtol=1e-9, atol=1e-9)

    prop()


# -- the scikit-learn estimators: what scikit-learn raises, or a fit -----------------------------
@pytest.mark.parametrize("examples", RUNS)
def test_sklearn_estimators_as_scikit_learn(examples):
    sk = pytest.importorskip("sklearn.neural_network")
    from nnx.sklearn import MLPClassifier, MLPRegressor

    @_settings(max(4, examples // 5))
    @given(data=st.data(), classify=st.booleans(),
           param=st.sampled_from(["alpha", "learning_rate_init", "verbose", "batch_size",
                                  "momentum", "tol", "max_iter", "hidden_layer_sizes"]),
           value=st.one_of(NUMBERS, st.sampled_from([(3,), (2.5,), (0,), "auto", "x"])))
    def prop(data, classify, param, value):
        X = data.draw(arrays([(6, 2), (0, 2), (6, 3)]))
        y = np.array([0, 1, 0, 1, 0, 1])
        kwargs = {"max_iter": 2, "random_state": 0, param: value}
        ours = (MLPClassifier if classify else MLPRegressor)(**kwargs)
        theirs = (sk.MLPClassifier if classify else sk.MLPRegressor)(**kwargs)
        got, err = _catch(lambda: ours.fit(X, y))
        _, want = _catch(lambda: theirs.fit(X, y))
        COUNTS["scikit-learn comparisons"] += 1
        if want is None:
            assert err is None, f"{param}={value!r}: nnx raised {err!r}, scikit-learn fit"
            Xp = data.draw(arrays([(3, 2), (3, 3), (0, 2)]))
            _, err = _catch(lambda: ours.predict(Xp))
            _, want = _catch(lambda: theirs.predict(Xp))
            assert type(err) is type(want), f"predict: nnx {err!r}, scikit-learn {want!r}"
        else:
            assert err is not None and (isinstance(err, (ValueError, TypeError))
                                        or type(err) is type(want)), \
                f"{param}={value!r}: nnx {err!r}, scikit-learn {want!r}"

    prop()


def _catch(fn):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(), None
    except Exception as exc:  # compared with scikit-learn's own outcome
        return None, exc


# -- the precision policy: compute dtypes, matmul precision, loss scaling, capture ------------
SETTINGS = st.one_of(NUMBERS, st.sampled_from(["bfloat16", "float16", "float32", "float64",
                                               "half", "high", "highest", "medium", "", "HIGH",
                                               "dynamic", b"float16", ("float16",)]))


@pytest.mark.parametrize("examples", RUNS)
def test_precision_settings(examples):
    """Every value for compute_dtype, the matmul precision, fit's loss_scale and capture,
    and LossScaler's arguments: accepted exactly when documented, else a ValueError or
    TypeError saying so; what is accepted trains (float16 products on NumPy)."""
    X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([[1.0], [1.0], [0.0]])

    @_settings(examples)
    @given(low=SETTINGS, fit_low=st.sampled_from([None, "float16"]), precision=SETTINGS,
           scale=st.one_of(st.sampled_from([None, False, True, 2.0**10]), SETTINGS),
           capture=st.one_of(st.sampled_from([None, False]), SETTINGS),
           growth=SETTINGS, interval=SETTINGS)
    def prop(low, fit_low, precision, scale, capture, growth, interval):
        _, err = _error_or(lambda: nnx.MLP([2, 3, 1], seed=0, backend="numpy",
                                           compute_dtype=low))
        assert (err is None) == (low is None or isinstance(low, str) and low == "float16"), \
            (low, err)
        _, err = _error_or(lambda: nnx.set_matmul_precision(precision))
        assert (err is None) == (isinstance(precision, str) and
                                 precision in ("highest", "high", "medium")), (precision, err)
        nnx.set_matmul_precision("highest")
        _, err = _error_or(lambda: nnx.LossScaler(growth_factor=growth,
                                                  growth_interval=interval))
        assert (err is None) == (_in(growth, 1, None, lo_open=True) and isinstance(
            interval, (int, np.integer)) and not isinstance(interval, (bool, np.bool_))
            and interval >= 1), (growth, interval, err)
        model = nnx.MLP([2, 3, 1], seed=0, backend="numpy", compute_dtype=fit_low)
        try:
            hist, err = _error_or(lambda: model.fit(X, y, loss="mse", optimizer="sgd", epochs=1,
                                                    progress=False, loss_scale=scale,
                                                    capture=capture))
        except nnx.training.TrainingDivergedError as exc:   # a static scale that overflows
            assert fit_low == "float16" and "static loss scale" in str(exc), (scale, exc)
            assert float(scale) * 2.5 > 65504 / 32, (scale, exc)  # ~10× this loss's gradient
            return
        valid_capture = capture is None or isinstance(capture, bool)
        if not valid_capture or (err is not None and capture is True):
            assert err is not None, (capture, scale)
            return
        valid_scale = scale is None or isinstance(scale, bool) or (   # a positive float32
            _in(scale, 0, None, lo_open=True) and 0 < np.float32(float(scale)) < np.inf)
        if capture is True:                        # no CUDA here: refused, with the reason
            assert err is not None and "CUDA" in str(err)
            return
        assert (err is None) == valid_scale, (scale, err)
        if err is None:
            COUNTS["precision fits"] += 1
            assert len(hist.loss) == 1

    prop()
