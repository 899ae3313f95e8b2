"""The training loop's public face: ``fit`` and ``predict``.

    history = model.fit(X, y, loss="softmax_cross_entropy", optimizer="adam", epochs=20,
                        batch_size=64, seed=0, validation_data=(X_val, y_val),
                        callbacks=[nnx.callbacks.EarlyStopping(patience=3)])
    history.loss[-1], history.val_accuracy[-1]

Inputs are converted once, up front, to the model's backend and dtype with
:func:`nnx.asarray` (:mod:`nnx.inputs`) — so NumPy arrays train a torch or CuPy model,
copied to the device once. After that everything stays on the device
(:class:`nnx.trainer.Trainer`): the host reads one number per epoch (plus two for
validation). Callbacks (:mod:`nnx.callbacks`) are called once per epoch, never per
step. Data-parallel training and lazy (Dask) inputs come from the tools that register
with :mod:`nnx.extensions`; this module imports none of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import extensions as _extensions
from . import inputs as _inputs
from .trainer import Trainer, TrainingDivergedError, forward_all

Array = Any

__all__ = ["History", "TrainingDivergedError", "fit", "predict", "Trainer"]


@dataclass
class History:
    """What :func:`fit` measured, one entry per epoch.

    ``loss`` is the mean training loss over the epoch's samples (each minibatch's loss
    weighted by its size, as the parameters moved). ``val_loss`` and ``val_accuracy``
    are filled when ``validation_data`` is given; ``val_accuracy`` only for the
    classification losses (argmax for softmax cross-entropy; threshold 0.5 on
    probabilities for ``binary_cross_entropy``, 0 on logits for the sigmoid variant).
    ``lr`` is the optimizer's learning rate during each epoch (callbacks may change it).

    With loss scaling (``fit``'s ``loss_scale``), ``loss_scale`` holds the scale after
    each epoch and ``skipped`` how many of its steps were skipped for an inf or NaN
    gradient (both stay empty without scaling). ``loss`` then averages the unscaled
    losses of the steps taken; a skipped step's loss, which may be inf, is left out (an
    epoch whose every step was skipped records the mean of its losses).
    """

    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    loss_scale: list[float] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        return len(self.loss)

    def __getitem__(self, key: str) -> list[float]:
        if key not in _KEYS:
            raise KeyError(f"{key!r}; History has {', '.join(map(repr, _KEYS))}")
        return getattr(self, key)


_KEYS = ("loss", "val_loss", "val_accuracy", "lr", "loss_scale", "skipped")
_HOOKS = ("on_train_begin", "on_epoch_begin", "on_epoch_end", "on_train_end")


class _Callbacks:
    """Calls the hooks of ``fit``'s callbacks (the protocol of :mod:`nnx.callbacks`)."""

    def __init__(self, callbacks: Any, model: Any, optimizer: Any, params: dict[str, Any]):
        if any(hasattr(callbacks, hook) for hook in _HOOKS):
            callbacks = [callbacks]  # one callback given bare
        if isinstance(callbacks, (str, bytes)) or not isinstance(callbacks, Sequence):
            raise TypeError(f"fit: callbacks must be a list of callbacks; got {callbacks!r}")
        for cb in callbacks:
            if not any(callable(getattr(cb, hook, None)) for hook in _HOOKS):
                raise TypeError(f"fit: {cb!r} is not a callback: it has none of the methods "
                                f"{', '.join(_HOOKS)} (subclass nnx.callbacks.Callback)")
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            cb.model, cb.optimizer, cb.params = model, optimizer, params
            cb.stop_training = False

    def call(self, hook: str, *args: Any) -> bool:
        """Call ``hook`` on every callback in order; True when one asked to stop."""
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(*args)
        return any(getattr(cb, "stop_training", False) for cb in self.callbacks)


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
        distributed: Any = None, callbacks: Sequence[Any] | None = None,
        loss_scale: Any = None) -> History:
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
            the same result bit for bit on the same backend. Epoch ``e`` (from 1) visits
            the rows in the order ``numpy.random.default_rng(SeedSequence(seed,
            spawn_key=(0, e - 1))).permutation(n)``, on every backend.
        validation_data: ``(X_val, y_val)`` evaluated after every epoch.
        progress: show a tqdm bar over epochs for runs longer than half a second
            (silently none when tqdm is not installed).
        distributed: data-parallel training over MPI (:mod:`nnx.distributed`; run the
            script with ``mpiexec -n N``): True, or a ``DataParallel``; None follows an
            enclosing ``nnx.distributed.data_parallel()`` block; False never. Each rank
            trains on its shard of every batch; the result equals one process's.
        callbacks: objects with the hooks of :mod:`nnx.callbacks` (``EarlyStopping``,
            ``ModelCheckpoint``, learning-rate schedules, your own ``Callback``), called
            in order. ``logs`` holds ``loss``, ``lr`` and, with validation data,
            ``val_loss`` (and ``val_accuracy`` for classification losses). A callback
            whose ``stop_training`` is True after ``on_epoch_end`` ends training there;
            ``on_train_end`` runs when training ends normally (not when fit raises).
        loss_scale: loss scaling for float16 (:mod:`nnx.loss_scale`). None: dynamic
            scaling (a new :class:`~nnx.loss_scale.LossScaler`) when a Dense computes in
            float16, none otherwise; False: none; True: dynamic; a positive number: that
            static scale; a ``LossScaler``: used as given (its scale carries over between
            calls). A step whose scaled gradients hold inf or NaN is skipped (the
            optimizer does not run) and never raises; see :class:`History`.

    Raises:
        ValueError: bad shapes or lengths, labels that are not valid classes, unknown
            loss or optimizer names, ``epochs``/``batch_size`` below 1.
        TrainingDivergedError: (a FloatingPointError) the loss, or a parameter after an
            epoch, became NaN or infinite; the message names the epoch (and the step or
            the arrays). The model keeps the diverged weights.
        TypeError: ``callbacks`` holds something that is not a callback, or
            ``loss_scale`` is none of the forms above.
    """
    _inputs.positive_int("epochs", epochs)
    dp = _extensions.resolve_data_parallel(distributed)
    trainer = Trainer(model, X, y, loss=loss, optimizer=optimizer, batch_size=batch_size,
                      shuffle=shuffle, seed=seed, data_parallel=dp, loss_scale=loss_scale)
    val = None
    if validation_data is not None:
        try:
            X_val, y_val = validation_data
        except (TypeError, ValueError):
            raise ValueError("fit: validation_data must be a pair (X_val, y_val)") from None
        val = trainer.prepare(X_val, y_val, what="_val")
    history = History()
    logs: dict[str, float] = {}
    hooks = None
    if callbacks is not None:
        has_lr = getattr(trainer.optimizer, "lr", None) is not None
        keys = ["loss"] + (["lr"] if has_lr else []) + ([] if val is None else ["val_loss"])
        if val is not None and trainer.loss_name in _inputs.CLASSIFICATION:
            keys.append("val_accuracy")
        hooks = _Callbacks(callbacks, model, trainer.optimizer,
                           {"epochs": epochs, "steps": len(trainer.bounds),
                            "batch_size": batch_size, "metrics": keys,
                            "is_root": dp is None or dp.is_root})
        hooks.call("on_train_begin", logs)
    bar = _progress_bar(epochs, progress and (dp is None or dp.is_root))  # rank 0 only
    shown = time.perf_counter()
    try:
        for epoch in range(epochs):
            if hooks is not None:
                hooks.call("on_epoch_begin", epoch, {})
            lr = getattr(trainer.optimizer, "lr", None)
            logs = {"loss": trainer.epoch()}
            if lr is not None:
                logs["lr"] = lr
            if val is not None:
                logs["val_loss"], vacc = trainer.evaluate(*val, batch_size=batch_size)
                if vacc is not None:
                    logs["val_accuracy"] = vacc
            for key, value in logs.items():
                history[key].append(value)
            if trainer.scaler is not None:
                history.loss_scale.append(trainer.scaler.scale)
                history.skipped.append(trainer.skipped)
            if bar is not None:
                bar.update(1)
                if time.perf_counter() - shown > 0.2:
                    shown = time.perf_counter()
                    bar.set_postfix_str(f"loss={history.loss[-1]:.4g}", refresh=False)
            if hooks is not None and hooks.call("on_epoch_end", epoch, dict(logs)):
                break
    finally:
        if bar is not None:
            bar.close()
    if hooks is not None:
        hooks.call("on_train_end", dict(logs))
    return history


def predict(model: Any, X: Any, batch_size: int | None = None) -> Array:
    """The model's output (n, out) for inputs ``X`` (n, in), as an array of its backend.

    ``X`` is converted like :func:`fit`'s. The output is what the last layer produces
    (logits for a model without an output activation). ``batch_size`` bounds memory.
    A ``dask.array`` chunked along the rows gives a lazy dask array, scored chunk by
    chunk with the weights as they are now (:mod:`nnx.distributed.dask_predict`).
    """
    dense = getattr(model, "dense_layers", None)
    if not dense:
        raise ValueError(f"predict: {type(model).__name__} has no Dense layer")
    if batch_size is not None:
        _inputs.positive_int("batch_size", batch_size)
    lazy = _extensions.predictor_for(X)  # a dask array: scored chunk by chunk, lazily
    if lazy is not None:
        return lazy(model, X, batch_size=batch_size)
    backend = dense[0].backend
    xp = backend.xp
    X = _inputs.convert("X", X, backend)
    if X.ndim != 2 or X.shape[1] != dense[0].in_features:
        raise ValueError(f"predict: X must have shape (n, {dense[0].in_features}); "
                         f"got {tuple(X.shape)}")
    dtype = getattr(xp, dense[0].dtype)
    if X.dtype != dtype:
        X = xp.astype(X, dtype)
    return forward_all(model, X, batch_size, xp)
