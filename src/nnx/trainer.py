"""One training run's state and its epochs: forward, loss, backward, optimizer step.

:class:`Trainer` converts and validates everything once (:mod:`nnx.inputs`); each
:meth:`Trainer.epoch` then stays on the device: it permutes the rows there (``xp.take``
with a seeded permutation), takes minibatches as slices ``X[a:b, ...]`` and keeps every
step's loss as a device scalar; the host reads one number per epoch. That number also
checks the parameters: after every epoch, a NaN or infinite loss or parameter raises
:class:`TrainingDivergedError` (a sum over the flat parameter buffer, one reduction per
epoch, never per step). :func:`nnx.fit` and nnx.sklearn's estimators both drive it.

With loss scaling (:mod:`nnx.loss_scale`; float16 models by default) the step becomes
forward → loss (float32) → dL/dout × S → backward → gradients ÷ S and checked → the
optimizer's step unless a gradient was inf or NaN → S updated. Reading that check is
the step's one host read (as ``GradScaler.step``); a skipped step never raises
:class:`TrainingDivergedError`, and the epoch's loss averages the steps taken.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from typing import Any

from . import backends as _registry
from . import capture as _capture
from . import inputs as _inputs
from . import loss_scale as _loss_scale
from . import losses as _losses
from . import optim as _optim
from .extensions import DataParallelHooks

Array = Any

__all__ = ["Trainer", "TrainingDivergedError", "forward_all", "largest_product"]


class TrainingDivergedError(FloatingPointError):
    """The loss or a parameter became NaN or infinite; the message names the epoch (and, for
    the loss, the step; for parameters, which arrays)."""


class Trainer:
    """One model, one dataset, one loss and one optimizer, ready to run epochs.

    Converts and validates everything once; :meth:`epoch` then runs one pass over the
    data and returns the mean loss as a Python float. ``penalty(model, n_batch)``, if
    given, is called after each backward pass (it may add to the gradients) and returns
    a device scalar added to the loss (nnx.sklearn uses it for scikit-learn's L2 term).
    ``data_parallel`` (from :func:`nnx.extensions.resolve_data_parallel`) shards every
    batch over processes and sums their gradients before each step (and before the
    penalty, which each rank then adds once). ``loss_scale`` is :func:`nnx.fit`'s;
    ``capture`` too: steps replayed as CUDA graphs (:mod:`nnx.capture`; ``captured``).
    """

    def __init__(self, model: Any, X: Any, y: Any, *, loss: str | Callable[..., Any],
                 optimizer: Any, batch_size: int | None = None, shuffle: bool = True,
                 seed: Any = None, penalty: Callable[[Any, int], Array] | None = None,
                 data_parallel: DataParallelHooks | None = None, loss_scale: Any = None,
                 capture: bool | None = None) -> None:
        dense = getattr(model, "dense_layers", None)
        if not dense:
            raise ValueError(f"fit: {type(model).__name__} has no Dense layer to train")
        if batch_size is not None:
            _inputs.positive_int("batch_size", batch_size)
        self.model = model
        self.backend = backend = dense[0].backend
        self.xp = xp = backend.xp
        self.dtype = getattr(xp, dense[0].dtype)
        self.n_in, self.n_out = dense[0].in_features, dense[-1].out_features
        self.loss_name = loss if isinstance(loss, str) else None
        fn = _losses.get(loss)  # ValueError listing the names
        self.loss_fn = functools.partial(fn, xp=xp) if fn in _losses.LOSSES.values() else fn
        self.optimizer = _optim.get(optimizer)
        #: the loss scaler (:mod:`nnx.loss_scale`) or None; ``skipped``: steps skipped in
        #: the last epoch because a scaled gradient overflowed
        self.scaler = _loss_scale.resolve(loss_scale, dense)
        self.skipped = 0
        self.penalty = penalty
        self.X, self.y, self.classes = self.prepare(X, y, what="")
        n = self.n = self.X.shape[0]
        size = n if batch_size is None else min(batch_size, n)
        self.bounds = [(a, min(a + size, n)) for a in range(0, n, size)]
        self.shuffle = bool(shuffle) and len(self.bounds) > 1  # one full batch: order is moot
        self.data_parallel = data_parallel
        if data_parallel is not None:  # same problem, rank 0's weights, one seed on all ranks
            seed = data_parallel.start(model, n=n, n_batches=len(self.bounds), seed=seed)
        self._seeds = _registry.spawn_seeds(seed, 1)[0]
        self._weights = None
        if len(self.bounds) > 1:  # batch sizes, to weight each step's loss in the epoch mean
            self._weights = xp.asarray([float(b - a) for a, b in self.bounds],
                                       dtype=self.dtype, device=backend.device)
        self.epochs_run = 0
        #: the largest matrix product of a step, in multiply-adds (the BLAS thread policy)
        self.step_macs = largest_product(size, [(d.in_features, d.out_features) for d in dense])
        #: the epochs as replayed CUDA graphs (nnx.capture), or None for the eager loop
        self.captured = _capture.plan(self, capture)

    def prepare(self, X: Any, y: Any, *, what: str = "") -> tuple[Array, Array, Array | None]:
        """``(X, y, classes)`` on the backend, as :func:`nnx.inputs.prepare` makes them."""
        return _inputs.prepare(X, y, backend=self.backend, dtype=self.dtype, n_in=self.n_in,
                               n_out=self.n_out, loss_name=self.loss_name, what=what)

    # -- the loop ------------------------------------------------------------------------
    def epoch(self) -> float:
        """One pass over the data; returns the epoch's mean loss (one host read).

        Raises :class:`TrainingDivergedError` when the loss, or any parameter after the
        epoch's last step, is NaN or infinite. With loss scaling (one more host read per
        step), the mean is over the steps taken; an epoch whose every step was skipped
        returns the mean of its losses, and raises only for a static scale or a
        non-finite loss (nothing would change the next epoch)."""
        with self.backend.step_threads(self.step_macs):
            if self.scaler is None:
                return self._epoch()
            with warnings.catch_warnings():  # overflow is expected there: NumPy's are noise
                warnings.filterwarnings("ignore", r"(overflow|invalid value) encountered",
                                        RuntimeWarning)
                return self._epoch()

    def _epoch(self) -> float:
        xp, X, y = self.xp, self.X, self.y
        self.epochs_run += 1
        if self.captured is not None:   # the same steps, replayed as CUDA graphs (nnx.capture)
            total = self.captured.epoch()
            mean = float(total + 0.0 * self._parameter_sum())
            return mean if math.isfinite(mean) else self._diverged(None, total)
        if self.shuffle:
            perm = self.backend.permutation(self.n, seed=self._seeds.spawn(1)[0])
            X, y = xp.take(X, perm, axis=0), xp.take(y, perm, axis=0)
        model, loss_fn, step = self.model, self.loss_fn, self.optimizer.step
        forward, backward, penalty = model.forward, model.backward, self.penalty
        classes, dtype = self.classes, self.dtype
        losses = []
        single = len(self.bounds) == 1
        dp = self.data_parallel  # each process trains on its shard of each batch
        scaler, skipped = self.scaler, []  # loss scaling: the steps skipped on inf/NaN
        for a, b in self.bounds:
            lo, hi = (a, b) if dp is None else dp.shard(a, b)
            if hi == lo:  # this rank's shard of a batch smaller than the world is empty
                losses.append(dp.all_reduce(None, 0, b - a))
                if scaler is not None and scaler.update(scaler.unscale_(model)):
                    skipped.append(len(losses) - 1)
                    continue
                step(model)
                continue
            xb, yb = (X, y) if single and dp is None else (X[lo:hi, ...], y[lo:hi, ...])
            if classes is not None:  # per-batch one-hot of validated integer ids
                yb = xp.astype(yb[:, None] == classes, dtype)
            value, grad = loss_fn(forward(xb), yb)
            if scaler is not None:  # dL/dout × S: float16's gradients lifted into range
                grad = scaler.scale_gradient(grad)
            backward(grad, input_grad=False)
            if dp is not None:  # the global batch's gradients and loss, summed over the ranks
                value = dp.all_reduce(value, hi - lo, b - a)
            found = None if scaler is None else scaler.unscale_(model)  # ÷ S; inf/NaN?
            if penalty is not None:
                value = value + penalty(model, b - a)
            losses.append(value)
            if found is not None and scaler.update(found):  # one host read; skip on inf/NaN
                skipped.append(len(losses) - 1)
                continue
            step(model)
        self.skipped = len(skipped)
        if skipped:
            return self._mean_skipping(losses, skipped)
        if single:
            total = losses[0]
        else:
            total = xp.sum(xp.reshape(xp.stack(losses), (-1,)) * self._weights) / self.n
        # One host read carries both checks: 0 · (Σ parameters) is 0 while every parameter
        # is finite and NaN once one is not (or, rarely, once the sum overflows).
        mean = float(total + 0.0 * self._parameter_sum())
        if not math.isfinite(mean):
            mean = self._diverged(losses, total)
        return mean

    def _mean_skipping(self, losses: list[Array], skipped: list[int]) -> float:
        """The epoch's mean loss over the steps taken, when loss scaling skipped some; an
        epoch that took none reports the mean of its losses (inf or NaN possibly) and
        raises only where waiting cannot help: a static scale, or a non-finite loss."""
        xp, sizes = self.xp, [b - a for a, b in self.bounds]
        skip = set(skipped)
        taken = [i for i in range(len(losses)) if i not in skip] or list(range(len(losses)))
        weights = xp.asarray([float(sizes[i]) for i in taken], dtype=self.dtype,
                             device=self.backend.device)
        kept = [losses[i] for i in taken]
        total = xp.sum(xp.reshape(xp.stack(kept), (-1,)) * weights) / sum(sizes[i] for i in taken)
        if len(skipped) < len(losses):
            mean = float(total + 0.0 * self._parameter_sum())
            return mean if math.isfinite(mean) else self._diverged(kept, total)
        mean = float(total)
        if self.scaler.dynamic and math.isfinite(mean):
            return mean  # the scale keeps shrinking until the gradients fit
        why = (f"the static loss scale {self.scaler.scale:g} overflows the gradients: pass a "
               "smaller loss_scale, or loss_scale=None for dynamic scaling"
               if math.isfinite(mean) else f"the loss itself is {mean} (the forward pass "
               "overflowed; loss scaling cannot help: compute in bfloat16 or float32)")
        raise TrainingDivergedError(
            f"every step of epoch {self.epochs_run} (counted from 1) was skipped for an inf "
            f"or NaN gradient: {why}")

    def _parameter_sum(self) -> Array:
        """Σ of every parameter as a device scalar: one reduction per flat buffer
        (:mod:`nnx.flat`), else one per parameter array."""
        xp = self.xp
        flat = getattr(self.model, "flat", None)
        if flat is not None and flat.ready():
            arrays = [group.params for group in flat.groups]
        else:
            arrays = [p for layer in self.model.dense_layers for p in layer.parameters().values()]
        total = xp.sum(arrays[0])
        for p in arrays[1:]:
            total = total + xp.sum(p)
        return total

    def _diverged(self, losses: list[Array] | None, total: Array) -> float:
        """Raise for a non-finite loss or parameter; the mean loss when the check's sum of
        the parameters merely overflowed. ``losses`` is None for captured steps."""
        lr = getattr(self.optimizer, "lr", None)
        advice = (f"Try a smaller learning rate{'' if lr is None else f' than {lr}'} or another "
                  "initialization (another seed, or init='xavier_uniform' / 'he_normal'); "
                  "scaling the inputs also helps")
        mean = float(total)
        if not math.isfinite(mean) and losses is None:
            raise TrainingDivergedError(
                f"the loss became {mean} at epoch {self.epochs_run} (counted from 1), in a step "
                f"replayed as a CUDA graph (fit(..., capture=False) names the step): training "
                f"diverged. {advice}")
        if not math.isfinite(mean):
            values = [float(v) for v in losses]
            step = next((i for i, v in enumerate(values) if not math.isfinite(v)),
                        len(values) - 1)
            raise TrainingDivergedError(
                f"the loss became {values[step]} at epoch {self.epochs_run}, step {step + 1} "
                f"of {len(values)} (both counted from 1): training diverged. {advice}")
        xp = self.xp
        model = self.model
        named = (model.parameters() if callable(getattr(model, "parameters", None)) else
                 {f"{i}.{n}": p for i, d in enumerate(model.dense_layers)
                  for n, p in d.parameters().items()})
        bad = [name for name, p in named.items() if not bool(xp.all(xp.isfinite(p)))]
        if not bad:  # every parameter is finite; only their sum overflowed
            return mean
        raise TrainingDivergedError(
            f"the parameters became NaN or infinite during epoch {self.epochs_run} (counted "
            f"from 1), in {', '.join(bad)}, while the epoch's mean loss was still finite "
            f"({mean:.6g}): training diverged. {advice}; inputs holding inf or NaN do this too")

    def evaluate(self, X: Array, y: Array, classes: Array | None = None,
                 batch_size: int | None = None) -> tuple[float, float | None]:
        """``(loss, accuracy)`` on prepared data (accuracy None for non-classification)."""
        xp = self.xp
        out = forward_all(self.model, X, batch_size, xp)
        if classes is not None:
            y = xp.astype(y[:, None] == classes, self.dtype)
        value = self.loss_fn(out, y)[0]
        acc = _accuracy(self.loss_name, out, y, xp)
        if acc is None:
            return float(value), None
        both = self.backend.to_numpy(xp.stack([xp.astype(value, self.dtype), acc])).tolist()
        return both[0], both[1]


def _accuracy(name: str | None, out: Array, y: Array, xp: Any) -> Array | None:
    if name == "softmax_cross_entropy":
        hit = xp.argmax(out, axis=1) == xp.argmax(y, axis=1)
    elif name == "sigmoid_binary_cross_entropy":
        hit = (out > 0) == (y > 0.5)
    elif name == "binary_cross_entropy":
        hit = (out > 0.5) == (y > 0.5)
    else:
        return None
    return xp.mean(xp.astype(hit, out.dtype))


def largest_product(batch: int, shapes: Any) -> int:
    """Multiply-adds of the largest matrix product in a step of ``batch`` rows through
    Dense layers of ``shapes`` ((in, out) pairs): what fit's thread setting is chosen by
    (:meth:`Backend.step_threads`)."""
    return max(batch * n_in * n_out for n_in, n_out in shapes)


def forward_all(model: Any, X: Array, batch_size: int | None, xp: Any) -> Array:
    """``model.forward`` over the rows of ``X`` (n, in), ``batch_size`` rows at a time."""
    n = X.shape[0]
    if batch_size is None or batch_size >= n:
        return model.forward(X)
    return xp.concat([model.forward(X[a:min(a + batch_size, n), ...])
                      for a in range(0, n, batch_size)], axis=0)
