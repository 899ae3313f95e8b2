"""Jobs that tests/test_distributed.py runs under ``mpiexec -n N``; not a test module.

    mpiexec -n 2 python tests/mpi_jobs.py equivalence OUT_DIR [BACKEND ...]
    mpiexec -n 2 python tests/mpi_jobs.py fail-raise|fail-kill|fail-leave|fail-stall|fail-context
    mpiexec -n 2 python tests/mpi_jobs.py root-only OUT_DIR

The equivalence job trains each of CASES data-parallel and writes, from rank 0 only,
every rank's final weights and loss history to OUT_DIR/<backend>-<case>.npz. The test
trains the same cases in one plain process and compares.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import numpy as np

import nnx
from nnx import distributed

#: name → (rows, sizes, hidden activation, output activation, loss, optimizer, batch_size)
CASES = {
    # 103 rows in batches of 16: the last batch has 7 rows, shards of 4/3 or 3/2/2
    "softmax-sgd-momentum": (103, [5, 7, 3], "tanh", None, "softmax_cross_entropy",
                             ("sgd", {"lr": 0.1, "momentum": 0.9, "nesterov": True}), 16),
    "mse-adam": (103, [5, 6, 2], "relu", None, "mse", ("adam", {"lr": 0.01}), 10),
    # batches of 2 rows (and a last one of 1): with 3 ranks some shards are empty
    "bce-tiny-batches": (13, [5, 4, 1], "sigmoid", "sigmoid", "binary_cross_entropy",
                         ("sgd", {"lr": 0.5}), 2),
    "full-batch-adam": (50, [5, 8, 3], "gelu", None, "softmax_cross_entropy",
                        ("adam", {"lr": 0.02}), None),
}
EPOCHS = 4


def data(case: str) -> tuple[np.ndarray, np.ndarray]:
    n, sizes, _, _, loss, _, _ = CASES[case]
    rng = np.random.default_rng(len(case))
    X = rng.standard_normal((n, sizes[0]))
    if loss == "softmax_cross_entropy":
        y = rng.integers(0, sizes[-1], n)
    elif loss == "binary_cross_entropy":
        y = rng.integers(0, 2, (n, 1)).astype(np.float64)
    else:
        y = rng.standard_normal((n, sizes[-1]))
    return X, y


def train(case: str, backend: str, distributed_: bool) -> tuple[nnx.Sequential, object]:
    """Train ``case`` on ``backend`` in float64 (data-parallel when ``distributed_``)."""
    _, sizes, act, out_act, loss, (opt, kw), batch = CASES[case]
    X, y = data(case)
    with nnx.use_backend(backend):
        model = nnx.MLP(sizes, activation=act, output_activation=out_act, dtype="float64",
                        seed=7)
    val = (X[:20], y[:20]) if case == "softmax-sgd-momentum" else None
    history = model.fit(X, y, loss=loss, optimizer=nnx.optim.get(opt, **kw), epochs=EPOCHS,
                        batch_size=batch, seed=11, progress=False, validation_data=val,
                        distributed=distributed_)
    return model, history


def _host_params(model: nnx.Sequential) -> dict[str, np.ndarray]:
    return {k: nnx.to_numpy(v) for k, v in model.parameters().items()}


def equivalence(out: str, backends: list[str]) -> None:
    comm = distributed.DataParallel().comm
    for backend in backends:
        if backend == "jax":
            import jax

            jax.config.update("jax_enable_x64", True)
        for case in CASES:
            model, history = train(case, backend, True)
            every = comm.gather((_host_params(model), history.loss, history.val_loss,
                                 history.val_accuracy), root=0)
            if comm.Get_rank() == 0:
                arrays = {}
                for r, (params, loss, val_loss, val_acc) in enumerate(every):
                    arrays.update({f"rank{r}/{k}": v for k, v in params.items()})
                    arrays[f"rank{r}/loss"] = np.asarray(loss)
                    arrays[f"rank{r}/val_loss"] = np.asarray(val_loss)
                    arrays[f"rank{r}/val_accuracy"] = np.asarray(val_acc)
                np.savez(os.path.join(out, f"{backend}-{case}.npz"), **arrays)


def failing_loss(mode: str):
    """softmax cross-entropy that fails on rank 1 at its third step, in one of five ways."""
    calls = [0]

    def loss(pred, y):
        calls[0] += 1
        if distributed.rank() == 1 and calls[0] == 3:
            if mode in ("raise", "context"):
                raise RuntimeError("injected failure on rank 1")
            if mode == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if mode == "leave":   # a rank that quits training quietly; the others wait
                raise SystemExit(0)
            if mode == "stall":   # a rank that stops answering but stays alive
                time.sleep(120)
        return nnx.losses.softmax_cross_entropy(pred, y)
    return loss


def fail(mode: str) -> None:
    X, y = data("softmax-sgd-momentum")
    model = nnx.MLP([5, 7, 3], dtype="float64", seed=7)
    kwargs = dict(loss=failing_loss(mode), optimizer="sgd", epochs=50, batch_size=8,
                  seed=0, progress=False)
    if mode == "context":
        try:
            with distributed.data_parallel():
                model.fit(X, np.eye(3)[y], **kwargs)
        except RuntimeError:
            pass  # caught here, but the block has already stopped the job
        for _ in range(50):   # rank 0 must not get here: it is training, then aborted
            model.fit(X, np.eye(3)[y], **kwargs, distributed=False)
    else:
        model.fit(X, np.eye(3)[y], **kwargs, distributed=True)
    print(f"rank {distributed.rank()} finished", flush=True)


def root_only(out: str) -> None:
    """Which ranks would show a progress bar, and what the rank helpers say, per rank."""
    from nnx import training

    shown = []
    real = training._progress_bar
    training._progress_bar = lambda epochs, progress: shown.append(progress) or None
    try:
        X, y = data("mse-adam")
        nnx.MLP([5, 6, 2], dtype="float64", seed=7).fit(
            X, y, loss="mse", optimizer="adam", epochs=2, batch_size=10, seed=0,
            progress=True, distributed=True)
    finally:
        training._progress_bar = real
    import threadpoolctl

    mine = {"rank": distributed.rank(), "size": distributed.size(),
            "is_root": distributed.is_root(), "progress": shown,
            "blas_threads": sorted({i["num_threads"] for i in threadpoolctl.threadpool_info()})}
    every = distributed.DataParallel().comm.gather(mine, root=0)
    if distributed.is_root():
        with open(os.path.join(out, "ranks.json"), "w") as f:
            json.dump(every, f)


if __name__ == "__main__":
    job = sys.argv[1]
    if job == "equivalence":
        equivalence(sys.argv[2], sys.argv[3:] or ["numpy"])
    elif job.startswith("fail-"):
        fail(job[len("fail-"):])
    elif job == "root-only":
        root_only(sys.argv[2])
    else:
        raise SystemExit(f"unknown job {job!r}")
