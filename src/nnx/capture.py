"""A training step recorded once as a CUDA graph and replayed: ``fit(..., capture=None)``.

On a GPU a small network's step is bound by the host: each of its few dozen kernels costs
microseconds to launch and less to run. A CUDA graph records one step's launches once;
each later step is one launch (``Backend.graph``: ``cupy.cuda.Stream.begin_capture`` on
CuPy, ``torch.cuda.CUDAGraph`` on torch). It replays exactly what it recorded — the same
kernels, memory and scalar arguments — so whatever changes between steps is read from
device memory, never baked in as a Python number:

* the minibatch: the step gathers its rows (``take``) into static input and target
  buffers at an offset it reads from, and advances in, a device counter (the epoch's
  permutation is copied into a static index buffer once per epoch);
* the learning rate (written to the device when a schedule or callback changes it) and
  Adam's step count t, whose bias corrections are computed from it on the device: the
  capturable updates of :class:`nnx.backends.Ops` (PyTorch's ``capturable=True``);
* the epoch's loss, summed on the device (with one batch, the eager number itself).

Nothing between the gather and the update reads the device on the host: not nnx's layers,
not the flat optimizer path, not the built-in losses (binary cross-entropy's check that
its inputs lie in [0, 1] is left out: the targets were checked once by
:func:`nnx.inputs.prepare`, and a NaN prediction shows as a NaN loss at the epoch's end).

Each static step (one batch shape; a ragged last batch has its own) runs directly on its
first call (the warm-up: a real step, compiling its kernels), is recorded and replayed on
its second, and replayed after that. The host's record of the optimizer state (Adam's t,
SGD's first step) advances after every call, so the eager path can take over any time.

A step qualifies when the backend records graphs (CuPy; torch on a CUDA device), the model
is nnx's own layers in flat buffers (:mod:`nnx.flat`), the loss is built in, the optimizer
is :class:`~nnx.optim.SGD` or :class:`~nnx.optim.Adam`, and there is no data parallelism,
no loss scaling (it reads each step's gradients on the host) and no penalty unless it is
marked ``penalty.capturable = True``. ``capture=None`` records where all hold (on CuPy,
which cannot record cuBLAS, only up to ``ops.graph_max_product`` multiply-adds per product:
there a captured product runs on nnx's own kernel), and runs the static steps unrecorded if
recording fails; ``capture=True`` raises a ValueError naming what fails.

Trust, but verify: the first replay of each recorded graph is checked against the same
step run directly from the same state (then undone). A graph that replays something else
(a number baked in that should have been read, a kernel missed) is dropped with a warning
(a RuntimeError under ``capture=True``) and training goes on eagerly, from the direct
step's result. It costs one more step per batch shape per ``fit``.

Longer than 300 lines: the recorded step, its device-side state and that check belong
together; the library-specific recorders live in ``backends/``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

from . import losses as _losses
from . import optim as _optim
from .inputs import show

Array = Any

__all__ = ["CapturedEpochs", "plan", "why_not"]

#: tests only: CPU backends "record" by doing nothing and "replay" by calling again, so that
#: the static step runs on the CPU exactly as a graph would replay it.
_EMULATE = False


def plan(trainer: Any, capture: bool | None) -> CapturedEpochs | None:
    """The captured epochs of ``trainer`` (a :class:`nnx.trainer.Trainer`), or None for the
    eager loop: ``capture`` is :func:`nnx.fit`'s (None: where the step qualifies)."""
    if capture is not None and not isinstance(capture, bool):
        raise ValueError(f"fit: capture must be None, True or False; got {show(capture)}")
    if capture is False:
        return None
    why = why_not(trainer, automatic=capture is None)
    built = None
    if why is None:
        built = CapturedEpochs(trainer, required=bool(capture))
        why = built.why_not
    if why is not None:
        if capture:
            raise ValueError(f"fit: capture=True, but this step cannot be recorded as a CUDA "
                             f"graph: {why}. Pass capture=None to fall back to the eager step")
        return None
    return built


