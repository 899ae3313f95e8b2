"""The captured training step (nnx.capture): the same weights as the eager step.

On the CPU no graph can be recorded, so ``capture._EMULATE`` stands in a recorder that
records nothing and replays by calling the static step again — which is what a faithful
replay does. That runs every part of the captured step that is not CUDA itself (static
buffers, the gather at a device offset, the learning rate and Adam's t on the device, the
capturable optimizer kernels, the host bookkeeping between replays, the ragged last
batch's second static step) and proves it gives the eager step's weights bit for bit on
NumPy and PyTorch. On torch, a dispatch mode proves that the captured steps read nothing
back from the device. The CUDA tests (CuPy, torch on a GPU) skip cleanly without one.
"""

from __future__ import annotations

import numpy as np
import pytest

import nnx
from nnx import backends as registry
from nnx import capture
from nnx.callbacks import LambdaCallback
from nnx.schedules import StepLR
from nnx.trainer import Trainer, TrainingDivergedError
from nnx.training import fit

CPU = ("numpy", "torch")


@pytest.fixture
def emulate(monkeypatch):
    """CPU backends "record" by doing nothing and "replay" by calling the step again."""
    monkeypatch.setattr(capture, "_EMULATE", True)


@pytest.fixture(params=CPU)
def cpu(request, emulate):
    if registry.why_unavailable(request.param):
        pytest.skip(registry.why_unavailable(request.param))
    with nnx.use_backend(request.param) as b:
        yield b


