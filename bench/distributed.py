"""How much of a data-parallel training step is communication, for 1, 2 and 3 ranks.

    python bench/distributed.py                   # the sweep: launches mpiexec -n 1, 2, 3
    python bench/distributed.py --ranks 1,2 --sizes 784,256,256,10 --batch 256
    mpiexec -n 2 python bench/distributed.py --worker    # one configuration, by hand

Each configuration trains the same MLP on the same synthetic data (float32, fixed
global batch) with ``model.fit(..., distributed=True)`` and reports, from rank 0:

* steps/s of the whole job (global batches per second), after one warm-up epoch;
* the communication share of a step: time in the gradient all-reduce (waiting for the
  slowest rank included) plus packing/unpacking, over the step time, as the mean over
  ranks;
* the all-reduce alone: the same buffer summed back to back with no compute between
  (the network cost without stragglers);
* the plain single-process ``fit`` (distributed=False) as the baseline.

BLAS threads per rank are ``cores // ranks`` (at least 1), set through the usual
environment variables, so a job never asks for more threads than the machine has
unless there are more ranks than cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--worker", action="store_true", help="measure in this MPI job (rank 0 "
                   "prints one JSON line)")
    p.add_argument("--ranks", default="1,2,3", help="rank counts for the sweep")
    p.add_argument("--sizes", default="784,256,256,10", help="MLP layer widths")
    p.add_argument("--rows", type=int, default=6144, help="training rows")
    p.add_argument("--batch", type=int, default=256, help="global batch size")
    p.add_argument("--epochs", type=int, default=3, help="timed epochs (after one warm-up)")
    p.add_argument("--repeats", type=int, default=3, help="worker: best of this many runs")
    p.add_argument("--rounds", type=int, default=2, help="sweep: run every job this many "
                   "times, interleaved, and keep each job's best (a shared machine is noisy)")
    p.add_argument("--plain", action="store_true", help="worker: time distributed=False")
    return p.parse_args(argv)


def worker(args: argparse.Namespace) -> None:
    import nnx
    from nnx import distributed

    sizes = [int(s) for s in args.sizes.split(",")]
    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.rows, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], args.rows)
    model = nnx.MLP(sizes, dtype="float32", seed=0)
    opt = nnx.optim.SGD(lr=0.01, momentum=0.9)
    steps = -(-args.rows // args.batch) * args.epochs
    if args.plain:
        dp = None
        fit = dict(distributed=False)
    else:
        dp = distributed.DataParallel()
        fit = dict(distributed=dp)
    kw = dict(loss="softmax_cross_entropy", optimizer=opt, batch_size=args.batch, seed=0,
              progress=False, **fit)
    model.fit(X, y, epochs=1, **kw)                     # warm-up
    best = None
    for _ in range(args.repeats):
        if dp is not None:
            dp.reset_stats()
            dp.comm.Barrier()
        t0 = time.perf_counter()
        model.fit(X, y, epochs=args.epochs, **kw)
        wall = time.perf_counter() - t0
        comm = pack = 0.0
        if dp is not None:
            comm, pack = dp.comm_seconds, dp.pack_seconds
            wall = dp.comm.allreduce(wall, op=_max())
            comm = dp.comm.allreduce(comm) / dp.size
            pack = dp.comm.allreduce(pack) / dp.size
        if best is None or wall < best[0]:
            best = (wall, comm, pack)
    wall, comm, pack = best
    result = {"ranks": 1 if dp is None else dp.size, "plain": dp is None,
              "threads": os.environ.get("OPENBLAS_NUM_THREADS", "?"),
              "steps_per_s": steps / wall, "step_ms": 1e3 * wall / steps,
              "allreduce_ms": 1e3 * comm / steps, "pack_ms": 1e3 * pack / steps,
              "comm_share": (comm + pack) / wall}
    if dp is not None:
        result["buffer_floats"] = dp._layout.num_elements
        result["allreduce_alone_ms"] = _allreduce_alone(dp, dp._layout.num_elements)
    if dp is None or dp.rank == 0:
        print(json.dumps(result), flush=True)


def _max():
    from mpi4py import MPI

    return MPI.MAX


def _allreduce_alone(dp, n: int, repeats: int = 200) -> float:
    """Median ms of one in-place all-reduce of n float32, back to back (no stragglers)."""
    from mpi4py import MPI

    buf = np.ones(n, np.float32)
    times = []
    for _ in range(repeats):
        dp.comm.Barrier()
        t0 = time.perf_counter()
        dp.comm.Allreduce(MPI.IN_PLACE, buf)
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def _mpiexec() -> str:
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return beside if os.access(beside, os.X_OK) else "mpiexec"


def sweep(args: argparse.Namespace, argv: list[str]) -> None:
    cores = os.cpu_count() or 1
    # (ranks, plain fit?, BLAS threads per rank): the plain baselines with all cores and
    # with one, then the data-parallel jobs with cores // ranks threads each
    plans = [(1, True, cores), (1, True, 1)] + [
        (int(r), False, max(1, cores // int(r))) for r in args.ranks.split(",")]
    if cores > 1 and (1, False, cores) in plans:   # and 1 rank on 1 thread, like each of N
        plans.insert(plans.index((1, False, cores)) + 1, (1, False, 1))
    best: dict[tuple, dict] = {}
    load = [os.getloadavg()[0]]
    for _ in range(args.rounds):
        for ranks, plain, threads in plans:
            env = dict(os.environ, **{v: str(threads) for v in THREAD_VARS})
            cmd = [_mpiexec(), "-n", str(ranks), sys.executable, os.path.abspath(__file__),
                   "--worker", *argv] + (["--plain"] if plain else [])
            out = subprocess.run(cmd, env=env, capture_output=True, text=True,
                                 check=True).stdout
            row = json.loads(out.strip().splitlines()[-1])
            key = (ranks, plain, threads)
            if key not in best or row["steps_per_s"] > best[key]["steps_per_s"]:
                best[key] = row
    load.append(os.getloadavg()[0])
    rows = [best[key] for key in plans]
    print(f"MLP {args.sizes}, float32, global batch {args.batch}, {args.rows} rows, "
          f"{cores} cores, best of {args.rounds} rounds; 1-min load average "
          f"{load[0]:.1f} before, {load[1]:.1f} after")
    head = (f"{'job':<16}{'threads':>8}{'steps/s':>10}{'step ms':>9}{'allreduce ms':>14}"
            f"{'pack ms':>9}{'comm share':>12}{'allreduce alone ms':>20}")
    print(head)
    print("-" * len(head))
    base = rows[0]["steps_per_s"]
    for r in rows:
        job = "plain fit" if r["plain"] else f"{r['ranks']} rank(s)"
        alone = f"{r['allreduce_alone_ms']:.3f}" if "allreduce_alone_ms" in r else "-"
        print(f"{job:<16}{r['threads']:>8}{r['steps_per_s']:>10.1f}{r['step_ms']:>9.2f}"
              f"{r['allreduce_ms']:>14.3f}{r['pack_ms']:>9.3f}{r['comm_share']:>11.1%} "
              f"{alone:>19}   ×{r['steps_per_s'] / base:.2f}")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = _args(argv)
    if args.worker:
        worker(args)
    else:
        sweep(args, [a for a in argv if a != "--worker"])


if __name__ == "__main__":
    main()