def why_not(trainer: Any, *, automatic: bool = False) -> str | None:
    """Why ``trainer``'s step cannot be captured, or None (see the module docstring)."""
    backend, model = trainer.backend, trainer.model
    why = backend.graph_unsupported()
    if why is not None and not (_EMULATE and backend.ops.flat):
        return why
    if trainer.data_parallel is not None:
        return "data-parallel training all-reduces the gradients over MPI between steps"
    if getattr(trainer, "scaler", None) is not None:
        return ("loss scaling reads every step's gradients on the host (float16 models); a "
                "captured step and loss scaling do not mix")
    if trainer.loss_name is None:
        return ("the loss is a callable of your own; only the built-in losses are known to "
                "read nothing back to the host in the middle of a step")
    if type(trainer.optimizer) not in (_optim.SGD, _optim.Adam):
        return (f"the optimizer is a {type(trainer.optimizer).__name__}; captured steps have "
                "device-side updates for nnx.optim.SGD and nnx.optim.Adam only")
    if trainer.penalty is not None and not getattr(trainer.penalty, "capturable", False):
        return "the step adds a penalty that is not marked capturable (penalty.capturable)"
    flat = getattr(model, "flat", None)
    if flat is None or not all(layer._gW is gW and layer._gb is gb
                               for layer, gW, gb in flat._checks):
        return ("the model keeps its parameters as separate arrays, not in flat buffers "
                "(nnx.flat: JAX, array-api-strict, NNX_OPS=portable, or a network whose "
                "layers moved into another's buffer)")
    foreign = [type(layer).__name__ for layer in _layers(model)
               if type(layer).__module__.split(".")[0] != "nnx"]
    if foreign:
        return (f"layers of your own ({', '.join(foreign)}) may read the device on the host "
                "mid-step; a captured step takes nnx's layers only")
    dense = model.dense_layers
    if hasattr(backend.ops, "graph_safe") and any(getattr(d, "compute_dtype", None)
                                                  for d in dense):
        return ("the model computes in a 16-bit dtype, and on CuPy a captured product runs "
                "on nnx's own float32/float64 kernel (CuPy cannot record cuBLAS)")
    limit = getattr(backend.ops, "graph_max_product", None)
    rows = max(b - a for a, b in trainer.bounds)
    if automatic and limit is not None and \
            max(rows * d.in_features * d.out_features for d in dense) > limit:
        return (f"its products exceed {limit} multiply-adds, where cuBLAS (which CuPy cannot "
                "record) beats the graph's own product kernel; capture=True records it anyway")
    return None


def _layers(model: Any) -> list[Any]:
    """``model`` and every layer in it, nested networks opened."""
    found = [model]
    for layer in getattr(model, "layers", ()):
        found += _layers(layer)
    return found


