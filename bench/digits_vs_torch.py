"""The digits demo's training, nnx against the same job written in PyTorch, in one run.

    python bench/digits_vs_torch.py            # 3 interleaved rounds; prints the table
    python bench/digits_vs_torch.py --rounds 5 --out bench/results/digits_vs_torch.txt

The job is ``nnx demo digits``'s: 1,347 training images of the 8×8 digits (stratified
75/25 split), an MLP 64-256-128-10 with ReLU, softmax cross-entropy, Adam (lr 1e-3),
batch 32, 40 epochs, the test loss and accuracy after every epoch. nnx runs it as the
demo does (``model.fit(..., validation_data=...)``, NumPy backend); PyTorch as a PyTorch
user writes it (``nnx.backends.torch_reference.train_classifier``), once with each of
its Adam implementations. Each job runs in a fresh interpreter of its own (two libraries'
thread pools in one process slow each other down: a PyTorch job measured 40× slower
right after NumPy's BLAS had run); rounds interleave the jobs. The table shows medians
and the target: nnx at most 0.5 × the fastest PyTorch job.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import time

from nnx.backends import torch_reference as ref

import nnx
from nnx.benchmark.suite import cpu_name
from nnx.demos.digits import data

SIZES, EPOCHS, BATCH, LR = [64, 256, 128, 10], 40, 32, 1e-3


def nnx_job(X_train, y_train, X_test, y_test, seed: int = 0) -> dict[str, float]:
    model = nnx.MLP(SIZES, activation="relu", seed=seed)
    start = time.perf_counter()
    model.fit(X_train, y_train, loss="softmax_cross_entropy", optimizer=nnx.optim.Adam(lr=LR),
              epochs=EPOCHS, batch_size=BATCH, seed=seed, validation_data=(X_test, y_test),
              progress=False)
    seconds = time.perf_counter() - start
    pred = nnx.to_numpy(model.predict(X_test)).argmax(axis=1)
    return {"seconds": seconds, "accuracy": float((pred == y_test).mean())}


def _jobs() -> dict[str, object]:
    jobs: dict[str, object] = {"nnx (numpy)": nnx_job}
    for impl in ref.ADAM_IMPLEMENTATIONS:
        jobs[f"torch, Adam {impl}"] = functools.partial(
            ref.train_classifier, sizes=SIZES, epochs=EPOCHS, batch=BATCH, lr=LR, adam=impl)
    return jobs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", help="also write the table to this file")
    p.add_argument("--job", help=argparse.SUPPRESS)       # worker: run one job, print JSON
    args = p.parse_args(argv)
    jobs = _jobs()
    if args.job:
        X_train, X_test, y_train, y_test = data(0)
        print(json.dumps(jobs[args.job](X_train, y_train, X_test, y_test)))
        return 0
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in jobs}
    for r in range(args.rounds):
        for name in jobs:
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "--job", name],
                                 capture_output=True, text=True, check=True)
            runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"round {r + 1}: {name}: {runs[name][-1]['seconds']:.2f} s",
                  file=sys.stderr, flush=True)
    med = {name: statistics.median(x["seconds"] for x in rs) for name, rs in runs.items()}
    fastest = min((n for n in med if n.startswith("torch")), key=med.get)
    lines = [f"digits demo training, {EPOCHS} epochs, batch {BATCH} — {cpu_name()} "
             f"({os.cpu_count()} CPUs), {args.rounds} interleaved rounds, medians",
             f"{'job':<24} {'seconds':>8} {'accuracy':>9} {'× fastest torch':>16}"]
    for name, rs in runs.items():
        acc = statistics.median(x["accuracy"] for x in rs)
        lines.append(f"{name:<24} {med[name]:>8.2f} {acc:>9.4f} {med[name] / med[fastest]:>16.3f}")
    ratio = med["nnx (numpy)"] / med[fastest]
    lines.append(f"target: nnx ≤ 0.5 × the fastest PyTorch job ({fastest}): {ratio:.3f} — "
                 f"{'met' if ratio <= 0.5 else 'not met'}")
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
