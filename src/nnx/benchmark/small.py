"""Small networks, where a step is per-call overhead more than arithmetic.

For each shape from XOR through the digits demo's 64-256-128-10 ×32 to 256-512-512-10
×256, in float32 and float64, with SGD and with Adam, one interleaved run times:

* ``floor`` — the step's matrix products alone;
* ``nnx step`` — forward, loss, backward, the optimizer's update;
* ``numpy by hand`` — the same step hand-written in NumPy with one flat buffer for
  parameters, gradients and optimizer state (``nnx.backends.numpy_reference``): the
  overhead floor, what a careful NumPy programmer gets;
* ``torch step`` (SGD) or ``torch adam for-loop`` / ``foreach`` / ``fused``, PyTorch's
  three Adam implementations;
* ``scikit-learn step`` — ``MLPClassifier``'s own cost per minibatch step: one epoch of
  ``fit`` (``warm_start``, ``max_iter=1``) over a few batches, divided by their number.

Each row's ``x_floor``, ``x_hand`` and ``x_torch`` (the fastest PyTorch row of its
shape) are medians of per-round ratios, as everywhere in ``nnx bench``.
"""

from __future__ import annotations

import statistics
import warnings
from collections.abc import Sequence
from typing import Any

from ..backend import resolve_backend
from . import accounting as acc
from . import cases, timing

__all__ = ["NETS", "QUICK_NETS", "DEMO", "run", "targets"]

_XOR = dict(activation="tanh", loss="sigmoid_binary_cross_entropy")
#: (sizes, batch, extra Network fields) of the full section.
NETS: tuple[tuple[tuple[int, ...], int, dict[str, str]], ...] = (
    ((2, 4, 1), 4, _XOR),
    ((64, 256, 128, 10), 32, {}),
    ((256, 512, 512, 10), 256, {}),
)
QUICK_NETS = (((2, 4, 1), 4, _XOR), ((16, 32, 16, 4), 8, {}))
#: the digits demo's shape: the targets are read on its Adam float32 rows.
DEMO = ((64, 256, 128, 10), 32)
_LR = {"sgd": 0.01, "adam": 1e-3}
#: seconds per sample at least (the settle's warm-up batch is as long).
SAMPLE_S = 0.02


def _sklearn_step(backend: Any, net: cases.Network, *, seed: int = 0) -> Any:
    """A Timed whose samples, divided by ``.steps``, are scikit-learn's seconds per step."""
    b = resolve_backend(backend)
    if b.name != "numpy":
        return None
    try:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier
    except ImportError:
        return None
    steps = max(2, 2048 // net.batch)
    n = steps * net.batch
    x, y = cases.make_batch(b, cases.Network(net.sizes, n, net.activation, net.loss,
                                             dtype=net.dtype), seed=seed)
    X = b.to_numpy(x)
    labels = b.to_numpy(b.xp.argmax(y, axis=1)) if y.shape[1] > 1 else b.to_numpy(y)[:, 0]
    clf = MLPClassifier(hidden_layer_sizes=net.sizes[1:-1],
                        activation="relu" if net.activation == "relu" else "tanh",
                        solver=net.optimizer, alpha=0.0, batch_size=net.batch,
                        learning_rate_init=net.lr, max_iter=1, shuffle=False, momentum=0.0,
                        warm_start=True, random_state=seed, tol=0.0)

    def epoch() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X, labels)

    epoch()
    timed = timing.Timed(epoch)
    timed.steps = steps  # type: ignore[attr-defined]
    return timed


def _cases(backend: str, net: cases.Network, use_torch: bool) -> dict[str, Any]:
    found: dict[str, Any] = {"floor": cases.floor(backend, net),
                             "nnx step": cases.training_step(backend, net),
                             "numpy by hand": cases.hand_written_step(backend, net)}
    if use_torch:
        impls = ("for-loop", "foreach", "fused") if net.optimizer == "adam" else ("fused",)
        for impl in impls:
            name = f"torch adam {impl}" if net.optimizer == "adam" else "torch step"
            found[name] = cases.torch_step(backend, net, adam=impl)
    found["scikit-learn step"] = _sklearn_step(backend, net)
    return {k: t for k, t in found.items() if t is not None}


def _ratio(t: timing.Timed, base: timing.Timed | None) -> float | None:
    """Median over rounds of t's per-step sample / base's of the same round."""
    if base is None:
        return None
    return statistics.median(a / b for a, b in zip(_per_step(t), _per_step(base)))


def _per_step(t: timing.Timed) -> list[float]:
    steps = getattr(t, "steps", 1)
    return [s / steps for s in t.samples]


def run(backend: str, cfg: dict[str, Any], *, quick: bool, use_torch: bool,
        log: Any = print) -> list[dict[str, Any]]:
    """Every shape × dtype × optimizer on ``backend``; the rows with their ratios."""
    rows = []
    nets = QUICK_NETS if quick else NETS
    for sizes, batch, extra in nets:
        for dtype in ("float32",) if quick else ("float32", "float64"):
            for opt in ("sgd", "adam"):
                net = cases.Network(tuple(sizes), batch, dtype=dtype, optimizer=opt,
                                    lr=_LR[opt], **extra)
                log(f"[{backend}] small network {net.label} {dtype} {opt}")
                found = _cases(backend, net, use_torch)
                # Every case settles before its samples, short ones too: PyTorch's and
                # NumPy's thread pools stay busy after their calls and would otherwise
                # slow whichever case follows (nnx ran 35% slower here after torch's).
                # The untimed warm-up batch that follows a settle absorbs the VM's slow
                # first milliseconds after a sleep.
                timing.measure(list(found.values()), rounds=cfg["rounds"],
                               min_sample_s=max(cfg["min_sample_s"], SAMPLE_S),
                               settle_s=cfg["settle_s"], settle_above_s=0.0)
                torch_rows = [t for k, t in found.items() if k.startswith("torch")]
                fastest = min(torch_rows, key=lambda t: statistics.median(_per_step(t)),
                              default=None)
                for case, t in found.items():
                    rows.append({
                        "backend": backend, "net": net.label, "dtype": dtype, "optimizer": opt,
                        "case": case, "seconds": statistics.median(_per_step(t)),
                        "flops": acc.step_flops(net.sizes, net.batch),
                        "sample_seconds": _per_step(t), "x_floor": _ratio(t, found["floor"]),
                        "x_hand": _ratio(t, found.get("numpy by hand")),
                        "x_torch": _ratio(t, fastest)})
    return rows


def targets(rows: Sequence[dict[str, Any]], quick: bool) -> list[dict[str, Any]]:
    """The digits-shape Adam float32 step on NumPy: ≤ 1.0 × NumPy by hand, ≤ 0.5 × PyTorch's
    fastest Adam step."""
    label = f"{'-'.join(map(str, DEMO[0]))} ×{DEMO[1]}"
    out = []
    for r in rows:
        if (r["backend"], r["net"], r["dtype"], r["optimizer"], r["case"]) != (
                "numpy", label, "float32", "adam", "nnx step"):
            continue
        for key, bound, what in (("x_hand", 1.0, "NumPy by hand (flat buffers)"),
                                 ("x_torch", 0.5, "PyTorch's fastest Adam step")):
            if r.get(key) is not None:
                out.append({"backend": r["backend"], "what": f"digits-shape Adam step × {what}",
                            "value": r[key], "op": "≤", "bound": bound,
                            "met": r[key] <= bound, "note": "quick sizes" if quick else ""})
    return out