class CapturedEpochs:
    """A :class:`~nnx.trainer.Trainer`'s epochs with every step a replayed CUDA graph.

    ``why_not`` is set when the optimizer's state cannot be kept on the device; ``failure``
    names why recording failed (the steps then run unrecorded); :meth:`counts`.
    """

    def __init__(self, trainer: Any, *, required: bool) -> None:
        self.trainer, self.required = trainer, required
        self.failure: str | None = None
        self.why_not = self._build()

    def _build(self) -> str | None:
        tr = self.trainer
        xp, dev, opt = tr.xp, tr.backend.device, tr.optimizer
        self.flat = tr.model.flat
        self.groups = []
        for group in self.flat.groups:
            st = opt._flat_state.get(group)
            if st is None:
                st = opt._flatten_state(group)
            if st is None:
                return ("the optimizer keeps per-layer state for this model (from steps on "
                        "separate arrays) that one flat record cannot hold")
            t = xp.asarray([float(st.t)], dtype=xp.float64, device=dev)
            self.groups.append((group, st, t))
        self._t = [st.t for _, st, _ in self.groups]
        self._lr = opt.lr
        self.lr = xp.asarray([float(opt.lr)], dtype=xp.float64, device=dev)
        self.total = xp.zeros((), dtype=tr.dtype, device=dev)
        fn = _losses.get(tr.loss_name)
        if fn is _losses.binary_cross_entropy:       # its range check reads the device
            fn = _losses._binary_cross_entropy_unchecked
        self.loss_fn = lambda pred, y: fn(pred, y, xp=xp)
        self.single = len(tr.bounds) == 1
        if not self.single:
            self.perm = xp.arange(tr.n, dtype=xp.int64, device=dev)
            self.offset = xp.zeros((1,), dtype=xp.int64, device=dev)
        sizes = [b - a for a, b in tr.bounds]
        static = {r: _Static(self, r) for r in sorted(set(sizes), reverse=True)}
        self.static = list(static.values())
        self.plan = [static[r] for r in sizes]
        return None

    def counts(self) -> dict[str, int]:
        """How many steps ran directly (``warm_ups``), were recorded, were replayed."""
        return {k: sum(getattr(s, k) for s in self.static)
                for k in ("warm_ups", "recorded", "replays")}

    def epoch(self) -> Array:
        """One pass over the data; the epoch's mean loss as a device scalar (no host read)."""
        tr, ops = self.trainer, self.trainer.backend.ops
        self._sync()
        if tr.shuffle:   # the permutation the eager loop draws, into the static index buffer
            ops.copy_into(self.perm, tr.backend.permutation(tr.n, seed=tr._seeds.spawn(1)[0]))
        if not self.single:
            ops.fill(self.offset, 0)
            ops.fill(self.total, 0.0)
        value = None
        for static in self.plan:
            value = static.run()
        return value if self.single else self.total / tr.n

    def step(self) -> Array:
        """One more step of a one-batch trainer (for timing); its loss, a device scalar."""
        if not self.single:   # the offset would run past the data
            raise ValueError("CapturedEpochs.step runs one-batch trainers only; use epoch()")
        self._sync()
        return self.static[0].run()

    def _sync(self) -> None:
        """Bring the device's numbers up to the host's: a new learning rate, optimizer state
        stepped or replaced by someone else since (replaced: record again)."""
        tr = self.trainer
        opt, ops = tr.optimizer, tr.backend.ops
        if tr.model.flat is not self.flat or any(opt._flat_state.get(g) is not st
                                                 for g, st, _ in self.groups):
            why = self._build()
            if why is not None:
                raise RuntimeError(f"fit: the captured step lost its optimizer state: {why}")
        for i, (_, st, t) in enumerate(self.groups):
            if st.t != self._t[i]:
                ops.fill(t, float(st.t))
                self._t[i] = st.t
        if opt.lr != self._lr:
            ops.fill(self.lr, float(opt.lr))
            self._lr = opt.lr

    def state_arrays(self) -> list[Array]:
        """Every device array a step changes and the next one reads."""
        arrays = []
        for group, st, t in self.groups:
            arrays += [group.params, t, *(x for x in (st.a, st.b) if x is not None)]
        return arrays + ([] if self.single else [self.offset, self.total])

    def _advance(self) -> None:
        """The host's record of one more optimizer step (as ``Optimizer.step`` keeps it)."""
        for i, (_, st, _) in enumerate(self.groups):
            st.t += 1
            st.fresh = False
            self._t[i] = st.t


