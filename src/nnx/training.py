"""The training loop: forward, loss, backward, optimizer step, over minibatches and epochs.

    history = model.fit(X, y, loss="softmax_cross_entropy", optimizer="adam", epochs=20,
                        batch_size=64, seed=0, validation_data=(X_val, y_val))
    history.loss[-1], history.val_accuracy[-1]

Inputs are converted once, up front, to the model's backend and dtype with
:func:`nnx.asarray` — so NumPy arrays train a torch or CuPy model, copied to the device
once. After that everything stays on the device: each epoch permutes the rows there
(``xp.take`` with a seeded permutation), minibatches are slices ``X[a:b, ...]``, and the
loss of every step is kept as a device scalar; the host reads one number per epoch
(plus two for validation). Class labels are validated once, not per step.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import backends as _registry
from . import dask_predict as _dask_predict
from . import distributed as _distributed
from . import losses as _losses
from . import optim as _optim
from .backend import asarray

Array = Any

__all__ = ["History", "TrainingDivergedError", "fit", "predict", "Trainer"]

#: above this many elements the (n, k) one-hot matrix is built per minibatch instead.
ONE_HOT_LIMIT = 1 << 24

_CLASSIFICATION = ("binary_cross_entropy", "sigmoid_binary_cross_entropy",
                   "softmax_cross_entropy")


class TrainingDivergedError(FloatingPointError):
    """The loss became NaN or infinite; the message names the epoch and the step."""


@dataclass
class History:
    """What :func:`fit` measured, one entry per epoch.

    ``loss`` is the mean training loss over the epoch's samples (each minibatch's loss
    weighted by its size, as the parameters moved). ``val_loss`` and ``val_accuracy``
    are filled when ``validation_data`` is given; ``val_accuracy`` only for the
    classification losses (argmax for softmax cross-entropy; threshold 0.5 on
    probabilities for ``binary_cross_entropy``, 0 on logits for the sigmoid variant).
    """

    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        return len(self.loss)

    def __getitem__(self, key: str) -> list[float]:
        if key not in ("loss", "val_loss", "val_accuracy"):
            raise KeyError(f"{key!r}; History has 'loss', 'val_loss' and 'val_accuracy'")
        return getattr(self, key)


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"fit: {name} must be a positive integer; got {value!r}")
    return value


def _convert(what: str, x: Any, backend: Any) -> Array:
    if getattr(getattr(x, "dtype", None), "kind", None) in ("U", "S", "O"):
        raise ValueError(f"fit: {what} must be numeric; got an array of dtype {x.dtype}. "
                         "Map class names to integer ids first (nnx.sklearn.MLPClassifier "
                         "does this for you)")
    try:
        arr = asarray(x, backend=backend)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"fit: {what} could not be made a {backend.name} array: {exc}") from None
    if not backend.xp.isdtype(arr.dtype, ("real floating", "integral", "bool")):
        raise ValueError(f"fit: {what} must be real numbers; got dtype {arr.dtype}")
    return arr


class Trainer:
    """One model, one dataset, one loss and one optimizer, ready to run epochs.

    Converts and validates everything once; :meth:`epoch` then runs one pass over the
    data and returns the mean loss as a Python float. ``penalty(model, n_batch)``, if
    given, is called after each backward pass (it may add to the gradients) and returns
    a device scalar added to the loss (nnx.sklearn uses it for scikit-learn's L2 term).
    """

    def __init__(self, model: Any, X: Any, y: Any, *, loss: str | Callable[..., Any],
                 optimizer: Any, batch_size: int | None = None, shuffle: bool = True,
                 seed: Any = None, penalty: Callable[[Any, int], Array] | None = None,
                 data_parallel: Any = None) -> None:
        dense = getattr(model, "dense_layers", None)
        if not dense:
            raise ValueError(f"fit: {type(model).__name__} has no Dense layer to train")
        if batch_size is not None:
            _positive_int("batch_size", batch_size)
        self.model = model
        self.backend = backend = dense[0].backend
        self.xp = xp = backend.xp
        self.dtype = getattr(xp, dense[0].dtype)
        self.n_in, self.n_out = dense[0].in_features, dense[-1].out_features
        self.loss_name = loss if isinstance(loss, str) else None
        fn = _losses.get(loss)  # ValueError listing the names
        self.loss_fn = functools.partial(fn, xp=xp) if fn in _losses.LOSSES.values() else fn
        self.optimizer = _optim.get(optimizer)
        self.penalty = penalty
        self.X, self.y, self.classes = self.prepare(X, y, what="")
        n = self.n = self.X.shape[0]
        size = n if batch_size is None else min(batch_size, n)
        self.bounds = [(a, min(a + size, n)) for a in range(0, n, size)]
        self.shuffle = bool(shuffle) and len(self.bounds) > 1  # one full batch: order is moot
        self.data_parallel = data_parallel  # nnx.distributed.DataParallel, or None
        if data_parallel is not None:  # same problem, rank 0's weights, one seed on all ranks
            seed = data_parallel.start(model, n=n, n_batches=len(self.bounds), seed=seed)
        self._seeds = _registry.spawn_seeds(seed, 1)[0]
        self._weights = None
        if len(self.bounds) > 1:  # batch sizes, to weight each step's loss in the epoch mean
            self._weights = xp.asarray([float(b - a) for a, b in self.bounds],
                                       dtype=self.dtype, device=backend.device)
        self.epochs_run = 0

    # -- inputs --------------------------------------------------------------------------
    def prepare(self, X: Any, y: Any, *, what: str = "") -> tuple[Array, Array, Array | None]:
        """``(X, y, classes)`` on the backend: X (n, in) in the model's dtype, y ready for
        the loss; ``classes`` is set when integer ids are one-hot encoded per batch."""
        xp, dtype, k = self.xp, self.dtype, self.n_out
        X = _convert(f"X{what}", X, self.backend)
        if X.ndim != 2 or X.shape[1] != self.n_in:
            raise ValueError(f"fit: X{what} must have shape (n, {self.n_in}) for this model; "
                             f"got {tuple(X.shape)}")
        if X.shape[0] < 1:
            raise ValueError(f"fit: X{what} has no rows")
        if X.dtype != dtype:
            X = xp.astype(X, dtype)
        y = _convert(f"y{what}", y, self.backend)
        n = X.shape[0]
        if y.ndim == 0 or y.shape[0] != n:
            got = "a scalar" if y.ndim == 0 else f"{y.shape[0]} rows"
            raise ValueError(f"fit: X{what} has {n} rows but y{what} has {got}; "
                             "they must have one target per sample")
        name = self.loss_name
        if name is None:  # a user's callable: hand y over as given, on the backend
            return X, y, None
        if name == "softmax_cross_entropy":
            return self._class_targets(X, y, what)
        if y.ndim == 1 and k == 1:
            y = xp.reshape(y, (n, 1))
        if tuple(y.shape) != (n, k):
            raise ValueError(f"fit: the model outputs ({n}, {k}) but y{what} has shape "
                             f"{tuple(y.shape)}")
        y = xp.astype(y, dtype) if y.dtype != dtype else y
        if name in _CLASSIFICATION and bool(xp.any((y < 0) | (y > 1))):
            raise ValueError(f"fit: {name} needs targets in [0, 1] (0/1 class labels or "
                             f"probabilities); y{what} has values from {float(xp.min(y))} to "
                             f"{float(xp.max(y))}")
        return X, y, None

    def _class_targets(self, X: Array, y: Array, what: str) -> tuple[Array, Array, Array | None]:
        xp, dtype, k, n = self.xp, self.dtype, self.n_out, X.shape[0]
        if y.ndim == 2:
            if tuple(y.shape) != (n, k):
                raise ValueError(f"fit: softmax_cross_entropy needs class ids ({n},) or rows "
                                 f"({n}, {k}); y{what} has shape {tuple(y.shape)}")
            y = xp.astype(y, dtype) if y.dtype != dtype else y
            if bool(xp.any((y < 0) | (y > 1))):
                raise ValueError(f"fit: the rows of y{what} must be one-hot or probabilities "
                                 "in [0, 1]")
            return X, y, None
        if y.ndim != 1:
            raise ValueError(f"fit: y{what} must be class ids (n,) or rows (n, {k}); "
                             f"got shape {tuple(y.shape)}")
        try:
            ids = _class_ids(y, k, xp)
        except ValueError as exc:
            raise ValueError(f"fit: y{what} for softmax_cross_entropy: {exc}") from None
        classes = xp.arange(k, dtype=xp.int64, device=self.backend.device)[None, :]
        if n * k <= ONE_HOT_LIMIT:  # one-hot once; else per minibatch, to save memory
            return X, xp.astype(ids[:, None] == classes, dtype), None
        return X, ids, classes


    # -- the loop ------------------------------------------------------------------------
    def epoch(self) -> float:
        """One pass over the data; returns the epoch's mean loss (one host read)."""
        xp, X, y = self.xp, self.X, self.y
        self.epochs_run += 1
        if self.shuffle:
            perm = self.backend.permutation(self.n, seed=self._seeds.spawn(1)[0])
            X, y = xp.take(X, perm, axis=0), xp.take(y, perm, axis=0)
        model, loss_fn, step = self.model, self.loss_fn, self.optimizer.step
        forward, backward, penalty = model.forward, model.backward, self.penalty
        classes, dtype = self.classes, self.dtype
        losses = []
        single = len(self.bounds) == 1
        dp = self.data_parallel  # nnx.distributed: each rank trains on its shard of each batch
        for a, b in self.bounds:
            lo, hi = (a, b) if dp is None else dp.shard(a, b)
            if hi == lo:  # this rank's shard of a batch smaller than the world is empty
                losses.append(dp.all_reduce(None, 0, b - a))
                step(model)
                continue
            xb, yb = (X, y) if single and dp is None else (X[lo:hi, ...], y[lo:hi, ...])
            if classes is not None:  # per-batch one-hot of validated integer ids
                yb = xp.astype(yb[:, None] == classes, dtype)
            value, grad = loss_fn(forward(xb), yb)
            backward(grad, input_grad=False)
            if penalty is not None:
                value = value + penalty(model, b - a)
            if dp is not None:  # the global batch's gradients and loss, summed over the ranks
                value = dp.all_reduce(value, hi - lo, b - a)
            step(model)
            losses.append(value)
        if single:
            total = losses[0]
        else:
            total = xp.sum(xp.reshape(xp.stack(losses), (-1,)) * self._weights) / self.n
        mean = float(total)
        if not math.isfinite(mean):
            self._diverged(losses)
        return mean

    def _diverged(self, losses: list[Array]) -> None:
        values = [float(v) for v in losses]
        step = next((i for i, v in enumerate(values) if not math.isfinite(v)), len(values) - 1)
        lr = getattr(self.optimizer, "lr", None)
        raise TrainingDivergedError(
            f"the loss became {values[step]} at epoch {self.epochs_run}, step {step + 1} of "
            f"{len(values)} (both counted from 1): training diverged. Try a smaller learning "
            f"rate{'' if lr is None else f' than {lr}'} or another initialization (another "
            "seed, or init='xavier_uniform' / 'he_normal'); scaling the inputs also helps")

    def evaluate(self, X: Array, y: Array, classes: Array | None = None,
                 batch_size: int | None = None) -> tuple[float, float | None]:
        """``(loss, accuracy)`` on prepared data (accuracy None for non-classification)."""
        xp = self.xp
        out = _forward_all(self.model, X, batch_size, xp)
        if classes is not None:
            y = xp.astype(y[:, None] == classes, self.dtype)
        value = self.loss_fn(out, y)[0]
        acc = _accuracy(self.loss_name, out, y, xp)
        if acc is None:
            return float(value), None
        both = self.backend.to_numpy(xp.stack([xp.astype(value, self.dtype), acc])).tolist()
        return both[0], both[1]


def _class_ids(y: Array, k: int, xp: Any) -> Array:
    """(n,) labels as int64 class ids, checked once: integers (or integral floats) in [0, k)."""
    if xp.isdtype(y.dtype, "real floating"):
        if not bool(xp.all(y == xp.round(y))):
            raise ValueError(f"class labels must be integers in [0, {k}); got non-integer "
                             f"values (dtype {y.dtype})")
    elif not xp.isdtype(y.dtype, ("integral", "bool")):
        raise ValueError(f"class labels must be integers in [0, {k}); got dtype {y.dtype}")
    ids = xp.astype(y, xp.int64)
    if bool(xp.any((ids < 0) | (ids >= k))):
        raise ValueError(f"class labels must lie in [0, {k}) for a model with {k} outputs; "
                         f"got values from {int(xp.min(ids))} to {int(xp.max(ids))}")
    return ids


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


def _forward_all(model: Any, X: Array, batch_size: int | None, xp: Any) -> Array:
    n = X.shape[0]
    if batch_size is None or batch_size >= n:
        return model.forward(X)
    return xp.concat([model.forward(X[a:min(a + batch_size, n), ...])
                      for a in range(0, n, batch_size)], axis=0)


def _progress_bar(epochs: int, progress: bool) -> Any:
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is optional (the demo/test extras): train without a bar
        return None
    return tqdm(total=epochs, unit="epoch", delay=0.5, leave=False, dynamic_ncols=True)


def fit(model: Any, X: Any, y: Any, *, loss: str | Callable[..., Any], optimizer: Any,
        epochs: int, batch_size: int | None = None, shuffle: bool = True, seed: Any = None,
        validation_data: tuple[Any, Any] | None = None, progress: bool = True,
        distributed: Any = None) -> History:
    """Train ``model`` by minibatch gradient descent; returns a :class:`History`.

    Args:
        model: a :class:`~nnx.Sequential` (or MLP); trained in place.
        X: inputs (n, in): an array of the model's backend, or any array-like (NumPy
            arrays, lists, another backend's arrays), converted once with
            :func:`nnx.asarray` and cast to the model's dtype.
        y: targets with n rows. ``"mse"``: (n, out) or (n,) for one output.
            ``"binary_cross_entropy"`` / ``"sigmoid_binary_cross_entropy"``: 0/1
            labels (or probabilities), same shapes. ``"softmax_cross_entropy"``:
            integer class ids (n,) in [0, out) or (n, out) one-hot/probability rows.
            Labels are validated once, here.
        loss: a name from :data:`nnx.losses.LOSSES`, or a callable
            ``loss(pred, y) -> (loss, dloss/dpred)`` (it receives y as converted, uncast).
        optimizer: an :class:`nnx.optim.Optimizer` (its state carries over between
            calls) or a name, ``"sgd"`` (lr 0.01) or ``"adam"`` (lr 1e-3).
        epochs: passes over the data, ≥ 1.
        batch_size: rows per step; None for the full batch (clipped to n).
        shuffle: permute the rows every epoch (skipped when one batch holds them all).
        seed: seeds the permutations; the same seed (and the same initial model) gives
            the same result bit for bit on the same backend.
        validation_data: ``(X_val, y_val)`` evaluated after every epoch.
        progress: show a tqdm bar over epochs for runs longer than half a second
            (silently none when tqdm is not installed).
        distributed: data-parallel training over MPI (:mod:`nnx.distributed`; run the
            script with ``mpiexec -n N``): True, or a ``DataParallel``; None follows an
            enclosing ``nnx.distributed.data_parallel()`` block; False never. Each rank
            trains on its shard of every batch; the result equals one process's.

    Raises:
        ValueError: bad shapes or lengths, labels that are not valid classes, unknown
            loss or optimizer names, ``epochs``/``batch_size`` below 1.
        TrainingDivergedError: (a FloatingPointError) the loss became NaN or infinite;
            the message names the epoch and step. The model keeps the diverged weights.
    """
    _positive_int("epochs", epochs)
    dp = _distributed.resolve(distributed)
    trainer = Trainer(model, X, y, loss=loss, optimizer=optimizer, batch_size=batch_size,
                      shuffle=shuffle, seed=seed, data_parallel=dp)
    val = None
    if validation_data is not None:
        try:
            X_val, y_val = validation_data
        except (TypeError, ValueError):
            raise ValueError("fit: validation_data must be a pair (X_val, y_val)") from None
        val = trainer.prepare(X_val, y_val, what="_val")
    history = History()
    bar = _progress_bar(epochs, progress and (dp is None or dp.is_root))  # rank 0 only
    shown = time.perf_counter()
    try:
        for _ in range(epochs):
            history.loss.append(trainer.epoch())
            if val is not None:
                vloss, vacc = trainer.evaluate(*val, batch_size=batch_size)
                history.val_loss.append(vloss)
                if vacc is not None:
                    history.val_accuracy.append(vacc)
            if bar is not None:
                bar.update(1)
                if time.perf_counter() - shown > 0.2:
                    shown = time.perf_counter()
                    bar.set_postfix_str(f"loss={history.loss[-1]:.4g}", refresh=False)
    finally:
        if bar is not None:
            bar.close()
    return history


def predict(model: Any, X: Any, batch_size: int | None = None) -> Array:
    """The model's output (n, out) for inputs ``X`` (n, in), as an array of its backend.

    ``X`` is converted like :func:`fit`'s. The output is what the last layer produces
    (logits for a model without an output activation). ``batch_size`` bounds memory.
    A ``dask.array`` chunked along the rows gives a lazy dask array, scored chunk by
    chunk with the weights as they are now (:mod:`nnx.dask_predict`).
    """
    dense = getattr(model, "dense_layers", None)
    if not dense:
        raise ValueError(f"predict: {type(model).__name__} has no Dense layer")
    if batch_size is not None:
        _positive_int("batch_size", batch_size)
    if _dask_predict.is_dask_array(X):  # out of core: one chunk at a time, lazily
        return _dask_predict.predict(model, X, batch_size=batch_size)
    backend = dense[0].backend
    xp = backend.xp
    X = _convert("X", X, backend)
    if X.ndim != 2 or X.shape[1] != dense[0].in_features:
        raise ValueError(f"predict: X must have shape (n, {dense[0].in_features}); "
                         f"got {tuple(X.shape)}")
    dtype = getattr(xp, dense[0].dtype)
    if X.dtype != dtype:
        X = xp.astype(X, dtype)
    return _forward_all(model, X, batch_size, xp)
