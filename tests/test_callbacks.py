"""Callbacks for fit: the protocol, EarlyStopping (Keras 3's rules), ModelCheckpoint.

EarlyStopping's expected stops are worked out by hand from Keras 3's documented rules
(keras/src/callbacks/early_stopping.py): ``wait`` grows every monitored epoch, an
improvement (beating the best by more than ``min_delta``) resets it (with a
``baseline``, only when it also beats the baseline), and training stops at the first
non-improving epoch > 0 whose ``wait >= patience``. A scripted ``val_loss`` sequence is
fed through a real ``fit``: a callback listed first overwrites ``logs["val_loss"]``,
and every later callback sees the same ``logs``, as in Keras.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

import nnx
from nnx.callbacks import Callback, EarlyStopping, LambdaCallback, ModelCheckpoint

X = np.random.default_rng(0).standard_normal((12, 3))
Y = np.stack([np.sin(X[:, 0]), X[:, 1] * X[:, 2]], axis=1)


def _script(values, key="val_loss"):
    """A callback that replaces ``logs[key]`` with ``values[epoch]``."""
    return LambdaCallback(on_epoch_end=lambda epoch, logs: logs.__setitem__(key, values[epoch]))


def _weights(model):
    return {k: nnx.to_numpy(v).copy() for k, v in model.parameters().items()}


class _Recorder(Callback):
    """Keeps a host copy of the weights at the end of every epoch."""

    def __init__(self):
        self.seen = []

    def on_epoch_end(self, epoch, logs=None):
        self.seen.append(_weights(self.model))


def _fit(callbacks, epochs=12, classify=False, **kw):
    """An MLP 3-5-2 trained on 12 rows in batches of 4 (classes: val_accuracy is logged)."""
    model = nnx.MLP([3, 5, 2], activation="tanh", seed=0)
    y = (X[:, 0] > 0).astype(np.int64) if classify else Y
    kw.setdefault("validation_data", (X[:4], y[:4]))
    history = model.fit(X, y, loss="softmax_cross_entropy" if classify else "mse",
                        optimizer=nnx.optim.SGD(lr=0.05), epochs=epochs, batch_size=4, seed=0,
                        progress=False, callbacks=callbacks, **kw)
    return model, history


# (script, EarlyStopping arguments, the epoch it stops at (None: runs all 12), best epoch)
CASES = [
    ([1.0, 0.9, 0.95, 0.92] + [0.1] * 8, dict(patience=2), 3, 1),
    ([1.0, 0.97, 0.96, 0.9] + [0.1] * 8, dict(patience=1, min_delta=0.05), 1, 0),
    ([1.0, 0.97, 0.96, 0.9] + [0.1] * 8, dict(patience=1, min_delta=-0.05), 1, 0),   # |min_delta|
    ([1.0, 1.0] + [0.5] * 10, dict(patience=0), 1, 0),
    ([5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8], dict(patience=1, start_from_epoch=2), 3, 2),
    ([0.9, 0.8, 0.85] + [0.1] * 9, dict(patience=2), 5, 3),
    ([0.9, 0.8, 0.85] + [0.1] * 9, dict(patience=2, baseline=0.5), 2, 1),
    ([0.9, 0.8, 0.7, 0.6] + [0.55 - 0.01 * i for i in range(8)],
     dict(patience=1, baseline=0.1), None, 11),
    ([1.0, math.nan, math.nan, 0.5] + [0.4] * 8, dict(patience=1), 1, 0),
    ([math.nan, 1.0, 1.0] + [0.5] * 9, dict(patience=0), 2, 1),   # epoch 0 never stops
    ([1.0, 2.0, 3.0, 4.0] * 3, dict(patience=3), 3, 0),
    ([3.0, 2.0, 1.0, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0.04, 0.03, 0.02], dict(patience=0),
     None, 11),
]


@pytest.mark.parametrize("script, kwargs, stop, best", CASES)
def test_early_stopping_stops_where_keras_does(script, kwargs, stop, best):
    stopper = EarlyStopping(**kwargs)
    _, history = _fit([_script(script), stopper])
    assert history.epochs == (12 if stop is None else stop + 1)
    assert stopper.stopped_epoch == (0 if stop is None else stop)
    assert stopper.best_epoch == best
    assert stopper.best == script[best]


def test_early_stopping_in_max_mode_on_accuracy():
    stopper = EarlyStopping(monitor="val_accuracy", patience=1)
    assert stopper.mode == "max"
    _, history = _fit([_script([0.5, 0.6, 0.6, 0.55] + [0.9] * 8, "val_accuracy"), stopper],
                      classify=True)
    assert history.epochs == 3 and stopper.best_epoch == 1


@pytest.mark.parametrize("why", ["early stopping", "epochs ran out", "another callback"])
def test_restore_best_weights_is_bitwise(why):
    script = [1.0, 0.9, 0.5, 0.7, 0.8, 0.6, 0.9, 0.95]
    recorder = _Recorder()
    stopper = EarlyStopping(patience=3 if why == "early stopping" else 10,
                            restore_best_weights=True)
    stop_at = LambdaCallback(on_epoch_end=lambda epoch, logs: epoch == 4)
    extra = [stop_at] if why == "another callback" else []
    model, history = _fit([_script(script), stopper, recorder, *extra], epochs=8)
    assert history.epochs == {"early stopping": 6, "epochs ran out": 8,
                              "another callback": 5}[why]
    assert stopper.best_epoch == 2
    final = _weights(model)
    for name, value in recorder.seen[2].items():
        assert np.array_equal(final[name], value), name
    assert not np.array_equal(final["0.W"], recorder.seen[-1]["0.W"])


def test_without_restore_the_last_weights_stay(backend):
    recorder = _Recorder()
    model, history = _fit([_script([1.0, 0.5, 0.7, 0.8] + [1.0] * 8),
                           EarlyStopping(patience=2), recorder])
    assert history.epochs == 4
    final = _weights(model)
    assert all(np.array_equal(final[k], v) for k, v in recorder.seen[-1].items())


def test_restore_on_every_backend(backend):
    recorder = _Recorder()
    stopper = EarlyStopping(monitor="loss", patience=1, restore_best_weights=True)
    model, _ = _fit([_script([3.0, 1.0, 2.0, 2.5], "loss"), stopper, recorder],
                    validation_data=None, epochs=4)
    final = _weights(model)
    assert stopper.stopped_epoch == 2
    assert all(np.array_equal(final[k], v) for k, v in recorder.seen[1].items())
    model.fit(X, Y, loss="mse", optimizer="sgd", epochs=1, progress=False)  # still trains
    assert not np.array_equal(_weights(model)["0.W"], final["0.W"])


def test_model_checkpoint_files_reload_as_the_weights_of_their_epoch(tmp_path, backend):
    template = os.path.join(tmp_path, "ckpt", "e{epoch:02d}-{val_loss:.4f}.safetensors")
    recorder = _Recorder()
    keep = ModelCheckpoint(template)
    _, history = _fit([recorder, keep], epochs=3)
    names = sorted(os.listdir(tmp_path / "ckpt"))
    assert names == [f"e{e + 1:02d}-{history.val_loss[e]:.4f}.safetensors" for e in range(3)]
    assert keep.last_path == os.path.join(tmp_path, "ckpt", names[-1])
    for e, name in enumerate(names):
        loaded = _weights(nnx.load(tmp_path / "ckpt" / name))
        assert all(np.array_equal(loaded[k], v) for k, v in recorder.seen[e].items())


def test_model_checkpoint_save_best_only(tmp_path):
    path = tmp_path / "best.safetensors"
    recorder = _Recorder()
    keep = ModelCheckpoint(path, save_best_only=True)
    saved = []
    spy = LambdaCallback(on_epoch_end=lambda e, logs: saved.append(os.path.getmtime(path)
                                                                   if path.exists() else None))
    script = [1.0, 0.5, math.nan, 0.7, 0.4, 0.45]
    _fit([_script(script), recorder, keep, spy], epochs=6)
    assert keep.best == 0.4
    loaded = _weights(nnx.load(path))
    assert all(np.array_equal(loaded[k], v) for k, v in recorder.seen[4].items())
    assert saved[0] is not None and saved[2] == saved[1] and saved[3] == saved[2]
    assert [p.name for p in tmp_path.iterdir()] == ["best.safetensors"]  # no temporary files


def test_model_checkpoint_in_max_mode_keeps_the_highest(tmp_path):
    keep = ModelCheckpoint(tmp_path / "m.safetensors", monitor="val_accuracy",
                           save_best_only=True)
    assert keep.mode == "max"
    recorder = _Recorder()
    _fit([_script([0.2, 0.9, 0.5], "val_accuracy"), recorder, keep], epochs=3, classify=True)
    loaded = _weights(nnx.load(tmp_path / "m.safetensors"))
    assert keep.best == 0.9
    assert all(np.array_equal(loaded[k], v) for k, v in recorder.seen[1].items())


def test_checks_before_training(tmp_path):
    calls = []
    count = LambdaCallback(on_epoch_begin=lambda e, logs: calls.append(e))
    with pytest.raises(ValueError, match=r"'val_loss'.*validation_data"):
        _fit([count, EarlyStopping()], validation_data=None)
    with pytest.raises(ValueError, match=r"\{val_loss\}|'val_loss'"):
        _fit([count, ModelCheckpoint(tmp_path / "{val_loss:.3f}.st")], validation_data=None)
    with pytest.raises(ValueError, match="'val_accuracy'"):
        _fit([count, EarlyStopping(monitor="val_accuracy")])          # mse: no accuracy
    assert calls == []
    with pytest.raises(ValueError, match="mode='min' or mode='max'"):
        EarlyStopping(monitor="lr")
    with pytest.raises(ValueError, match="mode must be"):
        EarlyStopping(mode="lowest")
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match="min_delta"):
        EarlyStopping(min_delta=float("nan"))
    with pytest.raises(TypeError, match="callable"):
        LambdaCallback(on_epoch_end=3)


def test_protocol_order_logs_and_attributes():
    events = []

    class Plain:                        # any object with some hooks is a callback
        def on_train_begin(self, logs):
            events.append(("train_begin", dict(logs), self.params["epochs"],
                           self.params["metrics"], self.params["steps"]))

        def on_epoch_begin(self, epoch, logs):
            events.append(("epoch_begin", epoch))

        def on_epoch_end(self, epoch, logs):
            events.append(("epoch_end", epoch, sorted(logs), logs["lr"], self.optimizer.lr))

        def on_train_end(self, logs):
            events.append(("train_end", sorted(logs)))

    cb = Plain()
    model, history = _fit([cb], epochs=2)
    assert cb.model is model and cb.stop_training is False
    keys = ["loss", "lr", "val_loss"]
    assert events == [("train_begin", {}, 2, keys, 3),
                      ("epoch_begin", 0), ("epoch_end", 0, keys, 0.05, 0.05),
                      ("epoch_begin", 1), ("epoch_end", 1, keys, 0.05, 0.05),
                      ("train_end", keys)]
    assert history.lr == [0.05, 0.05] and history["lr"] == history.lr


def test_stop_flag_from_any_hook_ends_after_that_epoch():
    class StopAtBegin(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                self.stop_training = True

    ended = []
    _, history = _fit([StopAtBegin(), LambdaCallback(on_train_end=ended.append)])
    assert history.epochs == 3 and len(ended) == 1
    _, history = _fit([LambdaCallback(on_epoch_end=lambda e, logs: e == 1)])
    assert history.epochs == 2


def test_a_single_callback_and_bad_callbacks():
    _, history = _fit(LambdaCallback(on_epoch_end=lambda e, logs: True))
    assert history.epochs == 1
    with pytest.raises(TypeError, match="is not a callback"):
        _fit([object()])
    with pytest.raises(TypeError, match="list of callbacks"):
        _fit("early")


def test_on_train_end_is_skipped_when_fit_raises():
    ended = []

    def explode(epoch, logs):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        _fit([LambdaCallback(on_epoch_end=explode, on_train_end=ended.append)])
    assert ended == []


def test_model_checkpoint_writes_on_the_first_rank_only(tmp_path):
    keep = ModelCheckpoint(tmp_path / "m.safetensors")
    keep.model = nnx.MLP([2, 1], seed=0)
    keep.params = {"is_root": False, "metrics": ["loss", "lr"]}   # as fit sets on rank 1
    keep.on_epoch_end(0, {"loss": 1.0, "lr": 0.1})
    assert not (tmp_path / "m.safetensors").exists()
    keep.params = {"is_root": True, "metrics": ["loss", "lr"]}
    keep.on_epoch_end(0, {"loss": 1.0, "lr": 0.1})
    assert (tmp_path / "m.safetensors").exists()