class _Static:
    """One batch shape: static buffers, the step that reads them, and its recording."""

    def __init__(self, owner: CapturedEpochs, rows: int) -> None:
        tr, xp, dev = owner.trainer, owner.trainer.xp, owner.trainer.backend.device
        self.owner, self.rows = owner, rows
        self.warm_ups = self.recorded = self.replays = 0
        if owner.single:
            self.x, self.y = tr.X, tr.y
        else:
            self.x = xp.empty((rows, tr.n_in), dtype=tr.dtype, device=dev)
            self.y = xp.empty((rows, *tr.y.shape[1:]), dtype=tr.y.dtype, device=dev)
            self.at = xp.arange(rows, dtype=xp.int64, device=dev)
        recorder = tr.backend.graph(self._step)
        self.recorder = _CallAgain(self._step) if recorder is None else recorder

    def run(self) -> Array:
        owner = self.owner
        if self.warm_ups == 0 or owner.failure is not None:
            out = self.recorder.warm_up()
            self.warm_ups += 1
        else:
            if not self.recorded:
                try:
                    out = self._record_and_check()
                except Exception as exc:   # noqa: BLE001  (any library's refusal)
                    owner.failure = f"{type(exc).__name__}: {exc}"
                    if owner.required:
                        raise RuntimeError(f"fit: capture=True, but recording the step as a "
                                           f"CUDA graph failed ({owner.failure})") from exc
                    if isinstance(exc, _Mismatch):
                        warnings.warn(f"fit: {exc}; training goes on without the graph",
                                      RuntimeWarning, stacklevel=5)
                        owner._advance()
                        return exc.value
                    return self.run()
                self.recorded = 1
            else:
                out = self.recorder.replay()
            self.replays += 1
        owner._advance()
        return out

    def _record_and_check(self) -> Array:
        """Record the graph and check its first replay against the same step run directly
        (from the same state, undone in between): a graph that baked in a stale number or
        missed a kernel raises :class:`_Mismatch`, leaving the direct step's result."""
        xp, ops = self.owner.trainer.xp, self.owner.trainer.backend.ops
        live = self.owner.state_arrays()
        before = [xp.asarray(a, copy=True) for a in live]
        value = self.recorder.warm_up()                    # the step, run directly,
        direct = [xp.asarray(a, copy=True) for a in live]
        value = xp.asarray(value, copy=True)
        for a, b in zip(live, before):                     # ... undone,
            ops.copy_into(a, b)
        self.recorder.capture()                            # ... recorded and replayed
        out = self.recorder.replay()
        for a, b, d in zip(live, before, direct):
            moved = float(xp.max(xp.abs(xp.astype(d, xp.float64) - xp.astype(b, xp.float64))))
            off = float(xp.max(xp.abs(xp.astype(a, xp.float64) - xp.astype(d, xp.float64))))
            if math.isfinite(moved) and not off <= 1e-3 * moved:  # a NaN replay fails;
                # a direct step that diverged cannot check it (the epoch's end reports that)
                for x, y in zip(live, direct):
                    ops.copy_into(x, y)
                raise _Mismatch(f"the CUDA graph's first replay differed from the same step "
                                f"run directly (by {off:.3g} where the step moved values by "
                                f"{moved:.3g})", value)
        return out

    def _step(self) -> Array:
        """Gather → forward → loss → backward → update, every changing number on the device."""
        owner, tr = self.owner, self.owner.trainer
        xp, ops, model, opt = tr.xp, tr.backend.ops, tr.model, tr.optimizer
        x, y = self.x, self.y
        if not owner.single:   # this step's rows, at the device's offset: no host index
            ops.gather_rows_into(owner.perm, owner.offset, self.at, ((tr.X, x), (tr.y, y)))
            offset = owner.offset
            offset += self.rows
        if tr.classes is not None:   # per-batch one-hot of validated integer ids
            y = xp.astype(y[:, None] == tr.classes, tr.dtype)
        value, grad = owner.loss_fn(model.forward(x), y)
        model.backward(grad, input_grad=False)
        if tr.penalty is not None:
            value = value + tr.penalty(model, self.rows)
        if not owner.flat.ready():   # identities only: nnx's layers write into the views
            raise RuntimeError("a captured step found gradients outside the flat buffer")
        for group, st, t in owner.groups:
            if isinstance(opt, _optim.Adam):
                b1, b2 = opt.betas
                ops.adam_step_capturable(group.params, group.grads, st.a, st.b, t, owner.lr,
                                         b1=b1, b2=b2, eps=opt.eps,
                                         weight_decay=opt.weight_decay)
            else:
                ops.sgd_step_capturable(group.params, group.grads, st.a, owner.lr,
                                        momentum=opt.momentum, nesterov=opt.nesterov,
                                        weight_decay=opt.weight_decay, first=st.fresh)
        if not owner.single:
            ops.accumulate(owner.total, value, float(self.rows))
        return value


class _Mismatch(RuntimeError):
    """A recorded graph that does not replay the step it recorded; ``value`` is the loss of
    the step run directly, whose results the arrays hold."""

    def __init__(self, message: str, value: Array) -> None:
        super().__init__(message)
        self.value = value


class _CallAgain:
    """A graph's CPU stand-in (``_EMULATE``): records nothing, replays by calling again."""

    def __init__(self, fn: Callable[[], Array]) -> None:
        self.warm_up = self.replay = fn
        self.capture = lambda: None
