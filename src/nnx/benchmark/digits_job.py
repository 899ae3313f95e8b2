"""The digits demo's training job on a GPU backend against NumPy on the CPU.

Issue 10's target: ``nnx demo digits --backend cupy`` trains faster than on NumPy. This
module runs the demo's own training call — :func:`nnx.demos.digits.data` (scikit-learn's
8×8 digits, the same split), an MLP 64-256-128-10 with ReLU, softmax cross-entropy,
``Adam(lr=1e-3)``, 40 epochs of batch 32 with validation after each, ``fit``'s defaults
otherwise (so a captured step where the build has one) — once per backend, after an
untimed one-epoch run that compiles the kernels; ``x_numpy`` is its time ÷ NumPy's.
``bench/gpu.sh`` also times the demo command itself on both, each in a fresh process.
"""

from __future__ import annotations

import time
from typing import Any

from ..backend import resolve_backend, use_backend
from ..optim import Adam
from ..sequential import MLP

__all__ = ["EPOCHS", "QUICK_EPOCHS", "train_seconds", "run"]

EPOCHS = 40         # the demo's (nnx.demos.digits.run)
QUICK_EPOCHS = 2


def train_seconds(backend_name: str, *, epochs: int = EPOCHS, seed: int = 0) -> dict[str, Any]:
    """``{"backend", "seconds", "accuracy", "epochs"}`` of the demo's training on one backend."""
    from ..demos import digits

    X_train, X_test, y_train, y_test = digits.data(seed)
    backend = resolve_backend(backend_name)

    def job(n: int) -> tuple[float, Any]:
        with use_backend(backend):
            model = MLP([64, 256, 128, 10], activation="relu", seed=seed)
        start = time.perf_counter()
        model.fit(X_train, y_train, loss="softmax_cross_entropy", optimizer=Adam(lr=1e-3),
                  epochs=n, batch_size=32, seed=seed, validation_data=(X_test, y_test),
                  progress=False)
        return time.perf_counter() - start, model

    job(1)                                           # compile, allocate: untimed
    seconds, model = job(epochs)
    pred = backend.to_numpy(backend.xp.argmax(model.predict(X_test), axis=1))
    return {"backend": backend_name, "seconds": seconds, "epochs": epochs,
            "accuracy": float((pred == y_test).mean())}


def run(gpu_backends: list[str], *, quick: bool, log: Any = print) -> list[dict[str, Any]]:
    """The job on NumPy and on each of ``gpu_backends``, with ``x_numpy``; [] without
    scikit-learn (the demo's data)."""
    try:
        import sklearn  # noqa: F401  (the digits data set)
    except ImportError:
        return []
    epochs = QUICK_EPOCHS if quick else EPOCHS
    rows = []
    for b in ["numpy", *gpu_backends]:
        log(f"[{b}] the digits demo's training, {epochs} epochs")
        rows.append(train_seconds(b, epochs=epochs))
    for r in rows:
        r["x_numpy"] = r["seconds"] / rows[0]["seconds"]
    return rows
