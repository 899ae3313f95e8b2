"""Data-parallel training (nnx.distributed): N ranks under mpiexec give one process's weights.

The multi-rank tests launch ``mpiexec -n 2`` and ``-n 3`` (tests/mpi_jobs.py) on small
float64 problems and compare with the same training in this process; the rest test the
pieces in-process: gradient buckets on every backend, shards, transport dispatch, and
the device-buffer handling of each transport against a simulated all-reduce.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest
from fake_comm import FakeComm
from nnx.backends import _comm

import nnx
from nnx import distributed
from nnx.distributed import job
from nnx.distributed.buckets import FlatGradientBuckets, GradientBuckets, layout_for

HERE = os.path.dirname(os.path.abspath(__file__))
JOBS = os.path.join(HERE, "mpi_jobs.py")


def _mpiexec() -> str | None:
    """The mpiexec beside this Python (the mpich wheel's), else the one on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return beside if os.access(beside, os.X_OK) else shutil.which("mpiexec")


MPIEXEC = _mpiexec()
HAVE_MPI4PY = importlib.util.find_spec("mpi4py") is not None
needs_mpi = pytest.mark.skipif(not (HAVE_MPI4PY and MPIEXEC),
                               reason="needs mpi4py and mpiexec: pip install -e '.[mpi]'")


def _jobs():
    spec = importlib.util.spec_from_file_location("mpi_jobs", JOBS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _launch(n: int, *args: str, timeout: float = 60, env: dict | None = None,
            threads: bool = True):
    """Run ``mpiexec -n n python tests/mpi_jobs.py args…``; (returncode, output, seconds).

    One BLAS thread per rank, unless ``threads=False`` leaves the thread pools unsized."""
    environ = {k: v for k, v in os.environ.items() if k not in _comm.THREAD_VARS}
    if threads:
        environ.update({v: "1" for v in _comm.THREAD_VARS})
    environ.update(env or {})
    start = time.monotonic()
    proc = subprocess.run([MPIEXEC, "-n", str(n), sys.executable, JOBS, *args], env=environ,
                          capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - start


def _rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


# -- N ranks == one process ----------------------------------------------------------------
@needs_mpi
@pytest.mark.parametrize("ranks, backends", [(2, ["numpy", "torch", "array_api_strict"]),
                                             (3, ["numpy"])], ids=["2-ranks", "3-ranks"])
def test_ranks_train_like_one_process(tmp_path, ranks, backends):
    backends = [b for b in backends if b in nnx.available_backends()]
    rc, out, _ = _launch(ranks, "equivalence", str(tmp_path), *backends)
    assert rc == 0, out
    jobs = _jobs()
    for backend in backends:
        for case in jobs.CASES:
            got = np.load(tmp_path / f"{backend}-{case}.npz")
            model, history = jobs.train(case, "numpy", False)     # one plain process
            for name, want in model.parameters().items():
                want = nnx.to_numpy(want)
                for r in range(ranks):
                    err = _rel_err(got[f"rank{r}/{name}"], want)
                    assert err <= 1e-12, (backend, case, r, name, err)
            for key in ("loss", "val_loss", "val_accuracy"):
                want = np.asarray(getattr(history, key))
                for r in range(ranks):
                    assert got[f"rank{r}/{key}"].shape == want.shape
                    np.testing.assert_allclose(got[f"rank{r}/{key}"], want, rtol=1e-12,
                                               atol=0, err_msg=f"{backend} {case} {key}")


# -- failures stop every rank --------------------------------------------------------------
@needs_mpi
@pytest.mark.parametrize("mode, message", [
    ("raise", "rank 1 of 2 failed with an uncaught RuntimeError: injected failure"),
    ("context", "rank 1 of 2 failed with RuntimeError: injected failure"),
    ("kill", None),
])
def test_a_failing_rank_stops_the_job(mode, message):
    # a watchdog timeout of 60 s: stopping within 30 s shows the abort did it, not the watchdog
    rc, out, seconds = _launch(2, f"fail-{mode}", timeout=90,
                               env={"NNX_DISTRIBUTED_TIMEOUT": "60"})
    assert rc != 0, out
    assert seconds < 30, (seconds, out)
    assert "finished" not in out, out
    if message is not None:
        assert message in out, out


@needs_mpi
def test_a_stalled_rank_is_caught_by_the_watchdog():
    """Rank 1 sleeps 120 s mid-training, alive and silent: only rank 0's watchdog (2 s)
    can end the job inside 30 s, and it says why."""
    rc, out, seconds = _launch(2, "fail-stall", timeout=90, env={"NNX_DISTRIBUTED_TIMEOUT": "2"})
    assert rc != 0, out
    assert seconds < 30, (seconds, out)
    assert "rank 0 of 2 waited more than 2 s in the gradient all-reduce" in out, out


@needs_mpi
def test_a_rank_that_leaves_stops_the_job():
    """Rank 1 exits quietly mid-training. Either the MPI runtime notices the exit or rank
    0's watchdog fires first (a race between the two): the job ends, failed, either way."""
    rc, out, seconds = _launch(2, "fail-leave", timeout=90, env={"NNX_DISTRIBUTED_TIMEOUT": "2"})
    assert rc != 0, out
    assert seconds < 30, (seconds, out)
    assert "finished" not in out, out


@needs_mpi
def test_only_rank_0_shows_progress(tmp_path):
    rc, out, _ = _launch(2, "root-only", str(tmp_path), threads=False)
    assert rc == 0, out
    # two ranks on one node, thread pools unsized: each rank's BLAS is capped, said once
    assert out.count("nnx.distributed: 2 ranks share") == 1, out
    ranks = json.loads((tmp_path / "ranks.json").read_text())
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = [max(1, cores // 2)]
    assert ranks == [
        {"rank": 0, "size": 2, "is_root": True, "progress": [True], "blas_threads": threads},
        {"rank": 1, "size": 2, "is_root": False, "progress": [False], "blas_threads": threads}]


# -- one process: plain runs stay plain ----------------------------------------------------
def test_plain_process_is_rank_0_of_1(monkeypatch):
    for var in job._LAUNCHER_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(job, "_world", None)
    # answered without starting MPI
    assert (distributed.rank(), distributed.size(), distributed.is_root()) == (0, 1, True)
    assert job._world is None
    assert distributed.resolve(None) is None
    assert distributed.resolve(False) is None
    with pytest.raises(TypeError, match="distributed must be"):
        distributed.resolve("yes")


@needs_mpi
def test_one_rank_fit_matches_plain_fit(backend, to_np):
    """distributed=True in a plain process (MPI singleton, 1 rank) on every backend: the
    packing, the transport's buffer handling and the unpacking change nothing."""
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((37, 4)), rng.integers(0, 3, 37)
    out = []
    for dist in (False, True):
        model = nnx.MLP([4, 5, 3], activation="tanh", dtype="float64", seed=2)
        history = model.fit(X, y, loss="softmax_cross_entropy",
                            optimizer=nnx.optim.SGD(lr=0.2, momentum=0.5), epochs=2,
                            batch_size=16, seed=1, progress=False, distributed=dist)
        out.append(([to_np(p) for p in model.parameters().values()], history.loss))
    (plain, plain_loss), (dist, dist_loss) = out
    for a, b in zip(dist, plain):   # one rank: weight 1, a sum over one buffer — exact
        np.testing.assert_array_equal(a, b)
    assert dist_loss == plain_loss


# -- gradient buckets ------------------------------------------------------------------------
def _model_with_grads(dtype: str = "float64"):
    """An MLP on the active backend whose dW, db hold known values."""
    model = nnx.MLP([3, 4, 2], dtype=dtype, seed=0)
    xp = model.backend.xp
    rng = np.random.default_rng(0)
    for i, layer in enumerate(model.dense_layers):
        layer.dW = nnx.asarray(rng.standard_normal(tuple(layer.W.shape)) + i, dtype=dtype)
        layer.db = nnx.asarray(rng.standard_normal(tuple(layer.b.shape)) - i, dtype=dtype)
    return model, xp


def test_one_bucket_round_trip(backend, to_np):
    model, xp = _model_with_grads()
    grads = {(i, g): to_np(getattr(layer, g)) for i, layer in enumerate(model.dense_layers)
             for g in ("dW", "db")}
    layout = GradientBuckets(model)
    assert len(layout.buckets) == 1
    assert layout.num_elements == 4 * 3 + 4 + 2 * 4 + 2 + 1
    buf = layout.pack(0, weight=0.25, loss=nnx.asarray(2.0, dtype="float64"))  # on the device
    flat = to_np(buf)
    # layer order, W before b, row-major, then the loss: a plain NumPy concatenation
    want = np.concatenate([grads[(i, g)].ravel() for i in range(2) for g in ("dW", "db")]
                          + [np.array([2.0])]) * 0.25
    np.testing.assert_array_equal(flat, want)
    loss = layout.unpack(0, buf * 4)
    assert float(loss) == 2.0
    for (i, g), value in grads.items():
        np.testing.assert_allclose(to_np(getattr(model.dense_layers[i], g)), value, rtol=1e-15)


def test_zero_weight_sends_zeros_without_reading_gradients(backend, to_np):
    model = nnx.MLP([3, 4, 2], dtype="float32", seed=0)   # no backward yet: dW is None
    layout = GradientBuckets(model)
    buf = layout.pack(0, weight=0.0, loss=None)
    assert buf.dtype == model.backend.xp.float32
    np.testing.assert_array_equal(to_np(buf), np.zeros(layout.num_elements, np.float32))
    with pytest.raises(RuntimeError, match="run backward"):
        layout.pack(0, weight=1.0)


def test_bucket_bounds():
    model, _ = _model_with_grads()
    sizes = [12, 4, 8, 2]                        # W0, b0, W1, b1 in elements (float64)
    layout = GradientBuckets(model, bucket_bytes=8 * 13)
    assert [[s.size for s in b.slots] for b in layout.buckets] == [[12], [4, 8], [2]]
    assert [b.size for b in layout.buckets] == [12, 12, 3]   # the last carries the loss
    assert [b.has_loss for b in layout.buckets] == [False, False, True]
    tiny = GradientBuckets(model, bucket_bytes=8)   # every parameter alone, none dropped
    assert [[s.size for s in b.slots] for b in tiny.buckets] == [[n] for n in sizes]
    for b in layout.buckets:                         # slots tile each bucket from 0
        offsets = [s.offset for s in b.slots]
        assert offsets == list(np.cumsum([0] + [s.size for s in b.slots])[:-1])
    bufs = [layout.pack(k, weight=1.0, loss=3.0) for k in range(3)]
    want = np.concatenate([getattr(layer, g).ravel() for layer in model.dense_layers
                           for g in ("dW", "db")])
    np.testing.assert_array_equal(np.concatenate(bufs)[:-1], want)
    assert [layout.unpack(k, bufs[k]) for k in range(3)][:2] == [None, None]
    with pytest.raises(ValueError, match="bucket_bytes"):
        GradientBuckets(model, bucket_bytes=0)
    with pytest.raises(ValueError, match="holds 12 elements"):
        layout.unpack(0, np.zeros(5))


def test_flat_buckets_are_the_gradient_buffer_itself(to_np, rng):
    """With a flat gradient buffer (NumPy here) nothing is packed: each bucket is a slice
    of the buffer, scaled in place, the loss in its extra element; three simulated ranks'
    buckets summed give the gradient of the whole batch (closed form: one model on all)."""
    X = rng.standard_normal((9, 3))
    Y = rng.standard_normal((9, 2))
    shards = [(0, 4), (4, 7), (7, 9)]
    models = [nnx.MLP([3, 5, 2], dtype="float64", seed=4) for _ in range(4)]
    layouts = [layout_for(m, bucket_bytes=8 * 7) for m in models[:3]]
    assert all(isinstance(layout, FlatGradientBuckets) for layout in layouts)
    assert [b.size for b in layouts[0].buckets] == [7, 7, 7, 7, 5]   # 32 grads + the loss
    bufs = []
    for model, layout, (a, b) in zip(models, layouts, shards):
        value, g = nnx.losses.mse(model.forward(X[a:b]), Y[a:b])
        model.backward(g, input_grad=False)
        bufs.append([layout.pack(k, weight=(b - a) / 9, loss=value)
                     for k in range(len(layout.buckets))])
    grads = models[0].flat.groups[0].grads_and_loss
    assert np.shares_memory(bufs[0][0], grads)           # a view: no packing copy
    summed = [sum(to_np(parts[k]) for parts in bufs) for k in range(5)]
    losses = [layout.unpack(k, summed[k]) for k in range(5) for layout in layouts[:1]]
    value, g = nnx.losses.mse(models[3].forward(X), Y)   # the whole batch in one process
    models[3].backward(g, input_grad=False)
    np.testing.assert_allclose(float(losses[-1]), float(value), rtol=1e-13)
    for got, want in zip(models[0].dense_layers, models[3].dense_layers):
        np.testing.assert_allclose(got.dW, want.dW, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(got.db, want.db, rtol=1e-12, atol=1e-15)
    assert models[0].flat.ready()
    empty = layout_for(nnx.MLP([3, 5, 2], seed=0))      # an empty shard: no backward yet
    buf = empty.pack(0, weight=0.0, loss=None)
    np.testing.assert_array_equal(buf, np.zeros(33, np.float32))
    empty.unpack(0, buf)
    assert empty.group.layers[0].dW is not None          # views now, for the flat step


# -- shards ----------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_shards_tile_every_batch(size):
    dps = [distributed.DataParallel(FakeComm(r, size)) for r in range(size)]
    for a, b in [(0, 16), (16, 23), (0, 1), (40, 42), (7, 7 + 3 * size + 2)]:
        shards = [dp.shard(a, b) for dp in dps]
        assert shards[0][0] == a and shards[-1][1] == b
        assert all(hi == lo2 for (_, hi), (lo2, _) in zip(shards, shards[1:]))
        lengths = [hi - lo for lo, hi in shards]
        assert max(lengths) - min(lengths) <= 1 and lengths == sorted(lengths, reverse=True)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown transport"):
        distributed.DataParallel(FakeComm(0, 1), transport="carrier-pigeon")
    with pytest.raises(ValueError, match="timeout"):
        distributed.DataParallel(FakeComm(0, 1), timeout=0)


# -- transports ------------------------------------------------------------------------------
def _fake_backend(name: str, device: str = "cpu"):
    return SimpleNamespace(name=name, device=SimpleNamespace(type=device))


def test_transport_choice(monkeypatch):
    monkeypatch.delenv("NNX_CUDA_AWARE_MPI", raising=False)
    monkeypatch.setattr(_comm, "nccl_module", lambda: None)
    choose = _comm.choose_transport
    assert choose(_fake_backend("numpy")) == "mpi"
    assert choose(_fake_backend("torch", "cpu")) == "mpi"
    assert choose(_fake_backend("jax")) == "host"
    assert choose(_fake_backend("array_api_strict")) == "host"
    with pytest.warns(RuntimeWarning, match="through host memory"):
        assert choose(_fake_backend("cupy", "cuda")) == "host"
    with pytest.warns(RuntimeWarning):
        assert choose(_fake_backend("torch", "cuda")) == "host"
    monkeypatch.setenv("NNX_CUDA_AWARE_MPI", "1")
    assert choose(_fake_backend("cupy", "cuda")) == "cuda-mpi"
    assert choose(_fake_backend("torch", "cuda")) == "cuda-mpi"
    monkeypatch.setattr(_comm, "nccl_module", lambda: SimpleNamespace(available=True))
    assert choose(_fake_backend("cupy", "cuda")) == "nccl"       # NCCL first, no host copy
    assert choose(_fake_backend("numpy"), "host") == "host"
    for backend, transport, match in [("jax", "mpi", "host arrays"),
                                      ("numpy", "nccl", "for the cupy backend"),
                                      ("numpy", "cuda-mpi", "CUDA device"),
                                      ("numpy", "tcp", "unknown transport")]:
        with pytest.raises(ValueError, match=match):
            choose(_fake_backend(backend), transport)


def test_nccl_dtypes():
    nccl = SimpleNamespace(NCCL_FLOAT32=7, NCCL_FLOAT64=8)
    assert _comm.nccl_dtype(nccl, np.dtype("float32")) == 7
    assert _comm.nccl_dtype(nccl, np.float64) == 8
    with pytest.raises(ValueError, match="float32 or float64"):
        _comm.nccl_dtype(nccl, np.int32)


class _DoublingComm:
    """Allreduce as two ranks holding the same buffer would see it: in place, times 2.

    To NCCL (cupy) it is a communicator of one rank, which sums over itself alone."""

    def Get_rank(self):
        return 0

    def Get_size(self):
        return 1

    def bcast(self, obj, root=0):
        return obj

    def Allreduce(self, sendbuf, recvbuf, op=None):
        assert isinstance(recvbuf, np.ndarray)        # MPI gets host memory here
        recvbuf *= 2


@needs_mpi
def test_transport_buffer_handling(backend, to_np):
    """Each backend's buffer reaches MPI as host memory and comes back summed, in place
    where the library allows (NumPy, CPU torch)."""
    buf = nnx.asarray([1.0, -2.0, 3.5], dtype="float64")
    kind = _comm.choose_transport(backend)
    out = _comm.all_reducer(backend, _DoublingComm())(buf)
    ranks = 1 if kind == "nccl" else 2
    np.testing.assert_array_equal(to_np(out), [1.0 * ranks, -2.0 * ranks, 3.5 * ranks])
    assert backend.owns(out)
    if kind == "mpi":
        assert out is buf


cupy_only = pytest.mark.skipif("cupy" not in nnx.available_backends(),
                               reason="needs CuPy and a CUDA device")


@needs_mpi
@cupy_only
def test_nccl_all_reduce_on_one_gpu():
    """One rank, NCCL on the device: the sum of one rank is the buffer itself, on the GPU."""
    if _comm.nccl_module() is None:
        pytest.skip("this CuPy has no NCCL")
    from mpi4py import MPI

    backend = nnx.backends.load("cupy")
    reduce = _comm.all_reducer(backend, MPI.COMM_SELF, "nccl")
    buf = nnx.asarray(np.arange(1000.0), backend=backend)
    out = reduce(buf)
    assert out is buf and backend.owns(out)
    np.testing.assert_array_equal(nnx.to_numpy(out), np.arange(1000.0))


# -- the command line ------------------------------------------------------------------------
@needs_mpi
def test_demo_digits_distributed_matches_one_process(tmp_path, capsys):
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    environ = {k: v for k, v in os.environ.items() if k not in _comm.THREAD_VARS}
    environ["MPLBACKEND"] = "Agg"
    out = tmp_path / "ranks"
    proc = subprocess.run([MPIEXEC, "-n", "2", sys.executable, "-m", "nnx.cli", "demo", "digits",
                           "--distributed", "--quick", "--out", str(out)], env=environ,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    from nnx import demos

    alone = demos.run("digits", out=tmp_path / "alone", quick=True)   # one plain process
    capsys.readouterr()
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("test accuracy:")]
    assert lines == [f"test accuracy: {alone['accuracy']:.2%} "
                     f"({round(alone['accuracy'] * 450)}/450)"]     # rank 0 alone prints
    assert proc.stdout.count("== nnx demo digits") == 1
    assert sorted(os.listdir(out)) == ["digits.png", "digits.safetensors"]
    model = nnx.load(out / "digits.safetensors")
    for name, p in nnx.load(alone["model"]).parameters().items():
        np.testing.assert_allclose(nnx.to_numpy(model.parameters()[name]), nnx.to_numpy(p),
                                   rtol=1e-4, atol=1e-6)