def _data(n=103, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype("float32")
    return X, rng.integers(0, k, n), rng.normal(size=(n, k)).astype("float32")


OPTIMIZERS = {
    "adam": lambda: nnx.optim.Adam(lr=1e-2, weight_decay=1e-3),
    "sgd_momentum": lambda: nnx.optim.SGD(lr=0.05, momentum=0.9, weight_decay=1e-3),
    "sgd_nesterov": lambda: nnx.optim.SGD(lr=0.05, momentum=0.8, nesterov=True),
    "sgd": lambda: nnx.optim.SGD(lr=0.1),
}
LOSSES = {   # name: (output activation, targets)
    "softmax_cross_entropy": (None, "ids"),
    "mse": (None, "real"),
    "sigmoid_binary_cross_entropy": (None, "bits"),
    "binary_cross_entropy": ("sigmoid", "bits"),
}


def _train(backend, loss, optimizer, capture_mode, *, epochs=4, batch_size=16, seed=3,
           dtype="float32", schedule=True):
    X, ids, real = _data()
    y = {"ids": ids, "real": real, "bits": (real > 0).astype("float32")}[LOSSES[loss][1]]
    model = nnx.MLP([6, 12, 3], activation="tanh", output_activation=LOSSES[loss][0],
                    seed=0, dtype=dtype, backend=backend)
    opt = OPTIMIZERS[optimizer]()
    callbacks = [StepLR(step_size=2, gamma=0.5)] if schedule else None   # lr changes mid-run
    history = fit(model, X, y, loss=loss, optimizer=opt, epochs=epochs, batch_size=batch_size,
                  seed=seed, progress=False, capture=capture_mode, callbacks=callbacks)
    return history, [nnx.to_numpy(p) for p in model.parameters().values()], opt


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_captured_fit_equals_eager_fit_bitwise(cpu, loss, optimizer):
    """Several shuffled epochs, 6 full batches and a ragged one of 7, lr halved every two
    epochs: the same weights bit for bit, and the same optimizer state on the host."""
    eager, w_eager, opt_eager = _train(cpu, loss, optimizer, False)
    captured, w_captured, opt_captured = _train(cpu, loss, optimizer, True)
    for a, b in zip(w_eager, w_captured, strict=True):
        np.testing.assert_array_equal(a, b)
    assert captured.lr == eager.lr == [OPTIMIZERS[optimizer]().lr * f for f in (1, 1, .5, .5)]
    np.testing.assert_allclose(captured.loss, eager.loss, rtol=1e-6)   # summed on the device
    (st_e,), (st_c,) = opt_eager._flat_state.values(), opt_captured._flat_state.values()
    assert st_c.t == st_e.t == 4 * 7 and st_c.fresh is st_e.fresh is False


def test_float64_and_one_full_batch_give_the_same_loss_too(cpu):
    """One batch holds every row (no gather, XOR's case): History.loss is the eager number
    (float32 bit for bit). In float64 the bias corrections β₁ᵗ, β₂ᵗ computed on the device
    may differ from Python's in the last bit (NumPy's float64 power is not the C library's
    pow for about 1 exponent in 4000; float32 rounds that away): the last ulp."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype="float64")
    y = np.array([[0], [1], [1], [0]], dtype="float64")
    for dtype in ("float32", "float64"):
        runs = []
        for mode in (False, True):
            model = nnx.MLP([2, 4, 1], activation="tanh", seed=0, dtype=dtype, backend=cpu)
            h = fit(model, X.astype(dtype), y.astype(dtype), loss="sigmoid_binary_cross_entropy",
                    optimizer=nnx.optim.Adam(0.1), epochs=50, progress=False, capture=mode)
            runs.append((h.loss, [nnx.to_numpy(p) for p in model.parameters().values()]))
        if dtype == "float32":
            assert runs[0][0] == runs[1][0]
            for a, b in zip(runs[0][1], runs[1][1], strict=True):
                np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(runs[1][0], runs[0][0], rtol=1e-14)
            for a, b in zip(runs[0][1], runs[1][1], strict=True):
                np.testing.assert_allclose(b, a, rtol=1e-13, atol=1e-15)


def test_class_ids_one_hot_per_batch_inside_the_step(cpu, monkeypatch):
    """Large label sets keep integer ids and one-hot them per minibatch: in the step too."""
    monkeypatch.setattr(nnx.inputs, "ONE_HOT_LIMIT", 8)
    eager = _train(cpu, "softmax_cross_entropy", "adam", False)[1]
    captured = _train(cpu, "softmax_cross_entropy", "adam", True)[1]
    for a, b in zip(eager, captured, strict=True):
        np.testing.assert_array_equal(a, b)


def test_warm_up_record_replay_counts_and_ragged_second_step(cpu):
    """Each static step runs directly once, is recorded once, and is replayed after that;
    the ragged last batch has its own static step."""
    X, ids, _ = _data()
    model = nnx.MLP([6, 12, 3], seed=0, backend=cpu)
    tr = Trainer(model, X, ids, loss="softmax_cross_entropy", optimizer="adam",
                 batch_size=16, seed=0, capture=True)
    assert [s.rows for s in tr.captured.static] == [16, 7]
    assert [s.rows for s in tr.captured.plan] == [16] * 6 + [7]
    for _ in range(3):
        tr.epoch()
    assert tr.captured.counts() == {"warm_ups": 2, "recorded": 2, "replays": 3 * 7 - 2}
    assert tr.captured.failure is None


def test_a_later_eager_fit_continues_the_same_state(cpu):
    """The host's optimizer state follows the device's: captured then eager equals eager
    twice (Adam's t, SGD's momentum)."""
    def run(first_mode):
        X, ids, _ = _data()
        model = nnx.MLP([6, 12, 3], seed=0, backend=cpu)
        opt = nnx.optim.Adam(lr=1e-2)
        for mode in (first_mode, False):
            fit(model, X, ids, loss="softmax_cross_entropy", optimizer=opt, epochs=2,
                batch_size=32, seed=1, progress=False, capture=mode)
        return [nnx.to_numpy(p) for p in model.parameters().values()]
    for a, b in zip(run(False), run(True), strict=True):
        np.testing.assert_array_equal(a, b)


def test_optimizer_reset_mid_run_records_again(cpu):
    """A callback that resets the optimizer replaces the state the graph updates: the
    captured step notices and records again, as the eager step starts afresh."""
    def run(mode):
        X, ids, _ = _data()
        model = nnx.MLP([6, 12, 3], seed=0, backend=cpu)
        opt = nnx.optim.Adam(lr=1e-2)
        reset = LambdaCallback(on_epoch_end=lambda epoch, logs: opt.reset() if epoch == 1
                               else None)
        fit(model, X, ids, loss="softmax_cross_entropy", optimizer=opt, epochs=3,
            batch_size=32, seed=1, progress=False, capture=mode, callbacks=[reset])
        return [nnx.to_numpy(p) for p in model.parameters().values()]
    for a, b in zip(run(False), run(True), strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_captured_step_reads_nothing_from_the_device():
    """On torch every host read of a tensor (float, bool, .item()) passes through
    ``aten._local_scalar_dense``, and every tensor made from host data (which on a GPU is
    a copy from the host, e.g. array_api_compat's maximum(z, 0.0)) through
    ``aten.lift_fresh``: neither may happen inside the captured epochs, while the eager
    step with binary cross-entropy (its range check) does read."""
    torch = pytest.importorskip("torch")
    from torch.utils._python_dispatch import TorchDispatchMode

    aten = torch.ops.aten
    host = {aten._local_scalar_dense.default, aten.lift_fresh.default,
            aten.lift_fresh_copy.default}

    class NoHostReads(TorchDispatchMode):
        reads = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func in host:
                type(self).reads += 1
            return func(*args, **(kwargs or {}))

    X, ids, real = _data()
    targets = {"ids": ids, "real": real, "bits": (real > 0).astype("float32")}
    run = capture._Static._step

    def watched(self):               # every static step, from warm-up to replays (the
        with NoHostReads():          # check of a recording reads, once, outside the graph)
            return run(self)

    with nnx.use_backend("torch"), pytest.MonkeyPatch.context() as mp:
        mp.setattr(capture._Static, "_step", watched)
        for loss, (activation, kind) in LOSSES.items():
            for mode in (True, False):
                mp.setattr(capture, "_EMULATE", mode)
                model = nnx.MLP([6, 12, 3], activation="relu", output_activation=activation,
                                seed=0)
                tr = Trainer(model, X, targets[kind], loss=loss, shuffle=False, seed=0,
                             optimizer=nnx.optim.Adam(lr=1e-2), batch_size=16, capture=mode)
                NoHostReads.reads = 0
                if mode:
                    for _ in range(2):
                        tr.epoch()
                else:                    # the positive control: the eager step, watched
                    with NoHostReads():
                        tr.epoch()
                        NoHostReads.reads -= 1   # the epoch's one read of its mean loss
                assert NoHostReads.reads == (not mode and loss == "binary_cross_entropy") * 7, \
                    (loss, mode, NoHostReads.reads)


def test_capture_true_says_why_it_cannot(monkeypatch, rng):
    X, y = rng.normal(size=(8, 2)).astype("float32"), rng.normal(size=(8, 1))
    with nnx.use_backend("numpy"):
        model = nnx.MLP([2, 3, 1], seed=0)
        with pytest.raises(ValueError, match="capture=True.*CUDA"):
            fit(model, X, y, loss="mse", optimizer="sgd", epochs=1, progress=False,
                capture=True)
        with pytest.raises(ValueError, match="capture must be None, True or False"):
            fit(model, X, y, loss="mse", optimizer="sgd", epochs=1, capture="yes")
        assert Trainer(model, X, y, loss="mse", optimizer="sgd").captured is None  # CPU: eager
        monkeypatch.setattr(capture, "_EMULATE", True)
        cases = {
            "callable of your own": dict(loss=lambda p, t: nnx.losses.mse(p, t)),
            "SGD and nnx.optim.Adam only": dict(optimizer=type("MySGD", (nnx.optim.SGD,), {})(
                lr=0.1)),
            "penalty": dict(penalty=lambda model, n: 0.0),
        }
        for why, kwargs in cases.items():
            args = dict(loss="mse", optimizer="sgd") | kwargs
            with pytest.raises(ValueError, match=why):
                Trainer(model, X, y, capture=True, **args)
            assert Trainer(model, X, y, capture=None, **args).captured is None
        marked = lambda model, n: model.flat.groups[0].params[0] * 0.0   # noqa: E731
        marked.capturable = True
        assert Trainer(model, X, y, loss="mse", optimizer="sgd", penalty=marked,
                       capture=True).captured is not None

        class Doubler(nnx.Layer):   # a layer of the user's own: may read the device
            def forward(self, x):
                return x * 2.0

            def backward(self, dy, *, input_grad=True):
                return dy * 2.0
        odd = nnx.Sequential(nnx.Dense(2, 3, seed=0), Doubler(), nnx.Dense(3, 1, seed=1))
        with pytest.raises(ValueError, match="layers of your own.*Doubler"):
            Trainer(odd, X, y, loss="mse", optimizer="sgd", capture=True)


def test_low_precision_models(emulate, monkeypatch, rng):
    """bfloat16 products on torch: captured equals eager bit for bit. float16 brings
    dynamic loss scaling, which reads every step's gradients on the host: refused (and
    eager under capture=None); without loss scaling it is captured. On CuPy a captured
    product runs on nnx's float32/float64 kernel: 16-bit models are refused there (its
    ops' ``graph_safe`` flag is what marks such a backend)."""
    X = rng.normal(size=(40, 4)).astype("float32")
    y = rng.normal(size=(40, 2)).astype("float32")
    if registry.why_unavailable("torch") is None:
        weights = []
        for mode in (False, True):
            model = nnx.MLP([4, 8, 2], seed=0, compute_dtype="bfloat16", backend="torch")
            fit(model, X, y, loss="mse", optimizer=nnx.optim.Adam(lr=1e-2), epochs=3,
                batch_size=16, seed=0, progress=False, capture=mode)
            weights.append([nnx.to_numpy(p) for p in model.parameters().values()])
        for a, b in zip(*weights, strict=True):
            np.testing.assert_array_equal(a, b)
    with nnx.use_backend("numpy") as numpy_backend:
        half = nnx.MLP([4, 8, 2], seed=0, compute_dtype="float16")
        with pytest.raises(ValueError, match="loss scaling"):
            Trainer(half, X, y, loss="mse", optimizer="sgd", capture=True)
        assert Trainer(half, X, y, loss="mse", optimizer="sgd").captured is None
        assert Trainer(half, X, y, loss="mse", optimizer="sgd", loss_scale=False,
                       capture=True).captured is not None
        monkeypatch.setattr(numpy_backend.ops, "graph_safe", False, raising=False)
        with pytest.raises(ValueError, match="16-bit"):
            Trainer(half, X, y, loss="mse", optimizer="sgd", loss_scale=False, capture=True)


def test_products_beyond_the_backends_limit_stay_eager_unless_required(cpu, monkeypatch,
                                                                         rng):
    """CuPy's ``graph_max_product``: capture=None leaves larger products to cuBLAS (eager);
    capture=True records them anyway. 16 rows × 4 × 8 = 512 multiply-adds here."""
    X, y = rng.normal(size=(40, 4)).astype("float32"), rng.normal(size=(40, 2))
    model = nnx.MLP([4, 8, 2], seed=0, backend=cpu)
    for limit, auto in ((511, False), (512, True)):
        monkeypatch.setattr(cpu.ops, "graph_max_product", limit, raising=False)
        tr = Trainer(model, X, y, loss="mse", optimizer="sgd", batch_size=16)
        assert (tr.captured is not None) is auto
        assert Trainer(model, X, y, loss="mse", optimizer="sgd", batch_size=16,
                       capture=True).captured is not None


@pytest.mark.parametrize("name", ["jax", "array_api_strict"])
def test_backends_without_flat_buffers_are_refused(emulate, name, rng):
    if registry.why_unavailable(name):
        pytest.skip(registry.why_unavailable(name))
    X, y = rng.normal(size=(8, 2)).astype("float32"), rng.normal(size=(8, 1)).astype("float32")
    with nnx.use_backend(name):
        model = nnx.MLP([2, 3, 1], seed=0)
        with pytest.raises(ValueError, match="CUDA|flat buffers"):
            Trainer(model, X, y, loss="mse", optimizer="sgd", capture=True)


def test_a_failed_recording_runs_the_static_steps_unrecorded(cpu, monkeypatch):
    """capture=None: a library refusing to record leaves the same steps, run directly (the
    same weights); capture=True: a RuntimeError naming the refusal."""
    def refuse(self):
        raise NotImplementedError("no recording here")
    monkeypatch.setattr(capture._CallAgain, "__init__", _refusing_init(refuse))
    eager = _train(cpu, "mse", "adam", False)[1]
    fallback = _train(cpu, "mse", "adam", None)[1]
    for a, b in zip(eager, fallback, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(RuntimeError, match="recording the step.*no recording here"):
        _train(cpu, "mse", "adam", True)


def _refusing_init(refuse):
    def init(self, fn):
        self.warm_up = self.replay = fn
        self.capture = lambda: refuse(self)
    return init


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_divergence_is_reported_after_the_epoch(cpu):
    X, _, real = _data()
    model = nnx.MLP([6, 12, 3], seed=0, backend=cpu)
    with pytest.raises(TrainingDivergedError, match="epoch 1.*CUDA graph"):
        fit(model, X * 1e30, real, loss="mse", optimizer=nnx.optim.SGD(lr=1e10), epochs=2,
            batch_size=16, progress=False, capture=True)


def test_clip_min_is_clip_without_a_host_read(backend):
    """BCE's clamps: max(x, low) with NaN kept (CuPy's fast path is cupy.maximum, since the
    standard clip of array_api_compat assigns through a boolean mask, a host read)."""
    x = np.array([0.0, -0.0, 1e-30, -5.0, 2.0, np.inf, -np.inf, np.nan], dtype="float32")
    for low in (1e-12, -100.0):
        got = nnx.to_numpy(backend.ops.clip_min(backend.from_numpy(x), low))
        np.testing.assert_array_equal(got, np.clip(x, np.float32(low), None))


@pytest.mark.parametrize("name", ["numpy", "torch", "cupy"])
def test_gather_rows_at_a_device_offset(name, rng):
    """out[i] = x[perm[offset + i]] for 2-d inputs and 1-d class ids (CuPy: one kernel
    per array), against NumPy's fancy indexing."""
    if registry.why_unavailable(name):
        pytest.skip(registry.why_unavailable(name))
    b = registry.load(name)
    x, ids, perm = rng.normal(size=(11, 3)).astype("float32"), rng.integers(0, 5, 11), \
        rng.permutation(11)
    xb, yb = b.xp.empty((4, 3), dtype=b.xp.float32), b.xp.empty((4,), dtype=b.xp.int64)
    at = b.from_numpy(np.arange(4))
    b.ops.gather_rows_into(b.from_numpy(perm), b.from_numpy(np.array([5])), at,
                           ((b.from_numpy(x), xb), (b.from_numpy(ids), yb)))
    np.testing.assert_array_equal(b.to_numpy(xb), x[perm[5:9]])
    np.testing.assert_array_equal(b.to_numpy(yb), ids[perm[5:9]])


# -- the capturable optimizer kernels against PyTorch and against the host's path ---------

@pytest.mark.parametrize("wd", [0.0, 0.01])
def test_capturable_adam_matches_torch_adam(cpu, wd, rng):
    """t and lr on the device, lr changed mid-run: torch.optim.Adam's numbers (float64)."""
    torch = pytest.importorskip("torch")
    xp, ops = cpu.xp, cpu.ops
    p0, grads = rng.normal(size=50), rng.normal(size=(30, 50))
    p, m, v = cpu.from_numpy(p0), cpu.from_numpy(0 * p0), cpu.from_numpy(0 * p0)
    t = xp.zeros((1,), dtype=xp.float64)
    lr = xp.asarray([1e-2], dtype=xp.float64)
    ref = torch.tensor(p0, requires_grad=True)
    opt = torch.optim.Adam([ref], lr=1e-2, betas=(0.8, 0.95), eps=1e-6, weight_decay=wd)
    for i, g in enumerate(grads):
        if i == 12:
            ops.fill(lr, 3e-3)
            opt.param_groups[0]["lr"] = 3e-3
        ops.adam_step_capturable(p, cpu.from_numpy(g), m, v, t, lr, b1=0.8, b2=0.95,
                                 eps=1e-6, weight_decay=wd)
        ref.grad = torch.tensor(g)
        opt.step()
    np.testing.assert_allclose(nnx.to_numpy(p), ref.detach().numpy(), rtol=1e-12, atol=1e-14)
    assert float(nnx.to_numpy(t)[0]) == 30.0


@pytest.mark.parametrize("nesterov,momentum,wd", [(False, 0.0, 0.0), (False, 0.9, 0.01),
                                                  (True, 0.9, 0.0)])
def test_capturable_sgd_matches_torch_sgd(cpu, nesterov, momentum, wd, rng):
    torch = pytest.importorskip("torch")
    ops, xp = cpu.ops, cpu.xp
    p0, grads = rng.normal(size=40), rng.normal(size=(10, 40))
    p, buf = cpu.from_numpy(p0), cpu.from_numpy(0 * p0)
    lr = xp.asarray([0.05], dtype=xp.float64)
    ref = torch.tensor(p0, requires_grad=True)
    opt = torch.optim.SGD([ref], lr=0.05, momentum=momentum, nesterov=nesterov,
                          weight_decay=wd)
    for i, g in enumerate(grads):
        ops.sgd_step_capturable(p, cpu.from_numpy(g), buf if momentum else None, lr,
                                momentum=momentum, nesterov=nesterov, weight_decay=wd,
                                first=i == 0)
        ref.grad = torch.tensor(g)
        opt.step()
    np.testing.assert_allclose(nnx.to_numpy(p), ref.detach().numpy(), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("kernel", ["adam", "sgd"])
def test_capturable_kernels_equal_the_host_kernels_bitwise(cpu, kernel, rng):
    """The fast path's capturable kernel against its own host-scalar kernel (float32)."""
    xp, ops = cpu.xp, cpu.ops
    p0, grads = rng.normal(size=300).astype("float32"), rng.normal(size=(25, 300))
    a = [cpu.from_numpy(p0) for _ in range(3)]
    b = [cpu.from_numpy(p0 * 0) for _ in range(3)] + [cpu.from_numpy(p0 * 0) for _ in range(3)]
    t, lr = xp.zeros((1,), dtype=xp.float64), xp.asarray([1e-3], dtype=xp.float64)
    for i, g in enumerate(grads.astype("float32")):
        g = cpu.from_numpy(g)
        if kernel == "adam":
            ops.adam_step(a[0], g, b[0], b[1], step_size=1e-3 / (1 - 0.9 ** (i + 1)), b1=0.9,
                          b2=0.999, sqrt_bc2=(1 - 0.999 ** (i + 1)) ** 0.5, eps=1e-8,
                          weight_decay=1e-2)
            ops.adam_step_capturable(a[1], g, b[2], b[3], t, lr, b1=0.9, b2=0.999, eps=1e-8,
                                     weight_decay=1e-2)
        else:
            ops.sgd_step(a[0], g, b[0], lr=1e-3, momentum=0.9, nesterov=True,
                         weight_decay=1e-2, first=i == 0)
            ops.sgd_step_capturable(a[1], g, b[2], lr, momentum=0.9, nesterov=True,
                                    weight_decay=1e-2, first=i == 0)
    np.testing.assert_array_equal(nnx.to_numpy(a[0]), nnx.to_numpy(a[1]))


# -- on a CUDA device: recorded graphs, replayed ---------------------------------------------

def _cuda_backends():
    out = []
    reason = registry.why_unavailable("cupy")
    out.append(pytest.param("cupy", marks=[pytest.mark.skip(reason=reason)] if reason else []))
    torch_cuda = None
    if registry.why_unavailable("torch") is None:
        import importlib
        torch_cuda = importlib.import_module("torch").cuda.is_available()
    out.append(pytest.param("torch", marks=[] if torch_cuda else
                            [pytest.mark.skip(reason="torch has no CUDA device here")]))
    return out


@pytest.fixture(params=_cuda_backends())
def gpu(request):
    with nnx.use_backend(request.param, device="cuda:0" if request.param == "torch"
                         else None) as b:
        assert b.graph_unsupported() is None
        yield b


@pytest.mark.parametrize("optimizer", ["adam", "sgd_momentum"])
def test_graph_replays_equal_the_eager_step_on_cuda(gpu, optimizer):
    """Recorded CUDA graphs (a full batch and a ragged one), replayed over shuffled epochs
    with the learning rate changing: the eager step's weights to rounding (the graph's
    products are CuPy's own kernel, not cuBLAS; torch's graph runs cuBLAS as eager)."""
    runs = []
    for mode in (False, True):
        h, w, _ = _train(gpu, "softmax_cross_entropy", optimizer, mode, epochs=6)
        runs.append((h, w))
    for a, b in zip(runs[0][1], runs[1][1], strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(runs[1][0].loss, runs[0][0].loss, rtol=1e-4)


def test_graph_counts_and_loss_on_cuda(gpu):
    """Each static step: one warm-up, one recording, replays after; the epoch's loss read
    once per epoch equals the eager loop's to rounding."""
    X, ids, _ = _data()
    runs = {}
    for mode in (False, True):
        model = nnx.MLP([6, 12, 3], seed=0, backend=gpu)
        tr = Trainer(model, X, ids, loss="softmax_cross_entropy", optimizer="adam",
                     batch_size=16, seed=0, capture=mode)
        runs[mode] = ([tr.epoch() for _ in range(4)], tr)
    tr = runs[True][1]
    assert tr.captured.failure is None
    assert tr.captured.counts() == {"warm_ups": 2, "recorded": 2, "replays": 4 * 7 - 2}
    np.testing.assert_allclose(runs[True][0], runs[False][0], rtol=1e-4)


def test_xor_single_batch_graph_on_cuda(gpu):
    """XOR's 2-4-1 net, one batch: capture=None records it (the product fits), and the
    weights after 200 replays equal the eager ones to rounding."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype="float32")
    y = np.array([[0], [1], [1], [0]], dtype="float32")
    weights = []
    for mode in (False, None):
        model = nnx.MLP([2, 4, 1], activation="tanh", seed=0, backend=gpu)
        tr = Trainer(model, X, y, loss="sigmoid_binary_cross_entropy",
                     optimizer=nnx.optim.SGD(lr=0.5), capture=mode)
        assert (tr.captured is None) is (mode is False)
        for _ in range(200):
            tr.epoch()
        weights.append([nnx.to_numpy(p) for p in model.parameters().values()])
    assert tr.captured.counts()["replays"] == 199 and tr.captured.failure is None
    for a, b in zip(*weights, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)


def test_xor_replays_are_faster_than_eager_steps_on_cuda(gpu):
    """Timing, same run, same card: a replayed XOR step (``CapturedEpochs.step``, no host
    read) against the eager step, both synchronized at the end. Prints the figures; the
    25 µs target itself is nnx bench's to measure."""
    import time
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype="float32")
    y = np.array([[0], [1], [1], [0]], dtype="float32")
    per_step = {}
    for mode in (False, True):
        model = nnx.MLP([2, 4, 1], activation="tanh", seed=0, backend=gpu)
        tr = Trainer(model, X, y, loss="sigmoid_binary_cross_entropy",
                     optimizer=nnx.optim.SGD(lr=0.5), capture=mode)
        if mode:
            step = tr.captured.step
        else:
            def step(tr=tr, model=model):
                loss, grad = tr.loss_fn(model.forward(tr.X), tr.y)
                model.backward(grad, input_grad=False)
                tr.optimizer.step(model)
        for _ in range(20):
            step()
        gpu.synchronize()
        start = time.perf_counter()
        for _ in range(2000):
            step()
        gpu.synchronize()
        per_step[mode] = (time.perf_counter() - start) / 2000 * 1e6
    print(f"\nXOR step on {gpu.name} ({gpu.device_name()}): eager {per_step[False]:.1f} µs, "
          f"captured {per_step[True]:.1f} µs")
    assert per_step[True] < per_step[False]


@pytest.mark.parametrize("broken", ["replays twice", "replays nothing"])
def test_a_graph_that_replays_another_step_is_caught_and_dropped(cpu, monkeypatch, broken):
    """The first replay of a recording is checked against the same step run directly: a
    graph that would replay something else (here: the step twice, or nothing) is dropped
    with a warning, and training continues eagerly from the direct step: the weights
    equal an eager fit's bit for bit. Under capture=True it is a RuntimeError."""
    class Broken(capture._CallAgain):
        def __init__(self, fn):
            super().__init__(fn)
            self.replay = (lambda: (fn(), fn())[1]) if broken == "replays twice" else \
                (lambda: None)
    monkeypatch.setattr(capture, "_CallAgain", Broken)

    def run(mode):
        X, ids, _ = _data()
        model = nnx.MLP([6, 12, 3], seed=0, backend=cpu)
        history = fit(model, X, ids, loss="softmax_cross_entropy",
                      optimizer=nnx.optim.Adam(lr=1e-2), epochs=3, batch_size=32, seed=1,
                      progress=False, capture=mode)
        return history.loss, [nnx.to_numpy(p) for p in model.parameters().values()]

    eager_loss, eager = run(False)
    with pytest.warns(RuntimeWarning, match="first replay differed from the same step"):
        loss, weights = run(None)
    for a, b in zip(eager, weights, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(loss, eager_loss, rtol=1e-6)
    with pytest.raises(RuntimeError, match="capture=True, but recording the step"):
        run(True)
